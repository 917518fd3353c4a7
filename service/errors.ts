/**
 * HTTP errors: every engine code mapped to a status, and the errors the service raises itself.
 * Bodies keep Fastify's shape: {statusCode, error, code, message}.
 */
import { STATUS_CODES } from 'node:http'
import type { EngineErrorCode } from '../src/errors.js'

export const STATUS_BY_CODE: Readonly<Record<EngineErrorCode, number>> = {
  UNSUPPORTED_MEDIA: 415,
  UNDECODABLE_AUDIO: 422,
  TRUNCATED_AUDIO: 422,
  PROMPT_TOO_LONG: 422,
  TRANSCODER_BUSY: 503,
  INVALID_PROMPT_NAME: 400,
  PROMPT_NOT_FOUND: 404,
  PROMPT_EXISTS: 409,
  PLAY_NOT_FOUND: 404,
  TARGET_NOT_ALLOWED: 403,
  AT_CAPACITY: 503,
  NO_RTP_PORT: 503,
  FFMPEG_UNAVAILABLE: 503,
  STORAGE_FAILED: 507
}

/** Codes the HTTP layer adds to the engine's. */
export const SERVICE_ERRORS = {
  MISSING_TOKEN: 401,
  INVALID_TOKEN: 401,
  UPLOAD_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  TOO_MANY_PROMPTS: 400,
  CALLBACK_NOT_ALLOWED: 403,
  RATE_LIMITED: 429,
  REQUEST_TIMEOUT: 408,
  OVERLOADED: 503,
  UNSUPPORTED_CONTENT_TYPE: 415,
  MISSING_FILE_PART: 400,
  INVALID_REQUEST: 400,
  NOT_FOUND: 404,
  INTERNAL_ERROR: 500
} as const

export interface ErrorBody {
  statusCode: number
  error: string
  code: string
  message: string
}

export function errorBody (statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message }
}

export class HttpError extends Error {
  readonly statusCode: number
  readonly code: string
  constructor (statusCode: number, code: string, message: string) {
    super(message)
    this.statusCode = statusCode
    this.code = code
  }
}
