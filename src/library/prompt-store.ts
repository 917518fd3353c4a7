/**
 * The prompt library: names, uploads (detected, checked, probed and transcoded here), the
 * prompts in memory for plays, and one lock per name so that two uploads of one name commit
 * one after the other. Where the prompts rest is a LibraryStorage: a local directory today
 * (LocalStorage), shared storage for a pool of instances.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { detectContainer, extensionMismatch } from './detect.js'
import { EngineError } from '../common/errors.js'
import { checkComplete, checkDecodedLength } from './integrity.js'
import type { DecodedStream, Ffmpeg } from './ffmpeg.js'
import { G711, SAMPLE_RATE, SAMPLES_PER_MS, type Law } from '../common/g711.js'
import { UPLOAD_RENDITIONS, type Rendition, type Renditions } from '../common/codecs.js'
import type { PromptInfo, PromptResourceInfo } from '../common/schemas.js'
import { LocalStorage, storageHint } from './local-storage.js'
import { probe } from './probe.js'
import { Prompt, isPromptName, packetCount, toShared } from './prompt.js'
import type { LibraryStorage, Staged, StoreWarning } from './storage.js'
import { wavFile } from './wav.js'

export interface PutOptions {
  /** The uploaded file's name, if it had one: reported, and checked against the content. */
  filename?: string | null
  /** false: refuse with PROMPT_EXISTS when the name is taken (POST). true: replace (PUT). */
  replace: boolean
}

export interface PutResult {
  prompt: Prompt
  created: boolean
}

/** A prompt as a caller will hear it: 8 kHz WAV decoded from the stored G.711, or the G.711 itself. */
export type AudioFormat = 'wav' | 'pcmu' | 'pcma'

export class PromptStore {
  readonly storage: LibraryStorage
  private readonly ffmpeg: Ffmpeg
  private readonly prompts = new Map<string, Prompt>()
  /** Per-name queue, so that two uploads of one name commit one after the other. */
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly removeListeners: Array<(prompt: Prompt) => void> = []
  private uploading = 0

  private constructor (storage: LibraryStorage, ffmpeg: Ffmpeg) {
    this.storage = storage
    this.ffmpeg = ffmpeg
  }

  /**
   * Opens a library and loads every prompt in it: a directory (created if needed) or another
   * storage. Entries that cannot be read are skipped and reported in `warnings`, never deleted.
   */
  static async open (where: string | LibraryStorage, ffmpeg: Ffmpeg): Promise<{ store: PromptStore, warnings: StoreWarning[] }> {
    const store = new PromptStore(typeof where === 'string' ? new LocalStorage(where) : where, ffmpeg)
    try {
      const { prompts, warnings } = await store.storage.load()
      for (const { info, audio } of prompts) store.prompts.set(info.name, store.prompt(info, audio))
      // Shared storage: prompts committed or removed by other instances are followed here.
      store.storage.watch?.(name => { void (name === null ? store.resync() : store.refresh(name)).catch(() => {}) })
      return { store, warnings }
    } catch (err) {
      throw new EngineError('STORAGE_FAILED', `cannot open the prompt library at ${store.storage.location}: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Where the library is: a directory, or another storage's address. */
  get location (): string { return this.storage.location }

  get size (): number { return this.prompts.size }

  /** Tells `listener` of every prompt that leaves the library, deleted or replaced. */
  onRemove (listener: (prompt: Prompt) => void): void {
    this.removeListeners.push(listener)
  }

  list (): PromptResourceInfo[] {
    return [...this.prompts.values()].map(p => p.describe()).sort((a, b) => a.name < b.name ? -1 : 1)
  }

  get (name: string): Prompt | undefined {
    return this.prompts.get(name)
  }

  getOrThrow (name: string): Prompt {
    const prompt = this.prompts.get(name)
    if (prompt === undefined) throw this.notFound(name)
    return prompt
  }

  notFound (name: string): EngineError {
    return new EngineError('PROMPT_NOT_FOUND', `no prompt named "${name}" in the library (${this.prompts.size} prompts); upload it first`)
  }

  /** Throws INVALID_PROMPT_NAME unless the name is a valid prompt name. */
  static checkName (name: string): void {
    if (!isPromptName(name)) {
      throw new EngineError('INVALID_PROMPT_NAME', `prompt name ${JSON.stringify(name.slice(0, 80))} is not valid: use 1 to 64 letters, digits, "_" or "-", starting with a letter or digit`)
    }
  }

  /** Uploads admitted at once: as many as the transcoder runs and queues. */
  get maxUploads (): number { return this.ffmpeg.maxConcurrent + this.ffmpeg.maxQueued }

  /**
   * Admits an upload before a byte of it is held in memory, or throws TRANSCODER_BUSY: memory
   * held by uploads stays under `maxUploads` times the upload limit, whatever clients send. Call
   * the function it returns once the upload is done, whatever the outcome (twice is harmless).
   */
  admitUpload (): () => void {
    if (this.uploading >= this.maxUploads) {
      throw new EngineError('TRANSCODER_BUSY', `${this.uploading} uploads are being received or transcoded, the most at once (maxTranscodes + transcodeQueue = ${this.maxUploads}); retry shortly`, { options: ['maxTranscodes', 'transcodeQueue'] })
    }
    this.uploading++
    let done = false
    return () => {
      if (done) return
      done = true
      this.uploading--
    }
  }

  /** A prompt as a caller will hear it. Throws PROMPT_NOT_FOUND. */
  async audio (name: string, format: AudioFormat): Promise<{ mediaType: string, bytes: Buffer }> {
    const prompt = this.getOrThrow(name)
    if (format === 'wav') {
      const pcm = await this.ffmpeg.decodeG711(prompt.audio.PCMU, 'PCMU')
      return { mediaType: 'audio/wav', bytes: wavFile(pcm, SAMPLE_RATE) }
    }
    const law: Law = format === 'pcmu' ? 'PCMU' : 'PCMA'
    return { mediaType: G711[law].mediaType, bytes: prompt.audio[law] }
  }

  /** Detects, probes, transcodes and stores an upload under `name`. */
  async put (name: string, bytes: Uint8Array, options: PutOptions): Promise<PutResult> {
    PromptStore.checkName(name)
    if (!options.replace && this.prompts.has(name)) throw exists(name)
    const { staged: upload, audio, info } = await transcodeUpload(name, bytes, this.ffmpeg, this.storage, options.filename ?? null)
    return await this.withLock(name, async () => {
      // Checked again: another upload of this name may have committed while this one transcoded.
      if (!options.replace && this.prompts.has(name)) {
        await this.storage.discard(upload)
        throw exists(name)
      }
      try {
        await this.storage.commit(info, upload, { replace: options.replace })
      } catch (err) {
        throw wrapStorage(err, 'writing its description')
      }
      const previous = this.prompts.get(name)
      const prompt = this.prompt(info, audio)
      this.prompts.set(name, prompt)
      if (previous !== undefined) {
        for (const listener of this.removeListeners) listener(previous)
        await this.collect(previous.info.source.sha256)
      }
      return { prompt, created: previous === undefined }
    })
  }

  /** Removes a prompt. Plays that hold it keep their audio (it is in memory). */
  async delete (name: string): Promise<boolean> {
    return await this.withLock(name, async () => {
      const prompt = this.prompts.get(name)
      if (prompt === undefined) return false
      try {
        await this.storage.remove(name)
      } catch (err) {
        throw wrapStorage(err, 'deleting it', 'the prompt is still there')
      }
      this.prompts.delete(name)
      for (const listener of this.removeListeners) listener(prompt)
      await this.collect(prompt.info.source.sha256)
      return true
    })
  }

  /**
   * Brings one prompt in line with shared storage after another instance changed it. Its audio
   * is read only when it is new to this instance; a play running keeps the audio it holds.
   * A failure leaves the prompt as it was: the next resync (when the connection is back) retries.
   */
  async refresh (name: string): Promise<void> {
    await this.withLock(name, async () => {
      const info = await this.storage.readInfo!(name)
      await this.adopt(name, info)
    })
  }

  /** Brings every prompt in line with shared storage (after a lost connection). */
  async resync (): Promise<void> {
    const infos = await this.storage.readInfos!()
    const names = new Set([...infos.map(i => i.name), ...this.prompts.keys()])
    const byName = new Map(infos.map(i => [i.name, i]))
    for (const name of names) await this.withLock(name, async () => { await this.adopt(name, byName.get(name)) })
  }

  private async adopt (name: string, info: PromptInfo | undefined): Promise<void> {
    const previous = this.prompts.get(name)
    if (info === undefined) {
      if (previous === undefined) return
      this.prompts.delete(name)
      for (const listener of this.removeListeners) listener(previous)
      return
    }
    if (previous !== undefined && previous.info.source.sha256 === info.source.sha256 && previous.info.createdAt === info.createdAt) return
    // The same audio under another name is in memory already: share it.
    const same = [...this.prompts.values()].find(p => p.info.source.sha256 === info.source.sha256)
    const audio = same?.audio ?? await this.storage.readMedia!(info.source.sha256)
    this.prompts.set(name, this.prompt(info, audio))
    if (previous !== undefined) for (const listener of this.removeListeners) listener(previous)
  }

  /** Throws unless the library can be read and written now (for readiness checks). */
  async checkWritable (): Promise<void> {
    await this.storage.checkWritable()
  }

  /** A prompt of this library: its missing renditions are made from its stored source. */
  private prompt (info: PromptInfo, audio: Renditions): Prompt {
    return new Prompt(info, audio, async (prompt, rendition) => await this.storedOrMade(prompt, rendition))
  }

  /**
   * A rendition made after the upload (Opus at a ptime other than 20 ms, or any codec of a
   * prompt stored by an earlier version): read where another instance stored it, or made from
   * the stored source by ffmpeg and stored beside the others.
   */
  private async storedOrMade (prompt: Prompt, rendition: Rendition): Promise<Buffer> {
    const sha256 = prompt.info.source.sha256
    const stored = await this.storage.readRendition(sha256, rendition)
    if (stored !== null) return toShared(stored)
    const source = await this.storage.readSource(sha256)
    if (source === null) {
      throw new EngineError('INVALID_REQUEST', `the prompt "${prompt.name}" has no ${rendition} rendition, and the library did not keep its source to make one (pool.keepSource); upload it again to make every rendition`, { options: ['pool.keepSource'] })
    }
    const bytes = await makeRendition(source, rendition, this.ffmpeg, this.storage)
    try {
      await this.storage.addRendition(sha256, rendition, bytes)
    } catch (err) {
      throw wrapStorage(err, `storing its ${rendition} rendition`, 'the prompt is as it was')
    }
    return bytes
  }

  /** Frees a source's audio once no prompt refers to it. */
  private async collect (sha256: string): Promise<void> {
    for (const prompt of this.prompts.values()) {
      if (prompt.info.source.sha256 === sha256) return
    }
    await this.storage.dropMedia(sha256)
  }

  private async withLock<T> (name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(name) ?? Promise.resolve()
    const run = before.then(fn, fn)
    const tail = run.catch(() => {})
    this.locks.set(name, tail)
    try {
      return await run
    } finally {
      if (this.locks.get(name) === tail) this.locks.delete(name)
    }
  }
}

function exists (name: string): EngineError {
  return new EngineError('PROMPT_EXISTS', `a prompt named "${name}" exists already; upload with replace (PUT) to replace it, or delete it first`)
}

/** Says which step of an upload the library failed in, and what the error means. */
function wrapStorage (err: unknown, step: string, outcome = 'nothing was stored'): unknown {
  if (err instanceof EngineError) {
    if (err.code !== 'STORAGE_FAILED') return err
    return new EngineError('STORAGE_FAILED', `could not write the prompt library while ${step}: ${err.message}; ${outcome}`, { cause: err, details: err.details })
  }
  const e = err as NodeJS.ErrnoException
  return new EngineError('STORAGE_FAILED', `could not write the prompt library while ${step} (${storageHint(e)}): ${e.message}; ${outcome}`, { cause: err })
}

/** Where an upload is staged while ffmpeg transcodes it: the library's storage, or the URL cache. */
export type Stager = Pick<LibraryStorage, 'stage' | 'readStaged' | 'discard'>

export interface Transcoded {
  /** The staged upload: the caller commits or discards it. */
  staged: Staged
  audio: Renditions
  /** The prompt's description under `name`: its source and what a play of it sends. */
  info: PromptInfo
}

/**
 * What every upload goes through, by HTTP or from a URL: the container detected from the bytes,
 * the file checked whole, the source probed, and ffmpeg's renditions read back (those of every
 * upload, and `extra` ones). Throws the upload's error (415, 422, 503, 507) with nothing left
 * staged.
 */
export async function transcodeUpload (name: string, bytes: Uint8Array, ffmpeg: Ffmpeg, stager: Stager, filename: string | null, extra: readonly Rendition[] = []): Promise<Transcoded> {
  const detection = detectContainer(bytes)
  checkComplete(bytes, detection)
  const facts = await probe(bytes, detection)
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  let staged: Staged | null = null
  let audio: Renditions
  let decoded: DecodedStream
  let step = 'saving the upload'
  try {
    staged = await stager.stage(bytes, sha256)
    step = 'transcoding it'
    decoded = await ffmpeg.transcode(staged.source, detection.ffmpegFormat, outputsFor(staged, [...new Set([...UPLOAD_RENDITIONS, ...extra])]))
    audio = await stager.readStaged(staged)
    if (audio.PCMU.length > ffmpeg.maxSeconds * SAMPLE_RATE) {
      throw new EngineError('PROMPT_TOO_LONG', `the audio lasts more than ${ffmpeg.maxSeconds} s, the longest prompt allowed (maxPromptSeconds); cut it, or raise the limit`, { options: ['maxPromptSeconds'] })
    }
    if (audio.PCMU.length === 0) {
      throw new EngineError('UNDECODABLE_AUDIO', `the ${detection.container.toUpperCase()} container holds no audio that ffmpeg could decode (it decoded to 0 samples)`)
    }
    checkDecodedLength(detection.container, facts.durationMs, audio.PCMU.length / SAMPLES_PER_MS)
  } catch (err) {
    if (staged !== null) await stager.discard(staged)
    throw wrapStorage(err, step)
  }
  const packets = packetCount(audio.PCMU.length, 20)
  return {
    staged,
    audio,
    info: {
      name,
      source: {
        filename,
        container: detection.container,
        // music-metadata reads tags and headers; where it says nothing (the ASF parser gives no
        // rate or channels), ffmpeg's description of the stream it decoded fills the gap.
        codec: facts.codec ?? decoded.codec,
        sampleRate: facts.sampleRate ?? decoded.sampleRate,
        channels: facts.channels ?? decoded.channels,
        durationMs: facts.durationMs ?? Math.round(audio.PCMU.length / SAMPLES_PER_MS),
        bytes: bytes.byteLength,
        sha256,
        extensionMismatch: extensionMismatch(filename, detection.container)
      },
      telephony: { sampleRate: SAMPLE_RATE, durationMs: packets * 20, packets },
      createdAt: new Date().toISOString()
    }
  }
}

function outputsFor (staged: Staged, renditions: readonly Rendition[]): Partial<Record<Rendition, string>> {
  return Object.fromEntries(renditions.map(r => [r, staged.outputs[r]]))
}

/**
 * One rendition of a stored source, made by ffmpeg in a staging directory of the storage's,
 * in shared memory. Nothing is left staged.
 */
export async function makeRendition (source: Buffer, rendition: Rendition, ffmpeg: Ffmpeg, stager: Stager): Promise<Buffer> {
  const detection = detectContainer(source)
  const staged = await stager.stage(source, createHash('sha256').update(source).digest('hex'))
  try {
    await ffmpeg.transcode(staged.source, detection.ffmpegFormat, outputsFor(staged, [rendition]))
    const bytes = (await readFile(staged.outputs[rendition]))
    return toShared(bytes)
  } finally {
    await stager.discard(staged)
  }
}
