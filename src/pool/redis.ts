/**
 * Connections to the pool's Redis, one server by URL or a master found through Sentinel
 * (ioredis: it reconnects with backoff by itself, and through Sentinel to whichever server is
 * the master now), and the one error every Redis failure becomes: STORE_UNAVAILABLE, with what
 * still works.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { EngineError } from '../common/errors.js'

/** Every key of the pool starts with this, so that a Redis can hold other data too. */
export const PREFIX = 'prompt-player:'

export const KEYS = {
  library: `${PREFIX}library`,
  media: (sha256: string) => `${PREFIX}media:${sha256}`,
  play: (id: string) => `${PREFIX}play:${id}`,
  plays: `${PREFIX}plays`,
  running: (instance: string) => `${PREFIX}running:${instance}`,
  instances: `${PREFIX}instances`,
  instance: (instance: string) => `${PREFIX}instance:${instance}`,
  alive: (instance: string) => `${PREFIX}alive:${instance}`,
  reaping: (instance: string) => `${PREFIX}reaping:${instance}`,
  events: `${PREFIX}events`
} as const

/** Where the pool's Redis is: one server by URL, or a master by name through Sentinel. */
export type RedisTarget =
  | { url: string }
  | { sentinels: ReadonlyArray<{ host: string, port: number }>, master: string, password?: string }

/** The target without its password, for messages and logs. */
export function describe (target: RedisTarget): string {
  if ('url' in target) return redacted(target.url)
  return `master "${target.master}" of the Sentinels at ${target.sentinels.map(s => s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`).join(',')}`
}

/** The URL without its password, for messages and logs. */
export function redacted (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString().replace(/\/$/, '')
  } catch {
    return 'an unparsable Redis URL'
  }
}

/**
 * A connection of a kind:
 * - `command`: fails at once while Redis is out of reach (no offline queue), so that a call that
 *   needs Redis answers 503 now rather than hanging;
 * - `waiting`: queues while out of reach and sends when back (events, the blocking stream read,
 *   the subscriber).
 *
 * Through Sentinel, `role` picks the master (the default: it is asked again after every lost
 * connection, and Sentinel's +switch-master closes a connection to a demoted one at once) or a
 * replica (what a replica has is what survives a failover).
 */
export function connect (target: RedisTarget, kind: 'command' | 'waiting', name: string, role: 'master' | 'slave' = 'master'): Redis {
  const common: RedisOptions = { connectionName: name, lazyConnect: true, retryStrategy: retryDelay }
  const options: RedisOptions = kind === 'command'
    ? { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1 }
    : { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null }
  const redis = 'url' in target
    ? new Redis(target.url, options)
    : new Redis({
      ...options,
      sentinels: target.sentinels.map(s => ({ host: s.host, port: s.port })),
      name: target.master,
      role,
      ...(target.password === undefined ? {} : { password: target.password }),
      sentinelRetryStrategy: retryDelay,
      failoverDetector: role === 'master'
    })
  // Errors are reported through the commands that fail and the pool's state; an 'error'
  // listener keeps ioredis from printing each reconnection attempt.
  redis.on('error', () => {})
  return redis
}

/**
 * ioredis' reconnection, with its backoff capped at one second instead of five: a pool should
 * be whole again within a second or two of Redis coming back.
 */
function retryDelay (times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 5), 1000) + Math.floor(Math.random() * 100)
}

/** The engine option that says where the store described by `location` is. */
export function optionOf (location: string): 'redisUrl' | 'pool.sentinels' {
  return location.startsWith('master "') ? 'pool.sentinels' : 'redisUrl'
}

export function storeUnavailable (location: string, err: unknown): EngineError {
  if (err instanceof EngineError) return err
  const option = optionOf(location)
  return new EngineError('STORE_UNAVAILABLE', `the pool's Redis at ${location} cannot be reached (${(err as Error).message}); plays of prompts already loaded go on where they run, the rest waits for it (${option})`, { cause: err, options: [option] })
}
