/** GET /v1/cache: the prompts this instance keeps for URLs. */
import { Type } from 'typebox'
import { ContainerName } from '../../src/index.js'

export const CacheEntry = Type.Object({
  url: Type.String(),
  container: Type.Union(ContainerName.anyOf, { description: 'detected from the bytes' }),
  sourceBytes: Type.Integer({ description: 'the body as fetched' }),
  bytes: Type.Integer({ description: 'the audio kept for it, both laws' }),
  durationMs: Type.Integer(),
  fetchedAt: Type.String({ format: 'date-time' }),
  validatedAt: Type.String({ format: 'date-time', description: 'when the origin last confirmed it (a 304), or fetchedAt' })
})

export const CacheList = Type.Object({
  entries: Type.Array(CacheEntry, { description: 'most recently used first' }),
  bytes: Type.Integer({ description: 'audio kept, of PROMPT_PLAYER_URL_CACHE_BYTES' }),
  stats: Type.Object({ hits: Type.Integer(), misses: Type.Integer(), revalidations: Type.Integer(), refusals: Type.Integer() }, { description: 'since this instance started' })
})

export const CacheQuery = Type.Object({ url: Type.String({ minLength: 1, description: 'the URL whose entry to evict' }) }, { additionalProperties: false })
