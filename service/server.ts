/**
 * Entry point: loads the configuration, builds the app, listens, and closes gracefully on
 * SIGTERM and SIGINT (every play ends as `stopped`, sockets are freed).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { pathToFileURL } from 'node:url'
import { CallbackPolicy } from './callbacks.js'
import app, { serverOptions } from './app.js'
import { ConfigError, inVariables, loadConfig } from './config.js'
import { createEngine, isEngineError } from '../src/index.js'

/** Starts the service from environment variables; resolves once it listens. */
export async function start (env: NodeJS.ProcessEnv = process.env): Promise<FastifyInstance> {
  const config = loadConfig(env)
  const fastify = Fastify({
    ...serverOptions,
    logger: { level: config.logLevel },
    requestTimeout: config.requestTimeoutMs
  })
  surviveDescriptorExhaustion(fastify.log)
  const poolLog = fastify.log.child({ component: 'pool' })
  const engine = await createEngine({
    libraryDir: config.libraryDir,
    rtpPorts: config.rtpPorts,
    maxPlays: config.maxPlays,
    ffmpegPath: config.ffmpegPath,
    ffmpegTimeoutMs: config.ffmpegTimeoutMs,
    ffmpegNiceness: config.ffmpegNiceness,
    maxPromptSeconds: config.maxPromptSeconds,
    maxTranscodes: config.maxTranscodes,
    transcodeQueue: config.transcodeQueue,
    opusBitrate: config.opusBitrate,
    targets: config.targets,
    rtcpIntervalMs: config.rtcpIntervalMs,
    fetch: { ...config.fetch, maxBytes: config.maxUploadBytes },
    realtimePriority: config.realtimePriority,
    packetThreads: config.packetThreads,
    pacing: config.pacing,
    lateLimitPtimes: config.lateLimitPtimes,
    // In a pool every instance needs its own id: the host name and the port tell instances on
    // one machine apart (the process id where the port is picked at start).
    instanceId: config.instanceId !== '' ? config.instanceId : `${os.hostname()}:${config.port === 0 ? `pid${process.pid}` : config.port}`,
    ...(config.pool === null ? {} : { pool: config.pool }),
    onPoolError: (err, what) => { poolLog.warn({ err }, `pool: ${what} failed: ${(err as Error).message}`) }
  })
  // Under CPU contention the packets must come first, then requests, then ffmpeg
  // (PROMPT_PLAYER_FFMPEG_NICE). The packet thread raises its own priority where it may (root,
  // CAP_SYS_NICE); where it may not, this thread (HTTP, uploads, JSON) steps back by five
  // instead. On Linux the niceness is per thread.
  const packetNice = engine.packetThreadNiceness
  const httpNice = packetNice === null ? lowerThisThread(HTTP_NICENESS) : os.getPriority()
  await fastify.register(app, { engine, maxUploadBytes: config.maxUploadBytes, maxPromptsPerPlay: config.maxPromptsPerPlay, tokens: config.tokens, rateLimit: config.rateLimit, bodyTimeoutMs: config.requestTimeoutMs, overload: { maxEventLoopDelayMs: config.maxEventLoopDelayMs }, webhooks: { policy: new CallbackPolicy(config.callbacks) }, ...(config.consoleDir === null ? {} : { consoleDir: config.consoleDir }) })
  await fastify.ready()
  for (const warning of engine.warnings) fastify.log.warn(warning, `library entry skipped: ${warning.reason}`)
  if ('error' in engine.ffmpegInfo) fastify.log.error(`ffmpeg is not usable, uploads will fail until it is: ${inVariables(engine.ffmpegInfo.error, engine.ffmpegInfo.options)}`)

  // Descriptors: two UDP sockets per play (RTP and RTCP), a reserve for files, pipes and the worker, and HTTP
  // connections get the rest. Past the cap, Node closes a new connection at once: a flood of
  // idle connections cannot take the descriptors that plays and uploads need.
  const files = openFileLimit()
  const needed = config.maxPlays * SOCKETS_PER_PLAY + FILES_RESERVED + MIN_CONNECTIONS
  if (files !== null && files < needed) {
    fastify.log.warn({ openFileLimit: files, maxPlays: config.maxPlays }, `the open-file limit is ${files}, below the ${needed} that ${config.maxPlays} plays need (two UDP sockets each, RTP and RTCP, PROMPT_PLAYER_MAX_PLAYS, and ${FILES_RESERVED + MIN_CONNECTIONS} for files and connections): raise it (ulimit -n 65536; LimitNOFILE=65536 under systemd; --ulimit nofile=65536:65536 in Docker) or lower PROMPT_PLAYER_MAX_PLAYS`)
  }
  const connectionBudget = files === null ? UNLIMITED_CONNECTIONS : Math.max(MIN_CONNECTIONS, files - config.maxPlays * SOCKETS_PER_PLAY - FILES_RESERVED)
  if (config.maxConnections > connectionBudget) {
    fastify.log.warn({ openFileLimit: files, maxConnections: config.maxConnections }, `PROMPT_PLAYER_MAX_CONNECTIONS is ${config.maxConnections}, more than the ${connectionBudget} the open-file limit leaves beside the plays; a flood of connections could then take descriptors the plays need`)
  }
  fastify.server.maxConnections = config.maxConnections > 0 ? config.maxConnections : connectionBudget

  let closing = false
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (closing) return
      closing = true
      fastify.log.info({ signal, playsRunning: engine.plays.runningCount }, 'shutting down: stopping plays')
      // Bounded: whatever hangs (a webhook, a client that will not let go), the process ends.
      setTimeout(() => {
        fastify.log.error(`shutdown did not finish within ${SHUTDOWN_MS} ms; exiting anyway`)
        process.exit(1)
      }, SHUTDOWN_MS).unref()
      fastify.close().then(() => process.exit(0), (err: unknown) => {
        fastify.log.error({ err }, 'shutdown failed')
        process.exit(1)
      })
    })
  }

  try {
    await fastify.listen({ host: config.host, port: config.port })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'EADDRINUSE'
      ? `port ${config.port} on ${config.host} is in use by another process; stop it or set PROMPT_PLAYER_PORT (0 picks a free port)`
      : e.code === 'EADDRNOTAVAIL'
        ? `${config.host} is not an address of this machine; fix PROMPT_PLAYER_HOST`
        : e.message
    fastify.log.fatal(`cannot listen: ${why}`)
    await fastify.close()
    process.exit(1)
  }
  const address = fastify.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.port
  // In a pool, other instances forward calls on this instance's plays here.
  const advertise = config.advertiseUrl !== '' ? config.advertiseUrl : `http://${advertisedHost(config.host)}:${port}`
  if (engine.pool !== null) await engine.join(advertise)
  fastify.log.info({
    url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
    library: engine.prompts.location,
    prompts: engine.prompts.size,
    ffmpeg: 'error' in engine.ffmpegInfo ? null : `${engine.ffmpegInfo.path} (${engine.ffmpegInfo.version})`,
    rtpPorts: `${config.rtpPorts.min}-${config.rtpPorts.max}`,
    maxPlays: config.maxPlays,
    openFileLimit: files,
    maxConnections: fastify.server.maxConnections,
    packetThreadNiceness: packetNice ?? os.getPriority(),
    packetThreadRealtime: engine.packetThreadRealtime,
    httpThreadNiceness: httpNice,
    instance: engine.instance,
    pool: engine.pool === null ? null : { redis: engine.pool.location, advertise }
  }, `prompt-player listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port} with ${engine.prompts.size} prompts from ${engine.prompts.location}`)
  return fastify
}

/**
 * Running out of descriptors must not end every play. An EMFILE or ENFILE that nobody catches
 * (under-pressure's sampling timer calls process.memoryUsage, which opens /proc) is logged, at
 * most once a second, and the process goes on; the connection cap makes it rare. Any other
 * uncaught error is a bug: logged, and the process exits as Node would.
 */
let survivalInstalled = false
function surviveDescriptorExhaustion (log: FastifyBaseLogger): void {
  if (survivalInstalled) return
  survivalInstalled = true
  let lastLogged = 0
  let unlogged = 0
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') {
      const now = Date.now()
      if (now - lastLogged < 1000) {
        unlogged++
        return
      }
      log.error({ err, since: unlogged }, `out of file descriptors (${err.code} in ${err.syscall ?? 'an operation'}): the process goes on; raise the open-file limit or lower PROMPT_PLAYER_MAX_CONNECTIONS`)
      lastLogged = now
      unlogged = 0
      return
    }
    log.fatal({ err }, `uncaught exception, exiting: ${err.message}`)
    process.exit(1)
  })
}

/** The host other instances reach this one at: the listening address, or this machine's name when it listens on every address. */
function advertisedHost (host: string): string {
  if (host === '0.0.0.0' || host === '::') return os.hostname()
  return host.includes(':') ? `[${host}]` : host
}

/** The longest a graceful shutdown may take. */
const SHUTDOWN_MS = 10_000

/** How far the HTTP thread steps back from the packet thread. */
const HTTP_NICENESS = 5

/** Raises this thread's niceness by `by` (always allowed); the new niceness, or null if refused. */
function lowerThisThread (by: number): number | null {
  try {
    const current = os.getPriority()
    os.setPriority(Math.min(19, current + by))
    return os.getPriority()
  } catch {
    return null
  }
}

/** UDP sockets of one play: RTP, and RTCP on the port above (rtcp "on", the default). */
const SOCKETS_PER_PLAY = 2

/** Descriptors kept for everything but the plays' sockets and HTTP connections: library files, ffmpeg's pipes, the worker, stdio. */
const FILES_RESERVED = 192

/** HTTP connections allowed however low the open-file limit: the API must stay reachable. */
const MIN_CONNECTIONS = 64

/** The connection cap where the open-file limit cannot be read (not Linux). */
const UNLIMITED_CONNECTIONS = 10_000

/**
 * The soft limit on open files (Node raises it to the hard limit at startup), from
 * /proc/self/limits; null where that file does not exist.
 */
function openFileLimit (): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find(l => l.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    return soft === undefined || soft === 'unlimited' ? null : Number(soft)
  } catch {
    return null
  }
}

/** Runs the service until a signal; a failure to start is one line on stderr and exit 1. */
export function main (env: NodeJS.ProcessEnv = process.env): void {
  start(env).catch((err: unknown) => {
    // One line a person can act on, not a stack trace.
    const message = err instanceof ConfigError ? err.message : `cannot start: ${isEngineError(err) ? inVariables(err.message, err.options) : (err as Error).message}`
    process.stderr.write(`prompt-player: ${message}\n`)
    process.exit(1)
  })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main()
