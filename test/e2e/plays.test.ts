/**
 * Plays end to end: a real server on a real port, POST /v1/plays over HTTP, and the packets
 * received by a UDP socket on 127.0.0.1 and checked one by one.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { CODECS } from '../../src/common/codecs.js'
import { G711, type Law } from '../../src/common/g711.js'
import { Receiver, buildApp, engineOf, correlation, referenceDecode, sample, sleep, type Received } from '../helpers/index.js'

async function listen (t: Test): Promise<{ app: FastifyInstance, url: string }> {
  const app = await buildApp(t)
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url: address }
}

async function call (url: string, method: string, body?: unknown): Promise<{ status: number, json: any, headers: Headers }> {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers }
}

/** Every wire rule of API.md, packet by packet. */
function checkStream (t: Test, packets: Received[], play: any, expectedPayload: Buffer): void {
  const bytes = play.ptimeMs * 8
  const first = packets[0]!.rtp
  t.equal(packets.length, expectedPayload.length / bytes, `${play.codec}/${play.ptimeMs}: every packet arrived (${packets.length})`)
  let bad = 0
  for (const [k, { rtp, from }] of packets.entries()) {
    const problems = []
    if (rtp.version !== 2 || rtp.padding !== 0 || rtp.extension !== 0 || rtp.csrcCount !== 0) problems.push('V/P/X/CC')
    if (rtp.marker !== (k === 0 ? 1 : 0)) problems.push('marker')
    if (rtp.payloadType !== play.payloadType) problems.push('PT')
    if (rtp.ssrc !== play.ssrc) problems.push('SSRC')
    if (rtp.sequenceNumber !== (first.sequenceNumber + k) % 65536) problems.push('sequence')
    if (rtp.timestamp !== (first.timestamp + k * bytes) % 2 ** 32) problems.push('timestamp')
    if (rtp.payload.length !== bytes) problems.push('payload size')
    if (from.port !== play.source.port) problems.push('source port')
    if (problems.length > 0 && bad++ < 5) t.fail(`packet ${k}: ${problems.join(', ')}`)
  }
  t.equal(bad, 0, `${play.codec}/${play.ptimeMs}: all ${packets.length} packets follow the wire rules`)
  t.same(Buffer.concat(packets.map(p => p.rtp.payload)), expectedPayload, `${play.codec}/${play.ptimeMs}: the payloads are the stored audio, each prompt padded with silence`)
}

/** The stored audio of the prompts, each padded with the codec's silence to whole packets. */
async function storedAudio (app: FastifyInstance, names: string[], codec: Law, ptimeMs: number): Promise<Buffer> {
  const parts = []
  for (const name of names) {
    const audio = engineOf(app).prompts.get(name)!.audio[codec]
    const size = Math.ceil(audio.length / (ptimeMs * 8)) * ptimeMs * 8
    const padded = Buffer.alloc(size, G711[codec].silence)
    audio.copy(padded)
    parts.push(padded)
  }
  return Buffer.concat(parts)
}

t.test('two prompts as one stream: headers, continuity, payloads, pacing, and the audio a caller hears', async t => {
  const { app, url } = await listen(t)
  const receiver = await Receiver.open(t)
  const prompts = ['welcome', 'renamed']
  const res = await call(`${url}/v1/plays`, 'POST', { target: { host: '127.0.0.1', port: receiver.port }, prompts })
  t.equal(res.status, 201)
  const play = res.json
  t.match(play, { state: 'playing', codec: 'PCMU', payloadType: 0, ptimeMs: 20, prompts, target: { host: '127.0.0.1', port: receiver.port }, source: { host: '0.0.0.0' } })
  t.equal(res.headers.get('location'), `/v1/plays/${play.id}`)
  t.match(play.id, /^p_[0-9A-Z]{26}$/)
  const expected = await storedAudio(app, prompts, 'PCMU', 20)
  t.equal(play.durationMs, expected.length / 8, 'durationMs counts whole packets')
  const packets = await receiver.waitFor(expected.length / 160, 15_000)
  await sleep(100)
  checkStream(t, packets, play, expected)

  // Where the first prompt ends, the stream goes on with no jump: the timestamp step across the
  // boundary is one packet like every other (checked above); here the boundary is located.
  const boundary = Math.ceil(engineOf(app).prompts.get('welcome')!.audio.PCMU.length / 160)
  t.equal(packets[boundary]!.rtp.timestamp, (packets[boundary - 1]!.rtp.timestamp + 160) % 2 ** 32, 'continuous timestamps across the prompt boundary')
  t.equal(packets[boundary]!.rtp.marker, 0, 'no marker at the boundary')

  // Pacing, loosely (precise figures belong to the benchmark): the mean gap is the ptime, and
  // the stream did not run ahead of its media clock. Each packet's arrival against its own due
  // time (k × 20 ms), medianed over the first and the last 25 packets: a receiver delayed at
  // one packet (a busy test machine) moves one offset, a burst moves every later one.
  const span = packets.at(-1)!.at - packets[0]!.at
  const mean = span / (packets.length - 1)
  t.ok(Math.abs(mean - 20) < 1, `mean gap ${mean.toFixed(3)} ms over ${packets.length} packets`)
  const offsets = packets.map((p, k) => p.at - k * 20)
  const med = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!
  const drift = med(offsets.slice(-25)) - med(offsets.slice(0, 25))
  t.ok(drift > -10, `no bursts: the last packets arrived ${drift.toFixed(1)} ms off their media time against the first`)

  // The caller hears the source: decode what arrived and compare it with ffmpeg's own decode.
  const heard = await referenceDecode(Buffer.concat(packets.slice(0, boundary).map(p => p.rtp.payload)), 'mulaw')
  const source = await referenceDecode(sample('welcome').path)
  const c = correlation(source, heard, 40)
  t.ok(c > 0.95, `what arrived correlates with the source at ${c.toFixed(4)}`)
  const wrong = correlation(await referenceDecode(sample('goodbye').path), heard, 40)
  t.ok(wrong < 0.5, `and not with another prompt (${wrong.toFixed(3)})`)
})

t.test('both codecs at every ptime, eight plays at once', async t => {
  const { app, url } = await listen(t)
  const runs = []
  for (const codec of ['PCMU', 'PCMA'] as const) {
    for (const ptimeMs of [10, 20, 30, 40]) {
      const receiver = await Receiver.open(t)
      const res = await call(`${url}/v1/plays`, 'POST', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'], codec, ptimeMs })
      t.equal(res.status, 201, `${codec}/${ptimeMs} started`)
      t.equal(res.json.payloadType, CODECS[codec].payloadType, `${codec}: default payload type`)
      runs.push({ receiver, play: res.json, codec, ptimeMs })
    }
  }
  for (const { receiver, play, codec, ptimeMs } of runs) {
    const expected = await storedAudio(app, ['goodbye'], codec, ptimeMs)
    const packets = await receiver.waitFor(expected.length / (ptimeMs * 8), 15_000)
    checkStream(t, packets, play, expected)
    const mean = (packets.at(-1)!.at - packets[0]!.at) / (packets.length - 1)
    t.ok(Math.abs(mean - ptimeMs) < 1, `${codec}/${ptimeMs}: mean gap ${mean.toFixed(3)} ms`)
  }
  await sleep(200)
  for (const { play } of runs) {
    const got = await call(`${url}/v1/plays/${play.id}`, 'GET')
    t.match(got.json, { state: 'finished', packetsSent: play.durationMs / play.ptimeMs, octetsSent: play.durationMs * 8, endedAt: /Z$/ }, `${play.codec}/${play.ptimeMs}: finished with its counters`)
  }
})

t.test('a requested SSRC and payload type are used as given', async t => {
  const { url } = await listen(t)
  const receiver = await Receiver.open(t)
  const res = await call(`${url}/v1/plays`, 'POST', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], codec: 'PCMA', payloadType: 101, ssrc: 305419896 })
  t.match(res.json, { ssrc: 305419896, payloadType: 101, codec: 'PCMA' })
  const [p] = await receiver.waitFor(1)
  t.equal(p!.rtp.ssrc, 305419896)
  t.equal(p!.rtp.payloadType, 101)
  await call(`${url}/v1/plays/${res.json.id}`, 'DELETE')
})

t.test('DELETE stops within one ptime, and no packet leaves after it answers', async t => {
  const { url } = await listen(t)
  const receiver = await Receiver.open(t)
  const res = await call(`${url}/v1/plays`, 'POST', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] })
  await receiver.waitFor(25)
  const stopped = await call(`${url}/v1/plays/${res.json.id}`, 'DELETE')
  t.equal(stopped.status, 200)
  t.match(stopped.json, { state: 'stopped', endedAt: /Z$/ })
  const sent = stopped.json.packetsSent
  t.ok(sent < res.json.durationMs / 20, `stopped mid-play after ${sent} packets`)
  await sleep(300)
  t.equal(receiver.packets.length, sent, 'exactly the packets counted before the stop arrived, none after')
  const last = receiver.packets.at(-1)!.rtp.sequenceNumber
  t.equal(last, (receiver.packets[0]!.rtp.sequenceNumber + sent - 1) % 65536, 'the last packet is the last one counted')
  const again = await call(`${url}/v1/plays/${res.json.id}`, 'DELETE')
  t.match(again.json, { state: 'stopped', packetsSent: sent }, 'a second DELETE answers the final state')
  const listed = await call(`${url}/v1/plays`, 'GET')
  t.match(listed.json.plays, [{ id: res.json.id, state: 'stopped' }], 'the ended play is still listed')
})

t.test('a prompt deleted while it plays keeps playing to the end', async t => {
  const { app, url } = await listen(t)
  const receiver = await Receiver.open(t)
  const res = await call(`${url}/v1/plays`, 'POST', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'] })
  await receiver.waitFor(5)
  t.equal((await call(`${url}/v1/prompts/goodbye`, 'DELETE')).status, 204)
  const expected = res.json.durationMs / 20
  await receiver.waitFor(expected, 10_000)
  await sleep(100)
  t.equal(receiver.packets.length, expected, 'every packet of the deleted prompt was sent')
  t.equal(engineOf(app).prompts.get('goodbye'), undefined)
})

t.test('IPv6 targets', async t => {
  const { url } = await listen(t)
  const receiver = await Receiver.open(t, '::1')
  const res = await call(`${url}/v1/plays`, 'POST', { target: { host: '::1', port: receiver.port }, prompts: ['welcome'] })
  t.equal(res.status, 201)
  t.match(res.json.source, { host: '::' })
  const [p] = await receiver.waitFor(3)
  t.equal(p!.from.port, res.json.source.port, 'packets come from the reported source port')
  await call(`${url}/v1/plays/${res.json.id}`, 'DELETE')
})

t.test('bad play requests: 400, 404 and 403 with a message to act on, and nothing sent', async t => {
  const { app, url } = await listen(t)
  const receiver = await Receiver.open(t)
  const target = { host: '127.0.0.1', port: receiver.port }
  const cases: Array<[string, unknown, number, string, RegExp]> = [
    ['no prompts', { target, prompts: [] }, 400, 'INVALID_REQUEST', /prompts/],
    ['no target', { prompts: ['welcome'] }, 400, 'INVALID_REQUEST', /target/],
    ['a host name instead of an address', { target: { host: 'example.com', port: 4000 }, prompts: ['welcome'] }, 400, 'INVALID_REQUEST', /host/],
    ['port 0', { target: { host: '127.0.0.1', port: 0 }, prompts: ['welcome'] }, 400, 'INVALID_REQUEST', /port/],
    ['ptime 25', { target, prompts: ['welcome'], ptimeMs: 25 }, 400, 'INVALID_REQUEST', /ptimeMs/],
    ['codec G729', { target, prompts: ['welcome'], codec: 'G729' }, 400, 'INVALID_REQUEST', /codec/],
    ['a misspelt field', { target, prompts: ['welcome'], codce: 'PCMA' }, 400, 'INVALID_REQUEST', /additional/],
    ['an unknown prompt', { target, prompts: ['welcome', 'nope', 'nada'] }, 404, 'PROMPT_NOT_FOUND', /"nope", "nada"/],
    ['the unspecified address', { target: { host: '0.0.0.0', port: 4000 }, prompts: ['welcome'] }, 403, 'TARGET_NOT_ALLOWED', /unspecified/],
    ['the IPv6 unspecified address', { target: { host: '::', port: 4000 }, prompts: ['welcome'] }, 403, 'TARGET_NOT_ALLOWED', /unspecified/]
  ]
  for (const [what, body, status, code, message] of cases) {
    const res = await call(`${url}/v1/plays`, 'POST', body)
    t.equal(res.status, status, `${what}: ${status}`)
    t.match(res.json, { statusCode: status, code, message }, `${what}: ${code}`)
  }
  const xml = await fetch(`${url}/v1/plays`, { method: 'POST', body: '<play/>', headers: { 'content-type': 'application/xml' } })
  t.match(await xml.json(), { statusCode: 415, code: 'UNSUPPORTED_CONTENT_TYPE', message: /application\/json/ }, 'a body that is not JSON')
  const text = await fetch(`${url}/v1/plays`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } })
  t.match(await text.json(), { statusCode: 400, code: 'INVALID_REQUEST', message: /body must be object/ }, 'a text body')
  t.match((await call(`${url}/v1/plays/p_nope`, 'GET')).json, { statusCode: 404, code: 'PLAY_NOT_FOUND' })
  t.match((await call(`${url}/v1/plays/p_nope`, 'DELETE')).json, { statusCode: 404, code: 'PLAY_NOT_FOUND' })
  await sleep(50)
  t.equal(receiver.packets.length, 0, 'no packet was sent by any refused request')
  t.equal(engineOf(app).plays.runningCount, 0)
})

t.test('GET /v1/plays: running first, newest first; state narrows, limit cuts, total counts', async t => {
  const { url } = await listen(t)
  const receiver = await Receiver.open(t)
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const { json } = await call(`${url}/v1/plays`, 'POST', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'], loop: 0 })
    ids.push(json.id)
    await sleep(5)
  }
  await call(`${url}/v1/plays/${ids[2]}`, 'DELETE')
  t.teardown(async () => { for (const id of ids) await call(`${url}/v1/plays/${id}`, 'DELETE') })
  const list = async (query: string): Promise<{ status: number, json: any }> => await call(`${url}/v1/plays${query}`, 'GET')
  const all = await list('')
  t.same(all.json.plays.map((p: { id: string }) => p.id), [ids[1], ids[0], ids[2]], 'running (newest first), then the stopped one')
  t.equal(all.json.total, 3)
  const playing = (await list('?state=playing')).json
  t.same(playing.plays.map((p: { id: string }) => p.id), [ids[1], ids[0]])
  t.equal(playing.total, 2)
  for (const state of ['ended', 'stopped']) {
    const ended = (await list(`?state=${state}`)).json
    t.same([ended.plays.map((p: { id: string, state: string }) => `${p.id} ${p.state}`), ended.total], [[`${ids[2]} stopped`], 1], `state=${state}`)
  }
  t.same((await list('?state=failed')).json, { plays: [], total: 0 }, 'state=failed: none')
  const first = (await list('?limit=1')).json
  t.same([first.plays.map((p: { id: string }) => p.id), first.total], [[ids[1]], 3], 'limit=1: the newest running play; total still 3')
  for (const bad of ['?limit=0', '?limit=10001', '?limit=x', '?state=done']) {
    const res = await list(bad)
    t.equal(res.status, 400, bad)
    t.equal(res.json.code, 'INVALID_REQUEST')
  }
})
