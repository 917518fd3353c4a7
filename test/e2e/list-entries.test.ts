/**
 * Entries of a play's list other than prompts, on a real server: silence (`{"silence": ms}`)
 * between prompts, in the same stream. Checked packet by packet (the prompts' payloads byte for
 * byte, the silence as G.711's zero, the sequence and timestamps unbroken), decoded by ffmpeg as
 * the far end of an SDP in every codec (quiet for the silence's length), counted in durationMs,
 * position, seek and loop; and refused with a message when out of range.
 */
import { execFileSync } from 'node:child_process'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { Receiver, buildApp, engineOf, framesOf, longestQuiet, referenceDecode, waitUntil } from '../helpers/index.js'
import { ffmpegReceiver } from '../helpers/srtp-judges.js'

async function post (app: FastifyInstance, url: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await app.inject({ method: 'POST', url, payload: body as object })
  return { status: res.statusCode, json: res.json() }
}

/** White noise prompts (never quiet, every packet different) at 16 kHz. */
async function noise (app: FastifyInstance, seconds: Record<string, number>): Promise<void> {
  let seed = 7
  for (const [name, d] of Object.entries(seconds)) {
    const wav = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `anoisesrc=d=${d}:c=white:a=0.5:seed=${seed++}`, '-ar', '16000', '-ac', '1', '-f', 'wav', '-'])
    const res = await app.inject({ method: 'PUT', url: `/v1/prompts/${name}`, payload: wav })
    if (res.statusCode !== 201) throw new Error(`noise upload: ${res.body}`)
  }
}

t.test('silence between two prompts: exactly its packets of G.711 zero, in the same unbroken stream', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.5, n2: 0.5 })
  const receiver = await Receiver.open(t)
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['n1', { silence: 750 }, 'n2'], rtcp: 'off' })
  t.equal(res.status, 201, res.json.message)
  t.match(res.json, { prompts: ['n1', 'silence:750', 'n2'], durationMs: (25 + 38 + 25) * 20 }, 'listed as "silence:750"; 750 ms is 38 packets of 20 ms, rounded up')
  await waitUntil(async () => (await app.inject({ url: `/v1/plays/${res.json.id as string}` })).json().state === 'finished', 'the play to finish')
  const packets = await receiver.waitFor(88)
  t.equal(packets.length, 88, 'the prompts\' 50 packets and the silence\'s 38')
  const n1 = framesOf(engineOf(app).prompts.get('n1')!, 'PCMU', 20)
  const n2 = framesOf(engineOf(app).prompts.get('n2')!, 'PCMU', 20)
  t.ok(packets.slice(0, 25).every((p, i) => p.rtp.payload.equals(n1[i]!)), 'n1 byte for byte')
  t.ok(packets.slice(25, 63).every(p => p.rtp.payload.length === 160 && p.rtp.payload.every(b => b === 0xff)), 'then 38 payloads of µ-law zero (0xFF)')
  t.ok(packets.slice(63).every((p, i) => p.rtp.payload.equals(n2[i]!)), 'then n2 byte for byte')
  const first = packets[0]!.rtp
  t.ok(packets.every((p, i) => p.rtp.sequenceNumber === (first.sequenceNumber + i) % 65536 && p.rtp.timestamp === (first.timestamp + i * 160) % 2 ** 32 && p.rtp.ssrc === first.ssrc), 'one stream: sequence and timestamp step by one packet throughout')
  t.same(packets.map((p, i) => p.rtp.marker ? i : -1).filter(i => i >= 0), [0], 'the marker on the first packet only')
  const decoded = await referenceDecode(Buffer.concat(packets.map(p => p.rtp.payload)), 'mulaw')
  t.ok(decoded.slice(25 * 160, 63 * 160).every(x => x === 0), 'ffmpeg decodes the silence to zero')
})

t.test('in every codec, ffmpeg as the far end hears the silence\'s length of quiet between the prompts', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.5, n2: 0.5 })
  for (const [codec, rate] of [['PCMU', 8000], ['PCMA', 8000], ['G722', 16000], ['opus', 48000]] as const) {
    const ffmpeg = await ffmpegReceiver(t, { codec, sampleRate: rate })
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: ffmpeg.port }, prompts: ['n1', { silence: 600 }, 'n2'], codec })
    t.equal(res.status, 201, res.json.message)
    const heard = await ffmpeg.done
    const quiet = longestQuiet(heard, rate)
    // Noise is never quiet for long; decoders smear a few ms into the silence at each edge.
    t.ok(quiet > 540 && quiet < 660, `${codec}: ${quiet.toFixed(0)} ms of quiet for a silence of 600 ms`)
    t.ok(heard.length / rate > 1.5, `${codec}: all of it arrived (${(heard.length / rate).toFixed(2)} s decoded)`)
  }
})

t.test('silence counts in position, seek, offset and loop like a prompt of its length', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.5 })
  const receiver = await Receiver.open(t)
  // Starting 200 ms into the silence, looped twice: 30 packets of silence, n1, then the list again.
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ silence: 400 }, 'n1', { silence: 200 }], offsetMs: 200, loop: 2, rtcp: 'off' })
  t.equal(res.status, 201, res.json.message)
  t.equal(res.json.durationMs, 1100, '400 + 500 + 200 ms')
  await waitUntil(async () => (await app.inject({ url: `/v1/plays/${res.json.id as string}` })).json().state === 'finished', 'the play to finish', 20_000)
  const payloads = (await receiver.waitFor(10 + 25 + 10 + 55)).map(p => p.rtp.payload)
  t.equal(payloads.length, 100, 'the first loop from 200 ms (45 packets), then the whole list (55)')
  const isZero = (b: Buffer): boolean => b.every(x => x === 0xff)
  const shape = (from: number, to: number): boolean => payloads.slice(from, to).every(isZero)
  t.ok(shape(0, 10) && !payloads.slice(10, 35).some(isZero) && shape(35, 45) && shape(45, 65) && !payloads.slice(65, 90).some(isZero) && shape(90, 100), 'silence, n1, silence; then again from the start')
  const seekPlay = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port + 2 }, prompts: ['n1', { silence: 60000 }], rtcp: 'off' })
  t.equal(seekPlay.status, 201)
  t.equal((await post(app, `/v1/plays/${seekPlay.json.id as string}/control`, { operation: 'seek', positionMs: 30000 })).status, 200, 'a seek into the silence')
  const at = (await app.inject({ url: `/v1/plays/${seekPlay.json.id as string}` })).json()
  t.ok(at.positionMs >= 30000 && at.positionMs < 30200, `lands there (${at.positionMs as number} ms of ${at.durationMs as number})`)
  await app.inject({ method: 'DELETE', url: `/v1/plays/${seekPlay.json.id as string}` })
})

t.test('silence out of range is refused with where and why, and nothing starts', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.2 })
  const receiver = await Receiver.open(t)
  for (const silence of [0, 60001, 1.5, -5, 'long']) {
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['n1', { silence }] })
    t.equal(res.status, 400, `silence ${JSON.stringify(silence)}: 400`)
    t.match(res.json, { code: 'INVALID_REQUEST', message: /prompts\/1\/silence must be/ }, `silence ${JSON.stringify(silence)}: ${res.json.message as string}`)
  }
  t.equal(engineOf(app).plays.runningCount, 0, 'no play started')
  t.equal(receiver.packets.length, 0, 'no packet was sent')
  await t.rejects(engineOf(app).plays.create({ target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ silence: 0 }] }), { code: 'INVALID_REQUEST', message: /prompts\[0\]: silence 0 is not a whole number of ms from 1 to 60000/ }, 'the engine checks it too')
})
