/**
 * The pool's events on one Redis stream, `prompt-player:events`, capped near `retained`
 * entries. Stream ids are ordered and the same on every instance, so an id read from one
 * instance resumes on another. Every instance reads the stream (a blocking XREAD on a
 * connection of its own) and hands each event to its subscribers (the SSE streams): they see
 * the events of every instance's plays. An event appended while Redis is out of reach waits in
 * the connection's queue and is written when it is back.
 *
 * Under Sentinel with replicas to wait for, the reader reads a replica: Sentinel promotes the
 * replica that has the most, so an event handed to anyone is still there after a failover. A
 * reader that resumes is sent what it missed only up to the last event this instance read;
 * the rest reaches it as they are read, so it too gets nothing a failover could take back.
 */
import type { Redis } from 'ioredis'
import type { EventLog, LoggedEvent, Missed } from '../events/event-log.js'
import type { PlayEvent, PlayEventType } from '../events/events.js'
import { KEYS, storeUnavailable } from './redis.js'

const STREAM_ID = /^(\d+)-(\d+)$/

export interface RedisEventLogOptions {
  location: string
  /** About how many events the stream keeps (default 10,000). */
  retained?: number
  onError?: (err: unknown, what: string) => void
}

export class RedisEventLog implements EventLog {
  readonly retained: number
  private readonly writer: Redis
  private readonly reader: Redis
  private readonly command: Redis
  private readonly options: RedisEventLogOptions
  private readonly listeners = new Set<(logged: LoggedEvent) => void>()
  private closed = false
  private reading: Promise<void> | null = null
  /** The id of the last event read: what a resuming reader is sent up to. */
  private lastRead = '0-0'

  constructor (command: Redis, writer: Redis, reader: Redis, options: RedisEventLogOptions) {
    this.command = command
    this.writer = writer
    this.reader = reader
    this.options = options
    this.retained = options.retained ?? 10_000
  }

  append (event: PlayEvent): void {
    const extra = event.digit === undefined ? [] : ['digit', event.digit, 'durationMs', String(event.durationMs ?? 0)]
    this.writer.xadd(KEYS.events, 'MAXLEN', '~', String(this.retained), '*', 'type', event.type, 'play', JSON.stringify(event.play), ...extra)
      .catch((err: unknown) => this.options.onError?.(err, `writing the event ${event.type} of ${event.play.id}`))
  }

  subscribe (listener: (logged: LoggedEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Starts reading the stream from its end: events appended from now on reach the subscribers. */
  async start (): Promise<void> {
    const last = await this.reader.xrevrange(KEYS.events, '+', '-', 'COUNT', 1)
    this.lastRead = last[0]?.[0] ?? '0-0'
    this.reading = this.read(this.lastRead)
  }

  async since (lastId: string): Promise<Missed> {
    if (!STREAM_ID.test(lastId)) return { kind: 'foreign' }
    try {
      const upTo = this.lastRead
      const entries = compareIds(upTo, lastId) > 0 ? await this.command.xrange(KEYS.events, `(${lastId}`, upTo, 'COUNT', this.retained) : []
      const info = await this.command.call('XINFO', 'STREAM', KEYS.events) as unknown[]
      const deleted = String(fieldOf(info, 'max-deleted-entry-id') ?? '0-0')
      // Trimmed entries after the reader's id: some of what it missed is gone.
      const lost = compareIds(deleted, lastId) > 0 ? `events after ${lastId} up to ${deleted}` : null
      return { kind: 'events', events: entries.map(([id, fields]) => logged(id, fields)), lost }
    } catch (err) {
      if ((err as Error).message.includes('no such key')) return { kind: 'events', events: [], lost: null }
      throw storeUnavailable(this.options.location, err)
    }
  }

  async close (): Promise<void> {
    this.closed = true
    this.reader.disconnect()
    await this.reading?.catch(() => {})
  }

  private async read (from: string): Promise<void> {
    let last = from
    while (!this.closed) {
      try {
        const result = await this.reader.xread('BLOCK', 5000, 'STREAMS', KEYS.events, last)
        for (const [, entries] of result ?? []) {
          for (const [id, fields] of entries) {
            last = id
            this.lastRead = id
            const event = logged(id, fields)
            for (const listener of this.listeners) listener(event)
          }
        }
      } catch (err) {
        if (this.closed) return
        // The connection reconnects by itself (ioredis' backoff); the read is sent again.
        this.options.onError?.(err, 'reading the event stream')
        await new Promise(resolve => setTimeout(resolve, 1000))
      }
    }
  }
}

function logged (id: string, fields: string[]): LoggedEvent {
  const type = fields[fields.indexOf('type') + 1] as PlayEventType
  const play = JSON.parse(fields[fields.indexOf('play') + 1] ?? '{}')
  const at = fields.indexOf('digit')
  if (at < 0) return { id, event: { type, play } }
  return { id, event: { type, play, digit: fields[at + 1]!, durationMs: Number(fields[fields.indexOf('durationMs') + 1]) } }
}

function fieldOf (reply: unknown[], name: string): unknown {
  const i = reply.indexOf(name)
  return i < 0 ? undefined : reply[i + 1]
}

/** Orders two stream ids: negative, zero or positive. */
export function compareIds (a: string, b: string): number {
  const [ams, aseq] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bms, bseq] = b.split('-').map(BigInt) as [bigint, bigint]
  if (ams !== bms) return ams < bms ? -1 : 1
  return aseq === bseq ? 0 : aseq < bseq ? -1 : 1
}
