import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { httpError } from '../errors.js'
import { CacheList, CacheQuery } from '../schemas/cache.js'
import { ErrorResponse } from '../schemas/common.js'

/** The URL cache of this instance (each instance of a pool keeps its own). */
export default async function cacheRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const urls = app.engine.urls

  app.get('/v1/cache', {
    schema: { summary: 'The prompts this instance keeps for URLs', response: { 200: CacheList } }
  }, async () => ({ entries: urls.list(), bytes: urls.bytes, stats: urls.stats }))

  app.delete('/v1/cache', {
    schema: { summary: 'Evict one URL: its next play fetches it again', querystring: CacheQuery, response: { 204: { type: 'null', description: 'evicted' }, 404: ErrorResponse } }
  }, async (request, reply) => {
    if (!await urls.evict(request.query.url)) throw httpError('NOT_CACHED', `${request.query.url} is not in this instance's URL cache (GET /v1/cache lists it)`)
    request.log.info({ url: request.query.url }, 'URL evicted from the cache')
    return await reply.code(204).send(null)
  })
}
