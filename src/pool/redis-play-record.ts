/**
 * The record of every instance's plays, in Redis, and the registry of instances:
 *
 *   prompt-player:play:<id>          the Play (JSON); ended ones expire after keepEndedMs
 *   prompt-player:plays              sorted set: play ids by start time
 *   prompt-player:running:<inst>     set: the plays an instance is sending
 *   prompt-player:instances          set: the instances of the pool
 *   prompt-player:instance:<inst>    hash: where it answers (address), since when
 *   prompt-player:alive:<inst>       its heartbeat: a key that expires unless renewed
 *
 * Each instance renews its heartbeat and rewrites its running plays (their counters) every
 * second. Every instance also looks for instances whose heartbeat expired: the first to claim
 * one (SET NX) marks its running plays failed ("instance lost") and reports them once. None
 * looks until it has reached Redis for a heartbeat's lifetime without a break: after a Redis
 * restart or a Sentinel failover, every heartbeat has expired and every instance has had the
 * time to renew its own first.
 * Writes of this instance's plays never hold a play up: while Redis is out of reach they are
 * kept, and written again when it is back.
 */
import type { Redis } from 'ioredis'
import type { PlayInfo } from '../common/schemas.js'
import type { PlayRecord, RecordedPlay } from '../plays/play-record.js'
import { KEYS, storeUnavailable } from './redis.js'

export interface RedisPlayRecordOptions {
  instance: string
  location: string
  keepEndedMs: number
  keepEndedMax: number
  /** An instance whose heartbeat is this old is lost (default 5 s). */
  lostAfterMs?: number
  /** How often the heartbeat is renewed and lost instances looked for (default 1 s). */
  heartbeatMs?: number
  onError?: (err: unknown, what: string) => void
}

export interface PoolInstance {
  id: string
  address: string | null
  playsRunning: number
}

export class RedisPlayRecord implements PlayRecord {
  readonly instance: string
  readonly lostAfterMs: number
  /** How long after an instance is lost its running plays are at most reported failed: its heartbeat's expiry, then the next beat of another instance. */
  get lostWithinMs (): number { return this.lostAfterMs + (this.options.heartbeatMs ?? 1000) }
  private readonly redis: Redis
  private readonly options: RedisPlayRecordOptions
  /** This instance's plays not yet written as they are now (their end, while Redis was away). */
  private readonly unwritten = new Map<string, RecordedPlay>()
  private readonly running = new Map<string, RecordedPlay>()
  private readonly lostListeners: Array<(play: PlayInfo) => void> = []
  private address: string | null = null
  private timer: NodeJS.Timeout | null = null
  private beating: Promise<void> | null = null
  /** Since when this instance has reached Redis without a break (performance.now()). */
  private reachableSince = performance.now()

  constructor (redis: Redis, options: RedisPlayRecordOptions) {
    this.redis = redis
    this.options = options
    this.instance = options.instance
    this.lostAfterMs = options.lostAfterMs ?? 5000
    redis.on('ready', () => { this.reachableSince = performance.now() })
  }

  async put (play: RecordedPlay): Promise<void> {
    if (play.endedAt === null) this.running.set(play.id, play)
    else this.running.delete(play.id)
    this.unwritten.set(play.id, play)
    await this.flush().catch(err => this.options.onError?.(err, 'recording a play'))
  }

  async get (id: string): Promise<PlayInfo | undefined> {
    const text = await this.run(async () => await this.redis.get(KEYS.play(id)))
    return text === null ? undefined : JSON.parse(text) as PlayInfo
  }

  async list (): Promise<PlayInfo[]> {
    const ids = await this.run(async () => await this.redis.zrevrange(KEYS.plays, 0, this.options.keepEndedMax + 10_000))
    if (ids.length === 0) return []
    const texts = await this.run(async () => await this.redis.mget(ids.map(KEYS.play)))
    const gone = ids.filter((_, i) => texts[i] === null)
    if (gone.length > 0) void this.redis.zrem(KEYS.plays, ...gone).catch(() => {})
    const plays = texts.filter((t): t is string => t !== null).map(t => JSON.parse(t) as PlayInfo)
    const running = plays.filter(p => p.state === 'playing').sort((a, b) => a.startedAt < b.startedAt ? 1 : -1)
    const ended = plays.filter(p => p.state !== 'playing').sort((a, b) => (a.endedAt ?? '') < (b.endedAt ?? '') ? 1 : -1)
    return [...running, ...ended.slice(0, this.options.keepEndedMax)]
  }

  async addressOf (instance: string): Promise<string | undefined> {
    const [alive, address] = await this.run(async () => await Promise.all([this.redis.exists(KEYS.alive(instance)), this.redis.hget(KEYS.instance(instance), 'address')]))
    return alive === 1 && address !== null ? address : undefined
  }

  onLost (listener: (play: PlayInfo) => void): void {
    this.lostListeners.push(listener)
  }

  /**
   * Joins the pool at `address` (where other instances forward calls on this one's plays):
   * fails what a previous run under this id left running, and starts the heartbeat.
   */
  async join (address: string): Promise<void> {
    this.address = address
    await this.reap(this.instance, 'it restarted').catch(err => this.options.onError?.(err, 'failing the plays of a previous run'))
    await this.beat()
    this.timer = setInterval(() => { void this.beat() }, this.options.heartbeatMs ?? 1000)
    this.timer.unref()
  }

  /** Every instance alive, with its running plays. */
  async instances (): Promise<PoolInstance[]> {
    const ids = await this.run(async () => await this.redis.smembers(KEYS.instances))
    const result: PoolInstance[] = []
    for (const id of ids.sort()) {
      const [alive, address, plays] = await this.run(async () => await Promise.all([this.redis.exists(KEYS.alive(id)), this.redis.hget(KEYS.instance(id), 'address'), this.redis.scard(KEYS.running(id))]))
      if (alive === 1) result.push({ id, address, playsRunning: plays })
    }
    return result
  }

  /** Leaves the pool: the heartbeat stops and the instance is removed (its plays have ended). */
  async leave (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.beating
    await this.flush().catch(() => {})
    await this.redis.multi().srem(KEYS.instances, this.instance).del(KEYS.alive(this.instance), KEYS.instance(this.instance)).exec().catch(() => {})
  }

  private async beat (): Promise<void> {
    if (this.beating !== null) return
    this.beating = (async () => {
      try {
        const multi = this.redis.multi()
          .sadd(KEYS.instances, this.instance)
          .hset(KEYS.instance(this.instance), 'address', this.address ?? '')
          .set(KEYS.alive(this.instance), '1', 'PX', this.lostAfterMs)
        // Running plays' counters, as of now, and each in this instance's set of running plays
        // again (an instance judged lost while it could not reach Redis takes its plays back).
        for (const play of this.running.values()) multi.set(KEYS.play(play.id), JSON.stringify(play.toJSON()))
        if (this.running.size > 0) multi.sadd(KEYS.running(this.instance), ...this.running.keys())
        await multi.exec()
        await this.flush()
        await this.reapLost()
      } catch (err) {
        this.options.onError?.(err, 'renewing the heartbeat')
      } finally {
        this.beating = null
      }
    })()
    await this.beating
  }

  /** Writes this instance's plays that are not yet as they are now. */
  private async flush (): Promise<void> {
    if (this.unwritten.size === 0) return
    const plays = [...this.unwritten.values()]
    const multi = this.redis.multi()
    for (const play of plays) {
      const info = play.toJSON()
      if (info.endedAt === null) {
        multi.set(KEYS.play(info.id), JSON.stringify(info)).zadd(KEYS.plays, Date.parse(info.startedAt), info.id).sadd(KEYS.running(this.instance), info.id)
      } else {
        multi.set(KEYS.play(info.id), JSON.stringify(info), 'PX', this.options.keepEndedMs).zadd(KEYS.plays, Date.parse(info.startedAt), info.id).srem(KEYS.running(this.instance), info.id)
      }
    }
    await multi.exec()
    for (const play of plays) if (this.unwritten.get(play.id) === play) this.unwritten.delete(play.id)
  }

  private async reapLost (): Promise<void> {
    // While Redis was away (restarted, or failed over by Sentinel) no instance could renew its
    // heartbeat, and the keys expired for that reason alone. Until this instance has reached
    // Redis for a heartbeat's lifetime, every other has had the time to renew its own, and an
    // expired one means lost again.
    if (performance.now() - this.reachableSince < this.lostAfterMs) return
    const ids = await this.redis.smembers(KEYS.instances)
    for (const id of ids) {
      if (id === this.instance) continue
      if (await this.redis.exists(KEYS.alive(id)) === 1) continue
      await this.reap(id, `no heartbeat for ${this.lostAfterMs / 1000} s`)
    }
  }

  /** Fails the running plays of a lost instance, once in the pool (whoever claims it first). */
  private async reap (instance: string, why: string): Promise<void> {
    const claimed = await this.redis.set(KEYS.reaping(instance), this.instance, 'PX', 30_000, 'NX')
    if (claimed !== 'OK') return
    try {
      const ids = await this.redis.smembers(KEYS.running(instance))
      const lost: PlayInfo[] = []
      for (const id of ids) {
        if (instance === this.instance && this.running.has(id)) continue
        const text = await this.redis.get(KEYS.play(id))
        if (text === null) continue
        const play = JSON.parse(text) as PlayInfo
        if (play.state !== 'playing') continue
        lost.push({ ...play, state: 'failed', endedAt: new Date().toISOString(), error: `instance ${instance} was lost (${why}); the play stopped with it` })
      }
      const multi = this.redis.multi()
      for (const play of lost) multi.set(KEYS.play(play.id), JSON.stringify(play), 'PX', this.options.keepEndedMs)
      multi.del(KEYS.running(instance))
      if (instance !== this.instance) multi.srem(KEYS.instances, instance).del(KEYS.instance(instance))
      await multi.exec()
      for (const play of lost) for (const listener of this.lostListeners) listener(play)
    } finally {
      await this.redis.del(KEYS.reaping(instance)).catch(() => {})
    }
  }

  private async run<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw storeUnavailable(this.options.location, err)
    }
  }
}
