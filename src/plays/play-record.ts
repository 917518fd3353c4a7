/**
 * The record of plays: what GET /v1/plays and GET /v1/plays/{id} read, the running plays and
 * those ended recently. The seam between the plays of this instance (PlayManager, which owns
 * their packets) and whoever reports them. `LocalPlayRecord` keeps this instance's plays in
 * memory, their counters read live; a shared record (Redis, for a pool of instances) keeps
 * every instance's, and answers for plays running elsewhere.
 */
import type { PlayInfo } from '../common/schemas.js'

/** A play as the record sees it: its id, when it ended, and its state now. */
export interface RecordedPlay {
  readonly id: string
  readonly endedAt: Date | null
  toJSON: () => PlayInfo
}

export interface PlayRecord {
  /** True when the record holds this instance's plays alone and answers them live (no other instance's). */
  readonly live?: boolean
  /** A play of this instance started, or changed (it ended). */
  put: (play: RecordedPlay) => Promise<void>
  /** A play, running or ended recently, wherever it runs. */
  get: (id: string) => Promise<PlayInfo | undefined>
  /** The running plays, newest first, then those ended recently, the latest ended first. */
  list: () => Promise<PlayInfo[]>
  /** A shared record: where another instance answers (its advertised address), if alive. */
  addressOf?: (instance: string) => Promise<string | undefined>
  /** A shared record: plays of an instance found lost, marked failed; reported once in the pool. */
  onLost?: (listener: (play: PlayInfo) => void) => void
}

export interface LocalPlayRecordOptions {
  /** How long an ended play stays visible. */
  keepEndedMs: number
  /** How many ended plays stay visible at most. */
  keepEndedMax: number
}

export class LocalPlayRecord implements PlayRecord {
  readonly live = true
  private readonly options: LocalPlayRecordOptions
  private readonly running = new Map<string, RecordedPlay>()
  /** In the order they ended, oldest first. */
  private readonly ended = new Map<string, RecordedPlay>()

  constructor (options: LocalPlayRecordOptions) {
    this.options = options
  }

  async put (play: RecordedPlay): Promise<void> {
    if (play.endedAt === null) {
      this.running.set(play.id, play)
      return
    }
    this.running.delete(play.id)
    this.ended.set(play.id, play)
    this.prune()
  }

  async get (id: string): Promise<PlayInfo | undefined> {
    return this.find(id)?.toJSON()
  }

  async list (): Promise<PlayInfo[]> {
    this.prune()
    // Both maps are in insertion order: plays as they started, and as they ended.
    return [...[...this.running.values()].reverse(), ...[...this.ended.values()].reverse()].map(play => play.toJSON())
  }

  /** The recorded play itself (live), for this instance's own use. */
  find (id: string): RecordedPlay | undefined {
    this.prune()
    return this.running.get(id) ?? this.ended.get(id)
  }

  private prune (): void {
    const horizon = Date.now() - this.options.keepEndedMs
    for (const [id, play] of this.ended) {
      if (this.ended.size > this.options.keepEndedMax || (play.endedAt?.getTime() ?? 0) < horizon) this.ended.delete(id)
      else break
    }
  }
}
