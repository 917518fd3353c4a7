/**
 * An upload on its way into the library, as files ffmpeg can read and write: a directory of
 * its own holding `source` (the bytes as uploaded) and `pcmu`, `pcma` (ffmpeg's output). The
 * same layout as a stored source's media directory, so a local library commits one by a rename.
 * Every storage stages here, the local directory and Redis alike.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { CODEC_NAMES, type Codec } from '../common/g711.js'
import { toShared } from './prompt.js'
import type { Staged } from './storage.js'

const FILES: Record<Codec, string> = { PCMU: 'pcmu', PCMA: 'pcma' }

/** Writes an upload's bytes into a new directory under `parent`. Nothing is left on failure. */
export async function stage (parent: string, bytes: Uint8Array, sha256: string): Promise<Staged> {
  const dir = path.join(parent, `${sha256}.${randomBytes(6).toString('hex')}`)
  const staged: Staged = { sha256, source: path.join(dir, 'source'), outputs: { PCMU: path.join(dir, FILES.PCMU), PCMA: path.join(dir, FILES.PCMA) } }
  try {
    await fs.mkdir(dir, { recursive: true })
    await fs.writeFile(staged.source, bytes)
  } catch (err) {
    await discard(dir)
    throw err
  }
  return staged
}

/** The directory a staged upload is in. */
export function stagedDir (staged: Staged): string {
  return path.dirname(staged.source)
}

/** The two laws in a staged upload's or a stored source's directory, in shared memory. */
export async function readAudio (dir: string): Promise<Record<Codec, Buffer>> {
  const audio: Partial<Record<Codec, Buffer>> = {}
  for (const codec of CODEC_NAMES) audio[codec] = toShared(await fs.readFile(path.join(dir, FILES[codec])))
  return audio as Record<Codec, Buffer>
}

/** Removes work in progress; a failure to clean up must not hide the error that caused it. */
export async function discard (file: string): Promise<void> {
  await fs.rm(file, { recursive: true, force: true }).catch(() => {})
}
