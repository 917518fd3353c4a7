/**
 * The console's calls to the service: the typed client (the same one Node applications use)
 * for everything but uploads, which go by XMLHttpRequest because only it reports upload
 * progress. The token lives in sessionStorage: this tab only, gone when it closes.
 */
import { PromptPlayerClient, PromptPlayerError, errorFrom, type PlayInfo, type PlayRequest, type PromptInfo } from '../client/index.js'

export { PromptPlayerClient, PromptPlayerError }
export type { PlayInfo, PlayRequest, PromptInfo }

const TOKEN_KEY = 'prompt-player.token'

export function savedToken (): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined
}

export function saveToken (token: string | undefined): void {
  if (token === undefined) sessionStorage.removeItem(TOKEN_KEY)
  else sessionStorage.setItem(TOKEN_KEY, token)
}

export function clientFor (token: string | undefined): PromptPlayerClient {
  return new PromptPlayerClient({ url: location.origin, ...(token === undefined ? {} : { token }) })
}

/** A refusal for a missing or wrong token: the page asks for one again. */
export function isAuthError (err: unknown): boolean {
  return err instanceof PromptPlayerError && err.statusCode === 401
}

/** What an error says to a person: the service's code and message, or what went wrong here. */
export function describe (err: unknown): { code: string, message: string } {
  if (err instanceof PromptPlayerError) return { code: err.code, message: err.message }
  if (err instanceof Error && err.name === 'TimeoutError') return { code: 'TIMEOUT', message: 'the service did not answer in time' }
  return { code: 'NETWORK_ERROR', message: `the service could not be reached: ${err instanceof Error ? err.message : String(err)}` }
}

/**
 * A prompt name from a file name, as the service would take it (the stem), with what a name
 * cannot hold replaced: "Main menu (v2).mp3" is "Main-menu-v2".
 */
export function promptName (filename: string): string {
  const stem = filename.replace(/\.[^.]*$/, '')
  const name = stem.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').replace(/-+$/, '').slice(0, 64)
  return name === '' ? 'prompt' : name
}

export interface UploadProgress {
  /** Bytes of the request (the file in its multipart body) sent so far, of `total`. */
  sent: number
  total: number
  /** `transcoding`: every byte has arrived; the service detects and transcodes it now. */
  phase: 'sending' | 'transcoding'
}

/**
 * Uploads one file as multipart (so the service sees its file name and says when its extension
 * lies): POST, which refuses an existing name with 409, or PUT, which replaces it.
 */
export async function uploadFile (file: File, name: string, options: { token: string | undefined, replace: boolean, onProgress: (progress: UploadProgress) => void }): Promise<PromptInfo> {
  const form = new FormData()
  form.append('name', name)
  form.append('file', file, file.name)
  return await new Promise<PromptInfo>((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    if (options.replace) xhr.open('PUT', `/v1/prompts/${encodeURIComponent(name)}`)
    else xhr.open('POST', '/v1/prompts')
    if (options.token !== undefined) xhr.setRequestHeader('authorization', `Bearer ${options.token}`)
    // The bar counts the request's bytes (the file and its multipart framing), to the end.
    let total = file.size
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) total = e.total
      options.onProgress({ sent: e.loaded, total, phase: 'sending' })
    }
    xhr.upload.onload = () => options.onProgress({ sent: total, total, phase: 'transcoding' })
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(JSON.parse(xhr.responseText) as PromptInfo)
        return
      }
      reject(errorFrom(xhr.status, xhr.statusText, xhr.responseText))
    }
    xhr.onerror = () => reject(new PromptPlayerError(0, 'NETWORK_ERROR', 'the upload did not reach the service: the connection was refused or lost'))
    xhr.send(form)
  })
}

/** GET of an open route (/readyz, /metrics): its status and body, whatever the status. */
export async function getOpen (path: string): Promise<{ status: number, text: string }> {
  const res = await fetch(path, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, text: await res.text() }
}

/**
 * Runs `task` every `ms` while the page is visible: a console left in a background tab polls
 * nothing (the event stream stays open, and costs the service nothing while no play changes).
 * When the tab is shown again the task runs at once. Answers a function that stops it.
 */
export function whileVisible (ms: number, task: () => void): () => void {
  const timer = setInterval(() => { if (document.visibilityState !== 'hidden') task() }, ms)
  const shown = (): void => { if (document.visibilityState !== 'hidden') task() }
  document.addEventListener('visibilitychange', shown)
  return () => {
    clearInterval(timer)
    document.removeEventListener('visibilitychange', shown)
  }
}

export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}
