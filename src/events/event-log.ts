/**
 * The log of play events: each event gets an id, the last ones are kept, and a reader that
 * reconnects with the last id it saw gets what it missed. The seam between the engine's events
 * and their readers (the SSE stream). `LocalEventLog` keeps this instance's events in memory;
 * a shared log (a Redis stream, for a pool of instances) carries every instance's.
 */
import { randomBytes } from 'node:crypto'
import type { PlayEvent } from './events.js'

export interface LoggedEvent {
  /** Ordered and unique within the log: what a reader sends back as Last-Event-ID. */
  id: string
  event: PlayEvent
}

/** What a reader missed since an id: the events, and what could not be told. */
export type Missed =
  /** The id is not from this log (another run, another instance): nothing can be replayed. */
  | { kind: 'foreign' }
  /** The events after the id that are still kept; `lost` names those no longer kept ("events 1 to 2"). */
  | { kind: 'events', events: LoggedEvent[], lost: string | null }

export interface EventLog {
  /** Records an event; every subscriber gets it with its id (at once, or once the log has it). */
  append: (event: PlayEvent) => void
  /** Calls `listener` with every event appended from now on; returns a function that stops it. */
  subscribe: (listener: (logged: LoggedEvent) => void) => () => void
  /** The events after `lastId`. */
  since: (lastId: string) => Promise<Missed>
  /** How many events are kept for readers that reconnect. */
  readonly retained: number
}

/** Events kept by default for readers that reconnect. */
export const RETAINED_EVENTS = 1000

/**
 * Ids are `<run>-<sequence>`: `run` is random per process, so an id from an earlier run or
 * from another instance behind the same load balancer is never taken for one of this run's.
 */
export class LocalEventLog implements EventLog {
  readonly run = randomBytes(4).toString('hex')
  readonly retained: number
  private sequence = 0
  private readonly kept: Array<{ sequence: number, logged: LoggedEvent }> = []
  private readonly listeners = new Set<(logged: LoggedEvent) => void>()

  constructor (retained = RETAINED_EVENTS) {
    this.retained = retained
  }

  append (event: PlayEvent): LoggedEvent {
    const sequence = ++this.sequence
    const logged = { id: `${this.run}-${sequence}`, event }
    this.kept.push({ sequence, logged })
    if (this.kept.length > this.retained) this.kept.shift()
    for (const listener of this.listeners) listener(logged)
    return logged
  }

  subscribe (listener: (logged: LoggedEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  async since (lastId: string): Promise<Missed> {
    const match = /^([0-9a-f]+)-(\d+)$/.exec(lastId)
    if (match === null || match[1] !== this.run) return { kind: 'foreign' }
    const after = Number(match[2])
    const oldest = this.kept[0]?.sequence ?? this.sequence + 1
    return {
      kind: 'events',
      events: this.kept.filter(k => k.sequence > after).map(k => k.logged),
      lost: oldest > after + 1 ? `events ${after + 1} to ${oldest - 1}` : null
    }
  }
}
