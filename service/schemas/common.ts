/**
 * The HTTP side's own schemas: the error body, path parameters and list wrappers. The
 * resources themselves (Prompt, Play, PlayRequest) are the engine's, written once there.
 */
import { Type } from 'typebox'
import { PromptName } from '../../src/index.js'
import { ERRORS } from '../errors.js'

export const NameParams = Type.Object({ name: PromptName })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.String({ description: 'stable upper-case code', enum: Object.keys(ERRORS) }),
  message: Type.String({ description: 'what was wrong and what is accepted' })
}, { $id: 'Error' })
