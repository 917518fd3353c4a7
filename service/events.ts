/**
 * Play events leave the service two ways: Server-Sent Events on GET /v1/events (from the
 * engine's event log) and webhooks to a play's callbackUrl (from its listener-safe emitter).
 * Neither can hold up a request or a packet: SSE writes are buffered by the socket (a client
 * that stops reading is dropped), and a webhook is an asynchronous POST with a timeout.
 */
import type { FastifyBaseLogger } from 'fastify'
import http, { type ServerResponse } from 'node:http'
import https from 'node:https'
import type { Engine, EventLog, LoggedEvent, PlayEvent } from '../src/index.js'
import { CallbackPolicy, CallbackRefused } from './callbacks.js'

export interface SseClient {
  response: ServerResponse
  /** Only this play's events, when set. */
  playId: string | null
}

/** A client further behind than this is cut off rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 1 << 20

interface Stream extends SseClient {
  /** Live events held back while the missed ones are replayed; null once caught up. */
  held: LoggedEvent[] | null
}

/**
 * The SSE streams, fed by the engine's event log. A client that reconnects with
 * `Last-Event-ID` (EventSource does so by itself) first gets the events it missed, of those
 * the log keeps, then live ones; where it cannot, a comment line says why.
 */
export class EventHub {
  private readonly log: EventLog
  private readonly clients = new Set<Stream>()
  private readonly unsubscribe: () => void
  private readonly keepalive: NodeJS.Timeout

  constructor (log: EventLog, keepaliveMs = 15_000) {
    this.log = log
    this.unsubscribe = log.subscribe(logged => this.broadcast(logged))
    // A comment line now and then keeps proxies from closing an idle stream.
    this.keepalive = setInterval(() => {
      for (const client of this.clients) this.write(client, ': keepalive\n\n')
    }, keepaliveMs)
    this.keepalive.unref()
  }

  get size (): number { return this.clients.size }

  add (client: SseClient, lastEventId?: string): void {
    const stream: Stream = { ...client, held: null }
    this.clients.add(stream)
    client.response.on('close', () => this.clients.delete(stream))
    this.write(stream, 'retry: 2000\n: connected to prompt-player events\n\n')
    if (lastEventId !== undefined && lastEventId !== '') {
      stream.held = []
      void this.replay(stream, lastEventId)
    }
  }

  /** Writes the events after `lastEventId` that the log still has, or says why it cannot. */
  private async replay (stream: Stream, lastEventId: string): Promise<void> {
    const missed = await this.log.since(lastEventId).catch((err: unknown) => ({ kind: 'failed' as const, why: (err as Error).message }))
    if (missed.kind === 'foreign') {
      this.write(stream, `: Last-Event-ID ${JSON.stringify(lastEventId.slice(0, 40))} is not from this run of this instance (it restarted, or another one answered); nothing replayed, GET /v1/plays has every play's state\n\n`)
    } else if (missed.kind === 'failed') {
      this.write(stream, `: the events after Last-Event-ID could not be read (${missed.why}); GET /v1/plays has every play's state\n\n`)
    }
    const sent = new Set<string>()
    if (missed.kind === 'events') {
      if (missed.lost !== null) {
        this.write(stream, `: ${missed.lost} are no longer kept (the last ${this.log.retained} are); GET /v1/plays has every play's state\n\n`)
      }
      for (const logged of missed.events) {
        sent.add(logged.id)
        this.send(stream, logged)
      }
    }
    const held = stream.held ?? []
    stream.held = null
    for (const logged of held) if (!sent.has(logged.id)) this.send(stream, logged)
  }

  /** Ends every stream (at shutdown, after the last events were written). */
  close (): void {
    this.unsubscribe()
    clearInterval(this.keepalive)
    for (const client of this.clients) client.response.end()
    this.clients.clear()
  }

  private broadcast (logged: LoggedEvent): void {
    // The frame is written once for every client that takes it.
    let text: string | null = null
    for (const client of this.clients) {
      if (client.held !== null) client.held.push(logged)
      else if (wants(client, logged)) this.write(client, text ??= frame(logged))
    }
  }

  private send (client: Stream, logged: LoggedEvent): void {
    if (wants(client, logged)) this.write(client, frame(logged))
  }

  private write (client: Stream, text: string): void {
    if (client.response.writableLength > MAX_BUFFERED_BYTES) {
      client.response.destroy()
      this.clients.delete(client)
      return
    }
    client.response.write(text)
  }
}

function wants (client: Stream, { event }: LoggedEvent): boolean {
  return client.playId === null || client.playId === event.play.id
}

/** What a play.dtmf event adds to the Play: the key and how long it was held. */
function keyOf (event: PlayEvent): { digit?: string, durationMs?: number } {
  return event.type === 'play.dtmf' ? { digit: event.digit, durationMs: event.durationMs } : {}
}

/** An SSE frame: play.dtmf's data is the Play with its key; every other event's is the Play. */
function frame ({ id, event }: LoggedEvent): string {
  const data = event.type === 'play.dtmf' ? { play: event.play, ...keyOf(event) } : event.play
  return `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`
}

export interface WebhookOptions {
  /** Per attempt. */
  timeoutMs?: number
  /** Attempts after the first, with backoff doubling from `backoffMs`. */
  retries?: number
  backoffMs?: number
  /** Where webhooks may go (PROMPT_PLAYER_ALLOWED_CALLBACKS). */
  policy?: CallbackPolicy
}

/**
 * POSTs `{"type": "play.finished", "play": Play}` to a play's callbackUrl. A play's events are
 * delivered in order (started before finished); a network error, a timeout, a 429 or a 5xx is
 * retried with backoff, another 4xx is not, nor a 3xx (redirects are not followed), nor an
 * address outside the callback policy. Failures are logged, never thrown.
 */
export class Webhooks {
  readonly policy: CallbackPolicy
  /**
   * Events by how their delivery ended: answered 2xx, refused by the callback policy, answered
   * with a status not retried (3xx, 4xx), or failed after every retry. Read by /metrics.
   */
  readonly outcomes = { delivered: 0, refused: 0, rejected: 0, failed: 0 }
  private readonly log: FastifyBaseLogger
  private readonly timeoutMs: number
  private readonly retries: number
  private readonly backoffMs: number
  private readonly queues = new Map<string, Promise<void>>()
  private readonly agents: { http: http.Agent, https: https.Agent }

  constructor (engine: Engine, log: FastifyBaseLogger, options: WebhookOptions = {}) {
    this.log = log
    this.timeoutMs = options.timeoutMs ?? 5000
    this.retries = options.retries ?? 3
    this.backoffMs = options.backoffMs ?? 500
    this.policy = options.policy ?? new CallbackPolicy()
    // Connections are kept for the next event; each was checked by the policy when it opened.
    this.agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }
    engine.events.on('play', event => {
      if (event.play.callbackUrl !== null) this.enqueue(event.play.callbackUrl, event)
    })
  }

  /** Waits for deliveries under way, at most `ms`. */
  async drain (ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.queues.values()]),
      new Promise(resolve => { timer = setTimeout(resolve, ms) })
    ])
    clearTimeout(timer)
  }

  /** Closes the connections kept open. */
  close (): void {
    this.agents.http.destroy()
    this.agents.https.destroy()
  }

  private enqueue (url: string, event: PlayEvent): void {
    const id = event.play.id
    const previous = this.queues.get(id) ?? Promise.resolve()
    const next = previous.then(async () => { await this.deliver(url, event) })
    this.queues.set(id, next)
    void next.finally(() => { if (this.queues.get(id) === next) this.queues.delete(id) })
  }

  private async deliver (url: string, event: PlayEvent): Promise<void> {
    const body = JSON.stringify({ type: event.type, play: event.play, ...keyOf(event) })
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await new Promise(resolve => setTimeout(resolve, this.backoffMs * 2 ** (attempt - 1)))
      let outcome: string
      try {
        const status = await this.post(new URL(url), body)
        if (status >= 200 && status < 300) {
          this.outcomes.delivered++
          return
        }
        outcome = `answered ${status}`
        if (status < 500 && status !== 429) {
          this.outcomes.rejected++
          this.log.warn({ play: event.play.id, url, event: event.type }, `webhook ${outcome}; not retried${status < 400 ? ' (redirects are not followed)' : ''}`)
          return
        }
      } catch (err) {
        if (err instanceof CallbackRefused) {
          this.outcomes.refused++
          this.log.warn({ play: event.play.id, url, event: event.type }, `webhook refused: ${err.message}; not sent`)
          return
        }
        outcome = err instanceof WebhookTimeout ? `did not answer within ${this.timeoutMs} ms` : `failed: ${(err as Error).message}`
      }
      this.log.warn({ play: event.play.id, url, event: event.type, attempt: attempt + 1 }, `webhook ${outcome}`)
    }
    this.outcomes.failed++
  }

  /** One attempt: the status it was answered with. The body of the answer is read and dropped. */
  private async post (url: URL, body: string): Promise<number> {
    const refusal = this.policy.refusal(url)
    if (refusal !== null) throw new CallbackRefused(refusal)
    return await new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:'
      const request = (secure ? https : http).request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'prompt-player' },
        lookup: this.policy.connect,
        agent: secure ? this.agents.https : this.agents.http
      }, response => {
        response.resume()
        response.on('end', () => { clearTimeout(timer); resolve(response.statusCode ?? 0) })
        response.on('error', reject)
      })
      const timer = setTimeout(() => request.destroy(new WebhookTimeout()), this.timeoutMs)
      request.on('error', err => { clearTimeout(timer); reject(err) })
      request.end(body)
    })
  }
}

class WebhookTimeout extends Error {}
