/**
 * Joins the engine to Fastify: `fastify.engine`, closed in onClose. The server builds the
 * engine from its configuration; tests build one on a temporary library.
 */
import fp from 'fastify-plugin'
import type { Engine } from '../../src/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

export interface EnginePluginOptions {
  engine: Engine
}

export default fp<EnginePluginOptions>(async (fastify, opts) => {
  fastify.decorate('engine', opts.engine)
  fastify.addHook('onClose', async () => { await opts.engine.close() })
}, { name: 'engine' })
