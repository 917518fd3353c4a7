/**
 * The prompt library as a directory on this machine:
 *
 *   <name>.json               the prompt's description (PromptInfo); its presence is the commit
 *   media/<sha256>/source     the uploaded bytes, as uploaded
 *   media/<sha256>/pcmu       the audio as 8 kHz mono G.711 µ-law
 *   media/<sha256>/pcma       ... and A-law
 *   media/<sha256>/g722       ... as 16 kHz G.722
 *   media/<sha256>/opus-20    ... as Opus packets of 20 ms (opus-10, -40, -60 once a play needs them)
 *   .tmp/                     work in progress; emptied at startup
 *
 * An upload is transcoded in .tmp, its media directory renamed into place, and only then is
 * `<name>.json` renamed over the old one: rename is atomic, so a failed or interrupted upload
 * leaves no prompt behind and a replaced prompt stays whole until the new one is complete.
 * Media is named by the source's hash, so the same audio under two names is stored once.
 */
import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Rendition, Renditions } from '../common/codecs.js'
import type { PromptInfo } from '../common/schemas.js'
import { isPromptName } from './prompt.js'
import { discard, readAudio, renditionFile, stage, stagedDir } from './staging.js'
import type { LibraryStorage, Staged, StoredPrompt, StoreWarning } from './storage.js'

const MEDIA = 'media'
const TMP = '.tmp'
const SHA256 = /^[0-9a-f]{64}$/

export class LocalStorage implements LibraryStorage {
  readonly dir: string

  constructor (dir: string) {
    this.dir = path.resolve(dir)
  }

  get location (): string { return this.dir }

  async load (): Promise<{ prompts: StoredPrompt[], warnings: StoreWarning[] }> {
    const prompts: StoredPrompt[] = []
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
        prompts.push({ info, audio: await readAudio(path.join(this.dir, MEDIA, info.source.sha256)) })
      } catch (err) {
        warnings.push({ file, reason: (err as Error).message })
      }
    }
    // Media no prompt refers to is left by an upload interrupted between its two renames.
    // Collect it only when every description was readable, so that nothing is lost to a typo.
    if (warnings.length === 0) {
      const used = new Set(prompts.map(p => p.info.source.sha256))
      for (const sha of await fs.readdir(path.join(this.dir, MEDIA))) {
        if (!used.has(sha)) await discard(path.join(this.dir, MEDIA, sha))
      }
    }
    return { prompts, warnings }
  }

  /** The uploaded bytes of a stored source, as uploaded. */
  sourcePath (sha256: string): string {
    return path.join(this.dir, MEDIA, sha256, 'source')
  }

  async stage (bytes: Uint8Array, sha256: string): Promise<Staged> {
    return await stage(path.join(this.dir, TMP), bytes, sha256)
  }

  async readStaged (staged: Staged): Promise<Renditions> {
    return await readAudio(stagedDir(staged))
  }

  async discard (staged: Staged): Promise<void> {
    await discard(stagedDir(staged))
  }

  async commit (info: PromptInfo, staged: Staged, _options: { replace: boolean }): Promise<void> {
    // Only this instance writes the directory: the library's per-name lock has already decided.
    const media = path.join(this.dir, MEDIA, staged.sha256)
    let mediaIsNew = false
    try {
      try {
        await fs.rename(stagedDir(staged), media)
        mediaIsNew = true
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        // Same bytes stored already (under another name, or the same one re-uploaded).
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
        await this.discard(staged)
      }
      await writeAtomically(path.join(this.dir, `${info.name}.json`), path.join(this.dir, TMP), JSON.stringify(info, null, 2) + '\n')
    } catch (err) {
      await this.discard(staged)
      // Media this commit brought and no description names would only be collected at the next start.
      if (mediaIsNew) await discard(media)
      throw err
    }
  }

  async readSource (sha256: string): Promise<Buffer | null> {
    return await fs.readFile(this.sourcePath(sha256))
  }

  async readRendition (sha256: string, rendition: Rendition): Promise<Buffer | null> {
    try {
      return await fs.readFile(renditionFile(path.join(this.dir, MEDIA, sha256), rendition))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }

  async addRendition (sha256: string, rendition: Rendition, bytes: Buffer): Promise<void> {
    const media = path.join(this.dir, MEDIA, sha256)
    try {
      await fs.access(media)
    } catch {
      return
    }
    await writeAtomically(renditionFile(media, rendition), path.join(this.dir, TMP), bytes)
  }

  async remove (name: string): Promise<void> {
    await fs.rm(path.join(this.dir, `${name}.json`), { force: true })
  }

  async dropMedia (sha256: string): Promise<void> {
    await discard(path.join(this.dir, MEDIA, sha256))
  }

  async checkWritable (): Promise<void> {
    const probe = path.join(this.dir, TMP, `ready.${randomBytes(6).toString('hex')}`)
    try {
      await fs.access(this.dir, fsConstants.R_OK | fsConstants.W_OK)
      // Permission bits do not tell root's story (nor a full disk's): write and remove a file.
      await fs.writeFile(probe, 'ok')
    } catch (err) {
      await discard(probe)
      throw new Error(`${storageHint(err as NodeJS.ErrnoException)}: ${(err as Error).message}`, { cause: err })
    }
    await fs.rm(probe)
  }
}

async function writeAtomically (file: string, tmpDir: string, text: string | Uint8Array): Promise<void> {
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

/** What a file-system error means, for a person. */
export function storageHint (e: NodeJS.ErrnoException): string {
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
