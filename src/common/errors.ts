/**
 * Every error the engine raises, in one table: a stable `code` and what it means. Engine
 * errors know nothing of HTTP or of environment variables: a message that points at a setting
 * names the engine option (`maxPlays`) and lists it in `options`, and the service, which maps
 * codes to statuses (service/errors.ts), says the option's variable instead.
 */
export const ENGINE_ERRORS = {
  UNSUPPORTED_MEDIA: 'the bytes are not a supported audio container',
  UNDECODABLE_AUDIO: 'the container was recognised but its audio cannot be decoded or is empty',
  TRUNCATED_AUDIO: 'the file holds less audio than its container declares: it was cut short',
  PROMPT_TOO_LONG: 'the decoded audio lasts longer than the configured limit',
  TRANSCODER_BUSY: 'every transcode slot and queue place is taken',
  INVALID_REQUEST: 'a request the engine cannot carry out as asked (the message says which field)',
  INVALID_PROMPT_NAME: 'a prompt name does not match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$',
  PROMPT_NOT_FOUND: 'no prompt of that name is in the library',
  PROMPT_EXISTS: 'a prompt of that name exists and the call does not replace',
  PLAY_NOT_FOUND: 'no play with that id is running or ended recently',
  PLAY_ENDED: 'the play has ended; only a running play can be controlled',
  TARGET_NOT_ALLOWED: 'the RTP target is not an address packets may be sent to',
  AT_CAPACITY: 'as many plays are running as the player is configured for',
  NO_RTP_PORT: 'every local RTP port in the configured range is in use',
  PACKET_THREAD_FAILED: 'the packet thread failed; a new one is taking over',
  SHUTTING_DOWN: 'the player is shutting down and starts nothing new',
  FFMPEG_UNAVAILABLE: 'ffmpeg could not be started',
  STORAGE_FAILED: 'the prompt library could not be written',
  STORE_UNAVAILABLE: 'the pool\'s shared store (Redis) cannot be reached',
  URL_NOT_ALLOWED: 'a prompt URL (or a redirect) leads outside the networks prompts may be fetched from',
  FETCH_FAILED: 'a prompt URL could not be fetched: the origin refused, failed, redirected too often, or sent too much',
  FETCH_TIMEOUT: 'a prompt URL did not answer in full within the time limit',
  INTERNAL_ERROR: 'a fault in the player itself; the log has the details'
} as const

export type EngineErrorCode = keyof typeof ENGINE_ERRORS

export interface EngineErrorOptions {
  cause?: unknown
  /** Extra facts for logs and for the HTTP layer (for example the prompt names that were missing). */
  details?: Record<string, unknown>
  /** Engine options the message names (`maxPlays`, `targets.allow`), for the service to translate. */
  options?: readonly string[]
}

export class EngineError extends Error {
  readonly code: EngineErrorCode
  readonly details: Record<string, unknown> | undefined
  readonly options: readonly string[]

  constructor (code: EngineErrorCode, message: string, options?: EngineErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'EngineError'
    this.code = code
    this.details = options?.details
    this.options = options?.options ?? []
  }
}

export function isEngineError (err: unknown): err is EngineError {
  return err instanceof EngineError
}
