/**
 * /metrics in Prometheus text format (prom-client). The engine keeps plain counters on the
 * packet path; they are read when Prometheus scrapes, so a packet costs no metric call.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { LatenessStats, type Engine, type PoolInstance } from '../src/index.js'
import type { Webhooks } from './events.js'

async function metrics (app: FastifyInstance, opts: { engine: Engine, webhooks: Webhooks }): Promise<void> {
  const engine = opts.engine
  const register = new Registry()
  // Process and runtime metrics, event-loop delay among them (nodejs_eventloop_lag_*).
  collectDefaultMetrics({ register, eventLoopMonitoringPrecision: 10 })

  new Gauge({ name: 'prompt_player_plays_running', help: 'Plays sending now', registers: [register], collect () { this.set(engine.plays.runningCount) } })
  new Gauge({ name: 'prompt_player_prompts', help: 'Prompts in the library', registers: [register], collect () { this.set(engine.prompts.size) } })
  const fromEngine = (name: string, help: string, read: () => number): void => {
    new Counter({ name, help, registers: [register], collect () { this.reset(); this.inc(read()) } })
  }
  fromEngine('prompt_player_plays_started_total', 'Plays started', () => engine.plays.startedCount)
  fromEngine('prompt_player_packets_sent_total', 'RTP packets handed to the kernel', () => engine.plays.totals().packets)
  fromEngine('prompt_player_octets_sent_total', 'RTP payload octets sent (as RTCP counts them)', () => engine.plays.totals().octets)
  fromEngine('prompt_player_send_errors_total', 'Sends the kernel refused, ICMP unreachable included', () => engine.plays.totals().sendErrors)
  fromEngine('prompt_player_packets_skipped_total', 'Packets skipped because they were due longer ago than the late limit when their time came', () => engine.plays.totals().skipped)
  new Gauge({ name: 'prompt_player_packet_thread_plays', help: 'Plays each packet thread sends', labelNames: ['thread'], registers: [register], collect () { for (const th of engine.plays.threads()) this.set({ thread: String(th.index) }, th.plays) } })
  new Gauge({ name: 'prompt_player_packet_thread_load', help: 'Packets a second each packet thread\'s plays send', labelNames: ['thread'], registers: [register], collect () { for (const th of engine.plays.threads()) this.set({ thread: String(th.index) }, th.packetsPerSecond) } })
  new Counter({ name: 'prompt_player_packet_thread_restarts_total', help: 'Packet threads that died and were replaced (their plays failed)', labelNames: ['thread'], registers: [register], collect () { this.reset(); for (const th of engine.plays.threads()) this.inc({ thread: String(th.index) }, th.restarts) } })

  new Counter({
    name: 'prompt_player_webhooks_total',
    help: 'Webhook events by how delivery ended: delivered, refused (PROMPT_PLAYER_ALLOWED_CALLBACKS), rejected (3xx/4xx), failed (after retries)',
    labelNames: ['outcome'],
    registers: [register],
    collect () {
      this.reset()
      for (const [outcome, count] of Object.entries(opts.webhooks.outcomes)) this.inc({ outcome }, count)
    }
  })

  new Counter({
    name: 'prompt_player_url_cache_total',
    help: 'Plays of prompt URLs: served from the cache (hit), fetched (miss), revalidated with the origin, refused (not audio, or the fetch failed)',
    labelNames: ['result'],
    registers: [register],
    collect () {
      this.reset()
      const s = engine.urls.stats
      for (const [result, count] of [['hit', s.hits], ['miss', s.misses], ['revalidation', s.revalidations], ['refusal', s.refusals]] as const) this.inc({ result }, count)
    }
  })
  new Gauge({ name: 'prompt_player_url_cache_bytes', help: 'Audio kept by the URL cache (both laws)', registers: [register], collect () { this.set(engine.urls.bytes) } })

  if (engine.pool !== null) {
    // The pool's view, read from Redis once per scrape (both gauges share the read); nothing
    // when it cannot be reached.
    const pool = engine.pool
    let reading: ReturnType<typeof pool.instances> | null = null
    const instancesNow = async (): Promise<PoolInstance[] | null> => {
      reading ??= pool.instances().finally(() => { setImmediate(() => { reading = null }) })
      return await reading.catch(() => null)
    }
    new Gauge({
      name: 'prompt_player_pool_instances',
      help: 'Instances of the pool alive (heartbeat within the last 5 s)',
      registers: [register],
      async collect () {
        const instances = await instancesNow()
        if (instances !== null) this.set(instances.length)
      }
    })
    new Gauge({
      name: 'prompt_player_pool_plays_running',
      help: 'Plays running, per instance of the pool',
      labelNames: ['instance'],
      registers: [register],
      async collect () {
        const instances = await instancesNow()
        this.reset()
        for (const i of instances ?? []) this.set({ instance: i.id }, i.playsRunning)
      }
    })
    new Gauge({ name: 'prompt_player_pool_store_up', help: '1 while the pool\'s Redis answers', registers: [register], collect () { this.set(pool.connected ? 1 : 0) } })
  }

  const ended = new Counter({ name: 'prompt_player_plays_ended_total', help: 'Plays ended, by final state', labelNames: ['state'], registers: [register] })
  for (const state of ['finished', 'stopped', 'failed']) ended.inc({ state }, 0)
  engine.events.on('play', event => {
    if (event.type === 'play.finished' || event.type === 'play.stopped' || event.type === 'play.failed') ended.inc({ state: event.play.state })
  })

  const runs = new Counter({ name: 'prompt_player_ffmpeg_runs_total', help: 'ffmpeg decodes, by kind and outcome', labelNames: ['what', 'outcome'], registers: [register] })
  const runTime = new Histogram({ name: 'prompt_player_ffmpeg_run_seconds', help: 'ffmpeg decode wall time', labelNames: ['what'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [register] })
  engine.events.on('ffmpeg', run => {
    runs.inc({ what: run.what, outcome: run.ok ? 'ok' : 'failed' })
    runTime.observe({ what: run.what }, run.durationMs / 1000)
  })

  const uploads = new Counter({ name: 'prompt_player_uploads_total', help: 'Prompt uploads, by HTTP status', labelNames: ['status'], registers: [register] })
  const uploadTime = new Histogram({ name: 'prompt_player_upload_seconds', help: 'Prompt upload handling time (transcode included)', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [register] })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url
    if ((request.method === 'PUT' && route === '/v1/prompts/:name') || (request.method === 'POST' && route === '/v1/prompts')) {
      uploads.inc({ status: String(reply.statusCode) })
      uploadTime.observe(reply.elapsedTime / 1000)
    }
  })

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const text = await register.metrics()
    return await reply.type(register.contentType).send(text + latenessHistogram(engine.lateness))
  })
}

/**
 * How late each packet left against its due time. The scheduler counts into fixed buckets on
 * the packet path; this writes them in the exposition format of a Prometheus histogram.
 */
function latenessHistogram (stats: LatenessStats): string {
  const name = 'prompt_player_packet_lateness_seconds'
  const lines = [`# HELP ${name} How late each RTP packet left against its due time (start + k * ptime)`, `# TYPE ${name} histogram`]
  let cumulative = 0
  LatenessStats.BOUNDS.forEach((bound, i) => {
    cumulative += stats.counts[i]!
    lines.push(`${name}_bucket{le="${bound / 1000}"} ${cumulative}`)
  })
  lines.push(`${name}_bucket{le="+Inf"} ${stats.total}`, `${name}_sum ${stats.sum / 1000}`, `${name}_count ${stats.total}`)
  return lines.join('\n') + '\n'
}

/** Not encapsulated: its onResponse hook must see the upload routes registered beside it. */
export default fp(metrics, { name: 'metrics' })
