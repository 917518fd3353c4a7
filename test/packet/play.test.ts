/**
 * The Play class on this thread (the engine runs it in the packet thread), with a real socket
 * and the real scheduler: what a socket error does to a play.
 */
import dgram from 'node:dgram'
import t from 'tap'
import { Play } from '../../src/packet/play.js'
import { Scheduler } from '../../src/packet/scheduler.js'
import { COUNTERS } from '../../src/common/protocol.js'
import { dtmfFrames, dtmfPackets } from '../../src/common/telephone-events.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { LIBRARY, Receiver, framesOf, sample, sleep, waitUntil } from '../helpers/index.js'
import { Prompt } from '../../src/library/prompt.js'
import fs from 'node:fs'
import path from 'node:path'

async function connected (port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  await new Promise<void>(resolve => socket.connect(port, '127.0.0.1', resolve))
  return socket
}

function prompt (name: string): Prompt {
  const info = JSON.parse(fs.readFileSync(path.join(LIBRARY, `${name}.json`), 'utf8'))
  const dir = path.join(LIBRARY, 'media', info.source.sha256)
  return new Prompt(info, { PCMU: fs.readFileSync(path.join(dir, 'pcmu')), PCMA: fs.readFileSync(path.join(dir, 'pcma')) })
}

t.test('a send the kernel refuses (ICMP port unreachable: ECONNREFUSED) reaches the play: counted, and the play goes on', async t => {
  // Nobody listens on the target: the kernel answers the first packet with ICMP port
  // unreachable, and the connected socket's next send is refused with ECONNREFUSED.
  const closed = await Receiver.open(t)
  const port = closed.port
  closed.close()
  const scheduler = new Scheduler()
  t.teardown(() => scheduler.close())
  const ended: Play[] = []
  const play = new Play({
    id: 'p_refused', target: { host: '127.0.0.1', port }, frames: [framesOf(prompt('goodbye'), 'PCMA', 20)],
    payloadType: 8, ptimeMs: 20, socket: await connected(port), scheduler, onEnd: p => ended.push(p)
  })
  play.begin()
  t.equal(play.packetsSent, 1, 'the first packet leaves in begin()')
  await waitUntil(() => play.sendErrors >= 2, 'two refused sends', 5000)
  t.equal(play.state, 'playing', 'a peer whose port is not open yet costs the play nothing')
  const sent = play.packetsSent
  await waitUntil(() => play.packetsSent > sent + 2, 'more packets', 5000)
  play.stop()
  t.equal(play.state, 'stopped')
  t.same(ended, [play], 'onEnd once')
  play.fail('again')
  t.equal(play.state, 'stopped', 'an ended play stays as it ended')
  t.equal(sample('goodbye').name, 'goodbye')
})

t.test('a play whose packet task throws fails with the reason and frees everything', async t => {
  const receiver = await Receiver.open(t)
  const scheduler = new Scheduler()
  t.teardown(() => scheduler.close())
  const ended: Play[] = []
  const socket = await connected(receiver.port)
  const play = new Play({
    id: 'p_throws', target: { host: '127.0.0.1', port: receiver.port }, frames: [framesOf(prompt('goodbye'), 'PCMU', 20)],
    payloadType: 0, ptimeMs: 20, socket, scheduler, onEnd: p => ended.push(p)
  })
  play.begin()
  await receiver.waitFor(2)
  // A fault, not a send error: the socket is closed under the play, so its next send throws
  // (the handle is gone) inside the scheduler's tick.
  socket.close()
  await sleep(60)
  t.equal(play.state, 'failed', 'the play is failed, not left playing')
  t.match(play.error, /^the play stopped on a fault while sending: .*getSendQueueCount/)
  t.same(ended, [play], 'its end is reported once (the packet thread then frees its port and slot)')
  t.equal(scheduler.size, 0, 'the scheduler holds nothing of it')
  const count = receiver.packets.length
  await sleep(60)
  t.equal(receiver.packets.length, count, 'nothing sent after')
})

t.test('a play keeps the most any of its packets was late (the Play\'s maxLateMs)', async t => {
  const receiver = await Receiver.open(t)
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  t.teardown(() => scheduler.close())
  const counters = new Float64Array(COUNTERS.size)
  const play = new Play({
    id: 'p_late', target: { host: '127.0.0.1', port: receiver.port }, frames: [framesOf(prompt('goodbye'), 'PCMU', 20)],
    payloadType: 0, ptimeMs: 20, socket: await connected(receiver.port), scheduler, onEnd: () => {}, counters
  })
  play.begin()
  clock.advance(100, 1.5)
  t.equal(counters[COUNTERS.maxLate], 1.5, 'timers 1.5 ms late: 1.5')
  // The packet due at 1100 had its timer 1.5 ms late, so not yet run; the thread then stalls
  // until 1167: that packet leaves 67 ms late and the three after it late too; the ones after
  // are on time again, and the maximum stays.
  clock.time = 1167
  scheduler.tick()
  clock.advance(200)
  t.equal(counters[COUNTERS.maxLate], 67)
  t.equal(counters[COUNTERS.skipped], 1, 'the packet 67 ms late (over 3 ptimes) skipped')
  t.equal(play.packetsSent, 1 + Math.floor(367 / 20) - 1, 'every other due packet sent')
  play.stop()
})

t.test('digits as RFC 4733 events on this thread: the packets the HTTP side counts, their headers and payloads, the audio after them on the media clock', async t => {
  const receiver = await Receiver.open(t)
  const scheduler = new Scheduler()
  t.teardown(() => scheduler.close())
  const entry = { digits: '7#', durationMs: 50, gapMs: 90, payloadType: 96 }
  const { payloads, since } = dtmfFrames(entry, 'PCMU', 20)
  // 3 packets a digit, the end twice more; 90 ms of gap is those two and 3 of silence.
  t.equal(payloads.length, dtmfPackets(entry, 20), 'as many packets as the HTTP thread counts for the play\'s length')
  t.equal(payloads.length, 2 * 5 + 3)
  const tail = framesOf(prompt('goodbye'), 'PCMU', 20).slice(0, 3)
  const ended: Play[] = []
  const play = new Play({
    id: 'p_digits', target: { host: '127.0.0.1', port: receiver.port }, frames: [Object.assign(payloads, { events: { payloadType: 96, since } }), tail],
    payloadType: 0, ptimeMs: 20, ssrc: 7, firstSequence: 100, socket: await connected(receiver.port), scheduler, onEnd: p => ended.push(p)
  })
  play.begin()
  const packets = await receiver.waitFor(16)
  await waitUntil(() => ended.length === 1, 'the play to end')
  const rtp = packets.map(p => p.rtp)
  const first = rtp[0]!.timestamp
  t.same(rtp.map(p => p.sequenceNumber), Array.from({ length: 16 }, (_, i) => 100 + i), 'one sequence')
  t.same(rtp.map(p => p.payloadType), [96, 96, 96, 96, 96, 0, 0, 0, 96, 96, 96, 96, 96, 0, 0, 0], 'events, the gap\'s silence, events, then the audio')
  t.same(rtp.map(p => p.marker ? 1 : 0), [1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], 'the marker on each event\'s first packet, and on the first audio packet (its talkspurt\'s start)')
  t.same(rtp.map(p => (p.timestamp - first) / 160), [0, 0, 0, 0, 0, 5, 6, 7, 8, 8, 8, 8, 8, 13, 14, 15], 'each event on its start\'s timestamp; the rest on the media clock')
  t.same(rtp.slice(0, 5).map(p => [p.payload[0], p.payload[1]! >> 7, p.payload[1]! & 0x3f, p.payload.readUInt16BE(2)]), [[7, 0, 10, 160], [7, 0, 10, 320], [7, 1, 10, 480], [7, 1, 10, 480], [7, 1, 10, 480]], '7: the duration one ptime a packet, the end bit on the last three, volume -10 dBm0')
  t.equal(rtp[8]!.payload[0], 11, '#: event 11')
  t.ok(rtp.slice(5, 8).every(p => p.payload.every(b => b === 0xff)), 'the gap is µ-law silence')
  t.ok(rtp.slice(13).every((p, i) => p.payload.equals(tail[i]!)), 'then the prompt')
})
