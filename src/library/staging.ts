/**
 * An upload on its way into the library, as files ffmpeg can read and write: a directory of
 * its own holding `source` (the bytes as uploaded) and a file per rendition ffmpeg made, named
 * as the rendition in lowercase (`pcmu`, `pcma`, `g722`, `opus-20`, ...). The
 * same layout as a stored source's media directory, so a local library commits one by a rename.
 * Every storage stages here, the local directory and Redis alike.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { RENDITIONS, type Rendition, type Renditions } from '../common/codecs.js'
import { toShared } from './prompt.js'
import type { Staged } from './storage.js'

/** A rendition's file in a media directory. */
export function renditionFile (dir: string, rendition: Rendition): string {
  return path.join(dir, rendition.toLowerCase())
}

/** Writes an upload's bytes into a new directory under `parent`. Nothing is left on failure. */
export async function stage (parent: string, bytes: Uint8Array, sha256: string): Promise<Staged> {
  const dir = path.join(parent, `${sha256}.${randomBytes(6).toString('hex')}`)
  const outputs = Object.fromEntries(RENDITIONS.map(r => [r, renditionFile(dir, r)])) as Record<Rendition, string>
  const staged: Staged = { sha256, source: path.join(dir, 'source'), outputs }
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

/**
 * The renditions in a staged upload's or a stored source's directory, in shared memory: both
 * G.711 laws (a directory without them is not a prompt's), and whichever others were made.
 */
export async function readAudio (dir: string): Promise<Renditions> {
  const audio: Partial<Renditions> = {}
  for (const rendition of RENDITIONS) {
    try {
      audio[rendition] = toShared(await fs.readFile(renditionFile(dir, rendition)))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || rendition === 'PCMU' || rendition === 'PCMA') throw err
    }
  }
  return audio as Renditions
}

/** Removes work in progress; a failure to clean up must not hide the error that caused it. */
export async function discard (file: string): Promise<void> {
  await fs.rm(file, { recursive: true, force: true }).catch(() => {})
}
