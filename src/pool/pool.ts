/**
 * A pool of instances on one Redis (by URL, or the master Sentinel names): the library
 * (RedisStorage), the record of plays and the registry of instances (RedisPlayRecord), and the
 * events (RedisEventLog), each behind the engine's seam. Five connections: commands and the
 * library's writes (these fail at once while Redis is away, so calls answer 503; the library's
 * have one of their own because WAIT blocks its connection), the library's subscriber, the
 * event writer and the stream reader (these wait for Redis and carry on when it is back). With
 * replicas to wait for under Sentinel, the stream reader reads a replica: an event is handed
 * to anyone only once it would survive a failover.
 */
import type { Redis } from 'ioredis'
import { EngineError } from '../common/errors.js'
import { RedisEventLog } from './redis-event-log.js'
import { RedisPlayRecord, type PoolInstance } from './redis-play-record.js'
import { RedisStorage } from './redis-storage.js'
import { connect, describe, optionOf, type RedisTarget } from './redis.js'

export interface PoolOptions {
  /** redis://[:password@]host:port/db; or give `sentinels` and `master`. */
  redisUrl?: string
  /** Sentinels to ask where the master named `master` is. */
  sentinels?: ReadonlyArray<{ host: string, port: number }>
  master?: string
  /** The master's and replicas' password, under Sentinel (a URL carries its own). */
  password?: string
  /**
   * Replicas that must acknowledge a library write (upload, replace, delete) before it is
   * answered (WAIT); with fewer within `waitMs`, it is taken back and refused. Default: 1
   * under Sentinel, 0 with a URL.
   */
  waitReplicas?: number
  /** How long a library write waits for its replicas (default 1000 ms). */
  waitMs?: number
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

  private constructor (options: PoolOptions, location: string, durability: { replicas: number, timeoutMs: number }, connections: { command: Redis, library: Redis, subscriber: Redis, writer: Redis, reader: Redis }) {
    this.location = location
    this.instance = options.instance
    this.command = connections.command
    this.connections = Object.values(connections)
    this.storage = new RedisStorage(connections.command, connections.subscriber, { location: this.location, keepSource: options.keepSource ?? true, writer: connections.library, durability })
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
    const target = targetOf(options)
    const location = describe(target)
    const option = optionOf(location)
    const sentinel = !('url' in target)
    const durability = { replicas: options.waitReplicas ?? (sentinel ? 1 : 0), timeoutMs: options.waitMs ?? 1000 }
    const name = `prompt-player:${options.instance}`
    const connections = {
      command: connect(target, 'command', name),
      library: connect(target, 'command', `${name}:writes`),
      subscriber: connect(target, 'waiting', `${name}:library`),
      writer: connect(target, 'waiting', `${name}:events`),
      reader: connect(target, 'waiting', `${name}:stream`, sentinel && durability.replicas > 0 ? 'slave' : 'master')
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
      if (sentinel && durability.replicas > 0 && connections.reader.status !== 'ready' && connections.command.status === 'ready') {
        throw new EngineError('STORE_UNAVAILABLE', `the pool's Redis master answers (${location}), but the Sentinels name no replica of it that is up: events are read from a replica, and uploads wait for ${durability.replicas} to acknowledge them (pool.waitReplicas); start a replica, or set pool.waitReplicas to 0`, { cause: why, options: ['pool.waitReplicas'] })
      }
      // ioredis' own words here would be "All sentinels are unreachable. Retrying from scratch after 121ms. Last error: Connection is closed."
      const what = sentinel && why.message.startsWith('All sentinels are unreachable') ? 'no Sentinel answered' : why.message
      throw new EngineError('STORE_UNAVAILABLE', `cannot reach the pool's Redis at ${location}: ${what}; start it, or fix ${option}`, { cause: why, options: [option] })
    }
    const pool = new RedisPool(options, location, durability, connections)
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

function targetOf (options: PoolOptions): RedisTarget {
  if (options.redisUrl !== undefined && options.sentinels === undefined) return { url: options.redisUrl }
  if (options.redisUrl === undefined && options.sentinels !== undefined && options.sentinels.length > 0 && options.master !== undefined && options.master !== '') {
    return { sentinels: options.sentinels, master: options.master, ...(options.password === undefined ? {} : { password: options.password }) }
  }
  throw new TypeError('a pool needs either redisUrl, or sentinels (at least one) with the master\'s name; not both')
}
