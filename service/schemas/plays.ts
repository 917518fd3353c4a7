import { Type, type Static } from 'typebox'
import { Endpoint, Nullable, PromptName } from './common.js'

const Codec = Type.Union([Type.Literal('PCMU'), Type.Literal('PCMA')])
const Ptime = Type.Union([Type.Literal(10), Type.Literal(20), Type.Literal(30), Type.Literal(40)])

export const PlayRequest = Type.Object({
  target: Endpoint,
  prompts: Type.Array(PromptName, { minItems: 1, maxItems: 1000, description: 'at most PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY (default 100, at most 1000)' }),
  codec: Type.Optional(Codec),
  payloadType: Type.Optional(Type.Integer({ minimum: 0, maximum: 127, description: 'default 0 for PCMU, 8 for PCMA' })),
  ptimeMs: Type.Optional(Ptime),
  ssrc: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'random when absent' })),
  callbackUrl: Type.Optional(Nullable(Type.String({ format: 'uri' })))
}, { additionalProperties: false })
export type PlayRequest = Static<typeof PlayRequest>

export const Play = Type.Object({
  id: Type.String(),
  state: Type.Union([Type.Literal('playing'), Type.Literal('finished'), Type.Literal('stopped'), Type.Literal('failed')]),
  target: Endpoint,
  source: Endpoint,
  prompts: Type.Array(Type.String()),
  codec: Codec,
  payloadType: Type.Integer(),
  ptimeMs: Type.Integer(),
  ssrc: Type.Integer(),
  durationMs: Type.Integer(),
  packetsSent: Type.Integer(),
  octetsSent: Type.Integer(),
  sendErrors: Type.Integer({ description: 'sends the kernel refused (ICMP unreachable from the target included)' }),
  startedAt: Type.String({ format: 'date-time' }),
  endedAt: Nullable(Type.String({ format: 'date-time' })),
  error: Nullable(Type.String()),
  callbackUrl: Nullable(Type.String())
})

export const PlayList = Type.Object({ plays: Type.Array(Play) })

export const PlayParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
