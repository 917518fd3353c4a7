/**
 * npm run bench -- --pool [--quick]
 *
 * A pool of three instances on one Redis behind HAProxy (deploy/haproxy.cfg), measured side by
 * side with one instance on its own in the same run, all on this machine:
 * - upload answered, and from the answer until the prompt is listed on every instance;
 * - DELETE sent (through another instance in the pool) until the last packet of the play
 *   arrives at the receiver;
 * - GET /v1/plays/{id} on an instance that does not run the play (forwarded), and on the one
 *   that does;
 * - failover: kill -9 of an instance running plays until another reports them failed;
 * - N plays started through the load balancer, spread over the pool, with the pacing figures
 *   of the single-instance benchmark, against N plays on the single instance.
 * Medians and p99; numbers from a shared machine: compare within a run, not across runs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { quantile, sleep } from './stats.js'
import type { Receiver as ReceiverClass, benchPrompt as BenchPrompt, runPromptPlayer as RunPromptPlayer, table as Table } from './bench.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')

export interface PoolBenchOptions {
  quick: boolean
  window: number
  runPromptPlayer: typeof RunPromptPlayer
  Receiver: typeof ReceiverClass
  table: typeof Table
  benchPrompt: typeof BenchPrompt
}

export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise(resolve => server.close(resolve))
  return port
}

export async function waitReady (url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return
    } catch {}
    await sleep(50)
  }
  throw new Error(`${url} did not become ready`)
}

export interface Instance { url: string, child: ChildProcess, id: string }

export async function instance (id: string, env: Record<string, string>, rtp: string): Promise<Instance> {
  const port = await freePort()
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'service', 'server.js')], {
    env: { ...process.env, PROMPT_PLAYER_PORT: String(port), PROMPT_PLAYER_INSTANCE_ID: id, PROMPT_PLAYER_RTP_PORTS: rtp, PROMPT_PLAYER_MAX_PLAYS: '5000', PROMPT_PLAYER_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const url = `http://127.0.0.1:${port}`
  await waitReady(url)
  return { url, child, id }
}

async function json (res: Response): Promise<any> { return await res.json() }

/** A UDP port that records arrival times, for the stop latency. */
async function listener (): Promise<{ port: number, last: () => number, count: () => number, close: () => void }> {
  const socket = dgram.createSocket('udp4')
  let last = 0
  let count = 0
  socket.on('message', () => { last = performance.now(); count++ })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  return { port: socket.address().port, last: () => last, count: () => count, close: () => socket.close() }
}

async function play (url: string, port: number, prompt: string): Promise<any> {
  const res = await fetch(`${url}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port }, prompts: [prompt] }) })
  const body = await json(res)
  if (res.status !== 201) throw new Error(`play refused: ${JSON.stringify(body)}`)
  return body
}

/**
 * DELETE through `via` of a play on `owner`: how long until it answered, how long after it was
 * sent the last packet arrived (0 when none arrived after), and packets after the answer.
 */
async function stopLatency (owner: string, via: string, prompt: string, trials: number): Promise<{ answered: number[], lastPacket: number[], afterAnswer: number }> {
  const answered: number[] = []
  const lastPacket: number[] = []
  let afterAnswer = 0
  // The first calls open the connections (to the owner, to Redis) and warm the code: not timed.
  const warmup = 5
  for (let i = 0; i < trials + warmup; i++) {
    const rx = await listener()
    const p = await play(owner, rx.port, prompt)
    while (rx.count() < 5) await sleep(5)
    // Sent at a random point of the 20 ms packet cycle.
    await sleep(Math.random() * 20)
    const sent = performance.now()
    await (await fetch(`${via}/v1/plays/${p.id as string}`, { method: 'DELETE' })).arrayBuffer()
    const answer = performance.now()
    await sleep(100)
    rx.close()
    if (i < warmup) continue
    answered.push(answer - sent)
    lastPacket.push(Math.max(0, rx.last() - sent))
    if (rx.last() > answer) afterAnswer++
  }
  return { answered, lastPacket, afterAnswer }
}

async function getLatency (owner: string, via: string, prompt: string, trials: number): Promise<number[]> {
  const rx = await listener()
  const p = await play(owner, rx.port, prompt)
  const results: number[] = []
  for (let i = 0; i < 20; i++) await (await fetch(`${via}/v1/plays/${p.id as string}`)).arrayBuffer() // warm-up, not timed
  for (let i = 0; i < trials; i++) {
    const t0 = performance.now()
    await (await fetch(`${via}/v1/plays/${p.id as string}`)).arrayBuffer()
    results.push(performance.now() - t0)
  }
  await fetch(`${owner}/v1/plays/${p.id as string}`, { method: 'DELETE' })
  rx.close()
  return results
}

const f = (n: number): string => Number.isFinite(n) ? n.toFixed(1) : '-'

export async function poolBench (options: PoolBenchOptions): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prompt-player-pool-bench-'))
  const children: ChildProcess[] = []
  const stopAll = (): void => { for (const c of children) c.kill('SIGKILL') }
  process.once('exit', stopAll)
  try {
    const redisPort = await freePort()
    children.push(spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', work, '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' }))
    for (let i = 0; i < 100; i++) { try { execFileSync('redis-cli', ['-p', String(redisPort), 'ping'], { stdio: 'ignore' }); break } catch { await sleep(50) } }
    const redisEnv = { PROMPT_PLAYER_REDIS_URL: `redis://127.0.0.1:${redisPort}/0` }
    const single = await instance('single', { PROMPT_PLAYER_LIBRARY: path.join(work, 'single') }, '20000-23999')
    const pool = await Promise.all([1, 2, 3].map(async k => await instance(`p${k}`, redisEnv, `${24000 + (k - 1) * 4000}-${24000 + k * 4000 - 1}`)))
    children.push(single.child, ...pool.map(p => p.child))
    const lbPort = await freePort()
    const statsPort = await freePort()
    const haproxy = fs.existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy'
    children.push(spawn(haproxy, ['-db', '-f', path.join(ROOT, 'deploy', 'haproxy.cfg')], {
      env: { ...process.env, PP_LB_BIND: `127.0.0.1:${lbPort}`, PP_STATS_BIND: `127.0.0.1:${statsPort}`, PP_INSTANCE_1: new URL(pool[0]!.url).host, PP_INSTANCE_2: new URL(pool[1]!.url).host, PP_INSTANCE_3: new URL(pool[2]!.url).host },
      stdio: 'ignore'
    }))
    const lb = `http://127.0.0.1:${lbPort}`
    await waitReady(lb)
    const [p1, p2, p3] = pool as [Instance, Instance, Instance]
    const sample = fs.readFileSync(path.join(ROOT, 'prompts', 'media', JSON.parse(fs.readFileSync(path.join(ROOT, 'prompts', 'welcome.json'), 'utf8')).source.sha256, 'source'))
    console.error(`pool benchmark (${options.quick ? 'quick' : 'full'}): one instance, and three on Redis behind HAProxy, ${os.cpus().length} cores, node ${process.version}`)

    // 1. Uploads: answered, then listed everywhere.
    const uploads = options.quick ? 10 : 30
    const answeredSingle: number[] = []
    const answeredPool: number[] = []
    const everywhere: number[] = []
    for (let k = 0; k < uploads; k++) {
      const body = Buffer.concat([sample, Buffer.from(String(k))]) // distinct bytes each time: a real transcode and commit
      let t0 = performance.now()
      await (await fetch(`${single.url}/v1/prompts/u${k}`, { method: 'PUT', body: new Uint8Array(body) })).arrayBuffer()
      answeredSingle.push(performance.now() - t0)
      t0 = performance.now()
      const res = await fetch(`${p1.url}/v1/prompts/u${k}`, { method: 'PUT', body: new Uint8Array(body) })
      await res.arrayBuffer()
      const answered = performance.now()
      answeredPool.push(answered - t0)
      const pending = new Set([p2, p3])
      while (pending.size > 0) {
        for (const p of [...pending]) if ((await fetch(`${p.url}/v1/prompts/u${k}`)).status === 200) pending.delete(p)
      }
      everywhere.push(performance.now() - answered)
    }
    console.error('uploads done')

    // 2. Stop latency; 3. GET latency.
    const trials = options.quick ? 20 : 200
    const stopSingle = await stopLatency(single.url, single.url, 'u0', trials)
    const stopForwarded = await stopLatency(p1.url, p2.url, 'u0', trials)
    const getSingle = await getLatency(single.url, single.url, 'u0', trials * 5)
    const getOwner = await getLatency(p1.url, p1.url, 'u0', trials * 5)
    const getForwarded = await getLatency(p1.url, p2.url, 'u0', trials * 5)
    console.error('stops and gets done')

    // 5. N plays: the single instance, and the pool through HAProxy (before the failover drill).
    const n = options.quick ? 100 : 1000
    const prompt = options.benchPrompt(work)
    const put = async (url: string): Promise<void> => {
      const res = await fetch(`${url}/v1/prompts/bench`, { method: 'PUT', body: fs.readFileSync(prompt) })
      if (!res.ok) throw new Error(`upload of the bench prompt: ${await res.text()}`)
    }
    await put(single.url)
    await put(lb)
    await sleep(500)
    const receiver = new options.Receiver()
    const rows = []
    rows.push(await options.runPromptPlayer(single.url, [single.child.pid!], receiver, n, [], [single.url], 'one instance'))
    console.error(`one instance, N=${n} done`)
    await sleep(1000)
    rows.push(await options.runPromptPlayer(lb, pool.map(p => p.child.pid!), receiver, n, [], pool.map(p => p.url), 'pool of 3 via HAProxy'))
    console.error(`pool, N=${n} done`)
    await receiver.close()

    // 4. Failover: p3 killed while it runs plays; p1 reports them failed.
    const rx = await listener()
    const doomed = await Promise.all([0, 1, 2, 3, 4].map(async () => await play(p3.url, rx.port, 'u0')))
    await sleep(500)
    p3.child.kill('SIGKILL')
    const killed = performance.now()
    let detected = NaN
    while (performance.now() - killed < 30_000) {
      const states = await Promise.all(doomed.map(async d => (await json(await fetch(`${p1.url}/v1/plays/${d.id as string}`))).state))
      if (states.every(s => s === 'failed')) { detected = performance.now() - killed; break }
      await sleep(50)
    }
    rx.close()

    console.log('| figure | one instance | pool of 3 (Redis, HAProxy) | target |')
    console.log('| --- | --- | --- | --- |')
    console.log(`| upload answered p50 / p99 (ms) | ${f(quantile(answeredSingle, 0.5))} / ${f(quantile(answeredSingle, 0.99))} | ${f(quantile(answeredPool, 0.5))} / ${f(quantile(answeredPool, 0.99))} | |`)
    console.log(`| upload answered to playable on every instance p50 / p99 (ms) | 0 (playable when answered) | ${f(quantile(everywhere, 0.5))} / ${f(quantile(everywhere, 0.99))} | p99 <= 1000 |`)
    console.log(`| DELETE sent to answered p50 / p99 (ms) | ${f(quantile(stopSingle.answered, 0.5))} / ${f(quantile(stopSingle.answered, 0.99))} | through another instance: ${f(quantile(stopForwarded.answered, 0.5))} / ${f(quantile(stopForwarded.answered, 0.99))} | p99 <= 20 |`)
    console.log(`| DELETE sent to the last packet at the receiver p50 / p99 (ms; 0: none after it was sent) | ${f(quantile(stopSingle.lastPacket, 0.5))} / ${f(quantile(stopSingle.lastPacket, 0.99))} | ${f(quantile(stopForwarded.lastPacket, 0.5))} / ${f(quantile(stopForwarded.lastPacket, 0.99))} | within one ptime (20) |`)
    console.log(`| stops with a packet after the answer | ${stopSingle.afterAnswer} of ${trials} | ${stopForwarded.afterAnswer} of ${trials} | 0 |`)
    console.log(`| GET /v1/plays/{id} p50 / p99 (ms) | ${f(quantile(getSingle, 0.5))} / ${f(quantile(getSingle, 0.99))} | on the owner ${f(quantile(getOwner, 0.5))} / ${f(quantile(getOwner, 0.99))}; on another (forwarded) ${f(quantile(getForwarded, 0.5))} / ${f(quantile(getForwarded, 0.99))} | |`)
    console.log(`| failover: kill -9 to its plays reported failed (ms) | - | ${f(detected)} | <= 10000 |`)
    console.log()
    console.log(options.table(rows))
    console.log(`\n${uploads} uploads, ${trials} stops, ${trials * 5} GETs each; pacing windows of ${options.window} s; plays started at 100/s.`)
  } finally {
    stopAll()
    fs.rmSync(work, { recursive: true, force: true })
  }
}
