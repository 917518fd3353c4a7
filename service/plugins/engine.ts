/**
 * Joins the engine to Fastify: `fastify.engine`, closed in onClose. Tests hand in an engine
 * they built (with a temporary library); the server lets the plugin create it from the config.
 */
import fp from 'fastify-plugin'
import { createEngine, type Engine, type EngineOptions } from '../../src/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

export interface EnginePluginOptions {
  engine?: Engine
  engineOptions?: EngineOptions
}

export default fp<EnginePluginOptions>(async (fastify, opts) => {
  let engine = opts.engine
  if (engine === undefined) {
    if (opts.engineOptions === undefined) throw new Error('engine plugin: give `engine` or `engineOptions`')
    engine = await createEngine(opts.engineOptions)
  }
  fastify.decorate('engine', engine)
  fastify.addHook('onClose', async () => { await engine.close() })
}, { name: 'engine' })
