import { Type } from 'typebox'
import { Play } from '../../src/index.js'

export { Play, PlayControl, PlayRequest } from '../../src/index.js'

export const PlayList = Type.Object({ plays: Type.Array(Play) })

export const PlayParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
