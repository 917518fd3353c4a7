/**
 * Configuration from the environment, validated before anything starts: a bad value stops
 * startup with a message that names the variable and says what is accepted.
 */
import os from 'node:os'
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { ENGINE_DEFAULTS, MAX_PROMPTS_PER_PLAY_LIMIT, PACING_MODES, parseCidr, type Pacing } from '../src/index.js'

/** The service's own defaults; the engine's are ENGINE_DEFAULTS. */
export const SERVICE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  library: './prompts',
  maxUploadBytes: 50 * 1024 * 1024,
  maxPromptsPerPlay: 100,
  /** The largest JSON body: a play request of the most prompts allowed fits many times over. */
  jsonBodyLimit: 256 * 1024,
  rateLimit: 2000,
  maxEventLoopDelayMs: 1000,
  requestTimeoutMs: 120_000,
  /**
   * A connection must have sent a request's headers within this of opening (or of starting the
   * request): idle connections that never send a byte are closed, and cannot hold descriptors.
   */
  headersTimeoutMs: 5000,
  /** Where webhooks may go: the same networks as the targets. */
  allowedCallbacks: ENGINE_DEFAULTS.allowedTargets,
  logLevel: 'info'
} as const

const { rtpPorts } = ENGINE_DEFAULTS

export const ConfigSchema = Type.Object({
  PROMPT_PLAYER_HOST: Type.String({ default: SERVICE_DEFAULTS.host, minLength: 1 }),
  PROMPT_PLAYER_PORT: Type.Integer({ default: SERVICE_DEFAULTS.port, minimum: 0, maximum: 65535 }),
  PROMPT_PLAYER_LIBRARY: Type.String({ default: SERVICE_DEFAULTS.library, minLength: 1 }),
  PROMPT_PLAYER_RTP_PORTS: Type.String({ default: `${rtpPorts.min}-${rtpPorts.max}`, pattern: '^\\d+-\\d+$' }),
  PROMPT_PLAYER_MAX_PLAYS: Type.Integer({ default: ENGINE_DEFAULTS.maxPlays, minimum: 1 }),
  PROMPT_PLAYER_MAX_UPLOAD_BYTES: Type.Integer({ default: SERVICE_DEFAULTS.maxUploadBytes, minimum: 1024 }),
  PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY: Type.Integer({ default: SERVICE_DEFAULTS.maxPromptsPerPlay, minimum: 1, maximum: MAX_PROMPTS_PER_PLAY_LIMIT }),
  PROMPT_PLAYER_FFMPEG_TIMEOUT_MS: Type.Integer({ default: ENGINE_DEFAULTS.ffmpegTimeoutMs, minimum: 100 }),
  PROMPT_PLAYER_FFMPEG_NICE: Type.Integer({ default: ENGINE_DEFAULTS.ffmpegNiceness, minimum: 0, maximum: 19 }),
  PROMPT_PLAYER_MAX_PROMPT_SECONDS: Type.Integer({ default: ENGINE_DEFAULTS.maxPromptSeconds, minimum: 1 }),
  PROMPT_PLAYER_MAX_TRANSCODES: Type.Integer({ default: ENGINE_DEFAULTS.maxTranscodes, minimum: 1 }),
  PROMPT_PLAYER_OPUS_BITRATE: Type.Integer({ default: ENGINE_DEFAULTS.opusBitrate, minimum: 6000, maximum: 256000 }),
  PROMPT_PLAYER_TRANSCODE_QUEUE: Type.Integer({ default: ENGINE_DEFAULTS.transcodeQueue, minimum: 0 }),
  PROMPT_PLAYER_TOKENS: Type.String({ default: '' }),
  PROMPT_PLAYER_RATE_LIMIT: Type.Integer({ default: SERVICE_DEFAULTS.rateLimit, minimum: 0 }),
  PROMPT_PLAYER_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: SERVICE_DEFAULTS.maxEventLoopDelayMs, minimum: 0 }),
  PROMPT_PLAYER_REQUEST_TIMEOUT_MS: Type.Integer({ default: SERVICE_DEFAULTS.requestTimeoutMs, minimum: 1000 }),
  PROMPT_PLAYER_MAX_CONNECTIONS: Type.Integer({ default: 0, minimum: 0 }),
  PROMPT_PLAYER_REDIS_URL: Type.String({ default: '' }),
  PROMPT_PLAYER_REDIS_SENTINELS: Type.String({ default: '' }),
  PROMPT_PLAYER_REDIS_MASTER: Type.String({ default: '' }),
  PROMPT_PLAYER_REDIS_PASSWORD: Type.String({ default: '' }),
  /** Absent: 1 under Sentinel, 0 with a URL. */
  PROMPT_PLAYER_REDIS_WAIT_REPLICAS: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 })),
  PROMPT_PLAYER_REDIS_WAIT_MS: Type.Integer({ default: 1000, minimum: 10, maximum: 60000 }),
  PROMPT_PLAYER_INSTANCE_ID: Type.String({ default: '', pattern: '^[A-Za-z0-9._:-]{0,100}$' }),
  PROMPT_PLAYER_ADVERTISE_URL: Type.String({ default: '' }),
  PROMPT_PLAYER_REDIS_KEEP_SOURCE: Type.Boolean({ default: true }),
  PROMPT_PLAYER_ALLOWED_TARGETS: Type.String({ default: ENGINE_DEFAULTS.allowedTargets.join(',') }),
  PROMPT_PLAYER_MIN_TARGET_PORT: Type.Integer({ default: ENGINE_DEFAULTS.minTargetPort, minimum: 1, maximum: 65535 }),
  PROMPT_PLAYER_RTCP_INTERVAL_MS: Type.Integer({ default: ENGINE_DEFAULTS.rtcpIntervalMs, minimum: 500, maximum: 60000 }),
  PROMPT_PLAYER_REALTIME_PRIORITY: Type.Integer({ default: ENGINE_DEFAULTS.realtimePriority, minimum: 0, maximum: 99 }),
  /** Absent: the cores the process may run on (os.availableParallelism). */
  PROMPT_PLAYER_PACKET_THREADS: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  PROMPT_PLAYER_PACING: Type.Union(PACING_MODES.map(mode => Type.Literal(mode)), { default: ENGINE_DEFAULTS.pacing }),
  PROMPT_PLAYER_LATE_LIMIT_PTIMES: Type.Integer({ default: ENGINE_DEFAULTS.lateLimitPtimes, minimum: 0, maximum: 1000 }),
  PROMPT_PLAYER_ALLOWED_CALLBACKS: Type.String({ default: SERVICE_DEFAULTS.allowedCallbacks.join(',') }),
  PROMPT_PLAYER_ALLOWED_FETCH: Type.String({ default: ENGINE_DEFAULTS.allowedTargets.join(',') }),
  PROMPT_PLAYER_CONSOLE_DIR: Type.String({ default: '' }),
  PROMPT_PLAYER_FETCH_TIMEOUT_MS: Type.Integer({ default: ENGINE_DEFAULTS.fetch.timeoutMs, minimum: 100, maximum: 600000 }),
  PROMPT_PLAYER_URL_CACHE_BYTES: Type.Integer({ default: ENGINE_DEFAULTS.fetch.cacheBytes, minimum: 0 }),
  PROMPT_PLAYER_LOG_LEVEL: Type.Union([
    Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'),
    Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
  ], { default: SERVICE_DEFAULTS.logLevel }),
  FFMPEG_PATH: Type.String({ default: ENGINE_DEFAULTS.ffmpegPath, minLength: 1 })
})

/**
 * The variable that sets each engine option. Engine messages name options (`maxPlays`); the
 * service's answers name the variable a person would change.
 */
export const OPTION_VARIABLES: Readonly<Record<string, keyof typeof ConfigSchema.properties>> = {
  rtpPorts: 'PROMPT_PLAYER_RTP_PORTS',
  maxPlays: 'PROMPT_PLAYER_MAX_PLAYS',
  ffmpegPath: 'FFMPEG_PATH',
  ffmpegTimeoutMs: 'PROMPT_PLAYER_FFMPEG_TIMEOUT_MS',
  ffmpegNiceness: 'PROMPT_PLAYER_FFMPEG_NICE',
  maxPromptSeconds: 'PROMPT_PLAYER_MAX_PROMPT_SECONDS',
  maxTranscodes: 'PROMPT_PLAYER_MAX_TRANSCODES',
  opusBitrate: 'PROMPT_PLAYER_OPUS_BITRATE',
  'pool.keepSource': 'PROMPT_PLAYER_REDIS_KEEP_SOURCE',
  transcodeQueue: 'PROMPT_PLAYER_TRANSCODE_QUEUE',
  'targets.allow': 'PROMPT_PLAYER_ALLOWED_TARGETS',
  'targets.minPort': 'PROMPT_PLAYER_MIN_TARGET_PORT',
  rtcpIntervalMs: 'PROMPT_PLAYER_RTCP_INTERVAL_MS',
  'fetch.allow': 'PROMPT_PLAYER_ALLOWED_FETCH',
  'fetch.timeoutMs': 'PROMPT_PLAYER_FETCH_TIMEOUT_MS',
  'fetch.maxBytes': 'PROMPT_PLAYER_MAX_UPLOAD_BYTES',
  realtimePriority: 'PROMPT_PLAYER_REALTIME_PRIORITY',
  packetThreads: 'PROMPT_PLAYER_PACKET_THREADS',
  pacing: 'PROMPT_PLAYER_PACING',
  lateLimitPtimes: 'PROMPT_PLAYER_LATE_LIMIT_PTIMES',
  redisUrl: 'PROMPT_PLAYER_REDIS_URL',
  'pool.sentinels': 'PROMPT_PLAYER_REDIS_SENTINELS',
  'pool.waitReplicas': 'PROMPT_PLAYER_REDIS_WAIT_REPLICAS',
  'pool.waitMs': 'PROMPT_PLAYER_REDIS_WAIT_MS'
}

/** An engine message with each option it names replaced by that option's variable. */
export function inVariables (message: string, options: readonly string[]): string {
  let text = message
  for (const option of options) {
    const variable = OPTION_VARIABLES[option]
    if (variable !== undefined) text = text.replace(new RegExp(`(?<![\\w.])${option.replace('.', '\\.')}(?![\\w.])`, 'g'), variable)
  }
  return text
}

type Env = Static<typeof ConfigSchema>

export interface Config {
  host: string
  port: number
  libraryDir: string
  rtpPorts: { min: number, max: number }
  maxPlays: number
  maxUploadBytes: number
  maxPromptsPerPlay: number
  ffmpegPath: string
  ffmpegTimeoutMs: number
  ffmpegNiceness: number
  maxPromptSeconds: number
  maxTranscodes: number
  transcodeQueue: number
  opusBitrate: number
  logLevel: Env['PROMPT_PLAYER_LOG_LEVEL']
  /** Bearer tokens; empty: /v1 is open (allowed on loopback only). */
  tokens: string[]
  targets: { allow: string[], minPort: number }
  /** RTCP's sender report interval, before randomisation. */
  rtcpIntervalMs: number
  /** SCHED_FIFO priority of the packet threads where allowed; 0: niceness only. */
  realtimePriority: number
  /** Threads that send packets. */
  packetThreads: number
  /** How they wait for a due time. */
  pacing: Pacing
  /** Ptimes a packet may be late before it is skipped; 0: never. */
  lateLimitPtimes: number
  /** Networks webhooks (callbackUrl) may go to. */
  callbacks: string[]
  /** Prompts from URLs: where they may be fetched from, one fetch's time limit, the cache's bound. */
  fetch: { allow: string[], timeoutMs: number, cacheBytes: number }
  /** The web console's built files; null: the package's dist/console. */
  consoleDir: string | null
  rateLimit: number
  requestTimeoutMs: number
  /** HTTP connections at once; 0: from the open-file limit, keeping descriptors for the plays. */
  maxConnections: number
  /** A pool of instances on this Redis (by URL, or through Sentinel), or null: one instance on its own library directory. */
  pool: PoolConfig | null
  /** This instance's id ('' : the host name and port). */
  instanceId: string
  /** Where other instances of the pool reach this one ('' : from the host and port). */
  advertiseUrl: string
  maxEventLoopDelayMs: number
}

export interface PoolConfig {
  redisUrl?: string
  sentinels?: Array<{ host: string, port: number }>
  master?: string
  password?: string
  waitReplicas?: number
  waitMs: number
  keepSource: boolean
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Reads and checks the configuration; throws ConfigError naming the variable at fault. */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  let parsed: Env
  try {
    parsed = envSchema<Env>({ schema: ConfigSchema, data: env, dotenv: false })
  } catch (err) {
    // env-schema says e.g. "env/PROMPT_PLAYER_PORT must be <= 65535".
    throw new ConfigError(`invalid configuration: ${(err as Error).message.replace(/env\//g, '')}`)
  }
  const [min, max] = parsed.PROMPT_PLAYER_RTP_PORTS.split('-').map(Number) as [number, number]
  if (min < 1024 || max > 65535 || min > max || max - min < 1) {
    throw new ConfigError(`invalid configuration: PROMPT_PLAYER_RTP_PORTS is "${parsed.PROMPT_PLAYER_RTP_PORTS}"; give a range MIN-MAX with 1024 <= MIN < MAX <= 65535, e.g. 20000-39999`)
  }
  const tokens = parsed.PROMPT_PLAYER_TOKENS.split(',').map(token => token.trim()).filter(Boolean)
  if (tokens.length === 0 && !isLoopback(parsed.PROMPT_PLAYER_HOST)) {
    // A player that sends UDP wherever a request says is a reflection weapon if anyone can call it.
    throw new ConfigError(`refusing to listen on ${parsed.PROMPT_PLAYER_HOST} without authentication: anyone who reaches it could make it send UDP anywhere. Set PROMPT_PLAYER_TOKENS to one or more secrets (comma-separated; clients send "Authorization: Bearer <token>"), or listen on 127.0.0.1`)
  }
  const allow = networks(parsed, 'PROMPT_PLAYER_ALLOWED_TARGETS')
  const callbacks = networks(parsed, 'PROMPT_PLAYER_ALLOWED_CALLBACKS')
  const fetch = { allow: networks(parsed, 'PROMPT_PLAYER_ALLOWED_FETCH'), timeoutMs: parsed.PROMPT_PLAYER_FETCH_TIMEOUT_MS, cacheBytes: parsed.PROMPT_PLAYER_URL_CACHE_BYTES }
  return {
    host: parsed.PROMPT_PLAYER_HOST,
    port: parsed.PROMPT_PLAYER_PORT,
    libraryDir: parsed.PROMPT_PLAYER_LIBRARY,
    rtpPorts: { min, max },
    maxPlays: parsed.PROMPT_PLAYER_MAX_PLAYS,
    maxUploadBytes: parsed.PROMPT_PLAYER_MAX_UPLOAD_BYTES,
    maxPromptsPerPlay: parsed.PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY,
    ffmpegPath: parsed.FFMPEG_PATH,
    ffmpegTimeoutMs: parsed.PROMPT_PLAYER_FFMPEG_TIMEOUT_MS,
    ffmpegNiceness: parsed.PROMPT_PLAYER_FFMPEG_NICE,
    maxPromptSeconds: parsed.PROMPT_PLAYER_MAX_PROMPT_SECONDS,
    maxTranscodes: parsed.PROMPT_PLAYER_MAX_TRANSCODES,
    opusBitrate: parsed.PROMPT_PLAYER_OPUS_BITRATE,
    transcodeQueue: parsed.PROMPT_PLAYER_TRANSCODE_QUEUE,
    logLevel: parsed.PROMPT_PLAYER_LOG_LEVEL,
    tokens,
    targets: { allow, minPort: parsed.PROMPT_PLAYER_MIN_TARGET_PORT },
    rtcpIntervalMs: parsed.PROMPT_PLAYER_RTCP_INTERVAL_MS,
    realtimePriority: parsed.PROMPT_PLAYER_REALTIME_PRIORITY,
    packetThreads: parsed.PROMPT_PLAYER_PACKET_THREADS ?? os.availableParallelism(),
    pacing: parsed.PROMPT_PLAYER_PACING,
    lateLimitPtimes: parsed.PROMPT_PLAYER_LATE_LIMIT_PTIMES,
    callbacks,
    fetch,
    consoleDir: parsed.PROMPT_PLAYER_CONSOLE_DIR === '' ? null : parsed.PROMPT_PLAYER_CONSOLE_DIR,
    rateLimit: parsed.PROMPT_PLAYER_RATE_LIMIT,
    requestTimeoutMs: parsed.PROMPT_PLAYER_REQUEST_TIMEOUT_MS,
    maxConnections: parsed.PROMPT_PLAYER_MAX_CONNECTIONS,
    pool: poolConfig(parsed),
    instanceId: parsed.PROMPT_PLAYER_INSTANCE_ID,
    advertiseUrl: httpUrl(parsed.PROMPT_PLAYER_ADVERTISE_URL, 'PROMPT_PLAYER_ADVERTISE_URL'),
    maxEventLoopDelayMs: parsed.PROMPT_PLAYER_MAX_EVENT_LOOP_DELAY_MS
  }
}

/** The pool's store: a URL, or Sentinels and the master's name; never both. */
function poolConfig (parsed: Env): PoolConfig | null {
  const url = parsed.PROMPT_PLAYER_REDIS_URL
  const sentinels = parsed.PROMPT_PLAYER_REDIS_SENTINELS.trim()
  const master = parsed.PROMPT_PLAYER_REDIS_MASTER.trim()
  const common = {
    keepSource: parsed.PROMPT_PLAYER_REDIS_KEEP_SOURCE,
    waitMs: parsed.PROMPT_PLAYER_REDIS_WAIT_MS,
    ...(parsed.PROMPT_PLAYER_REDIS_WAIT_REPLICAS === undefined ? {} : { waitReplicas: parsed.PROMPT_PLAYER_REDIS_WAIT_REPLICAS })
  }
  if (url !== '' && (sentinels !== '' || master !== '')) {
    throw new ConfigError('invalid configuration: set either PROMPT_PLAYER_REDIS_URL (one Redis) or PROMPT_PLAYER_REDIS_SENTINELS with PROMPT_PLAYER_REDIS_MASTER (Redis under Sentinel), not both')
  }
  if (url !== '') {
    if (parsed.PROMPT_PLAYER_REDIS_PASSWORD !== '') throw new ConfigError('invalid configuration: PROMPT_PLAYER_REDIS_PASSWORD is for Sentinel\'s master and replicas; with PROMPT_PLAYER_REDIS_URL put the password in the URL (redis://:password@host:port/db)')
    return { redisUrl: redisUrl(url), ...common }
  }
  if (sentinels === '' && master === '') return null
  if (sentinels === '') throw new ConfigError(`invalid configuration: PROMPT_PLAYER_REDIS_MASTER is "${master}" but PROMPT_PLAYER_REDIS_SENTINELS is empty; give the Sentinels as host:port,host:port, e.g. 10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379`)
  if (master === '') throw new ConfigError('invalid configuration: PROMPT_PLAYER_REDIS_SENTINELS is set but PROMPT_PLAYER_REDIS_MASTER is empty; give the name the Sentinels monitor the master under (their "sentinel monitor <name> ..." line), e.g. mymaster')
  return {
    sentinels: sentinels.split(',').map(entry => sentinelAddress(entry.trim())),
    master,
    ...(parsed.PROMPT_PLAYER_REDIS_PASSWORD === '' ? {} : { password: parsed.PROMPT_PLAYER_REDIS_PASSWORD }),
    ...common
  }
}

/** host:port, [v6]:port, or a host alone (Sentinel's port, 26379). */
function sentinelAddress (entry: string): { host: string, port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+))(?::(\d{1,5}))?$/.exec(entry)
  const port = match?.[3] === undefined ? 26379 : Number(match[3])
  if (match === null || port < 1 || port > 65535) {
    throw new ConfigError(`invalid configuration: PROMPT_PLAYER_REDIS_SENTINELS has "${entry}"; give each Sentinel as host:port (an IPv6 address in brackets, [::1]:26379), separated by commas`)
  }
  return { host: match[1] ?? match[2]!, port }
}

function redisUrl (text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ConfigError('invalid configuration: PROMPT_PLAYER_REDIS_URL is not a URL; give redis://host:port/db, e.g. redis://127.0.0.1:6379/0')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`invalid configuration: PROMPT_PLAYER_REDIS_URL must start with redis:// or rediss://, not ${url.protocol}//`)
  }
  return text
}

function httpUrl (text: string, variable: string): string {
  if (text === '') return ''
  try {
    const url = new URL(text)
    if (url.protocol === 'http:' || url.protocol === 'https:') return text.replace(/\/+$/, '')
  } catch {}
  throw new ConfigError(`invalid configuration: ${variable} must be an http:// or https:// URL where other instances reach this one, e.g. http://10.0.0.5:8080`)
}

/** A comma-separated list of CIDRs, each checked. */
function networks (parsed: Env, variable: 'PROMPT_PLAYER_ALLOWED_TARGETS' | 'PROMPT_PLAYER_ALLOWED_CALLBACKS' | 'PROMPT_PLAYER_ALLOWED_FETCH'): string[] {
  const list = parsed[variable].split(',').map(cidr => cidr.trim()).filter(Boolean)
  for (const cidr of list) {
    try {
      parseCidr(cidr)
    } catch (err) {
      throw new ConfigError(`invalid configuration: ${variable}: ${(err as Error).message}`)
    }
  }
  return list
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
