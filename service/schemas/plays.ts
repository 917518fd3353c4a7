import { Type } from 'typebox'
import { Play } from '../../src/index.js'

export { Play, PlayControl, PlayRequest } from '../../src/index.js'

/**
 * The answer to POST /v1/plays: the Play, with the SRTP key it sends with. The only schema that
 * has a key: every other answer is serialised with Play, which has no field for one.
 */
export const PlayCreated = Type.Object({
  ...Play.properties,
  srtp: Type.Union([Type.Object({
    suite: Play.properties.srtp.anyOf[0].properties.suite,
    localKey: Type.Optional(Type.String({ description: 'the key this play sends with, for the a=crypto line of the SDP answer: a=crypto:<tag> <suite> inline:<localKey>' }))
  }), Type.Null()], { description: 'SRTP: the suite, and the key the play sends with; null for plain RTP' })
})

export const PlayList = Type.Object({
  plays: Type.Array(Play),
  total: Type.Integer({ description: 'plays that match `state`, before `limit`' })
})

export const PlayListQuery = Type.Object({
  state: Type.Optional(Type.Union(['playing', 'finished', 'stopped', 'failed', 'ended'].map(s => Type.Literal(s)), { description: '`playing`, one final state, or `ended` (any of them)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'at most this many, in the list\'s order (running first, newest first)' }))
})

export const PlayParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
