/**
 * Types written once: the engine's TypeBox schemas are the source of the client's types, of the
 * wire (validation and serialisation) and of the OpenAPI document. A field added to `Play` in
 * src/common/schemas.ts reaches all of them with that one edit (and the compiler then asks
 * PlayHandle.toJSON for its value); these checks fail if any of them is written separately.
 */
import t from 'tap'
import type { Static } from 'typebox'
import type { PlayInfo as ClientPlayInfo, PlayRequest as ClientPlayRequest, PromptInfo as ClientPromptInfo } from '../../client/index.js'
import { CODECS, PTIMES, Play, PlayRequest, PromptSchema } from '../../src/index.js'
import { buildApp, Receiver } from '../helpers/index.js'

/** Compiles only when A and B are the same type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const sameTypes: [Same<ClientPlayInfo, Static<typeof Play>>, Same<ClientPlayRequest, Static<typeof PlayRequest>>, Same<ClientPromptInfo, Static<typeof PromptSchema>>] = [true, true, true]

t.test('the client\'s types are the schemas\' types (checked by the compiler)', async t => {
  t.same(sameTypes, [true, true, true])
})

t.test('codecs and packet times come from CODECS and PTIMES', async t => {
  const codecs = PlayRequest.properties.codec.anyOf.map(s => s.const)
  t.same(codecs, Object.keys(CODECS))
  t.same(PlayRequest.properties.ptimeMs.anyOf.map(s => s.const), [...PTIMES])
})

t.test('a Play on the wire, in events and in the OpenAPI document has exactly the schema\'s fields', async t => {
  const fields = Object.keys(Play.properties).sort()
  const app = await buildApp(t)
  const receiver = await Receiver.open(t)
  const started = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] } })
  t.same(Object.keys(started.json()).sort(), fields, 'POST /v1/plays answers every field')
  const got = await app.inject({ url: `/v1/plays/${started.json().id as string}` })
  t.same(Object.keys(got.json()).sort(), fields, 'GET /v1/plays/{id} too')
  const listed = await app.inject({ url: '/v1/plays' })
  t.same(Object.keys(listed.json().plays[0]).sort(), fields, 'GET /v1/plays too')
  const stopped = await app.inject({ method: 'DELETE', url: `/v1/plays/${started.json().id as string}` })
  t.same(Object.keys(stopped.json()).sort(), fields, 'DELETE too')
  const doc = (await app.inject({ url: '/docs/json' })).json()
  const ok201 = doc.paths['/v1/plays'].post.responses['201'].content['application/json'].schema
  t.same(Object.keys(ok201.properties).sort(), fields, 'the OpenAPI document describes the same fields')
  const prompt = doc.paths['/v1/prompts/{name}'].get.responses['200'].content['application/json'].schema
  t.same(Object.keys(prompt.properties).sort(), Object.keys(PromptSchema.properties).sort(), 'and the same Prompt')
})
