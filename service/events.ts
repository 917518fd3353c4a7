/**
 * Play events leave the engine two ways: Server-Sent Events on GET /v1/events, and webhooks to
 * a play's callbackUrl. Both are fed from the engine's listener-safe emitter and neither can
 * hold up the packet path: SSE writes are buffered by the socket (a client that stops reading
 * is dropped), and a webhook is an async fetch with a timeout.
 */
import type { FastifyBaseLogger } from 'fastify'
import { randomBytes } from 'node:crypto'
import http, { type ServerResponse } from 'node:http'
import https from 'node:https'
import type { Engine, PlayEvent } from '../src/index.js'
import { CallbackPolicy, CallbackRefused } from './callbacks.js'

export interface SseClient {
  response: ServerResponse
  /** Only this play's events, when set. */
  playId: string | null
}

/** A client further behind than this is cut off rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 1 << 20

/** Events kept for clients that reconnect with Last-Event-ID. */
export const RETAINED_EVENTS = 1000

interface Retained { sequence: number, playId: string, frame: string }

/**
 * The SSE streams. Each event has an id `<run>-<sequence>`: `run` is random per process, so an
 * id from an earlier run or another instance behind the same load balancer is never mistaken
 * for one of this run's. A client that reconnects with `Last-Event-ID` (EventSource does so by
 * itself) first gets the events it missed, from the last RETAINED_EVENTS, then live ones.
 */
export class EventHub {
  readonly run = randomBytes(4).toString('hex')
  private readonly clients = new Set<SseClient>()
  private sequence = 0
  private readonly retained: Retained[] = []
  private readonly keepalive: NodeJS.Timeout

  constructor (engine: Engine, keepaliveMs = 15_000) {
    engine.events.on('play', event => this.broadcast(event))
    // A comment line now and then keeps proxies from closing an idle stream.
    this.keepalive = setInterval(() => {
      for (const client of this.clients) this.write(client, ': keepalive\n\n')
    }, keepaliveMs)
    this.keepalive.unref()
  }

  get size (): number { return this.clients.size }

  add (client: SseClient, lastEventId?: string): void {
    this.clients.add(client)
    client.response.on('close', () => this.clients.delete(client))
    this.write(client, 'retry: 2000\n: connected to prompt-player events\n\n')
    if (lastEventId !== undefined && lastEventId !== '') this.replay(client, lastEventId)
  }

  /** Writes the retained events after `lastEventId`, or says why it cannot. */
  private replay (client: SseClient, lastEventId: string): void {
    const match = /^([0-9a-f]+)-(\d+)$/.exec(lastEventId)
    if (match === null || match[1] !== this.run) {
      this.write(client, `: Last-Event-ID ${JSON.stringify(lastEventId.slice(0, 40))} is not from this run of this instance (it restarted, or another one answered); nothing replayed, GET /v1/plays has every play's state\n\n`)
      return
    }
    const after = Number(match[2])
    const oldest = this.retained[0]?.sequence ?? this.sequence + 1
    if (oldest > after + 1) {
      this.write(client, `: events ${after + 1} to ${oldest - 1} are no longer kept (the last ${RETAINED_EVENTS} are); GET /v1/plays has every play's state\n\n`)
    }
    for (const event of this.retained) {
      if (event.sequence > after && (client.playId === null || client.playId === event.playId)) this.write(client, event.frame)
    }
  }

  /** Ends every stream (at shutdown, after the last events were written). */
  close (): void {
    clearInterval(this.keepalive)
    for (const client of this.clients) client.response.end()
    this.clients.clear()
  }

  private broadcast (event: PlayEvent): void {
    const sequence = ++this.sequence
    const frame = `id: ${this.run}-${sequence}\nevent: ${event.type}\ndata: ${JSON.stringify(event.play)}\n\n`
    this.retained.push({ sequence, playId: event.play.id, frame })
    if (this.retained.length > RETAINED_EVENTS) this.retained.shift()
    for (const client of this.clients) {
      if (client.playId === null || client.playId === event.play.id) this.write(client, frame)
    }
  }

  private write (client: SseClient, text: string): void {
    if (client.response.writableLength > MAX_BUFFERED_BYTES) {
      client.response.destroy()
      this.clients.delete(client)
      return
    }
    client.response.write(text)
  }
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
    const body = JSON.stringify({ type: event.type, play: event.play })
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
        lookup: this.policy.lookup,
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
