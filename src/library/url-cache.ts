/**
 * Prompts from URLs: fetched once, detected from their bytes and transcoded as an upload is
 * (so an HTML error page served with 200 is refused, and a signed URL with no extension plays),
 * and kept in a folder of this instance's library directory, bounded by bytes, least recently
 * used first, across restarts. Whether a kept entry is still good is HTTP's own rules
 * (Cache-Control, Expires, ETag, Last-Modified, Vary, no-store), as http-cache-semantics reads
 * them: a fresh entry plays at once, a stale one is revalidated (a 304 fetches nothing), and a
 * 200 with new bytes replaces the entry, while plays already running keep the audio they hold.
 * Fetches of one URL at once are one fetch.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import CachePolicy from 'http-cache-semantics'
import type { PromptInfo } from '../common/schemas.js'
import { fetchUrl, FetchPolicy, type FetchOptions, type Fetched } from './fetch-url.js'
import type { Ffmpeg } from './ffmpeg.js'
import { Prompt } from './prompt.js'
import { makeRendition, transcodeUpload, type Stager } from './prompt-store.js'
import { discard, readAudio, renditionFile, stage, stagedDir } from './staging.js'
import type { Renditions } from '../common/codecs.js'

export interface UrlCacheOptions {
  /** The cache's folder (created when missing). */
  dir: string
  /** Bytes of audio kept (every rendition), least recently used evicted first. */
  maxBytes: number
  fetch: Omit<FetchOptions, 'headers'>
  ffmpeg: Ffmpeg
}

/** One cached URL, as GET /v1/cache lists it. */
export interface CacheEntryInfo {
  url: string
  container: PromptInfo['source']['container']
  /** The body's bytes as fetched (kept too), and the audio kept for it (every rendition). */
  sourceBytes: number
  bytes: number
  durationMs: number
  fetchedAt: string
  validatedAt: string
}

interface Entry {
  info: CacheEntryInfo
  key: string
  prompt: Prompt
  policy: CachePolicy
  /** Its media folder in the cache, named by the body's hash. */
  media: string
  lastUsed: number
}

export interface CacheStats { hits: number, misses: number, revalidations: number, refusals: number }

interface Stored { info: CacheEntryInfo, prompt: PromptInfo, policy: CachePolicy.CachePolicyObject, media: string }

export class UrlCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, revalidations: 0, refusals: 0 }
  private readonly options: UrlCacheOptions
  private readonly policy: FetchPolicy
  private readonly entries = new Map<string, Entry>()
  private readonly pending = new Map<string, Promise<Prompt>>()
  private readonly removeListeners: Array<(prompt: Prompt) => void> = []
  /** Fetched bodies are staged in the cache's own folder while ffmpeg transcodes them. */
  private readonly stager: Stager
  private clock = 0

  private constructor (options: UrlCacheOptions) {
    this.options = options
    this.policy = new FetchPolicy(options.fetch.allow)
    const tmp = path.join(options.dir, '.tmp')
    this.stager = {
      stage: async (bytes, sha256) => await stage(tmp, bytes, sha256),
      readStaged: async staged => await readAudio(stagedDir(staged)),
      discard: async staged => { await discard(stagedDir(staged)) }
    }
  }

  /**
   * Opens the cache folder and reads back what an earlier run kept; unreadable entries are
   * removed. A folder that cannot be made or read (a full or read-only disk) does not stop the
   * engine: the cache starts empty, and a URL play says why it cannot be kept (507).
   */
  static async open (options: UrlCacheOptions): Promise<UrlCache> {
    const cache = new UrlCache(options)
    try {
      await cache.load()
    } catch {
      cache.entries.clear()
    }
    return cache
  }

  private async load (): Promise<void> {
    const options = this.options
    const cache = this
    await fs.mkdir(path.join(options.dir, '.tmp'), { recursive: true })
    for (const leftover of await fs.readdir(path.join(options.dir, '.tmp'))) await discard(path.join(options.dir, '.tmp', leftover))
    for (const file of (await fs.readdir(options.dir)).filter(f => f.endsWith('.json'))) {
      try {
        const stored = JSON.parse(await fs.readFile(path.join(options.dir, file), 'utf8')) as Stored
        const audio = await readAudio(path.join(options.dir, stored.media))
        cache.entries.set(stored.info.url, { info: stored.info, key: file.slice(0, -5), prompt: cache.kept(stored.prompt, audio, stored.media), policy: CachePolicy.fromObject(stored.policy), media: stored.media, lastUsed: cache.clock++ })
      } catch {
        await fs.rm(path.join(options.dir, file), { force: true })
      }
    }
    // Media no entry names: left by a run that stopped between writing media and its entry.
    const named = new Set([...cache.entries.values()].map(e => e.media))
    for (const name of await fs.readdir(options.dir)) {
      if (name.startsWith('media-') && !named.has(name)) await discard(path.join(options.dir, name))
    }
  }

  /** Closes the connections kept open to origins. */
  close (): void {
    for (const agent of Object.values(this.policy.agents)) agent.destroy()
  }

  /** Tells `listener` of every prompt that leaves the cache (evicted or replaced). */
  onRemove (listener: (prompt: Prompt) => void): void {
    this.removeListeners.push(listener)
  }

  get bytes (): number {
    let total = 0
    for (const e of this.entries.values()) total += e.info.bytes
    return total
  }

  list (): CacheEntryInfo[] {
    return [...this.entries.values()].sort((a, b) => b.lastUsed - a.lastUsed).map(e => e.info)
  }

  /** The prompt for `url`: from the cache when fresh, else fetched or revalidated first. */
  async get (url: string): Promise<Prompt> {
    const entry = this.entries.get(url)
    if (entry !== undefined) {
      const verdict = entry.policy.evaluateRequest(requestOf(url))
      if (verdict.revalidation === undefined || !verdict.revalidation.synchronous) {
        this.stats.hits++
        entry.lastUsed = this.clock++
        // stale-while-revalidate: this play does not wait; the next one gets the answer.
        if (verdict.revalidation !== undefined) void this.once(url, async () => await this.revalidate(entry)).catch(() => {})
        return entry.prompt
      }
    }
    return await this.once(url, async () => entry === undefined ? await this.fetchNew(url) : await this.revalidate(entry))
  }

  /** Removes a URL's entry; false when there was none. */
  async evict (url: string): Promise<boolean> {
    const entry = this.entries.get(url)
    if (entry === undefined) return false
    await this.drop(entry)
    return true
  }

  private async once (url: string, work: () => Promise<Prompt>): Promise<Prompt> {
    const running = this.pending.get(url)
    if (running !== undefined) return await running
    const promise = work().finally(() => this.pending.delete(url))
    this.pending.set(url, promise)
    return await promise
  }

  private async fetchNew (url: string): Promise<Prompt> {
    this.stats.misses++
    const fetched = await this.fetch(url, {})
    return await this.keep(url, fetched, null)
  }

  private async revalidate (entry: Entry): Promise<Prompt> {
    this.stats.revalidations++
    const request = requestOf(entry.info.url)
    const fetched = await this.fetch(entry.info.url, entry.policy.revalidationHeaders(request) as Record<string, string>)
    const { policy, modified } = entry.policy.revalidatedPolicy(request, { status: fetched.status, headers: fetched.headers })
    if (fetched.status === 304 || !modified) {
      // The origin says the bytes are the same: nothing is fetched again, the entry lives on.
      entry.policy = policy
      entry.info = { ...entry.info, validatedAt: new Date().toISOString() }
      entry.lastUsed = this.clock++
      await this.write(entry)
      return entry.prompt
    }
    return await this.keep(entry.info.url, fetched, entry)
  }

  private async fetch (url: string, headers: Record<string, string>): Promise<Fetched> {
    try {
      return await fetchUrl(url, this.policy, { ...this.options.fetch, headers })
    } catch (err) {
      this.stats.refusals++
      throw err
    }
  }

  /** Transcodes a fetched body, keeps it (when HTTP allows) and returns its prompt. */
  private async keep (url: string, fetched: Fetched, previous: Entry | null): Promise<Prompt> {
    const stager = this.stager
    const key = keyOf(url)
    let transcoded
    try {
      transcoded = await transcodeUpload(`url-${key.slice(0, 40)}`, fetched.body, this.options.ffmpeg, stager, null)
    } catch (err) {
      // Not audio, cut short, undecodable: refused, and nothing of it kept.
      this.stats.refusals++
      throw withUrl(err, url)
    }
    const { source, telephony } = transcoded.info
    const policy = new CachePolicy(requestOf(url), { status: 200, headers: fetched.headers }, { shared: true })
    if (!policy.storable()) {
      // no-store (or a status HTTP does not cache): played this once, kept nowhere; a rendition
      // the play needs beyond the upload's is made from the body it holds.
      await stager.discard(transcoded.staged)
      if (previous !== null) await this.drop(previous)
      return new Prompt(transcoded.info, transcoded.audio, async (_prompt, rendition) => await makeRendition(fetched.body, rendition, this.options.ffmpeg, stager))
    }
    const media = `media-${key.slice(0, 16)}-${source.sha256.slice(0, 16)}`
    const prompt = this.kept(transcoded.info, transcoded.audio, media)
    const now = new Date().toISOString()
    const entry: Entry = {
      info: { url, container: source.container, sourceBytes: source.bytes, bytes: audioBytes(transcoded.audio), durationMs: telephony.durationMs, fetchedAt: now, validatedAt: now },
      key,
      prompt,
      policy,
      media,
      lastUsed: this.clock++
    }
    // The body is kept beside its renditions: a play at another Opus ptime makes one from it.
    const dir = stagedDir(transcoded.staged)
    await fs.rm(path.join(this.options.dir, media), { recursive: true, force: true })
    await fs.rename(dir, path.join(this.options.dir, media))
    // The entry's description is replaced in one rename: a restart finds the old or the new.
    await this.write(entry)
    this.entries.set(url, entry)
    if (previous !== null && previous.media !== media) await discard(path.join(this.options.dir, previous.media))
    if (previous !== null) for (const listener of this.removeListeners) listener(previous.prompt)
    await this.trim()
    return prompt
  }

  /** A prompt kept in media folder `media`: a rendition it lacks is made from the body kept there, and kept too. */
  private kept (info: PromptInfo, audio: Renditions, media: string): Prompt {
    return new Prompt(info, audio, async (_prompt, rendition) => {
      const dir = path.join(this.options.dir, media)
      const bytes = await makeRendition(await fs.readFile(path.join(dir, 'source')), rendition, this.options.ffmpeg, this.stager)
      // Kept unless the entry was evicted or replaced meanwhile.
      const entry = [...this.entries.values()].find(e => e.media === media)
      if (entry !== undefined) {
        await fs.writeFile(renditionFile(dir, rendition), bytes)
        entry.info = { ...entry.info, bytes: entry.info.bytes + bytes.length }
        await this.write(entry)
      }
      return bytes
    })
  }

  private async write (entry: Entry): Promise<void> {
    const stored: Stored = { info: entry.info, prompt: entry.prompt.info, policy: entry.policy.toObject(), media: entry.media }
    const file = path.join(this.options.dir, `${entry.key}.json`)
    await fs.writeFile(`${file}.tmp`, JSON.stringify(stored))
    await fs.rename(`${file}.tmp`, file)
  }

  /** Evicts the least recently used entries until the audio kept fits the bound. */
  private async trim (): Promise<void> {
    const byAge = [...this.entries.values()].sort((a, b) => a.lastUsed - b.lastUsed)
    let total = this.bytes
    for (const entry of byAge) {
      if (total <= this.options.maxBytes) break
      total -= entry.info.bytes
      await this.drop(entry)
    }
  }

  private async drop (entry: Entry): Promise<void> {
    this.entries.delete(entry.info.url)
    await fs.rm(path.join(this.options.dir, `${entry.key}.json`), { force: true })
    await discard(path.join(this.options.dir, entry.media))
    for (const listener of this.removeListeners) listener(entry.prompt)
  }
}

function audioBytes (audio: Renditions): number {
  return Object.values(audio).reduce((n, bytes) => n + bytes.length, 0)
}

function keyOf (url: string): string {
  return createHash('sha256').update(url).digest('hex')
}

/** The request a play makes of a URL, as http-cache-semantics describes it. */
function requestOf (url: string): CachePolicy.Request {
  const u = new URL(url)
  return { url: u.pathname + u.search, method: 'GET', headers: { host: u.host, accept: 'audio/*, */*;q=0.5' } }
}

/** The upload's error, with the URL it came from named first. */
function withUrl (err: unknown, url: string): unknown {
  if (err instanceof Error && 'code' in err) err.message = `the prompt URL ${url}: ${err.message}`
  return err
}
