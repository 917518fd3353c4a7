import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { EventHub } from '../events.js'

export default async function eventRoutes (fastify: FastifyInstance, opts: { hub: EventHub }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get('/v1/events', {
    schema: {
      summary: 'Play events as Server-Sent Events',
      description: 'Events `play.started`, `play.finished`, `play.stopped`, `play.failed`, each with the Play as data. `?play=<id>` narrows to one play. A client reconnecting with `Last-Event-ID` first gets the events it missed (of the last 1000).',
      querystring: Type.Object({ play: Type.Optional(Type.String({ maxLength: 64 })) }),
      produces: ['text/event-stream']
    }
  }, async (request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx buffers responses unless told not to; events must not wait in a proxy.
      'x-accel-buffering': 'no'
    })
    const lastEventId = request.headers['last-event-id']
    opts.hub.add({ response: reply.raw, playId: request.query.play ?? null }, typeof lastEventId === 'string' ? lastEventId : undefined)
  })
}
