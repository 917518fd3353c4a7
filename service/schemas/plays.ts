import { Type } from 'typebox'
import { Play } from '../../src/index.js'

export { Play, PlayControl, PlayCreated, PlayRequest } from '../../src/index.js'

export const PlayList = Type.Object({
  plays: Type.Array(Play),
  total: Type.Integer({ description: 'plays that match `state`, before `limit`' })
})

export const PlayListQuery = Type.Object({
  state: Type.Optional(Type.Union(['playing', 'finished', 'stopped', 'failed', 'ended'].map(s => Type.Literal(s)), { description: '`playing`, one final state, or `ended` (any of them)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'at most this many, in the list\'s order (running first, newest first)' }))
})

export const PlayParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
