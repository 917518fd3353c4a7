import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { CallbackPolicy } from '../callbacks.js'
import { httpError } from '../errors.js'
import { forward, isForwarded } from '../forward.js'
import { ErrorResponse } from '../schemas/common.js'
import { Play, PlayControl, PlayCreated, PlayList, PlayListQuery, PlayParams, PlayRequest } from '../schemas/plays.js'
import type { PlayInfo } from '../../src/index.js'

export default async function playRoutes (fastify: FastifyInstance, opts: { callbacks: CallbackPolicy, maxPrompts: number, forwardToken?: string }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const plays = app.engine.plays
  const from = { instance: plays.instance, token: opts.forwardToken }
  /**
   * A call on a play that another instance sends is answered by that instance: forwarded, and
   * its answer returned. Null when this instance answers (its own plays, ended ones, and calls
   * already forwarded once).
   */
  const viaOwner = async (request: FastifyRequest, reply: FastifyReply, play: PlayInfo): Promise<PlayInfo | null> => {
    if (play.state !== 'playing' || play.instance === plays.instance || isForwarded(request)) return null
    const address = await plays.addressOf(play.instance)
    if (address === undefined) {
      throw httpError('INSTANCE_UNREACHABLE', `the play runs on instance ${play.instance}, which has no heartbeat; if it is lost, its plays are reported failed within 10 s`)
    }
    return await forward<PlayInfo>(request, reply, { instance: play.instance, address }, from)
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
    const play = await plays.get(request.params.id)
    return await viaOwner(request, reply, play) ?? play
  })

  app.delete('/v1/plays/:id', {
    schema: {
      summary: 'Stop a play (the caller pressed a key)',
      description: 'No packet of the play is sent after this answers. Answers the play in state `stopped`, or in its final state if it had ended.',
      params: PlayParams,
      response: { 200: Play, 404: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request, reply) => {
    const remote = await viaOwner(request, reply, await plays.get(request.params.id))
    if (remote !== null) return remote
    const play = await plays.stop(request.params.id)
    request.log.info({ play: play.id, state: play.state, packetsSent: play.packetsSent }, 'play stop requested')
    return play
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
    const remote = await viaOwner(request, reply, await plays.get(request.params.id))
    if (remote !== null) return remote
    const play = await plays.control(request.params.id, request.body)
    request.log.info({ play: play.id, control: request.body, positionMs: play.positionMs, paused: play.paused }, 'play controlled')
    return play
  })
}
