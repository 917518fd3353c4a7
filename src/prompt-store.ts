/**
 * The prompt library on disk. Layout of a library directory:
 *
 *   <name>.json               the prompt's description (PromptInfo); its presence is the commit
 *   media/<sha256>/source     the uploaded bytes, as uploaded
 *   media/<sha256>/pcmu       the audio as 8 kHz mono G.711 µ-law
 *   media/<sha256>/pcma       ... and A-law
 *   .tmp/                     work in progress; emptied at startup
 *
 * An upload is transcoded in .tmp, its media directory renamed into place, and only then is
 * `<name>.json` renamed over the old one: rename is atomic, so a failed or interrupted upload
 * leaves no prompt behind and a replaced prompt stays whole until the new one is complete.
 * Media is named by the source's hash, so the same audio under two names is stored once.
 */
import { createHash, randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { detectContainer, extensionMismatch } from './detect.js'
import { EngineError } from './errors.js'
import { checkComplete, checkDecodedLength } from './integrity.js'
import type { DecodedStream, Ffmpeg } from './ffmpeg.js'
import { SAMPLE_RATE, SAMPLES_PER_MS, type Codec } from './g711.js'
import { probe } from './probe.js'
import { Prompt, isPromptName, packetCount, toShared, type PromptInfo } from './prompt.js'

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

export interface StoreWarning {
  file: string
  reason: string
}

const MEDIA = 'media'
const TMP = '.tmp'
const FILES: Record<Codec, string> = { PCMU: 'pcmu', PCMA: 'pcma' }
const SHA256 = /^[0-9a-f]{64}$/

export class PromptStore {
  readonly dir: string
  private readonly ffmpeg: Ffmpeg
  private readonly prompts = new Map<string, Prompt>()
  /** Per-name queue, so that two uploads of one name commit one after the other. */
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly removeListeners: Array<(prompt: Prompt) => void> = []

  private constructor (dir: string, ffmpeg: Ffmpeg) {
    this.dir = path.resolve(dir)
    this.ffmpeg = ffmpeg
  }

  /**
   * Opens (creating if needed) a library and loads every prompt in it. Entries that cannot be
   * read are skipped and reported in `warnings`, never deleted: they are somebody's data.
   */
  static async open (dir: string, ffmpeg: Ffmpeg): Promise<{ store: PromptStore, warnings: StoreWarning[] }> {
    const store = new PromptStore(dir, ffmpeg)
    try {
      const warnings = await store.load()
      return { store, warnings }
    } catch (err) {
      throw new EngineError('STORAGE_FAILED', `cannot open the prompt library at ${store.dir}: ${(err as Error).message}`, { cause: err })
    }
  }

  get size (): number { return this.prompts.size }

  /** Tells `listener` of every prompt that leaves the library, deleted or replaced. */
  onRemove (listener: (prompt: Prompt) => void): void {
    this.removeListeners.push(listener)
  }

  list (): PromptInfo[] {
    return [...this.prompts.values()].map(p => p.info).sort((a, b) => a.name < b.name ? -1 : 1)
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

  /** Detects, probes, transcodes and stores an upload under `name`. */
  async put (name: string, bytes: Uint8Array, options: PutOptions): Promise<PutResult> {
    PromptStore.checkName(name)
    if (!options.replace && this.prompts.has(name)) throw exists(name)
    const detection = detectContainer(bytes)
    checkComplete(bytes, detection)
    const facts = await probe(bytes, detection)
    const sha256 = createHash('sha256').update(bytes).digest('hex')

    const staging = path.join(this.dir, TMP, `${sha256}.${randomBytes(6).toString('hex')}`)
    let audio: Record<Codec, Buffer>
    let decoded: DecodedStream
    let step = 'saving the upload'
    try {
      await fs.mkdir(staging, { recursive: true })
      const source = path.join(staging, 'source')
      await fs.writeFile(source, bytes)
      step = 'transcoding it'
      decoded = await this.ffmpeg.transcode(source, detection.ffmpegFormat, {
        PCMU: path.join(staging, FILES.PCMU),
        PCMA: path.join(staging, FILES.PCMA)
      })
      audio = await readAudio(staging)
      if (audio.PCMU.length > this.ffmpeg.maxSeconds * SAMPLE_RATE) {
        throw new EngineError('PROMPT_TOO_LONG', `the audio lasts more than ${this.ffmpeg.maxSeconds} s, the longest prompt allowed (PROMPT_PLAYER_MAX_PROMPT_SECONDS); cut it, or raise the limit`)
      }
      if (audio.PCMU.length === 0) {
        throw new EngineError('UNDECODABLE_AUDIO', `the ${detection.container.toUpperCase()} container holds no audio that ffmpeg could decode (it decoded to 0 samples)`)
      }
      checkDecodedLength(detection.container, facts.durationMs, audio.PCMU.length / SAMPLES_PER_MS)
    } catch (err) {
      await discard(staging)
      throw wrapStorage(err, step)
    }

    const packets = packetCount(audio.PCMU.length, 20)
    const info: PromptInfo = {
      name,
      source: {
        filename: options.filename ?? null,
        container: detection.container,
        // music-metadata reads tags and headers; where it says nothing (the ASF parser gives no
        // rate or channels), ffmpeg's description of the stream it decoded fills the gap.
        codec: facts.codec ?? decoded.codec,
        sampleRate: facts.sampleRate ?? decoded.sampleRate,
        channels: facts.channels ?? decoded.channels,
        durationMs: facts.durationMs ?? Math.round(audio.PCMU.length / SAMPLES_PER_MS),
        bytes: bytes.byteLength,
        sha256,
        extensionMismatch: extensionMismatch(options.filename, detection.container)
      },
      telephony: { sampleRate: SAMPLE_RATE, durationMs: packets * 20, packets },
      createdAt: new Date().toISOString()
    }
    return await this.withLock(name, async () => {
      // Checked again: another upload of this name may have committed while this one transcoded.
      if (!options.replace && this.prompts.has(name)) {
        await discard(staging)
        throw exists(name)
      }
      try {
        await this.commitMedia(staging, sha256)
        await writeAtomically(path.join(this.dir, `${name}.json`), path.join(this.dir, TMP), JSON.stringify(info, null, 2) + '\n')
      } catch (err) {
        await discard(staging)
        await this.collect(sha256)
        throw wrapStorage(err, 'writing its description')
      }
      const previous = this.prompts.get(name)
      const prompt = new Prompt(info, audio)
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
        await fs.rm(path.join(this.dir, `${name}.json`), { force: true })
      } catch (err) {
        throw wrapStorage(err, 'deleting it', 'the prompt is still there')
      }
      this.prompts.delete(name)
      for (const listener of this.removeListeners) listener(prompt)
      await this.collect(prompt.info.source.sha256)
      return true
    })
  }

  /** The uploaded bytes of a prompt, as uploaded. */
  sourcePath (name: string): string | undefined {
    const prompt = this.prompts.get(name)
    return prompt && path.join(this.dir, MEDIA, prompt.info.source.sha256, 'source')
  }

  /** Throws unless the library directory can be read and written now (for readiness checks). */
  async checkWritable (): Promise<void> {
    const probe = path.join(this.dir, TMP, `ready.${randomBytes(6).toString('hex')}`)
    try {
      await fs.access(this.dir, fsConstants.R_OK | fsConstants.W_OK)
      // Permission bits do not tell root's story (nor a full disk's): write and remove a file.
      await fs.writeFile(probe, 'ok')
    } catch (err) {
      await discard(probe)
      throw new Error(`${hintFor(err as NodeJS.ErrnoException)}: ${(err as Error).message}`, { cause: err })
    }
    await fs.rm(probe)
  }

  private async load (): Promise<StoreWarning[]> {
    const warnings: StoreWarning[] = []
    await fs.mkdir(path.join(this.dir, MEDIA), { recursive: true })
    await fs.rm(path.join(this.dir, TMP), { recursive: true, force: true })
    await fs.mkdir(path.join(this.dir, TMP), { recursive: true })
    const entries = await fs.readdir(this.dir)
    for (const entry of entries.sort()) {
      if (!entry.endsWith('.json')) continue
      const file = path.join(this.dir, entry)
      try {
        const info = parseInfo(await fs.readFile(file, 'utf8'), entry.slice(0, -5))
        const audio = await readAudio(path.join(this.dir, MEDIA, info.source.sha256))
        this.prompts.set(info.name, new Prompt(info, audio))
      } catch (err) {
        warnings.push({ file, reason: (err as Error).message })
      }
    }
    // Media no prompt refers to is left by an upload interrupted between its two renames.
    // Collect it only when every description was readable, so that nothing is lost to a typo.
    if (warnings.length === 0) {
      for (const sha of await fs.readdir(path.join(this.dir, MEDIA))) await this.collect(sha)
    }
    return warnings
  }

  private async commitMedia (staging: string, sha256: string): Promise<void> {
    const target = path.join(this.dir, MEDIA, sha256)
    try {
      await fs.rename(staging, target)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // Same bytes stored already (under another name, or the same one re-uploaded).
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
      await discard(staging)
    }
  }

  /** Deletes a media directory once no prompt refers to it. */
  private async collect (sha256: string): Promise<void> {
    for (const prompt of this.prompts.values()) {
      if (prompt.info.source.sha256 === sha256) return
    }
    await discard(path.join(this.dir, MEDIA, sha256))
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

/** Removes work in progress; a failure to clean up must not hide the error that caused it. */
async function discard (file: string): Promise<void> {
  await fs.rm(file, { recursive: true, force: true }).catch(() => {})
}

function exists (name: string): EngineError {
  return new EngineError('PROMPT_EXISTS', `a prompt named "${name}" exists already; upload with replace (PUT) to replace it, or delete it first`)
}

async function readAudio (dir: string): Promise<Record<Codec, Buffer>> {
  return {
    PCMU: toShared(await fs.readFile(path.join(dir, FILES.PCMU))),
    PCMA: toShared(await fs.readFile(path.join(dir, FILES.PCMA)))
  }
}

async function writeAtomically (file: string, tmpDir: string, text: string): Promise<void> {
  const tmp = path.join(tmpDir, `${path.basename(file)}.${randomBytes(6).toString('hex')}`)
  try {
    const handle = await fs.open(tmp, 'w')
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(tmp, file)
  } catch (err) {
    // A full disk fails the write, not the open: the empty file must not stay behind.
    await discard(tmp)
    throw err
  }
}

/** Says which step of an upload the library failed in, and what the error means. */
function wrapStorage (err: unknown, step: string, outcome = 'nothing was stored'): unknown {
  if (err instanceof EngineError) {
    if (err.code !== 'STORAGE_FAILED') return err
    return new EngineError('STORAGE_FAILED', `could not write the prompt library while ${step}: ${err.message}; ${outcome}`, { cause: err, details: err.details })
  }
  const e = err as NodeJS.ErrnoException
  return new EngineError('STORAGE_FAILED', `could not write the prompt library while ${step} (${hintFor(e)}): ${e.message}; ${outcome}`, { cause: err })
}

function hintFor (e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOSPC': return 'the disk is full'
    case 'EDQUOT': return 'the disk quota is exceeded'
    case 'EFBIG': return 'a file-size limit was reached (ulimit -f, systemd LimitFSIZE)'
    case 'EACCES': case 'EPERM': case 'EROFS': return 'the library directory is not writable'
    default: return e.code ?? 'unknown error'
  }
}

function parseInfo (text: string, name: string): PromptInfo {
  const info = JSON.parse(text) as PromptInfo
  if (info?.name !== name || !isPromptName(name) || !SHA256.test(info.source?.sha256 ?? '') || typeof info.telephony?.packets !== 'number') {
    throw new Error('not a prompt description written by prompt-player')
  }
  return info
}
