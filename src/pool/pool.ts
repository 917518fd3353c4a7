/**
 * A pool of instances on one Redis: the library (RedisStorage), the record of plays and the
 * registry of instances (RedisPlayRecord), and the events (RedisEventLog), each behind the
 * engine's seam. Four connections: commands (fail at once while Redis is away, so calls
 * answer 503), the library's subscriber, the event writer and the stream reader (these wait
 * for Redis and carry on when it is back).
 */
import type { Redis } from 'ioredis'
import { EngineError } from '../common/errors.js'
import { RedisEventLog } from './redis-event-log.js'
import { RedisPlayRecord, type PoolInstance } from './redis-play-record.js'
import { RedisStorage } from './redis-storage.js'
import { connect, redacted } from './redis.js'

export interface PoolOptions {
  /** redis://[:password@]host:port/db */
  redisUrl: string
  /** This instance's id in the pool. */
  instance: string
  /** Keep uploaded bytes in Redis beside the G.711 (default true). */
  keepSource?: boolean
  keepEndedMs: number
  keepEndedMax: number
  /** An instance whose heartbeat is this old is lost (default 5 s). */
  lostAfterMs?: number
  /** How long to wait for Redis at startup (default 5 s). */
  connectTimeoutMs?: number
  onError?: (err: unknown, what: string) => void
}

/**
 * What the service may know of the pool this instance is in: where its store is, whether it
 * answers, who is in it, and how soon a lost instance's plays are reported. How it is built
 * (Redis, its keys and scripts) stays behind it.
 */
export interface Pool {
  /** The store's address, with no password. */
  readonly location: string
  readonly connected: boolean
  /** A lost instance's running plays are reported failed at most this long after it stopped. */
  readonly lostWithinMs: number
  instances: () => Promise<PoolInstance[]>
  /** Throws unless the store answers now. */
  check: () => Promise<void>
}

export class RedisPool implements Pool {
  readonly location: string
  readonly instance: string
  readonly storage: RedisStorage
  readonly plays: RedisPlayRecord
  readonly events: RedisEventLog
  private readonly connections: Redis[]
  private readonly command: Redis

  private constructor (options: PoolOptions, connections: { command: Redis, subscriber: Redis, writer: Redis, reader: Redis }) {
    this.location = redacted(options.redisUrl)
    this.instance = options.instance
    this.command = connections.command
    this.connections = Object.values(connections)
    this.storage = new RedisStorage(connections.command, connections.subscriber, { location: this.location, keepSource: options.keepSource ?? true })
    this.plays = new RedisPlayRecord(connections.command, {
      instance: options.instance,
      location: this.location,
      keepEndedMs: options.keepEndedMs,
      keepEndedMax: options.keepEndedMax,
      ...(options.lostAfterMs === undefined ? {} : { lostAfterMs: options.lostAfterMs }),
      ...(options.onError === undefined ? {} : { onError: options.onError })
    })
    this.events = new RedisEventLog(connections.command, connections.writer, connections.reader, { location: this.location, ...(options.onError === undefined ? {} : { onError: options.onError }) })
  }

  /** Connects; throws STORE_UNAVAILABLE, saying where and why, when Redis cannot be reached. */
  static async connect (options: PoolOptions): Promise<RedisPool> {
    const location = redacted(options.redisUrl)
    const name = `prompt-player:${options.instance}`
    const connections = {
      command: connect(options.redisUrl, 'command', name),
      subscriber: connect(options.redisUrl, 'waiting', `${name}:library`),
      writer: connect(options.redisUrl, 'waiting', `${name}:events`),
      reader: connect(options.redisUrl, 'waiting', `${name}:stream`)
    }
    const timeoutMs = options.connectTimeoutMs ?? 5000
    // What the socket said (ECONNREFUSED, ENOTFOUND, NOAUTH): connect() itself may only say
    // "Connection is closed."
    let cause: Error | null = null
    for (const redis of Object.values(connections)) redis.on('error', (err: Error) => { cause ??= err })
    try {
      await Promise.all(Object.values(connections).map(async redis => {
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs) })
        try {
          await Promise.race([redis.connect(), timeout])
        } finally {
          clearTimeout(timer)
        }
      }))
    } catch (err) {
      for (const redis of Object.values(connections)) redis.disconnect()
      const why = cause ?? (err as Error)
      throw new EngineError('STORE_UNAVAILABLE', `cannot reach the pool's Redis at ${location}: ${why.message}; start it, or fix redisUrl`, { cause: why, options: ['redisUrl'] })
    }
    const pool = new RedisPool(options, connections)
    await pool.events.start()
    return pool
  }

  /** Starts answering for this instance's plays at `address`: the heartbeat begins. */
  async join (address: string): Promise<void> {
    await this.plays.join(address)
  }

  async instances (): Promise<PoolInstance[]> {
    return await this.plays.instances()
  }

  /** Throws unless Redis answers now. */
  async check (): Promise<void> {
    await this.storage.checkWritable()
  }

  get connected (): boolean { return this.command.status === 'ready' }

  get lostWithinMs (): number { return this.plays.lostWithinMs }

  /** Leaves the pool and closes the connections (after the last events were queued). */
  async close (): Promise<void> {
    await this.plays.leave()
    await this.events.close()
    await Promise.all(this.connections.map(async redis => {
      await redis.quit().catch(() => redis.disconnect())
    }))
  }
}
