import { Type } from 'typebox'
import { PromptSchema } from '../../src/index.js'

export const Prompt = PromptSchema

export const PromptList = Type.Object({ prompts: Type.Array(PromptSchema) })

export const AudioQuery = Type.Object({
  format: Type.Union([Type.Literal('wav'), Type.Literal('pcmu'), Type.Literal('pcma')], { default: 'wav' })
}, { additionalProperties: false })
