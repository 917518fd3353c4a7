import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { CallbackPolicy } from '../callbacks.js'
import { httpError } from '../errors.js'
import { forward, isForwarded, lostNote } from '../forward.js'
import { ErrorResponse } from '../schemas/common.js'
import { Play, PlayControl, PlayCreated, PlayList, PlayListQuery, PlayParams, PlayRequest } from '../schemas/plays.js'
import type { Located, PlayInfo } from '../../src/index.js'

export default async function playRoutes (fastify: FastifyInstance, opts: { callbacks: CallbackPolicy, maxPrompts: number, forwardToken?: string }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const plays = app.engine.plays
  const from = { instance: plays.instance, token: opts.forwardToken, lostWithinMs: app.engine.pool?.lostWithinMs ?? 0 }
  /**
   * The answer to a call on a play: the play, when this instance answers it, or the answer of
   * the instance that runs it, to which the call is forwarded as it came.
   */
  const answer = async (request: FastifyRequest, reply: FastifyReply, located: Located): Promise<PlayInfo> => {
    if (located.owner === null) return located.play
    const { instance, address } = located.owner
    if (address === undefined) throw httpError('INSTANCE_UNREACHABLE', `the play runs on instance ${instance}, which has no heartbeat; ${lostNote(from.lostWithinMs)}`)
    return await forward<PlayInfo>(request, reply, { instance, address }, from)
  }

  app.post('/v1/plays', {
    schema: {
      summary: 'Play prompts into a call as one RTP stream',
      body: PlayRequest,
      response: { 201: PlayCreated, 400: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 415: ErrorResponse, 422: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse }
    }
  }, async (request, reply) => {
    if (request.body.prompts.length > opts.maxPrompts) {
      throw httpError('TOO_MANY_PROMPTS', `a play names at most ${opts.maxPrompts} prompts (PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY); this one names ${request.body.prompts.length}`)
    }
    if (typeof request.body.callbackUrl === 'string') opts.callbacks.checkUrl(request.body.callbackUrl)
    const play = await plays.create(request.body)
    request.log.info({ play: play.id, target: play.facts.target, source: play.facts.source, prompts: request.body.prompts }, 'play started')
    return await reply.code(201).header('location', `/v1/plays/${play.id}`).send(play.answer())
  })

  app.get('/v1/plays', {
    schema: {
      summary: 'Running plays and those ended recently',
      description: 'Running plays, newest first, then those ended in the last 5 minutes, the latest ended first. `state` narrows the list, `limit` cuts it (a console polling a busy instance need not read every play each second); `total` counts the matches before the cut.',
      querystring: PlayListQuery,
      response: { 200: PlayList, 400: ErrorResponse }
    }
  }, async (request) => {
    const { state, limit } = request.query
    const all = await plays.list()
    const matching = state === undefined ? all : all.filter(p => state === 'ended' ? p.state !== 'playing' : p.state === state)
    return { plays: limit === undefined ? matching : matching.slice(0, limit), total: matching.length }
  })

  app.get('/v1/plays/:id', {
    schema: { summary: 'One play', params: PlayParams, response: { 200: Play, 404: ErrorResponse, 503: ErrorResponse } }
  }, async (request, reply) => {
    return await answer(request, reply, await plays.locate(request.params.id, isForwarded(request)))
  })

  app.delete('/v1/plays/:id', {
    schema: {
      summary: 'Stop a play (the caller pressed a key)',
      description: 'No packet of the play is sent after this answers. Answers the play in state `stopped`, or in its final state if it had ended.',
      params: PlayParams,
      response: { 200: Play, 404: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const located = await plays.stop(request.params.id, isForwarded(request))
    if (located.owner === null) request.log.info({ play: located.play.id, state: located.play.state, packetsSent: located.play.packetsSent }, 'play stop requested')
    return await answer(request, reply, located)
  })

  app.post('/v1/plays/:id/control', {
    schema: {
      summary: 'Control a running play: pause, resume, restart, forward, reverse, seek',
      description: 'Answers once the packet thread has applied it: the next packet (within one ptime) carries it. `pause` on a paused play and `resume` on a playing one change nothing. Seeking past the end ends the loop (the play finishes, or its next loop starts).',
      params: PlayParams,
      body: PlayControl,
      response: { 200: Play, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const located = await plays.control(request.params.id, request.body, isForwarded(request))
    if (located.owner === null) request.log.info({ play: located.play.id, control: request.body, positionMs: located.play.positionMs, paused: located.play.paused }, 'play controlled')
    return await answer(request, reply, located)
  })
}
