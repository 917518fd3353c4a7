import { Type, type Static } from 'typebox'
import { Nullable, PromptName } from './common.js'

export const Prompt = Type.Object({
  name: PromptName,
  source: Type.Object({
    filename: Nullable(Type.String()),
    container: Type.String({ description: 'wav, mp3 or wma: detected from the bytes, never from the name' }),
    codec: Nullable(Type.String()),
    sampleRate: Nullable(Type.Integer()),
    channels: Nullable(Type.Integer()),
    durationMs: Nullable(Type.Integer()),
    bytes: Type.Integer(),
    sha256: Type.String(),
    extensionMismatch: Type.Boolean({ description: "true when the file name's extension names another container than the one detected" })
  }),
  telephony: Type.Object({
    sampleRate: Type.Integer(),
    durationMs: Type.Integer(),
    packets: Type.Integer({ description: '20 ms packets' })
  }),
  createdAt: Type.String({ format: 'date-time' })
})
export type Prompt = Static<typeof Prompt>

export const PromptList = Type.Object({ prompts: Type.Array(Prompt) })

export const AudioQuery = Type.Object({
  format: Type.Union([Type.Literal('wav'), Type.Literal('pcmu'), Type.Literal('pcma')], { default: 'wav' })
}, { additionalProperties: false })
