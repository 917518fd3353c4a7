/**
 * Every error code the API answers with, in one table: its HTTP status, whether it says when to
 * come back (`Retry-After: 1`), and when it happens. The engine's codes come from the engine
 * (src/common/errors.ts) and must each have a row here (the compiler checks); the service adds
 * its own. Every throw site takes the status from this table (`httpError`), the error handler
 * maps engine errors through it, and a test holds docs/api.md and the OpenAPI document to it.
 * Bodies keep Fastify's shape: {statusCode, error, code, message}.
 */
import { STATUS_CODES } from 'node:http'
import type { EngineErrorCode } from '../src/index.js'

interface ErrorRow {
  status: number
  /** Capacity that frees within seconds: the answer carries `Retry-After: 1`. */
  retry?: true
  /** When this answer comes, for people (docs/api.md has the same sentence). */
  when: string
}

export const ERRORS = {
  UNSUPPORTED_MEDIA: { status: 415, when: 'the bytes are not WAV, MP3, WMA, FLAC, Ogg (Vorbis, Opus) or M4A (AAC) audio (the message says what they look like: text, PNG, HTML, a video MP4...)' },
  UNDECODABLE_AUDIO: { status: 422, when: 'the container is recognised but ffmpeg cannot decode it, finds no audio in it, or runs past its time limit (ffmpeg\'s own words in the message)' },
  TRUNCATED_AUDIO: { status: 422, when: 'the file holds less audio than its container declares: it was cut short; the message says how much is there' },
  PROMPT_TOO_LONG: { status: 422, when: 'the decoded audio lasts longer than `PROMPT_PLAYER_MAX_PROMPT_SECONDS`' },
  TRANSCODER_BUSY: { status: 503, retry: true, when: '`PROMPT_PLAYER_MAX_TRANSCODES` + `PROMPT_PLAYER_TRANSCODE_QUEUE` uploads are being received or transcoded; the connection is closed without reading the body' },
  REQUEST_TIMEOUT: { status: 408, when: 'a request body (an upload) still arriving `PROMPT_PLAYER_REQUEST_TIMEOUT_MS` after it began; the connection is closed' },
  RATE_LIMITED: { status: 429, when: 'more than `PROMPT_PLAYER_RATE_LIMIT` requests in a second from one address; `Retry-After` says when' },
  UPLOAD_TOO_LARGE: { status: 413, when: 'an upload larger than `PROMPT_PLAYER_MAX_UPLOAD_BYTES`' },
  BODY_TOO_LARGE: { status: 413, when: 'a JSON body (a play request) larger than 256 KiB' },
  TOO_MANY_PROMPTS: { status: 400, when: 'a play names more prompts than `PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY`' },
  MISSING_TOKEN: { status: 401, when: 'tokens are configured and the call has no `Authorization: Bearer` header (`WWW-Authenticate` says so)' },
  INVALID_TOKEN: { status: 401, when: 'the token is not one of `PROMPT_PLAYER_TOKENS`' },
  INVALID_PROMPT_NAME: { status: 400, when: 'a name that does not match `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`' },
  MISSING_FILE_PART: { status: 400, when: 'a multipart upload with no `file` part' },
  INVALID_REQUEST: { status: 400, when: 'a request that fails its schema (the message names the field)' },
  UNSUPPORTED_CONTENT_TYPE: { status: 415, when: 'a JSON call sent with another Content-Type, or `POST /v1/prompts` without multipart/form-data' },
  PROMPT_EXISTS: { status: 409, when: 'POST of a name that exists (PUT replaces)' },
  PROMPT_NOT_FOUND: { status: 404, when: 'an unknown prompt, in a URL or a play (all missing names are listed)' },
  URL_NOT_ALLOWED: { status: 403, when: 'a prompt URL, or a redirect it gave, whose host is outside `PROMPT_PLAYER_ALLOWED_FETCH` (a name by what it resolves to at the connection)' },
  FETCH_FAILED: { status: 502, when: 'a prompt URL answered with an error status (named in the message), no answer, too many redirects, or more than `PROMPT_PLAYER_MAX_UPLOAD_BYTES`' },
  FETCH_TIMEOUT: { status: 504, when: 'a prompt URL did not answer in full within `PROMPT_PLAYER_FETCH_TIMEOUT_MS`' },
  NOT_CACHED: { status: 404, when: '`DELETE /v1/cache?url=` of a URL this instance does not keep' },
  PLAY_ENDED: { status: 409, when: 'a control of a play that has ended' },
  PLAY_NOT_FOUND: { status: 404, when: 'an unknown play id, or one that ended more than 5 minutes ago' },
  NOT_FOUND: { status: 404, when: 'no such route' },
  CONSOLE_NOT_BUILT: { status: 503, when: '`/console` on a service started from the sources without `npm run build` (the message says what to run)' },
  TARGET_NOT_ALLOWED: { status: 403, when: 'a target outside `PROMPT_PLAYER_ALLOWED_TARGETS`, multicast or broadcast not named there, a port below `PROMPT_PLAYER_MIN_TARGET_PORT`, the unspecified address (an SDP on hold), or one the socket cannot reach; the message names the rule' },
  CALLBACK_NOT_ALLOWED: { status: 403, when: 'a `callbackUrl` whose address is outside `PROMPT_PLAYER_ALLOWED_CALLBACKS`; a host name is checked on each delivery instead' },
  AT_CAPACITY: { status: 503, retry: true, when: '`PROMPT_PLAYER_MAX_PLAYS` plays are running' },
  SHUTTING_DOWN: { status: 503, when: 'the service is stopping (SIGTERM): it starts no new play' },
  OVERLOADED: { status: 503, retry: true, when: 'the HTTP thread\'s event loop lags past `PROMPT_PLAYER_MAX_EVENT_LOOP_DELAY_MS`; stopping a play (DELETE) and controlling it (`POST /v1/plays/{id}/control`) are never shed' },
  NO_RTP_PORT: { status: 503, retry: true, when: 'every even port of `PROMPT_PLAYER_RTP_PORTS` is in use' },
  PACKET_THREAD_FAILED: { status: 503, retry: true, when: 'the packet thread died (a bug) while the play started; its plays failed and a new thread took over' },
  FFMPEG_UNAVAILABLE: { status: 503, when: 'ffmpeg cannot be run (uploads only; plays of stored prompts go on)' },
  STORE_UNAVAILABLE: { status: 503, retry: true, when: 'a pool\'s Redis (`PROMPT_PLAYER_REDIS_URL`) cannot be reached and the call needs it (uploads, deletes, the list of plays, another instance\'s play); plays of loaded prompts still start, run and stop where they run' },
  INSTANCE_UNREACHABLE: { status: 503, retry: true, when: 'in a pool, the play runs on another instance that did not answer the forwarded call; if that instance is lost, its plays are reported failed once its heartbeat has expired (about 6 s with the defaults)' },
  STORAGE_FAILED: { status: 507, when: 'the library cannot be written (disk full, quota, file-size limit, read-only, permissions); the message says which step failed' },
  INTERNAL_ERROR: { status: 500, when: 'a bug: the log has the details' }
} as const satisfies Record<EngineErrorCode, ErrorRow> & Record<string, ErrorRow>

export type ErrorCode = keyof typeof ERRORS

export function isErrorCode (code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code)
}

export interface ErrorBody {
  statusCode: number
  error: string
  code: string
  message: string
}

export function errorBody (statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message }
}

/** An error the service answers with: its status from the table. */
export class HttpError extends Error {
  readonly statusCode: number
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string) {
    super(message)
    this.code = code
    this.statusCode = ERRORS[code].status
  }
}

export function httpError (code: ErrorCode, message: string): HttpError {
  return new HttpError(code, message)
}
