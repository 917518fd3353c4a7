/**
 * RTCP between a play and a far end made of real UDP sockets: the sender reports checked
 * against the RTP packets that arrived, the BYE at the end and on stop, "mux" and "off", the
 * far end's receiver reports read into Play `remote` (the round trip from a known LSR and
 * DLSR), and malformed or foreign RTCP counted and dropped while the play goes on unharmed.
 */
import t from 'tap'
import { ntpMiddle, readSenderReport, receiverReport, type SenderPacket } from '../../src/packet/rtcp.js'
import { Receiver, buildApp, sequenceBreaks, sleep, type ReceivedRtcp } from '../helpers/index.js'

const INTERVAL = 500

interface Seen { at: number, on: ReceivedRtcp['on'], from: number, sr: SenderPacket }

function reports (receiver: Receiver): Seen[] {
  return receiver.rtcp.map(r => ({ at: r.at, on: r.on, from: r.from.port, sr: readSenderReport(r.raw)! }))
}

async function waitForReports (receiver: Receiver, count: number, timeoutMs = 10_000): Promise<Seen[]> {
  for (let waited = 0; receiver.rtcp.length < count; waited += 20) {
    if (waited > timeoutMs) throw new Error(`only ${receiver.rtcp.length} of ${count} RTCP packets arrived`)
    await sleep(20)
  }
  return reports(receiver)
}

t.test('sender reports: from source.port + 1 to target.port + 1, their counts and clocks those of the stream; a BYE at the end', async t => {
  const app = await buildApp(t, { rtcpIntervalMs: INTERVAL })
  const receiver = await Receiver.open(t)
  const started = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] } })
  t.equal(started.statusCode, 201)
  const play = started.json()
  t.equal(play.rtcp, 'on', 'on by default')
  t.equal(play.remote, null, 'no report from the far end yet')
  await receiver.waitQuiet(600)
  const seen = reports(receiver)
  const packets = receiver.packets
  const first = packets[0]!.rtp
  t.ok(seen.length >= 3, `reports came during the play (${seen.length})`)
  t.ok(seen.every(s => s.sr !== null), 'each one starts with an SR')
  t.ok(seen.every(s => s.on === 'rtcp' && s.from === play.source.port + 1), 'from source.port + 1, to target.port + 1')
  t.ok(seen.every(s => s.sr.ssrc === play.ssrc && s.sr.cname === `${play.id as string}@prompt-player`), 'about the stream, with its CNAME')
  for (const s of seen.slice(0, -1)) {
    t.notOk(s.sr.bye, 'no BYE while it plays')
    // The RTP packets the report counts are the ones sent before it.
    const before = packets.filter(p => p.at < s.at).length
    t.ok(Math.abs(s.sr.packets - before) <= 1, `packet count ${s.sr.packets}, ${before} had arrived`)
    t.equal(s.sr.octets, s.sr.packets * 160, 'octets: the payloads, 160 per packet')
    // Its RTP timestamp is the media clock at the report: past the timestamp of the last packet
    // it counts, by the time since that packet was due.
    const sinceLast = ((s.sr.rtpTimestamp - (first.timestamp + (s.sr.packets - 1) * 160)) >>> 0) / 8
    t.ok(sinceLast >= 0 && sinceLast < 100, `RTP timestamp ${sinceLast.toFixed(3)} ms past the last packet counted`)
    t.ok(Math.abs(s.sr.wallMs - Date.now()) < 60_000, 'an NTP timestamp of now')
  }
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1]!.sr
    const b = seen[i]!.sr
    const ntpMs = b.wallMs - a.wallMs
    const rtpMs = ((b.rtpTimestamp - a.rtpTimestamp) >>> 0) / 8
    t.ok(Math.abs(ntpMs - rtpMs) < 1, `RTP and NTP timestamps advance together (${rtpMs.toFixed(3)} ms against ${ntpMs.toFixed(3)} ms)`)
    if (i < seen.length - 1) t.ok(ntpMs >= INTERVAL * 0.5 - 1 && ntpMs <= INTERVAL * 1.5 + 50, `reports ${ntpMs.toFixed(0)} ms apart: the interval, randomised 0.5-1.5 times`)
  }
  const last = seen.at(-1)!
  t.ok(last.sr.bye, 'the last is a BYE')
  t.ok(last.at >= packets.at(-1)!.at, 'after the last packet')
  t.equal(last.sr.packets, packets.length, 'it counts every packet sent')
  const ended = (await app.inject({ url: `/v1/plays/${play.id as string}` })).json()
  t.match(ended, { state: 'finished', reportsSent: seen.length, packetsSent: packets.length })
})

t.test('a stopped play sends its BYE at once, with the packets it sent', async t => {
  const app = await buildApp(t, { rtcpIntervalMs: 60_000 })
  const receiver = await Receiver.open(t)
  const play = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] } })).json()
  await receiver.waitFor(10)
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id as string}` })
  await receiver.waitQuiet(100)
  const seen = reports(receiver)
  t.equal(seen.length, 1, 'the BYE (no report was due yet)')
  t.ok(seen[0]!.sr.bye)
  t.equal(seen[0]!.sr.packets, receiver.packets.length, 'counting what was sent')
})

t.test('mux puts RTCP on the RTP ports, off sends none', async t => {
  const app = await buildApp(t, { rtcpIntervalMs: INTERVAL })
  const muxed = await Receiver.open(t)
  const off = await Receiver.open(t)
  const a = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: muxed.port }, prompts: ['welcome'], rtcp: 'mux' } })).json()
  const b = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: off.port }, prompts: ['welcome'], rtcp: 'off' } })).json()
  t.match([a.rtcp, b.rtcp], ['mux', 'off'])
  const seen = await waitForReports(muxed, 1)
  t.ok(seen.every(s => s.on === 'rtp' && s.from === a.source.port), 'mux: from the RTP port to the RTP port')
  // The far end's report about the stream, on the RTP port too.
  await muxed.send(receiverReport({ ssrc: 0xcafe, about: a.ssrc, packetsLost: 3 }), a.source.port)
  await sleep(100)
  t.match((await app.inject({ url: `/v1/plays/${a.id as string}` })).json(), { remote: { packetsLost: 3 }, received: { reports: 1, malformed: 0, ignored: 0 } }, 'and read there')
  await muxed.waitQuiet(600)
  await off.waitQuiet(300)
  t.ok(reports(muxed).at(-1)!.sr.bye, 'mux: the BYE on the RTP port')
  t.equal(off.rtcp.length, 0, 'off: nothing')
  t.match((await app.inject({ url: `/v1/plays/${b.id as string}` })).json(), { state: 'finished', reportsSent: 0 })
  // The audio itself is untouched: every RTP packet, in sequence.
  const seqs = muxed.packets.map(p => p.rtp.sequenceNumber)
  t.ok(sequenceBreaks(seqs).length === 0, 'mux: the RTP sequence unbroken')
})

t.test('the far end\'s receiver report becomes Play remote, the round trip from LSR and DLSR', async t => {
  const app = await buildApp(t, { rtcpIntervalMs: INTERVAL })
  const receiver = await Receiver.open(t)
  const play = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu', 'welcome'] } })).json()
  const [sr] = await waitForReports(receiver, 1)
  // The far end held our SR for `held` ms, and says it held it 40 ms less: the round trip
  // comes out as 40 ms plus the real one (a fraction of a millisecond on loopback).
  await sleep(120)
  const held = performance.now() - sr!.at
  const lsr = ntpMiddle(sr!.sr.wallMs)
  await receiver.sendRtcp(receiverReport({ ssrc: 0xcafe, about: play.ssrc, fractionLost: 0.25, packetsLost: 12, highestSequence: 100, jitter: 36, lsr, dlsr: Math.round((held - 40) * 65.536) }), play.source.port + 1)
  await sleep(100)
  const now = (await app.inject({ url: `/v1/plays/${play.id as string}` })).json()
  t.match(now.remote, { fractionLost: 0.25, packetsLost: 12, jitterMs: 4.5 }, 'loss and jitter (36 units of 1/8000 s)')
  t.ok(now.remote.rttMs >= 39.9 && now.remote.rttMs < 60, `rtt ${now.remote.rttMs as number} ms: 40 ms and the loopback's round trip`)
  t.ok(Math.abs(Date.parse(now.remote.at) - Date.now()) < 1000, 'when it arrived')
  t.equal(now.received.reports, 1)
  // A later report replaces it.
  await receiver.sendRtcp(receiverReport({ ssrc: 0xcafe, about: play.ssrc, packetsLost: 13 }), play.source.port + 1)
  await sleep(100)
  t.match((await app.inject({ url: `/v1/plays/${play.id as string}` })).json(), { remote: { packetsLost: 13, fractionLost: 0, rttMs: null }, received: { reports: 2 } }, 'the latest report is the one shown; without LSR, no round trip')
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id as string}` })
  t.match((await app.inject({ url: `/v1/plays/${play.id as string}` })).json(), { state: 'stopped', remote: { packetsLost: 13 } }, 'kept once the play has ended')
})

t.test('malformed and foreign RTCP is counted and dropped; the play is unharmed', async t => {
  const app = await buildApp(t, { rtcpIntervalMs: INTERVAL })
  const receiver = await Receiver.open(t)
  const play = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] } })).json()
  await receiver.waitFor(5)
  const rr = receiverReport({ ssrc: 1, about: play.ssrc })
  const junk = [
    rr.subarray(0, 7), // truncated
    Buffer.from([0x41, ...rr.subarray(1)]), // version 1
    (() => { const b = Buffer.from(rr); b.writeUInt16BE(0xffff, 2); return b })(), // a length of 256 KiB
    (() => { const b = Buffer.from(rr); b[0] = 0x9f; return b })(), // 31 report blocks claimed
    Buffer.alloc(0), // empty
    Buffer.alloc(1500, 0xff) // noise
  ]
  for (const packet of junk) await receiver.sendRtcp(packet, play.source.port + 1)
  await receiver.sendRtcp(receiverReport({ ssrc: 1, about: play.ssrc ^ 1 }), play.source.port + 1) // about another stream
  await sleep(150)
  const now = (await app.inject({ url: `/v1/plays/${play.id as string}` })).json()
  t.match(now, { state: 'playing', remote: null, received: { malformed: junk.length, ignored: 1, reports: 0 } }, 'each counted, none read')
  await receiver.waitQuiet(300, 30_000)
  const seqs = receiver.packets.map(p => p.rtp.sequenceNumber)
  t.equal(receiver.packets.length, now.durationMs / 20, 'every packet of the play arrived')
  t.ok(sequenceBreaks(seqs).length === 0, 'in sequence')
  t.equal((await app.inject({ url: `/v1/plays/${play.id as string}` })).json().state, 'finished')
})

t.test('RTCP needs the port above the target: 65535 with rtcp on is refused, with mux it plays', async t => {
  const app = await buildApp(t)
  const refused = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: 65535 }, prompts: ['goodbye'] } })
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), { code: 'INVALID_REQUEST', message: /65535 leaves no port above it for RTCP/ })
  const bad = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: 40000 }, prompts: ['goodbye'], rtcp: 'sometimes' } })
  t.equal(bad.statusCode, 400, 'an unknown mode')
  const muxed = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: 65535 }, prompts: ['goodbye'], rtcp: 'mux' } })
  t.equal(muxed.statusCode, 201)
  await app.inject({ method: 'DELETE', url: `/v1/plays/${muxed.json().id as string}` })
})
