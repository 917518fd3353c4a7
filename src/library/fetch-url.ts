/**
 * Fetching a prompt's bytes from a URL, as telephony platforms do, without their faults: a GET
 * only (presigned URLs refuse HEAD, freeswitch#1985), redirects followed up to a limit with
 * every hop checked, a time limit on the whole fetch and a size limit while the body streams.
 * Where a URL may lead is a list of networks, applied in the connection's own lookup: a name
 * cannot resolve to an allowed address for a check and to another for the connection.
 */
import http from 'node:http'
import https from 'node:https'
import { isIP, type LookupFunction } from 'node:net'
import { EngineError } from '../common/errors.js'
import { AllowedNetworks, unmapped } from '../common/networks.js'

export interface FetchOptions {
  /** Networks (CIDRs) a URL's host may be in. */
  allow: readonly string[]
  timeoutMs: number
  maxBytes: number
  maxRedirects: number
  /** Request headers: a revalidation's If-None-Match / If-Modified-Since. */
  headers?: Record<string, string>
}

export interface Fetched {
  status: number
  headers: http.IncomingHttpHeaders
  /** The body of a 200; empty for a 304. */
  body: Buffer
  /** Where the answer came from, after redirects. */
  url: string
}

class NotAllowed extends Error {}

/** Where URLs may lead: the networks of `allow`, never the unspecified address. */
export class FetchPolicy extends AllowedNetworks {
  /**
   * Connections to an origin are kept open a little while, so that a revalidation costs the
   * origin's answer and not a new handshake. The agents are this policy's own: a connection
   * made under another policy (another engine in the process) is never reused under this one,
   * and each new connection goes through this policy's lookup.
   */
  readonly agents = {
    'http:': new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: 16, timeout: 30_000 }),
    'https:': new https.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: 16, timeout: 30_000 })
  }

  /** The connection's lookup: the name's addresses, only the allowed ones. */
  readonly connect: LookupFunction = this.lookup((hostname, found) => new NotAllowed(`${hostname} resolves to ${found}`))
}

/** GETs `url`, following redirects; throws URL_NOT_ALLOWED, FETCH_FAILED or FETCH_TIMEOUT naming the URL. */
export async function fetchUrl (url: string, policy: FetchPolicy, options: FetchOptions): Promise<Fetched> {
  const deadline = Date.now() + options.timeoutMs
  let current = url
  for (let hop = 0; ; hop++) {
    const target = parse(current, url)
    const literal = target.hostname.replace(/^\[(.*)\]$/, '$1')
    if (isIP(unmapped(literal)) !== 0 && !policy.allows(literal)) {
      throw notAllowed(url, current, `its host ${literal} is not in the allowed networks (${policy.allow.join(', ')})`)
    }
    const answer = await get(target, policy, options, deadline, url)
    if (answer.status >= 300 && answer.status < 400 && answer.status !== 304) {
      const location = answer.headers.location
      if (location === undefined) throw failed(url, `${current} answered ${answer.status} without a Location`)
      if (hop >= options.maxRedirects) throw failed(url, `more than ${options.maxRedirects} redirects (the last to ${new URL(location, current).href})`)
      current = new URL(location, current).href
      continue
    }
    if (answer.status !== 200 && answer.status !== 304) {
      throw failed(url, `${current} answered ${answer.status} ${http.STATUS_CODES[answer.status] ?? ''}`.trim(), { status: answer.status })
    }
    return { ...answer, url: current }
  }
}

function parse (text: string, original: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new EngineError('INVALID_REQUEST', `${JSON.stringify(original.slice(0, 200))} is not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new EngineError('INVALID_REQUEST', `a prompt URL must be http or https, not ${url.protocol} (${original.slice(0, 200)})`)
  }
  return url
}

async function get (url: URL, policy: FetchPolicy, options: FetchOptions, deadline: number, original: string): Promise<Omit<Fetched, 'url'>> {
  const left = deadline - Date.now()
  if (left <= 0) throw timedOut(original, options.timeoutMs)
  return await new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http
    const request = client.get(url, { agent: policy.agents[url.protocol as 'http:' | 'https:'], lookup: policy.connect, headers: { 'user-agent': 'prompt-player', accept: 'audio/*, */*;q=0.5', ...options.headers } }, response => {
      const status = response.statusCode ?? 0
      if (status !== 200) {
        // Nothing of a redirect's, a 304's or an error's body is kept.
        response.resume()
        response.on('end', () => resolve({ status, headers: response.headers, body: Buffer.alloc(0) }))
        return
      }
      const declared = Number(response.headers['content-length'] ?? NaN)
      if (declared > options.maxBytes) {
        request.destroy()
        reject(tooLarge(original, options.maxBytes, declared))
        return
      }
      const chunks: Buffer[] = []
      let bytes = 0
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        if (bytes > options.maxBytes) {
          request.destroy()
          reject(tooLarge(original, options.maxBytes, null))
          return
        }
        chunks.push(chunk)
      })
      response.on('end', () => resolve({ status, headers: response.headers, body: Buffer.concat(chunks) }))
      response.on('error', err => reject(failed(original, err.message)))
    })
    const timer = setTimeout(() => {
      request.destroy()
      reject(timedOut(original, options.timeoutMs))
    }, left)
    request.on('close', () => clearTimeout(timer))
    request.on('error', err => {
      clearTimeout(timer)
      if (err instanceof NotAllowed) reject(notAllowed(original, url.href, `${err.message}, none of them in the allowed networks (${policy.allow.join(', ')})`))
      else reject(failed(original, `${url.host}: ${err.message}`))
    })
  })
}

function notAllowed (url: string, hop: string, why: string): EngineError {
  return new EngineError('URL_NOT_ALLOWED', `the prompt URL ${url}${hop === url ? '' : ` (redirected to ${hop})`} may not be fetched: ${why} (fetch.allow)`, { options: ['fetch.allow'] })
}

function failed (url: string, why: string, details?: Record<string, unknown>): EngineError {
  return new EngineError('FETCH_FAILED', `the prompt URL ${url} could not be fetched: ${why}`, { details })
}

function timedOut (url: string, ms: number): EngineError {
  return new EngineError('FETCH_TIMEOUT', `the prompt URL ${url} did not answer in full within ${ms} ms (fetch.timeoutMs)`, { options: ['fetch.timeoutMs'] })
}

function tooLarge (url: string, max: number, declared: number | null): EngineError {
  return new EngineError('FETCH_FAILED', `the prompt URL ${url} is larger than ${max} bytes, the largest prompt (fetch.maxBytes)${declared === null ? '' : `: it declares ${declared}`}`, { options: ['fetch.maxBytes'] })
}
