import { Type } from 'typebox'
import { PROMPT_NAME_PATTERN } from '../../src/prompt.js'

/** A prompt name, as every `:name` route and every play request takes it. */
export const PromptName = Type.String({
  pattern: PROMPT_NAME_PATTERN,
  description: '1 to 64 letters, digits, "_" or "-", starting with a letter or digit'
})

export const NameParams = Type.Object({ name: PromptName })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.String({ description: 'stable upper-case code, e.g. UNSUPPORTED_MEDIA' }),
  message: Type.String({ description: 'what was wrong and what is accepted' })
}, { $id: 'Error' })

export const Endpoint = Type.Object({
  host: Type.Union([Type.String({ format: 'ipv4' }), Type.String({ format: 'ipv6' })], { description: 'an IPv4 or IPv6 literal' }),
  port: Type.Integer({ minimum: 1, maximum: 65535 })
}, { additionalProperties: false })

export const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(schema: T) =>
  Type.Union([schema, Type.Null()])
