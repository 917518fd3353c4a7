/**
 * Every error the engine raises, in one table. Engine errors carry a stable `code` and a
 * message a person can act on; they know nothing of HTTP. `service/errors.ts` maps each code
 * to a status, and a test checks that every code here is mapped and documented.
 */
export const ENGINE_ERRORS = {
  UNSUPPORTED_MEDIA: 'the bytes are not a supported audio container',
  UNDECODABLE_AUDIO: 'the container was recognised but its audio cannot be decoded or is empty',
  TRUNCATED_AUDIO: 'the file holds less audio than its container declares: it was cut short',
  PROMPT_TOO_LONG: 'the decoded audio lasts longer than the configured limit',
  TRANSCODER_BUSY: 'every transcode slot and queue place is taken',
  INVALID_PROMPT_NAME: 'a prompt name does not match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$',
  PROMPT_NOT_FOUND: 'no prompt of that name is in the library',
  PROMPT_EXISTS: 'a prompt of that name exists and the call does not replace',
  PLAY_NOT_FOUND: 'no play with that id is running or ended recently',
  TARGET_NOT_ALLOWED: 'the RTP target is not an address packets may be sent to',
  AT_CAPACITY: 'no more plays can start now',
  NO_RTP_PORT: 'every local RTP port in the configured range is in use',
  FFMPEG_UNAVAILABLE: 'ffmpeg could not be started',
  STORAGE_FAILED: 'the prompt library could not be written'
} as const

export type EngineErrorCode = keyof typeof ENGINE_ERRORS

export class EngineError extends Error {
  readonly code: EngineErrorCode
  /** Extra facts for logs and for the HTTP layer (for example the prompt names that were missing). */
  readonly details: Record<string, unknown> | undefined

  constructor (code: EngineErrorCode, message: string, options?: { cause?: unknown, details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'EngineError'
    this.code = code
    this.details = options?.details
  }
}

export function isEngineError (err: unknown): err is EngineError {
  return err instanceof EngineError
}
