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
    if ('error' in ffmpeg) problems.push(inVariables(ffmpeg.error, ['ffmpegPath']))
    try {
      await engine.prompts.checkWritable()
    } catch (err) {
      problems.push(`the prompt library ${engine.prompts.location} is not readable and writable: ${(err as Error).message}`)
    }
    if (engine.plays.capacityLeft === 0) problems.push('at capacity: no play can start now')
    const body = {
      status: problems.length === 0 ? 'ready' : 'not ready',
      problems,
      prompts: engine.prompts.size,
      playsRunning: engine.plays.runningCount,
      capacityLeft: engine.plays.capacityLeft
    }
    return await reply.code(problems.length === 0 ? 200 : 503).send(body)
  })
}
