/**
 * A typed client for Node IVR applications: upload prompts, start and stop plays, follow
 * their events. It speaks the HTTP API of docs/api.md with the platform's fetch, and throws
 * PromptPlayerError with the service's stable `code` when a call is refused.
 *
 *   const player = new PromptPlayerClient({ url: 'http://127.0.0.1:8080', token })
 *   await player.uploadPrompt('welcome', await readFile('welcome.wma'))
 *   const play = await player.play({ target: { host, port }, prompts: ['welcome'] })
 *   for await (const event of player.events({ play: play.id })) if (event.type !== 'play.started') break
 */
import type { PlayControl, PlayCreatedInfo, PlayEvent, PlayEventType, PlayInfo, PlayRequest, PromptResourceInfo as PromptInfo } from '../src/index.js'

export type { PlayControl, PlayCreatedInfo, PlayInfo, PlayRequest, PromptInfo, PlayEvent, PlayEventType }

/** An event as the stream delivers it: with its id, to resume from (`lastEventId`). */
export interface StreamedEvent extends PlayEvent {
  id: string | null
}

export interface PlayListOptions {
  state?: 'playing' | 'finished' | 'stopped' | 'failed' | 'ended'
  limit?: number
}

export interface ClientOptions {
  /** Base URL of the service, e.g. http://127.0.0.1:8080 */
  url: string
  /** A bearer token, when the service has PROMPT_PLAYER_TOKENS set. */
  token?: string
  /** Per request (uploads transcode: give them time). Default 60 s. */
  timeoutMs?: number
}

export class PromptPlayerError extends Error {
  readonly statusCode: number
  readonly code: string
  constructor (statusCode: number, code: string, message: string) {
    super(message)
    this.name = 'PromptPlayerError'
    this.statusCode = statusCode
    this.code = code
  }
}

export class PromptPlayerClient {
  private readonly base: string
  private readonly token: string | undefined
  private readonly timeoutMs: number

  constructor (options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, '')
    this.token = options.token
    this.timeoutMs = options.timeoutMs ?? 60_000
  }

  /**
   * Uploads (or replaces) a prompt. With a `filename` it goes as multipart, so the service can
   * say whether the name's extension lied; `replace: false` then refuses an existing name (409).
   */
  async uploadPrompt (name: string, audio: Uint8Array, options: { filename?: string, replace?: boolean } = {}): Promise<PromptInfo> {
    const bytes = new Uint8Array(audio)
    if (options.filename === undefined && options.replace !== false) {
      return await this.request<PromptInfo>('PUT', `/v1/prompts/${encodeURIComponent(name)}`, { body: bytes, type: 'application/octet-stream' })
    }
    const form = new FormData()
    form.append('name', name)
    form.append('file', new Blob([bytes]), options.filename ?? name)
    if (options.replace === false) return await this.request<PromptInfo>('POST', '/v1/prompts', { body: form })
    return await this.request<PromptInfo>('PUT', `/v1/prompts/${encodeURIComponent(name)}`, { body: form })
  }

  async listPrompts (): Promise<PromptInfo[]> {
    return (await this.request<{ prompts: PromptInfo[] }>('GET', '/v1/prompts')).prompts
  }

  async getPrompt (name: string): Promise<PromptInfo> {
    return await this.request<PromptInfo>('GET', `/v1/prompts/${encodeURIComponent(name)}`)
  }

  /** The prompt as a caller hears it: `wav` (8 kHz mono 16-bit PCM), or the raw `pcmu` / `pcma` bytes. */
  async promptAudio (name: string, format: 'wav' | 'pcmu' | 'pcma' = 'wav'): Promise<Uint8Array<ArrayBuffer>> {
    const res = await fetch(`${this.base}/v1/prompts/${encodeURIComponent(name)}/audio?format=${format}`, { headers: this.headers(), signal: AbortSignal.timeout(this.timeoutMs) })
    if (!res.ok) throw await errorOf(res)
    return new Uint8Array(await res.arrayBuffer())
  }

  async deletePrompt (name: string): Promise<void> {
    await this.request('DELETE', `/v1/prompts/${encodeURIComponent(name)}`)
  }

  /** Starts a play; with `srtp`, the answer's `srtp.localKey` is the key for the SDP answer (no later read has it). */
  async play (request: PlayRequest): Promise<PlayCreatedInfo> {
    return await this.request<PlayCreatedInfo>('POST', '/v1/plays', { body: JSON.stringify(request), type: 'application/json' })
  }

  async getPlay (id: string): Promise<PlayInfo> {
    return await this.request<PlayInfo>('GET', `/v1/plays/${encodeURIComponent(id)}`)
  }

  /** Running plays (newest first), then those ended in the last 5 minutes; `state` narrows, `limit` cuts. */
  async listPlays (options: PlayListOptions = {}): Promise<PlayInfo[]> {
    return (await this.playList(options)).plays
  }

  /** As listPlays, with `total`: how many plays matched before `limit` cut the list. */
  async playList (options: PlayListOptions = {}): Promise<{ plays: PlayInfo[], total: number }> {
    const query = new URLSearchParams()
    if (options.state !== undefined) query.set('state', options.state)
    if (options.limit !== undefined) query.set('limit', String(options.limit))
    const search = query.size === 0 ? '' : `?${query.toString()}`
    return await this.request<{ plays: PlayInfo[], total: number }>('GET', `/v1/plays${search}`)
  }

  /** Stops a play; no packet of it is sent after this resolves. */
  async stop (id: string): Promise<PlayInfo> {
    return await this.request<PlayInfo>('DELETE', `/v1/plays/${encodeURIComponent(id)}`)
  }

  /** Pauses, resumes, restarts or moves a running play; answers once the next packet carries it. */
  async control (id: string, control: PlayControl): Promise<PlayInfo> {
    return await this.request<PlayInfo>('POST', `/v1/plays/${encodeURIComponent(id)}/control`, { body: JSON.stringify(control), type: 'application/json' })
  }

  /**
   * Follows play events (Server-Sent Events) until the loop breaks or `signal` aborts.
   * `play` narrows to one play's events. `lastEventId` (the `id` of the last event seen, after
   * a disconnection) first replays the events missed since, as far as the server kept them.
   */
  async * events (options: { play?: string, signal?: AbortSignal, lastEventId?: string } = {}): AsyncGenerator<StreamedEvent> {
    const controller = new AbortController()
    const onAbort = (): void => controller.abort()
    options.signal?.addEventListener('abort', onAbort)
    try {
      const query = options.play === undefined ? '' : `?play=${encodeURIComponent(options.play)}`
      const headers = this.headers({ accept: 'text/event-stream', ...(options.lastEventId === undefined ? {} : { 'last-event-id': options.lastEventId }) })
      const res = await fetch(`${this.base}/v1/events${query}`, { headers, signal: controller.signal })
      if (!res.ok || res.body === null) throw await errorOf(res)
      const decoder = new TextDecoder()
      let buffer = ''
      // A reader rather than `for await` over the body: browsers without async iteration of
      // streams (Safari) run this client too, in the web console.
      const reader = res.body.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = parseFrame(frame)
          if (event !== null) yield event
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return
      throw err
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      controller.abort()
    }
  }

  private headers (extra: Record<string, string> = {}): Record<string, string> {
    return this.token === undefined ? extra : { ...extra, authorization: `Bearer ${this.token}` }
  }

  private async request<T> (method: string, path: string, options: { body?: BodyInit, type?: string } = {}): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: this.headers(options.type === undefined ? {} : { 'content-type': options.type }),
      ...(options.body === undefined ? {} : { body: options.body }),
      signal: AbortSignal.timeout(this.timeoutMs)
    })
    if (!res.ok) throw await errorOf(res)
    const text = await res.text()
    return (text === '' ? undefined : JSON.parse(text)) as T
  }
}

async function errorOf (res: Response): Promise<PromptPlayerError> {
  return errorFrom(res.status, res.statusText, await res.text())
}

/** The error an answer's status and body say: the service's code and message, or the status. */
export function errorFrom (status: number, statusText: string, body: string): PromptPlayerError {
  try {
    const parsed = JSON.parse(body) as { code?: string, message?: string }
    return new PromptPlayerError(status, parsed.code ?? 'HTTP_ERROR', parsed.message ?? body)
  } catch {
    return new PromptPlayerError(status, 'HTTP_ERROR', `${status} ${statusText}: ${body.slice(0, 200)}`)
  }
}

function parseFrame (frame: string): StreamedEvent | null {
  let type: string | null = null
  let id: string | null = null
  const data: string[] = []
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim()
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
    else if (line.startsWith('id:')) id = line.slice(3).trim()
  }
  if (type === null || data.length === 0) return null
  const body = JSON.parse(data.join('\n'))
  // play.dtmf carries {play, digit, durationMs}; every other event is the Play itself.
  if (type === 'play.dtmf') return { id, type, play: body.play as PlayInfo, digit: body.digit as string, durationMs: body.durationMs as number }
  return { id, type: type as PlayEventType, play: body as PlayInfo }
}
