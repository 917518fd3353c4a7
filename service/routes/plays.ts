import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { CallbackPolicy } from '../callbacks.js'
import { httpError } from '../errors.js'
import { ErrorResponse } from '../schemas/common.js'
import { Play, PlayList, PlayParams, PlayRequest } from '../schemas/plays.js'

export default async function playRoutes (fastify: FastifyInstance, opts: { callbacks: CallbackPolicy, maxPrompts: number }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const plays = app.engine.plays

  app.post('/v1/plays', {
    schema: {
      summary: 'Play prompts into a call as one RTP stream',
      body: PlayRequest,
      response: { 201: Play, 400: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    if (request.body.prompts.length > opts.maxPrompts) {
      throw httpError('TOO_MANY_PROMPTS', `a play names at most ${opts.maxPrompts} prompts (PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY); this one names ${request.body.prompts.length}`)
    }
    if (typeof request.body.callbackUrl === 'string') opts.callbacks.checkUrl(request.body.callbackUrl)
    const play = await plays.create(request.body)
    request.log.info({ play: play.id, target: play.target, source: play.source, prompts: request.body.prompts }, 'play started')
    return await reply.code(201).header('location', `/v1/plays/${play.id}`).send(play.toJSON())
  })

  app.get('/v1/plays', {
    schema: { summary: 'Running plays and those ended recently', response: { 200: PlayList } }
  }, async () => ({ plays: await plays.list() }))

  app.get('/v1/plays/:id', {
    schema: { summary: 'One play', params: PlayParams, response: { 200: Play, 404: ErrorResponse } }
  }, async (request) => await plays.get(request.params.id))

  app.delete('/v1/plays/:id', {
    schema: {
      summary: 'Stop a play (the caller pressed a key)',
      description: 'No packet of the play is sent after this answers. Answers the play in state `stopped`, or in its final state if it had ended.',
      params: PlayParams,
      response: { 200: Play, 404: ErrorResponse }
    }
  }, async (request) => {
    const play = await plays.stop(request.params.id)
    request.log.info({ play: play.id, state: play.state, packetsSent: play.packetsSent }, 'play stop requested')
    return play
  })
}
