/**
 * In a pool, a call on a play that another instance sends is forwarded to that instance, by
 * HTTP to the address it advertised, with this service's token. HTTP rather than a Redis
 * request/reply: the owner runs its own route (validation, the stop that answers only once no
 * packet can leave, its log line), nothing new to correlate, and on one network the extra hop
 * is a fraction of a millisecond. A forwarded call is marked, and never forwarded again.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpError } from './errors.js'

export const FORWARDED_BY = 'x-prompt-player-forwarded-by'

/** How long the owner may take to answer a forwarded call. */
const FORWARD_TIMEOUT_MS = 5000

export function isForwarded (request: FastifyRequest): boolean {
  return request.headers[FORWARDED_BY] !== undefined
}

/** Sends `request` to the instance at `address` and answers with what it answered. */
/** What a caller is told of a lost instance's plays: when they will be reported failed. */
export function lostNote (lostWithinMs: number): string {
  return `if it is lost, its plays are reported failed within ${Math.ceil(lostWithinMs / 1000)} s`
}

export async function forward<T> (request: FastifyRequest, reply: FastifyReply, target: { instance: string, address: string }, from: { instance: string, token: string | undefined, lostWithinMs: number }): Promise<T> {
  const headers: Record<string, string> = { [FORWARDED_BY]: from.instance, accept: 'application/json' }
  if (from.token !== undefined) headers.authorization = `Bearer ${from.token}`
  let body: string | undefined
  if (request.body !== undefined && request.body !== null) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(request.body)
  }
  let res: Response
  try {
    res = await fetch(new URL(request.url, target.address), { method: request.method, headers, ...(body === undefined ? {} : { body }), redirect: 'manual', signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS) })
  } catch (err) {
    throw httpError('INSTANCE_UNREACHABLE', `the play runs on instance ${target.instance} at ${target.address}, which did not answer (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); ${lostNote(from.lostWithinMs)}`)
  }
  const text = await res.text()
  void reply.code(res.status)
  const retryAfter = res.headers.get('retry-after')
  if (retryAfter !== null) void reply.header('retry-after', retryAfter)
  request.log.info({ forwardedTo: target.instance, status: res.status }, 'play call forwarded to the instance that runs it')
  // The owner's answer as it is: a Play, or an error body with its status. Anything else (a
  // proxy's page, a cut-off body) is said as what it is, not thrown as a parse error.
  if (text === '') return null as T
  try {
    return JSON.parse(text) as T
  } catch {
    throw httpError('INSTANCE_UNREACHABLE', `the play runs on instance ${target.instance} at ${target.address}, which answered ${res.status} with a body that is not JSON (${JSON.stringify(text.slice(0, 80))}); ${lostNote(from.lostWithinMs)}`)
  }
}
