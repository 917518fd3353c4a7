/**
 * Events end to end: SSE read by the typed client from a real server, and webhooks received
 * by a second real Fastify server on 127.0.0.1.
 */
import Fastify from 'fastify'
import t from 'tap'
import { PromptPlayerClient, type PlayEvent } from '../../client/index.js'
import { keyPress } from '../../src/index.js'
import { Receiver, buildApp, engineOf, sample, sleep } from '../helpers/index.js'

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

t.test('SSE: a key press reaches the client as play.dtmf with its digit, its duration and the Play', async t => {
  const { client } = await server(t)
  const receiver = await Receiver.open(t)
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'], dtmf: { stopOn: '#' } })
  const seen: PlayEvent[] = []
  const following = (async () => {
    for await (const event of client.events({ play: play.id })) {
      seen.push(event)
      if (event.type === 'play.stopped') break
    }
  })()
  await sleep(100)
  for (const packet of keyPress('4', { ssrc: 1, sequence: 1, timestamp: 1000, durationMs: 60 })) await receiver.send(packet, play.source.port)
  for (const packet of keyPress('#', { ssrc: 1, sequence: 10, timestamp: 2000 })) await receiver.send(packet, play.source.port)
  await following
  t.match(seen, [
    { type: 'play.dtmf', digit: '4', durationMs: 60, play: { id: play.id, state: 'playing' } },
    { type: 'play.dtmf', digit: '#', play: { id: play.id } },
    { type: 'play.stopped', play: { id: play.id, stoppedBy: 'dtmf', received: { digits: '4#' } } }
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
  const { client, app } = await server(t, { tokens: ['tok'] })
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
  const wav = Buffer.from(await client.promptAudio('raw'))
  t.equal(wav.subarray(0, 4).toString(), 'RIFF', 'audio as WAV')
  t.same(Buffer.from(await client.promptAudio('raw', 'pcmu')), await engineOf(app).prompts.audio('raw', 'pcmu').then(a => a.bytes), 'audio as the stored PCMU, byte for byte')
  await t.rejects(client.promptAudio('nothing'), { statusCode: 404, code: 'PROMPT_NOT_FOUND' })
  await client.deletePrompt('raw')
  await t.rejects(client.getPrompt('raw'), { statusCode: 404, code: 'PROMPT_NOT_FOUND' })
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['named'], codec: 'PCMA' })
  t.match(await client.getPlay(play.id), { id: play.id, codec: 'PCMA', payloadType: 8 })
  t.ok((await client.listPlays()).some(p => p.id === play.id))
  t.same((await client.listPlays({ state: 'playing', limit: 1 })).map(p => p.id), [play.id], 'state and limit reach the service')
  t.match(await client.playList({ state: 'ended' }), { plays: [], total: 0 })
  t.match(await client.stop(play.id), { state: 'stopped' })
  const anonymous = new PromptPlayerClient({ url: (client as unknown as { base: string }).base })
  await t.rejects(anonymous.listPrompts(), { statusCode: 401, code: 'MISSING_TOKEN' })
  await t.rejects(async () => { for await (const _ of anonymous.events()) break }, { statusCode: 401, code: 'MISSING_TOKEN' })
})

t.test('SSE resume: reconnecting with Last-Event-ID replays what was missed; an id from another run replays nothing', async t => {
  const { client, url } = await server(t)
  const receiver = await Receiver.open(t)
  // Follow until the play has started, then go away.
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] })
  let lastId: string | null = null
  for await (const event of client.events({ lastEventId: 'x' })) {
    // 'x' is not an id of this run: nothing is replayed, so this is the next live event.
    lastId = event.id
    t.match(event, { type: 'play.finished', play: { id: play.id } }, 'with a foreign id, only live events')
    break
  }
  t.match(lastId, /^[0-9a-f]{8}-2$/, 'ids are <run>-<sequence>')
  // Two more plays start and end while nobody listens.
  const second = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] })
  const third = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] })
  await client.stop(second.id)
  await client.stop(third.id)
  const replayed: string[] = []
  for await (const event of client.events({ lastEventId: lastId! })) {
    replayed.push(`${event.type} ${event.play.id === second.id ? 'second' : 'third'} ${event.id!.split('-')[1]}`)
    if (replayed.length === 4) break
  }
  t.same(replayed, ['play.started second 3', 'play.started third 4', 'play.stopped second 5', 'play.stopped third 6'], 'the four missed events, in order, with their ids')
  const narrowed: string[] = []
  for await (const event of client.events({ lastEventId: lastId!, play: third.id })) {
    narrowed.push(event.type)
    if (narrowed.length === 2) break
  }
  t.same(narrowed, ['play.started', 'play.stopped'], '?play= narrows the replay too')
  // What the stream says to a client whose id is from another run.
  const res = await fetch(`${url}/v1/events`, { headers: { 'last-event-id': '0badf00d-3' } })
  const reader = res.body!.getReader()
  let text = ''
  while (!text.includes('nothing replayed')) text += new TextDecoder().decode((await reader.read()).value)
  await reader.cancel()
  t.match(text, /: Last-Event-ID "0badf00d-3" is not from this run of this instance \(it restarted, or another one answered\); nothing replayed, GET \/v1\/plays has every play's state/)
})

t.test('SSE resume past what is kept: says which events are gone, replays the rest', async t => {
  const { app, url, client } = await server(t)
  const receiver = await Receiver.open(t)
  // 501 plays started and stopped: 1002 events, and the first two fall out of the 1000 kept.
  // This run's id prefix, from the first event.
  let run = ''
  const first = (async () => { for await (const event of client.events()) { run = event.id!.split('-')[0]!; break } })()
  await sleep(100)
  for (let i = 0; i < 501; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] } })
    await app.inject({ method: 'DELETE', url: `/v1/plays/${res.json().id}` })
  }
  await first
  t.match(run, /^[0-9a-f]{8}$/)
  const res = await fetch(`${url}/v1/events`, { headers: { 'last-event-id': `${run}-0` } })
  const reader = res.body!.getReader()
  let text = ''
  while ((text.match(/^event: /gm) ?? []).length < 1000) text += new TextDecoder().decode((await reader.read()).value)
  await reader.cancel()
  t.match(text, /: events 1 to 2 are no longer kept \(the last 1000 are\)/)
  t.equal((text.match(/^event: play\.(started|stopped)$/gm) ?? []).length, 1000, 'the 1000 kept are replayed')
  t.match(text, new RegExp(`id: ${run}-3\\nevent: play.started`), 'from the oldest kept')
})
