/**
 * Configuration from the environment, validated before anything starts: a bad value stops
 * startup with a message that names the variable and says what is accepted.
 */
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { DEFAULT_ALLOWED_TARGETS, parseCidr } from '../src/target-policy.js'
import { DEFAULT_MAX_PROMPTS_PER_PLAY, DEFAULT_MAX_UPLOAD_BYTES } from './app.js'
import { DEFAULT_ALLOWED_CALLBACKS } from './callbacks.js'

export const ConfigSchema = Type.Object({
  PROMPT_PLAYER_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PROMPT_PLAYER_PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  PROMPT_PLAYER_LIBRARY: Type.String({ default: './prompts', minLength: 1 }),
  PROMPT_PLAYER_RTP_PORTS: Type.String({ default: '20000-39999', pattern: '^\\d+-\\d+$' }),
  PROMPT_PLAYER_MAX_PLAYS: Type.Integer({ default: 2000, minimum: 1 }),
  PROMPT_PLAYER_MAX_UPLOAD_BYTES: Type.Integer({ default: DEFAULT_MAX_UPLOAD_BYTES, minimum: 1024 }),
  PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY: Type.Integer({ default: DEFAULT_MAX_PROMPTS_PER_PLAY, minimum: 1, maximum: 1000 }),
  PROMPT_PLAYER_FFMPEG_TIMEOUT_MS: Type.Integer({ default: 60_000, minimum: 100 }),
  PROMPT_PLAYER_FFMPEG_NICE: Type.Integer({ default: 10, minimum: 0, maximum: 19 }),
  PROMPT_PLAYER_MAX_PROMPT_SECONDS: Type.Integer({ default: 600, minimum: 1 }),
  PROMPT_PLAYER_MAX_TRANSCODES: Type.Integer({ default: 2, minimum: 1 }),
  PROMPT_PLAYER_TRANSCODE_QUEUE: Type.Integer({ default: 32, minimum: 0 }),
  PROMPT_PLAYER_TOKENS: Type.String({ default: '' }),
  PROMPT_PLAYER_RATE_LIMIT: Type.Integer({ default: 2000, minimum: 0 }),
  PROMPT_PLAYER_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: 1000, minimum: 0 }),
  PROMPT_PLAYER_REQUEST_TIMEOUT_MS: Type.Integer({ default: 120_000, minimum: 1000 }),
  PROMPT_PLAYER_ALLOWED_TARGETS: Type.String({ default: DEFAULT_ALLOWED_TARGETS.join(',') }),
  PROMPT_PLAYER_MIN_TARGET_PORT: Type.Integer({ default: 1024, minimum: 1, maximum: 65535 }),
  PROMPT_PLAYER_ALLOWED_CALLBACKS: Type.String({ default: DEFAULT_ALLOWED_CALLBACKS.join(',') }),
  PROMPT_PLAYER_LOG_LEVEL: Type.Union([
    Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'),
    Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
  ], { default: 'info' }),
  FFMPEG_PATH: Type.String({ default: 'ffmpeg', minLength: 1 })
})

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
  logLevel: Env['PROMPT_PLAYER_LOG_LEVEL']
  /** Bearer tokens; empty: /v1 is open (allowed on loopback only). */
  tokens: string[]
  targets: { allow: string[], minPort: number }
  /** Networks webhooks (callbackUrl) may go to. */
  callbacks: string[]
  rateLimit: number
  requestTimeoutMs: number
  maxEventLoopDelayMs: number
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
    transcodeQueue: parsed.PROMPT_PLAYER_TRANSCODE_QUEUE,
    logLevel: parsed.PROMPT_PLAYER_LOG_LEVEL,
    tokens,
    targets: { allow, minPort: parsed.PROMPT_PLAYER_MIN_TARGET_PORT },
    callbacks,
    rateLimit: parsed.PROMPT_PLAYER_RATE_LIMIT,
    requestTimeoutMs: parsed.PROMPT_PLAYER_REQUEST_TIMEOUT_MS,
    maxEventLoopDelayMs: parsed.PROMPT_PLAYER_MAX_EVENT_LOOP_DELAY_MS
  }
}

/** A comma-separated list of CIDRs, each checked. */
function networks (parsed: Env, variable: 'PROMPT_PLAYER_ALLOWED_TARGETS' | 'PROMPT_PLAYER_ALLOWED_CALLBACKS'): string[] {
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
