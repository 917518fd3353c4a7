/**
 * Events end to end: SSE read by the typed client from a real server, and webhooks received
 * by a second real Fastify server on 127.0.0.1.
 */
import Fastify from 'fastify'
import t from 'tap'
import { PromptPlayerClient, type PlayEvent } from '../../client/index.js'
import { Receiver, buildApp, sample, sleep } from '../helpers/index.js'

async function server (t: Parameters<typeof buildApp>[0], options: Parameters<typeof buildApp>[1] = {}): Promise<{ url: string, client: PromptPlayerClient, app: Awaited<ReturnType<typeof buildApp>> }> {
  const app = await buildApp(t, options)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { url, app, client: new PromptPlayerClient({ url, ...(options.tokens ? { token: options.tokens[0]! } : {}) }) }
}

t.test('SSE: started then finished for a play, with the Play as data; ?play= narrows', async t => {
  const { client } = await server(t)
  const receiver = await Receiver.open(t)
  const all: PlayEvent[] = []
  const mine: PlayEvent[] = []
  const controller = new AbortController()
  const following = (async () => { for await (const event of client.events({ signal: controller.signal })) all.push(event) })()
  await sleep(100)
  const other = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] })
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] })
  for await (const event of client.events({ play: play.id })) {
    mine.push(event)
    if (event.type === 'play.finished') break
  }
  t.same(mine.map(e => e.type), ['play.finished'], 'the narrowed stream (joined after the start) has only this play')
  t.match(mine[0]!.play, { id: play.id, state: 'finished', packetsSent: play.durationMs / 20 })
  await client.stop(other.id)
  await sleep(100)
  controller.abort()
  await following
  t.same(all.map(e => `${e.type} ${e.play.id === play.id ? 'play' : 'other'}`), [
    'play.started other', 'play.started play', 'play.finished play', 'play.stopped other'
  ])
})

t.test('SSE streams end when the server closes, after the plays it stopped were announced', async t => {
  const { client, app } = await server(t)
  const receiver = await Receiver.open(t)
  const events: PlayEvent[] = []
  const following = (async () => { for await (const event of client.events()) events.push(event) })()
  await sleep(100)
  await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] })
  await sleep(50)
  await app.close()
  await following
  t.same(events.map(e => e.type), ['play.started', 'play.stopped'], 'the stream got play.stopped, then ended')
})

t.test('webhooks: every event POSTed in order, a 500 retried, a slow receiver never delays packets', async t => {
  const hook = Fastify()
  const received: Array<{ type: string, play: { id: string, state: string } }> = []
  let failFirst = true
  hook.post('/events', async (request, reply) => {
    if (failFirst) { failFirst = false; return await reply.code(500).send({}) }
    received.push(request.body as { type: string, play: { id: string, state: string } })
    return {}
  })
  hook.post('/slow', async () => { await sleep(5000); return {} })
  const hookUrl = await hook.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => hook.close())

  const { client } = await server(t)
  const receiver = await Receiver.open(t)
  const slowReceiver = await Receiver.open(t)
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], callbackUrl: `${hookUrl}/events` })
  const slow = await client.play({ target: { host: '127.0.0.1', port: slowReceiver.port }, prompts: ['welcome'], callbackUrl: `${hookUrl}/slow` })
  t.equal(play.callbackUrl, `${hookUrl}/events`)
  const packets = await slowReceiver.waitFor(slow.durationMs / 20, 10_000)
  const mean = (packets.at(-1)!.at - packets[0]!.at) / (packets.length - 1)
  t.ok(Math.abs(mean - 20) < 1, `packets paced while the webhook hangs: mean gap ${mean.toFixed(3)} ms`)
  for (let i = 0; i < 60 && received.length < 2; i++) await sleep(100)
  t.same(received.map(r => `${r.type} ${r.play.state}`), ['play.started playing', 'play.finished finished'], 'delivered in order, the first after a retry')
  t.equal(received[1]!.play.id, play.id)
})

t.test('the client: prompts and plays round trip, errors carry the code', async t => {
  const { client } = await server(t, { tokens: ['tok'] })
  const receiver = await Receiver.open(t)
  const bytes = sample('renamed').bytes
  const put = await client.uploadPrompt('raw', bytes)
  t.match(put, { name: 'raw', source: { container: 'mp3', filename: null } })
  const named = await client.uploadPrompt('named', bytes, { filename: 'named.wma' })
  t.match(named, { source: { filename: 'named.wma', extensionMismatch: true } }, 'with a file name: multipart, lie reported')
  await t.rejects(client.uploadPrompt('named', bytes, { replace: false }), { name: 'PromptPlayerError', statusCode: 409, code: 'PROMPT_EXISTS' })
  await t.rejects(client.uploadPrompt('bad', Buffer.from('text')), { statusCode: 415, code: 'UNSUPPORTED_MEDIA', message: /plain text/ })
  t.ok((await client.listPrompts()).some(p => p.name === 'named'))
  t.equal((await client.getPrompt('raw')).name, 'raw')
  await client.deletePrompt('raw')
  await t.rejects(client.getPrompt('raw'), { statusCode: 404, code: 'PROMPT_NOT_FOUND' })
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['named'], codec: 'PCMA' })
  t.match(await client.getPlay(play.id), { id: play.id, codec: 'PCMA', payloadType: 8 })
  t.ok((await client.listPlays()).some(p => p.id === play.id))
  t.match(await client.stop(play.id), { state: 'stopped' })
  const anonymous = new PromptPlayerClient({ url: (client as unknown as { base: string }).base })
  await t.rejects(anonymous.listPrompts(), { statusCode: 401, code: 'MISSING_TOKEN' })
  await t.rejects(async () => { for await (const _ of anonymous.events()) break }, { statusCode: 401, code: 'MISSING_TOKEN' })
})
