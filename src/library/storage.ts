/**
 * Where the prompt library keeps its prompts: the seam between the library (detection,
 * transcoding, names, locks) and the bytes at rest. `LocalStorage` (a directory) is today's
 * implementation; a shared one (Redis, for a pool of instances) implements the same calls.
 *
 * An upload goes: `stage` (the source bytes put where ffmpeg can read them, with room for its
 * outputs), ffmpeg writes the renditions, `readStaged`, then `commit`, which makes the prompt
 * visible all at once or not at all. `discard` gives a staged upload up. The library calls
 * `dropMedia` once no prompt refers to a source's audio any more.
 */
import type { Rendition, Renditions } from '../common/codecs.js'
import type { PromptInfo } from '../common/schemas.js'

export interface StoredPrompt {
  info: PromptInfo
  audio: Renditions
}

export interface StoreWarning {
  /** The entry that could not be read (a file, or a key). */
  file: string
  reason: string
}

/** One upload in progress: local files, since ffmpeg reads and writes files. */
export interface Staged {
  readonly sha256: string
  /** The uploaded bytes, as uploaded. */
  readonly source: string
  /** Where ffmpeg writes each rendition it is asked for. */
  readonly outputs: Readonly<Record<Rendition, string>>
}

export interface LibraryStorage {
  /** Where the library is, for messages and the startup line. */
  readonly location: string
  /**
   * Reads every prompt. An entry that cannot be read is reported in `warnings` and left where
   * it is: it is somebody's data.
   */
  load: () => Promise<{ prompts: StoredPrompt[], warnings: StoreWarning[] }>
  /** Puts an upload's bytes where ffmpeg can read them. */
  stage: (bytes: Uint8Array, sha256: string) => Promise<Staged>
  /** The audio ffmpeg wrote for a staged upload, in shared memory. */
  readStaged: (staged: Staged) => Promise<Renditions>
  /** Gives a staged upload up; never throws. */
  discard: (staged: Staged) => Promise<void>
  /**
   * Makes a staged upload the prompt `info.name`, atomically: after a failure the library is as
   * it was. With `replace` false, a prompt of that name committed meanwhile (by another
   * instance sharing the storage) is not replaced: PROMPT_EXISTS. The staged upload is gone
   * afterwards either way.
   */
  commit: (info: PromptInfo, staged: Staged, options: { replace: boolean }) => Promise<void>
  /** Removes a prompt (its audio stays until `dropMedia`). */
  remove: (name: string) => Promise<void>
  /** Frees the audio of a source no prompt refers to any more; never throws. */
  dropMedia: (sha256: string) => Promise<void>
  /** Throws unless prompts can be read and written now (for readiness checks). */
  checkWritable: () => Promise<void>
  /**
   * Storage shared with other instances tells of prompts they committed or removed: `name`, or
   * null when anything may have changed (after a lost connection). Storage that only this
   * instance writes has no `watch`.
   */
  watch?: (listener: (name: string | null) => void) => () => void
  /** With `watch`: one prompt's description as it is now, or undefined if there is none. */
  readInfo?: (name: string) => Promise<PromptInfo | undefined>
  /** With `watch`: every prompt's description as it is now. */
  readInfos?: () => Promise<PromptInfo[]>
  /** With `watch`: a source's audio, in shared memory. */
  readMedia?: (sha256: string) => Promise<Renditions>
  /**
   * The uploaded bytes of a stored source, to make a rendition at its first use; null when the
   * storage did not keep them.
   */
  readSource: (sha256: string) => Promise<Buffer | null>
  /** A rendition of a stored source, if one was made and stored (by this instance or another). */
  readRendition: (sha256: string, rendition: Rendition) => Promise<Buffer | null>
  /**
   * Stores a rendition made after the upload, beside the others; nothing when the source's
   * media is gone meanwhile (its prompts were deleted).
   */
  addRendition: (sha256: string, rendition: Rendition, bytes: Buffer) => Promise<void>
}
