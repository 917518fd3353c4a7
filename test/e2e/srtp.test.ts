/**
 * SRTP end to end, judged by independent implementations, never by the project's own code:
 * ffmpeg (its own SRTP) as the call's far end decoding the AES-CM suites live; libsrtp 2
 * (GStreamer's srtpdec) opening every suite's SRTP and SRTCP packet by packet; libsrtp's srtpenc
 * sealing the far end's key presses and reports.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { parseRtpPacket } from 'rtp-parser'
import { keyPress, readSenderReport, receiverReport, type PlayEvent } from '../../src/index.js'
import { G711 } from '../../src/common/g711.js'
import { Receiver, buildApp, correlation, engineOf, referenceDecode, sample, waitUntil } from '../helpers/index.js'
import { ffmpegReceiver, libsrtpOpen, libsrtpSeal, type Suite } from '../helpers/srtp-judges.js'
import { spawnServer, waitForLine } from '../helpers/server-process.js'
import { follow } from '../helpers/sse.js'

const SUITES: Suite[] = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM', 'AEAD_AES_256_GCM']
const KEY_BYTES: Record<Suite, number> = { AES_CM_128_HMAC_SHA1_80: 30, AES_CM_128_HMAC_SHA1_32: 30, AEAD_AES_128_GCM: 28, AEAD_AES_256_GCM: 44 }

async function listen (t: Test): Promise<{ app: FastifyInstance, url: string }> {
  const app = await buildApp(t)
  return { app, url: await app.listen({ host: '127.0.0.1', port: 0 }) }
}

async function post (url: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  return { status: res.status, json: await res.json() }
}

/** A key for `suite` as a far end would offer it (random bytes, base64), with an optional |lifetime|MKI tail. */
function offerKey (suite: Suite, tail = ''): string {
  return Buffer.from(Array.from({ length: KEY_BYTES[suite] }, () => Math.floor(Math.random() * 256))).toString('base64') + tail
}

async function ended (app: FastifyInstance, id: string): Promise<any> {
  let play: any
  await waitUntil(async () => { play = (await app.inject({ url: `/v1/plays/${id}` })).json(); return play.state !== 'playing' }, `play ${id} to end`, 30_000, 20)
  return play
}

/** The stored audio of a prompt, padded with the codec's silence to whole 20 ms packets. */
function storedPackets (app: FastifyInstance, name: string): Buffer[] {
  const audio = engineOf(app).prompts.get(name)!.audio.PCMU
  const padded = Buffer.alloc(Math.ceil(audio.length / 160) * 160, G711.PCMU.silence)
  audio.copy(padded)
  return Array.from({ length: padded.length / 160 }, (_, k) => padded.subarray(k * 160, (k + 1) * 160))
}

t.test('AES-CM: ffmpeg, given the a=crypto line of the 201, decodes the prompt across the sequence wrap (ROC 0 to 1) and ends at the SRTCP BYE', async t => {
  const suite = 'AES_CM_128_HMAC_SHA1_80'
  const { app, url } = await listen(t)
  const key = offerKey(suite)
  const ffmpeg = await ffmpegReceiver(t, { suite, key })
  // From 65,400, two loops of welcome (2 x 100 packets): the sequence wraps at packet 136.
  const res = await post(`${url}/v1/plays`, { target: { host: '127.0.0.1', port: ffmpeg.port }, prompts: ['welcome'], loop: 2, firstSequence: 65400, srtp: { suite, localKey: key } })
  t.equal(res.status, 201)
  t.same(res.json.srtp, { suite, localKey: key }, 'the 201 answers the key the play sends with')
  const decoded = await ffmpeg.done
  t.ok(ffmpeg.endedByItself(), 'ffmpeg ended by itself: it opened the SRTCP BYE')
  const play = await ended(app, res.json.id)
  t.equal(play.packetsSent, 2 * storedPackets(app, 'welcome').length)
  const reference = await referenceDecode(sample('welcome').path)
  const c = correlation(decoded.subarray(0, reference.length), reference)
  t.ok(c > 0.95, `the first loop correlates with the source: ${c.toFixed(3)}`)
  const second = correlation(decoded.subarray(reference.length + 500), reference.subarray(500), 800)
  t.ok(second > 0.95, `so does the second, past the wrap: ${second.toFixed(3)}`)
  t.ok(Math.abs(decoded.length - play.packetsSent * 160) <= 320, `every packet decoded: ${decoded.length} samples for ${play.packetsSent} packets`)
})

t.test('AES_CM_128_HMAC_SHA1_32: ffmpeg decodes the 32-bit-tagged SRTP', async t => {
  // ffmpeg 5.1 gives this suite's SRTCP a 32-bit tag too, where RFC 4568 §6.2.2 and libsrtp
  // keep 80 bits: it cannot read our (RFC) BYE, so it is stopped here once the play is over.
  // libsrtp checks this suite's SRTCP below.
  const suite = 'AES_CM_128_HMAC_SHA1_32'
  const { app, url } = await listen(t)
  const key = offerKey(suite)
  const ffmpeg = await ffmpegReceiver(t, { suite, key })
  const res = await post(`${url}/v1/plays`, { target: { host: '127.0.0.1', port: ffmpeg.port }, prompts: ['welcome'], srtp: { suite, localKey: key } })
  t.equal(res.status, 201)
  await ended(app, res.json.id)
  const decoded = await ffmpeg.stop()
  const reference = await referenceDecode(sample('welcome').path)
  const c = correlation(decoded, reference)
  t.ok(c > 0.95, `correlation ${c.toFixed(3)}`)
})

for (const [i, suite] of SUITES.entries()) {
  const mki = i % 2 === 0 ? '|2^31|1:1' : ''
  t.test(`${suite}${mki === '' ? '' : ' with an MKI'}: libsrtp opens every SRTP packet byte for byte, across the wrap, and every SRTCP report and the BYE`, async t => {
    const app = await buildApp(t)
    const receiver = await Receiver.open(t)
    const remoteKey = offerKey(suite, mki)
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], ssrc: 0x5eed, firstSequence: 65480, srtp: { suite, remoteKey } } })
    t.equal(res.statusCode, 201)
    const localKey: string = res.json().srtp.localKey
    const keyBytes = Buffer.from(localKey.split('|')[0]!, 'base64')
    t.equal(keyBytes.length, KEY_BYTES[suite], 'a made key has the suite\'s length')
    if (mki !== '') t.match(localKey, /\|2\^31\|1:1$/, 'and the lifetime and MKI form of the offer')
    const play = await ended(app, res.json().id)
    await waitUntil(() => receiver.rtcp.length >= play.reportsSent, 'every report, the BYE\'s included')
    const expected = storedPackets(app, 'welcome')
    t.equal(receiver.packets.length, expected.length, 'every packet arrived')
    const opened = await libsrtpOpen(t, { suite, key: localKey, ssrc: 0x5eed, packets: receiver.packets.map(p => p.raw) })
    t.equal(opened.length, expected.length, `libsrtp authenticated and opened all ${expected.length} packets`)
    let bad = 0
    for (const [k, raw] of opened.entries()) {
      const rtp = parseRtpPacket(raw)
      const problems = []
      if (rtp.sequenceNumber !== (65480 + k) % 65536) problems.push('sequence')
      if (rtp.ssrc !== 0x5eed || rtp.payloadType !== 0 || rtp.marker !== (k === 0 ? 1 : 0)) problems.push('header')
      if (!rtp.payload.equals(expected[k]!)) problems.push('payload')
      if (problems.length > 0 && bad++ < 3) t.fail(`packet ${k}: ${problems.join(', ')}`)
    }
    t.equal(bad, 0, 'headers and payloads are the stored audio, in order')
    const sealed = receiver.packets[0]!.raw
    t.not(sealed.subarray(12, 172).toString('hex'), expected[0]!.toString('hex'), 'what went on the wire was not the audio in the clear')

    const reports = await libsrtpOpen(t, { suite, key: localKey, ssrc: 0x5eed, packets: receiver.rtcp.map(p => p.raw), rtcp: true })
    t.equal(reports.length, play.reportsSent, `libsrtp opened all ${play.reportsSent} SRTCP packets`)
    const last = readSenderReport(reports.at(-1)!)
    t.match(last, { ssrc: 0x5eed, bye: true, packets: expected.length, octets: expected.length * 160, cname: `${play.id as string}@prompt-player` }, 'the last is the SR with the BYE, counting every packet')
  })
}

t.test('the far end\'s digits: only what its key authenticates counts; plaintext, forged and replayed packets are dropped and counted', async t => {
  const suite = 'AES_CM_128_HMAC_SHA1_80'
  const app = await buildApp(t)
  const events: PlayEvent[] = []
  engineOf(app).events.on('play', e => events.push(e))
  const receiver = await Receiver.open(t)
  const remoteKey = offerKey(suite)
  const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], loop: 0, dtmf: { stopOn: '#' }, srtp: { suite, remoteKey } } })
  const play = res.json()
  await receiver.waitFor(3)
  const to: number = play.source.port
  const state = async (): Promise<any> => (await app.inject({ url: `/v1/plays/${play.id as string}` })).json()

  // A plaintext '#', as a caller without SRTP (or an attacker) would send it.
  const plain = keyPress('#', { ssrc: 0xabc, sequence: 100, timestamp: 8000 })
  for (const p of plain) await receiver.send(p, to)
  await waitUntil(async () => (await state()).received.unauthenticated === plain.length, 'the plaintext packets counted')
  // A '5' sealed by libsrtp with the far end's key: reported once.
  const five = await libsrtpSeal(t, { suite, key: remoteKey, packets: keyPress('5', { ssrc: 0xabc, sequence: 200, timestamp: 16000 }) })
  t.equal(five.length, 7, 'libsrtp sealed the key press')
  for (const p of five) await receiver.send(p, to)
  await waitUntil(() => events.some(e => e.type === 'play.dtmf'), 'the authentic 5')
  // The same packets again (a replay), then a '#' with one bit of its tag changed (a forgery).
  for (const p of five) await receiver.send(p, to)
  const hash = await libsrtpSeal(t, { suite, key: remoteKey, packets: keyPress('#', { ssrc: 0xabc, sequence: 300, timestamp: 24000 }) })
  for (const p of hash) {
    const forged = Buffer.from(p)
    forged[forged.length - 1]! ^= 1
    await receiver.send(forged, to)
  }
  const dropped = plain.length + five.length + hash.length
  await waitUntil(async () => (await state()).received.unauthenticated === dropped, `all ${dropped} bad packets counted`)
  const now = await state()
  t.match(now, { state: 'playing', received: { digits: '5', unauthenticated: dropped } }, 'the play goes on; only the authentic 5 was read')
  t.same(events.filter(e => e.type === 'play.dtmf').map(e => e.digit), ['5'], 'one play.dtmf, for the 5')

  // The genuine '#' stops the play at its first packet, as with plain RTP.
  const before = receiver.packets.length
  await receiver.send(hash[0]!, to)
  const stopped = await ended(app, play.id)
  t.match(stopped, { state: 'stopped', stoppedBy: 'dtmf', received: { digits: '5#' } })
  t.ok(receiver.packets.length - before <= 2, `no more than a packet in flight after the authentic # (${receiver.packets.length - before})`)
})

t.test('without remoteKey, everything arriving is dropped as unauthenticated, the far end\'s SRTCP included', async t => {
  const suite = 'AEAD_AES_128_GCM'
  const app = await buildApp(t)
  const receiver = await Receiver.open(t)
  const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], loop: 0, dtmf: { stopOn: '#' }, srtp: { suite } } })
  const play = res.json()
  const sealed = await libsrtpSeal(t, { suite, key: offerKey(suite), packets: keyPress('#', { ssrc: 0xabc, sequence: 1, timestamp: 1 }) })
  for (const p of sealed) await receiver.send(p, play.source.port)
  await receiver.sendRtcp(receiverReport({ ssrc: 0xabc, about: play.ssrc }), play.source.port + 1)
  const state = async (): Promise<any> => (await app.inject({ url: `/v1/plays/${play.id as string}` })).json()
  await waitUntil(async () => (await state()).received.unauthenticated === sealed.length + 1, 'every packet counted')
  t.match(await state(), { state: 'playing', remote: null, received: { digits: '' } })
})

for (const suite of ['AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_256_GCM'] as Suite[]) {
  t.test(`${suite}: the far end's receiver report, sealed by libsrtp, fills in remote; the same report in the clear does not`, async t => {
    const app = await buildApp(t)
    const receiver = await Receiver.open(t)
    const remoteKey = offerKey(suite, '|2^31|1:1')
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], loop: 0, srtp: { suite, remoteKey } } })
    const play = res.json()
    const report = receiverReport({ ssrc: 0xfeed, about: play.ssrc, fractionLost: 0.25, packetsLost: 7, jitter: 40 })
    await receiver.sendRtcp(report, play.source.port + 1)
    const state = async (): Promise<any> => (await app.inject({ url: `/v1/plays/${play.id as string}` })).json()
    await waitUntil(async () => (await state()).received.unauthenticated === 1, 'the plaintext report counted')
    t.equal((await state()).remote, null, 'a report in the clear is not read')
    const [sealed] = await libsrtpSeal(t, { suite, key: remoteKey, packets: [report], rtcp: true })
    await receiver.sendRtcp(sealed!, play.source.port + 1)
    await waitUntil(async () => (await state()).remote !== null, 'the sealed report read')
    t.match(await state(), { remote: { fractionLost: 0.25, packetsLost: 7, jitterMs: 5 }, received: { reports: 1, unauthenticated: 1 } })
    await receiver.sendRtcp(sealed!, play.source.port + 1)
    await waitUntil(async () => (await state()).received.unauthenticated === 2, 'the replayed report counted')
    t.equal((await state()).received.reports, 1, 'and not read again')
  })
}

t.test('refusals: each a 400 that names what is wrong and never repeats a key', async t => {
  const app = await buildApp(t)
  const receiver = await Receiver.open(t)
  const key20 = Buffer.alloc(20, 3).toString('base64')
  const key30 = Buffer.alloc(30, 3).toString('base64')
  const cases: Array<[unknown, RegExp, string]> = [
    [{ suite: 'AES_CM_128_HMAC_SHA1_80', remoteKey: key20 }, /^srtp\.remoteKey holds 20 bytes of key and salt; AES_CM_128_HMAC_SHA1_80 needs 30 \(a 16-byte key and a 14-byte salt\)$/, 'a key of the wrong length: both lengths'],
    [{ suite: 'AEAD_AES_128_GCM', localKey: key30 }, /^srtp\.localKey holds 30 bytes of key and salt; AEAD_AES_128_GCM needs 28/, 'a wrong local key'],
    [{ suite: 'F8_128_HMAC_SHA1_80' }, /^srtp\.suite "F8_128_HMAC_SHA1_80" is not a suite prompt-player speaks; use one of AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM/, 'an unknown suite, named'],
    [{ suite: 'UNENCRYPTED_SRTP' }, /"UNENCRYPTED_SRTP" is not a suite/, 'a session parameter given as the suite'],
    [{ suite: 'AES_CM_128_HMAC_SHA1_80', remoteKey: `${key30}|2^20|1:4 UNENCRYPTED_SRTP` }, /^srtp\.remoteKey has the session parameter UNENCRYPTED_SRTP; prompt-player supports none/, 'a session parameter after the key'],
    [{ suite: 'AES_CM_128_HMAC_SHA1_80', remoteKey: `inline:${key30} KDR=1` }, /session parameter KDR/, 'KDR'],
    [{ suite: 'AES_CM_128_HMAC_SHA1_80', remoteKey: '%%%' }, /is not base64 key material/, 'not base64'],
    [{ suite: 'AES_CM_128_HMAC_SHA1_80', secret: 'x' }, /srtp/, 'an unknown field']
  ]
  for (const [srtp, message, what] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], srtp } })
    t.equal(res.statusCode, 400, what)
    t.match(res.json(), { code: 'INVALID_REQUEST', message }, what)
    t.notMatch(res.body, /AwMDAwMDAwMDAwMD/, `${what}: the key is not in the answer`)
  }
  t.equal((await app.inject({ url: '/v1/plays' })).json().total, 0, 'no play started')
  t.equal(receiver.packets.length, 0, 'nothing sent')
})

t.test('no key anywhere but the 201: not in GET, lists, SSE, webhooks, logs at trace level, or metrics', async t => {
  const hooks: string[] = []
  const hook = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => { hooks.push(body); res.end() })
  })
  await new Promise<void>(resolve => hook.listen(0, '127.0.0.1', resolve))
  t.teardown(() => hook.close())
  const run = spawnServer(t, { PROMPT_PLAYER_LOG_LEVEL: 'trace', PROMPT_PLAYER_ALLOWED_CALLBACKS: '127.0.0.0/8' })
  const { url } = JSON.parse(await waitForLine(run, /prompt-player listening/))
  const sse = follow(url)
  t.teardown(() => sse.stop())
  await sse.ready
  const receiver = await Receiver.open(t)
  const suite = 'AES_CM_128_HMAC_SHA1_80'
  const remoteKey = offerKey(suite, '|2^31|1:1')
  const res = await post(`${url as string}/v1/plays`, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'], srtp: { suite, remoteKey }, callbackUrl: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook` })
  t.equal(res.status, 201)
  const localKey: string = res.json.srtp.localKey
  const secrets = [localKey.split('|')[0]!, remoteKey.split('|')[0]!]
  // Each key also as the hex and raw forms a careless log line might print.
  for (const key of [...secrets]) secrets.push(Buffer.from(key, 'base64').toString('hex'))
  const id: string = res.json.id
  await fetch(`${url as string}/v1/plays/${id}`, { method: 'DELETE' })
  await waitUntil(() => hooks.length >= 2 && sse.events.some(e => e.type === 'play.stopped'), 'the webhooks and the SSE events')
  const seen: Record<string, string> = {
    get: await (await fetch(`${url as string}/v1/plays/${id}`)).text(),
    list: await (await fetch(`${url as string}/v1/plays`)).text(),
    sse: JSON.stringify(sse.events),
    webhooks: hooks.join('\n'),
    metrics: await (await fetch(`${url as string}/metrics`)).text(),
    logs: run.lines.join('\n')
  }
  t.match(JSON.parse(seen.get!), { srtp: { suite } }, 'GET shows the suite')
  t.notOk('localKey' in JSON.parse(seen.get!).srtp, 'and no key field')
  t.ok(run.lines.some(l => /"msg":"play started"/.test(l)) && run.lines.some(l => /"url":"\/v1\/plays","method":"POST"|"method":"POST","url":"\/v1\/plays"/.test(l)), 'the log (at trace level: every line any level writes) has the request and the play')
  for (const [where, text] of Object.entries(seen)) {
    t.notOk(secrets.some(s => text.includes(s)), `no key in ${where}`)
  }
})

t.test('controls under SRTP: pause in silence and in hold, seek, loop; libsrtp opens every packet, the sequence never jumps, the media clock holds', async t => {
  for (const [suite, pauseMode] of [['AES_CM_128_HMAC_SHA1_32', 'silence'], ['AEAD_AES_128_GCM', 'hold']] as Array<[Suite, 'silence' | 'hold']>) {
    const app = await buildApp(t)
    const receiver = await Receiver.open(t)
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], loop: 2, pauseMode, ssrc: 77, firstSequence: 65500, srtp: { suite } } })
    const play = res.json()
    const control = async (body: object): Promise<void> => { await app.inject({ method: 'POST', url: `/v1/plays/${play.id as string}/control`, payload: body }) }
    await receiver.waitFor(20)
    await control({ operation: 'pause' })
    const pausedAt = receiver.packets.length
    await waitUntil(() => performance.now() - receiver.packets.at(-1)!.at > 150 || receiver.packets.length >= pausedAt + 8, 'the pause to last eight packet times')
    await control({ operation: 'resume' })
    await control({ operation: 'seek', positionMs: 1500 })
    const done = await ended(app, play.id)
    t.equal(done.state, 'finished', `${suite}/${pauseMode}: finished`)
    t.equal(receiver.packets.length, done.packetsSent, 'every packet arrived')
    const opened = await libsrtpOpen(t, { suite, key: res.json().srtp.localKey, ssrc: 77, packets: receiver.packets.map(p => p.raw) })
    t.equal(opened.length, receiver.packets.length, `${suite}/${pauseMode}: libsrtp opened all ${opened.length} packets, across pause, seek, loop and the wrap`)
    const rtp = opened.map(raw => parseRtpPacket(raw))
    t.ok(rtp.every((p, k) => p.sequenceNumber === (65500 + k) % 65536), 'the sequence never jumps')
    const steps = rtp.slice(1).map((p, k) => (p.timestamp - rtp[k]!.timestamp + 2 ** 32) % 2 ** 32)
    if (pauseMode === 'silence') {
      t.ok(steps.every(s => s === 160), 'in silence, every timestamp step is one packet')
      t.ok(rtp.some(p => p.payload.every(b => b === 0xff)), 'the silence is there, sealed')
      t.equal(rtp.filter(p => p.marker === 1).length, 1, 'one marker, on the first packet')
    } else {
      const jumps = steps.filter(s => s !== 160)
      t.equal(jumps.length, 1, 'in hold, one timestamp jump: over the time paused')
      t.equal(jumps[0]! % 160, 0, 'a whole number of packet times')
      t.equal(rtp.filter(p => p.marker === 1).length, 2, 'markers on the first packet and on the first after the hold')
    }
  }
})
