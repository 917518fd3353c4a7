/**
 * The caller's key presses (RFC 4733 telephone events) sent back to a play's source port by a
 * real UDP socket, as a SIP phone does: each press reported once, stopOn stops the play at the
 * digit's first packet, and everything else that arrives is counted and harmless.
 */
import { performance } from 'node:perf_hooks'
import t from 'tap'
import type { PlayEvent } from '../../src/index.js'
import { Receiver, buildApp, engineOf, sleep } from '../helpers/index.js'

/** One RTP packet of a telephone event (RFC 4733 §2.3). */
function telephoneEvent (o: { seq: number, ts: number, digit: string, end?: boolean, durationMs: number, pt?: number }): Buffer {
  const packet = Buffer.alloc(16)
  packet[0] = 0x80
  packet[1] = o.pt ?? 101
  packet.writeUInt16BE(o.seq & 0xffff, 2)
  packet.writeUInt32BE(o.ts, 4)
  packet.writeUInt32BE(0xcafe, 8)
  packet[12] = '0123456789*#ABCD'.indexOf(o.digit)
  packet[13] = (o.end === true ? 0x80 : 0) | 10
  packet.writeUInt16BE(o.durationMs * 8, 14)
  return packet
}

/** A key press as phones send it: updates every 40 ms, then the end packet three times. */
function press (digit: string, ts: number, seq: number, updates = 3): Buffer[] {
  const packets: Buffer[] = []
  for (let i = 1; i <= updates; i++) packets.push(telephoneEvent({ seq: seq++, ts, digit, durationMs: i * 20 }))
  for (let i = 0; i < 3; i++) packets.push(telephoneEvent({ seq: seq++, ts, digit, end: true, durationMs: 120 }))
  return packets
}

t.test('each key press is one play.dtmf, however many packets carry it; the rest is counted, and harmless', async t => {
  const app = await buildApp(t)
  const events: PlayEvent[] = []
  engineOf(app).events.on('play', e => events.push(e))
  const receiver = await Receiver.open(t)
  const started = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome', 'menu'], dtmf: { stopOn: '#' } } })
  t.equal(started.statusCode, 201)
  const play = started.json()
  await receiver.waitFor(5)
  const to = play.source.port as number
  for (const packet of press('5', 1000, 1)) await receiver.send(packet, to)
  for (const packet of press('5', 5000, 10, 2)) await receiver.send(packet, to)
  // The caller's own audio (PCMU), and packets no RTP parser should take.
  for (let i = 0; i < 4; i++) {
    const audio = Buffer.alloc(172, 0xff)
    audio[0] = 0x80
    audio[1] = 0
    await receiver.send(audio, to)
  }
  const malformed = [
    Buffer.from([0x80, 101, 0, 1, 0]), // shorter than a header
    Buffer.concat([Buffer.from([0x40, 101]), Buffer.alloc(18)]), // version 1
    Buffer.concat([Buffer.from([0x8f, 101]), Buffer.alloc(18)]), // 15 CSRCs claimed, 20 bytes present
    Buffer.concat([Buffer.from([0x80, 101]), Buffer.alloc(12)]) // a telephone event with a 2-byte payload
  ]
  for (const packet of malformed) await receiver.send(packet, to)
  await sleep(150)
  const presses = events.filter(e => e.type === 'play.dtmf')
  t.equal(presses.length, 2, 'two presses of 5: two events, retransmissions and end packets counted once')
  t.match(presses, [{ digit: '5', durationMs: 120, play: { id: play.id } }, { digit: '5', durationMs: 120 }])
  const now = (await app.inject({ url: `/v1/plays/${play.id as string}` })).json()
  t.match(now, { state: 'playing', received: { digits: '55', ignored: 4, malformed: 4 } }, 'the audio ignored, the malformed dropped, each counted; the play goes on')
  const count = receiver.packets.length
  await sleep(100)
  t.ok(receiver.packets.length > count + 2, 'still sending')
  // A key still down when the play ends (its end packets never came) is reported at the end.
  await receiver.send(telephoneEvent({ seq: 40, ts: 9000, digit: '7', durationMs: 40 }), to)
  await receiver.send(telephoneEvent({ seq: 41, ts: 9000, digit: '7', durationMs: 60 }), to)
  await sleep(60)
  t.equal(events.filter(e => e.type === 'play.dtmf').length, 2, 'not before its end')
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id as string}` })
  await sleep(50)
  t.same(events.slice(-2).map(e => [e.type, e.digit, e.durationMs]), [['play.dtmf', '7', 60], ['play.stopped', undefined, undefined]], 'reported with its duration so far, before the end')
})

t.test('a digit of stopOn stops the play at its first packet: stoppedBy dtmf, the event before the end', async t => {
  const app = await buildApp(t)
  const events: PlayEvent[] = []
  engineOf(app).events.on('play', e => events.push(e))
  const receiver = await Receiver.open(t)
  const play = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome', 'menu'], dtmf: { payloadType: 96, stopOn: '#*' } } })).json()
  await receiver.waitFor(10)
  // Another payload type than the SDP's: not a key press.
  await receiver.send(telephoneEvent({ seq: 1, ts: 7, digit: '#', durationMs: 0, pt: 101 }), play.source.port)
  await sleep(60)
  t.equal((await app.inject({ url: `/v1/plays/${play.id as string}` })).json().state, 'playing', 'an event of another payload type does nothing')
  const sentAt = performance.now()
  await receiver.send(telephoneEvent({ seq: 2, ts: 8000, digit: '#', durationMs: 0, pt: 96 }), play.source.port)
  await sleep(150)
  // When the play's last packet was due, not when this busy process read it: packet k is due at
  // start + k x 20 ms (the pacing does not drift), start being the earliest any packet arrived
  // against its schedule. At most one packet may be due after the digit was sent; without
  // barge-in, 150 ms would bring 7 more.
  const first = receiver.packets[0]!.rtp.sequenceNumber
  const k = (p: typeof receiver.packets[number]): number => (p.rtp.sequenceNumber - first + 65536) % 65536
  const start = Math.min(...receiver.packets.map(p => p.at - k(p) * 20))
  const lastDue = start + k(receiver.packets.at(-1)!) * 20
  t.ok(lastDue <= sentAt + 22, `the play's last packet was due ${(lastDue - sentAt).toFixed(1)} ms after the digit was sent: at most one ptime`)
  t.match((await app.inject({ url: `/v1/plays/${play.id as string}` })).json(), { state: 'stopped', stoppedBy: 'dtmf', received: { digits: '#' } })
  t.same(events.map(e => e.type).slice(-2), ['play.dtmf', 'play.stopped'], 'the key press is reported before the end')
  t.match(events.find(e => e.type === 'play.dtmf'), { digit: '#', durationMs: 0 })
})
