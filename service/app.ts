/**
 * The Fastify app, as a plugin: the engine, the routes and the error handler. The server file
 * only loads the configuration and listens; tests register this with a temporary library.
 */
import bearerAuth from '@fastify/bearer-auth'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { createRequire } from 'node:module'
import path from 'node:path'
import type { FastifyError, FastifyHttpOptions, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { isEngineError, type Engine } from '../src/index.js'
import { SERVICE_DEFAULTS, inVariables } from './config.js'
import { ERRORS, HttpError, errorBody, type ErrorCode } from './errors.js'
import { EventHub, Webhooks, type WebhookOptions } from './events.js'
import metricsRoutes from './metrics.js'
import enginePlugin from './plugins/engine.js'
import cacheRoutes from './routes/cache.js'
import consoleRoutes from './routes/console.js'
import eventRoutes from './routes/events.js'
import healthRoutes from './routes/health.js'
import playRoutes from './routes/plays.js'
import promptRoutes from './routes/prompts.js'

export interface AppOptions {
  /** The engine to serve; the app closes it when it closes. */
  engine: Engine
  maxUploadBytes?: number
  /** Bearer tokens for every /v1 call; none: /v1 is open. */
  tokens?: readonly string[]
  /** Requests per second one client may make to /v1; 0: no limit. */
  rateLimit?: number
  /**
   * A request's body must have arrived whole within this many ms of its start (default 120 s),
   * so that a client trickling an upload cannot hold a connection and a buffer forever. Node's
   * requestTimeout does not cover a body that keeps arriving, byte by byte.
   */
  bodyTimeoutMs?: number
  /**
   * Load shedding: while the HTTP thread's event loop lags more than this (ms), new /v1 requests
   * get 503 OVERLOADED, except stopping a play; running plays are never touched (they are on
   * the packet thread). 0 turns it off. `sampleIntervalMs` is how often the lag is measured.
   */
  overload?: { maxEventLoopDelayMs: number, sampleIntervalMs?: number }
  webhooks?: WebhookOptions
  /** Prompts one play may name (default 100). */
  maxPromptsPerPlay?: number
  /** The web console's built files (default: dist/console of this package). */
  consoleDir?: string
}

/** The package's folder and version: package.json is one level up from the sources, two from dist/. */
const PACKAGE = ((): { root: string, version: string } => {
  const require = createRequire(import.meta.url)
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const file = require.resolve(candidate)
      const pkg = require(file) as { name?: string, version?: string }
      if (pkg.name === 'prompt-player' && pkg.version !== undefined) return { root: path.dirname(file), version: pkg.version }
    } catch {}
  }
  return { root: process.cwd(), version: '0.0.0' }
})()

export const VERSION = PACKAGE.version

/** Where `npm run build` writes the web console, served at /console/. */
export const CONSOLE_DIR = path.join(PACKAGE.root, 'dist', 'console')

/** Fastify's own options that the app needs; the server and the tests both use them. */
export const serverOptions: FastifyHttpOptions<Server> = {
  ajv: {
    // A misspelt field ("codce") must be refused, not silently dropped.
    customOptions: { removeAdditional: false }
  },
  // Play ids and prompt names are short; nothing needs a long URL.
  routerOptions: { maxParamLength: 200 },
  // Node's own limit on receiving a request; bodies are also timed by the app (bodyTimeoutMs).
  requestTimeout: SERVICE_DEFAULTS.requestTimeoutMs,
  // JSON bodies (a play request) are small; uploads have their own limit (maxUploadBytes), set
  // on their parsers. A 50 MB JSON body would hold the HTTP thread for a second.
  bodyLimit: SERVICE_DEFAULTS.jsonBodyLimit,
  // Node checks request timeouts this often; its default of 30 s would let them run 30 s over.
  // Connections that send no request at all are closed by the app (closeSilentConnections).
  http: { connectionsCheckingInterval: 1000 }
}

export default async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  await fastify.register(enginePlugin, { engine: opts.engine })
  // A listener that throws (SSE, webhooks, metrics, this log) must not break a play, nor vanish.
  const listenerLog = fastify.log.child({ component: 'events' })
  opts.engine.events.onListenerError = err => { listenerLog.error({ err }, 'an event listener threw; the event went on to the others') }
  const hub = new EventHub(opts.engine.eventLog)
  // Each play's end in the log, from a child logger that carries its id.
  opts.engine.events.on('play', ({ type, play }) => {
    if (type !== 'play.finished' && type !== 'play.stopped' && type !== 'play.failed') return
    const log = fastify.log.child({ play: play.id })
    const fields = { state: play.state, packetsSent: play.packetsSent, sendErrors: play.sendErrors, target: play.target, error: play.error }
    if (type === 'play.failed') log.warn(fields, `play failed: ${play.error}`)
    else log.info(fields, `play ${play.state}`)
  })
  const webhooks = new Webhooks(opts.engine, fastify.log.child({ component: 'webhooks' }), opts.webhooks)
  // At shutdown: stop every play first, so that SSE clients and webhooks get their
  // play.stopped events, then end the streams (they would hold the server open), then give
  // webhook deliveries under way a bounded moment.
  fastify.addHook('preClose', async () => {
    await opts.engine.close()
    hub.close()
    await webhooks.drain(2000)
    webhooks.close()
  })

  fastify.setErrorHandler((err: FastifyError, request, reply) => {
    const upload = request.routeOptions.url?.startsWith('/v1/prompts') === true
    const { statusCode, code, message } = classify(err, opts.maxUploadBytes, upload)
    if (code === 'INTERNAL_ERROR' || (statusCode >= 500 && !isEngineError(err))) request.log.error({ err }, 'request failed')
    else request.log.info({ code, message }, 'request refused')
    // A 503 says when to come back where capacity frees within seconds (plays end, uploads finish).
    if (isRetried(code)) void reply.header('retry-after', '1')
    if (statusCode === 401) void reply.header('www-authenticate', `Bearer realm="prompt-player"${code === 'INVALID_TOKEN' ? ', error="invalid_token"' : ''}`)
    // Refused before its body arrived (too large, no upload slot, no token): close the
    // connection rather than read the rest of a body nobody will use.
    const bodyPending = !request.raw.complete && (request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0)
    if (bodyPending) void reply.header('connection', 'close')
    void reply.code(statusCode).send(errorBody(statusCode, code, message))
  })

  fastify.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody(404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}; the API is under /v1 (see /docs)`))
  })

  await fastify.register(metricsRoutes, { engine: opts.engine, webhooks })

  // OpenAPI 3 from the same TypeBox schemas that validate the requests, and its UI at /docs.
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'prompt-player', version: VERSION, description: 'Upload prompts once; play them into a call as paced G.711 RTP.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      ...(opts.tokens !== undefined && opts.tokens.length > 0 ? { security: [{ bearer: [] }] } : {})
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })

  // The API in one scope, so that authentication covers every /v1 route and nothing else:
  // health checks and metrics stay open to the load balancer and the scraper.
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? SERVICE_DEFAULTS.requestTimeoutMs
  closeSilentConnections(fastify, SERVICE_DEFAULTS.headersTimeoutMs)
  fastify.addHook('onRequest', async (request) => {
    if (request.raw.complete) return
    const timer = setTimeout(() => {
      if (request.raw.complete) return
      request.log.info({ bodyTimeoutMs }, 'request body too slow: closing the connection')
      request.raw.socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n' +
        JSON.stringify(errorBody(408, 'REQUEST_TIMEOUT', `the request body did not arrive within ${bodyTimeoutMs} ms (PROMPT_PLAYER_REQUEST_TIMEOUT_MS)`)))
      request.raw.socket.destroySoon()
    }, bodyTimeoutMs)
    timer.unref()
    request.raw.once('end', () => clearTimeout(timer))
    request.raw.once('close', () => clearTimeout(timer))
  })

  await fastify.register(async (v1) => {
    if (opts.rateLimit !== undefined && opts.rateLimit > 0) {
      // Per client address, before authentication, so that guessing tokens is limited too.
      await v1.register(rateLimit, { max: opts.rateLimit, timeWindow: 1000 })
    }
    const overload = opts.overload ?? { maxEventLoopDelayMs: SERVICE_DEFAULTS.maxEventLoopDelayMs }
    if (overload.maxEventLoopDelayMs > 0) {
      await v1.register(underPressure, {
        maxEventLoopDelay: overload.maxEventLoopDelayMs,
        ...(overload.sampleIntervalMs === undefined ? {} : { sampleInterval: overload.sampleIntervalMs }),
        // Returning a value sends it as the answer; returning nothing lets the request through
        // (the plugin's documented contract; its type declares only the latter).
        pressureHandler: ((request: FastifyRequest, reply: FastifyReply, _type: string, value: number | undefined) => {
          // The caller pressed a key: a stop must get through whatever the load.
          if (request.method === 'DELETE' && request.routeOptions.url === '/v1/plays/:id') return undefined
          // Likewise a pause or a seek during the call.
          if (request.method === 'POST' && request.routeOptions.url === '/v1/plays/:id/control') return undefined
          void reply.code(503).header('retry-after', '1')
          // No sample in a whole interval (the loop never turned) comes as Infinity.
          const lag = Number.isFinite(value) ? `${Math.round(Number(value))} ms` : 'longer than a sample interval'
          return errorBody(503, 'OVERLOADED', `the service is overloaded (event-loop delay ${lag}, limit ${overload.maxEventLoopDelayMs} ms, PROMPT_PLAYER_MAX_EVENT_LOOP_DELAY_MS); running plays go on, retry shortly`)
        }) as unknown as (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void
      })
    }
    if (opts.tokens !== undefined && opts.tokens.length > 0) {
      // @fastify/bearer-auth compares in constant time; its errors reach the error handler.
      await v1.register(bearerAuth, { keys: new Set(opts.tokens), addHook: false, verifyErrorLogLevel: 'info' })
      v1.addHook('onRequest', v1.verifyBearerAuth!)
    }
    await v1.register(promptRoutes, { maxUploadBytes: opts.maxUploadBytes ?? SERVICE_DEFAULTS.maxUploadBytes })
    await v1.register(playRoutes, { callbacks: webhooks.policy, maxPrompts: opts.maxPromptsPerPlay ?? SERVICE_DEFAULTS.maxPromptsPerPlay, ...(opts.tokens?.[0] === undefined ? {} : { forwardToken: opts.tokens[0] }) })
    await v1.register(eventRoutes, { hub })
    await v1.register(cacheRoutes)
  })
  await fastify.register(healthRoutes)
  await fastify.register(consoleRoutes, { dir: opts.consoleDir ?? CONSOLE_DIR })
}

const SPOKE = Symbol('prompt-player.spoke')

/**
 * Closes a connection that has not sent a whole request's headers within `ms` of opening. Node's
 * own headersTimeout does not cover a connection that never sends a byte, and a flood of those
 * would hold descriptors (and connection slots) for as long as the client likes. A connection
 * that has made a request is left to the keep-alive timeout.
 */
function closeSilentConnections (fastify: FastifyInstance, ms: number): void {
  fastify.server.on('connection', (socket: Socket & { [SPOKE]?: true }) => {
    const timer = setTimeout(() => { if (socket[SPOKE] !== true) socket.destroy() }, ms)
    timer.unref()
    socket.once('close', () => clearTimeout(timer))
  })
  fastify.addHook('onRequest', async (request) => {
    (request.raw.socket as Socket & { [SPOKE]?: true })[SPOKE] = true
  })
}

function isRetried (code: string): boolean {
  return code in ERRORS && 'retry' in ERRORS[code as ErrorCode]
}

/**
 * A schema refusal in words: Ajv says "must be equal to constant" once per allowed value of a
 * list (codec, ptimeMs, ...) and then "must match a schema in anyOf"; that is said once, with
 * the values, as "body/codec must be one of PCMU, PCMA, G722, opus". Anything else as Ajv says it.
 */
function validationMessage (err: FastifyError): string {
  const context = err.validationContext ?? 'body'
  const allowed = new Map<string, unknown[]>()
  for (const v of err.validation!) {
    if (v.keyword === 'const') allowed.set(v.instancePath, [...(allowed.get(v.instancePath) ?? []), (v.params as { allowedValue: unknown }).allowedValue])
  }
  if (allowed.size === 0) return err.message
  const parts: string[] = []
  for (const v of err.validation!) {
    const values = allowed.get(v.instancePath)
    if (values === undefined) parts.push(`${context}${v.instancePath} ${v.message ?? 'is not valid'}`)
    else if (v.keyword === 'anyOf') parts.push(`${context}${v.instancePath} must be one of ${values.map(x => String(x)).join(', ')}`)
  }
  return parts.join(', ')
}

/** The status, code and message of any error: the status always from the one table (service/errors.ts). */
function classify (err: FastifyError, maxUploadBytes: number = SERVICE_DEFAULTS.maxUploadBytes, upload = true): { statusCode: number, code: ErrorCode, message: string } {
  const answer = (code: ErrorCode, message: string): { statusCode: number, code: ErrorCode, message: string } => ({ statusCode: ERRORS[code].status, code, message })
  // The engine names its options; the answer names the variables that set them.
  if (isEngineError(err)) return answer(err.code, inVariables(err.message, err.options))
  if (err instanceof HttpError) return answer(err.code, err.message)
  if (err.validation) {
    const nameInvalid = err.validationContext === 'params' && err.validation.some(v => v.instancePath === '/name')
    if (nameInvalid) {
      return answer('INVALID_PROMPT_NAME', 'the prompt name in the URL is not valid: use 1 to 64 letters, digits, "_" or "-", starting with a letter or digit')
    }
    return answer('INVALID_REQUEST', validationMessage(err))
  }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.code === 'FST_REQ_FILE_TOO_LARGE' || err.statusCode === 413) {
    if (!upload) return answer('BODY_TOO_LARGE', `the request body is larger than ${SERVICE_DEFAULTS.jsonBodyLimit} bytes, the most this call takes`)
    return answer('UPLOAD_TOO_LARGE', `the upload is larger than ${maxUploadBytes} bytes, the limit (PROMPT_PLAYER_MAX_UPLOAD_BYTES)`)
  }
  if (err.code === 'FST_BEARER_AUTH_MISSING_AUTHORIZATION_HEADER') {
    return answer('MISSING_TOKEN', 'this service needs a token: send "Authorization: Bearer <token>" with one of PROMPT_PLAYER_TOKENS')
  }
  if (err.code === 'FST_BEARER_AUTH_INVALID_AUTHORIZATION_HEADER') {
    return answer('INVALID_TOKEN', 'the bearer token is not one this service accepts')
  }
  if (err.statusCode === 429) {
    return answer('RATE_LIMITED', `too many requests from this client: ${err.message} (PROMPT_PLAYER_RATE_LIMIT per second)`)
  }
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return answer('UNSUPPORTED_CONTENT_TYPE', 'this call takes a JSON body: send it with Content-Type: application/json')
  }
  // Fastify's other refusals (an empty or malformed JSON body, a bad Content-Length) are the
  // client's request at fault; their own message says how.
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return answer('INVALID_REQUEST', err.message)
  return answer('INTERNAL_ERROR', 'internal error; the service log has the details')
}
