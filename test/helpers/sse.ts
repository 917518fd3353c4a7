/** Reading a real SSE stream (GET /v1/events) in tests: every event with its id, type and Play. */
import { performance } from 'node:perf_hooks'
import { sleep } from './index.js'

export interface StreamEvent { id: string, type: string, play: any }

export function follow (url: string, lastEventId?: string): { events: StreamEvent[], comments: string[], stop: () => void, ready: Promise<void> } {
  const events: StreamEvent[] = []
  const comments: string[] = []
  const controller = new AbortController()
  let resolveReady!: () => void
  const ready = new Promise<void>(resolve => { resolveReady = resolve })
  void (async () => {
    const res = await fetch(`${url}/v1/events`, { signal: controller.signal, headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId } })
    resolveReady()
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        for (const line of frame.split('\n')) if (line.startsWith(': ')) comments.push(line.slice(2))
        const id = /^id: (.*)$/m.exec(frame)?.[1]
        const type = /^event: (.*)$/m.exec(frame)?.[1]
        const data = /^data: (.*)$/m.exec(frame)?.[1]
        if (id !== undefined && type !== undefined && data !== undefined) events.push({ id, type, play: JSON.parse(data) })
      }
    }
  })().catch(() => {})
  return { events, comments, stop: () => controller.abort(), ready }
}

/** Polls `fn` until it gives a value (not undefined or false); throws after `timeoutMs`. */
export async function until<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const started = performance.now()
  for (;;) {
    const value = await fn()
    if (value !== undefined && value !== false) return value
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(20)
  }
}

export async function json (res: Response): Promise<any> {
  return await res.json()
}

export async function startPlay (url: string, body: unknown): Promise<Response> {
  return await fetch(`${url}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}
