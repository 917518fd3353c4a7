import type { FastifyInstance } from 'fastify'
import { inVariables } from '../config.js'

/**
 * /healthz: the process answers. /readyz: this instance can take work now: ffmpeg runs, the
 * library can be read and written, and a play could start. A load balancer sends nothing to
 * an instance whose /readyz says 503, and the body says why.
 */
export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const engine = app.engine
    const problems: string[] = []
    // Checked again every few seconds at most: an ffmpeg installed or repaired is seen.
    const ffmpeg = await engine.ffmpeg.check()
    if ('error' in ffmpeg) problems.push(inVariables(ffmpeg.error, ffmpeg.options))
    if (engine.plays.capacityLeft === 0) problems.push('at capacity: no play can start now')
    // A pool's Redis out of reach is said, but does not take the instance out of the load
    // balancer: plays of loaded prompts still start, run and stop here, and if every instance
    // said 503 the balancer would refuse those too. The status says "degraded".
    let degraded = false
    if (engine.pool === null) {
      try {
        await engine.prompts.checkWritable()
      } catch (err) {
        problems.push(`the prompt library ${engine.prompts.location} is not readable and writable: ${(err as Error).message}`)
      }
    } else {
      try {
        await engine.pool.check()
      } catch (err) {
        degraded = true
        problems.push(`${(err as Error).message}; uploads, deletes and other instances' plays answer 503 STORE_UNAVAILABLE until it is back (PROMPT_PLAYER_REDIS_URL), plays of loaded prompts go on`)
      }
    }
    const ready = problems.length === (degraded ? 1 : 0)
    const body = {
      status: problems.length === 0 ? 'ready' : ready ? 'degraded' : 'not ready',
      problems,
      instance: engine.instance,
      prompts: engine.prompts.size,
      playsRunning: engine.plays.runningCount,
      capacityLeft: engine.plays.capacityLeft
    }
    return await reply.code(ready ? 200 : 503).send(body)
  })
}
