import t from 'tap'
import { RtpMonitor } from '../../cli/rtp-monitor.js'
import { RtpStream } from '../../src/packet/rtp-packetizer.js'
import { RtcpWriter, readRtcp } from '../../src/packet/rtcp.js'

/** n packets of a 20 ms PCMU stream, sequence and timestamp close to their wrap. */
function stream (n: number): Buffer[] {
  const rtp = new RtpStream({ payloadType: 0, samplesPerPacket: 160, payloadBytes: 160, ssrc: 7, sequence: 65500, timestamp: 2 ** 32 - 1600 })
  return Array.from({ length: n }, (_, k) => Buffer.from(rtp.next(Buffer.alloc(160, k & 0xff))))
}

t.test('a perfect stream: no loss, steps of 160, gaps of 20, no jitter, no drift, across both wraps', async t => {
  const monitor = new RtpMonitor({ keepAudio: true })
  const packets = stream(200)
  packets.forEach((p, k) => monitor.add(p, 1000 + k * 20, '127.0.0.1:20000'))
  const [r] = monitor.reports()
  t.match(r, { ssrc: 7, from: '127.0.0.1:20000', packets: 200, expected: 200, lost: 0, duplicates: 0, reordered: 0, markers: 1, payloadTypes: { 0: 200 }, payloadBytes: { 160: 200 }, timestampSteps: { 160: 199 } })
  t.same(r!.gapMs, { p50: 20, p99: 20, max: 20, mean: 20 })
  t.equal(r!.jitterMs, 0)
  t.equal(r!.driftMs, 0)
  t.equal(monitor.audio(7, 0xff).length, 200 * 160)
  t.equal(monitor.audio(7, 0xff)[160 * 3], 3, 'payloads in order')
})

t.test('loss, reordering, duplicates and garbage are counted; lost audio is filled with silence', async t => {
  const monitor = new RtpMonitor({ keepAudio: true })
  const packets = stream(100)
  const order = [...Array(100).keys()].filter(k => k !== 10 && k !== 11) // two lost
  ;[order[50], order[51]] = [order[51]!, order[50]!] // one pair swapped
  order.forEach((k, i) => monitor.add(packets[k]!, i * 20))
  monitor.add(packets[5]!, 2100) // a duplicate
  monitor.add(Buffer.from('hello, not rtp'), 2200)
  monitor.add(Buffer.alloc(4), 2200)
  const [r] = monitor.reports()
  t.match(r, { packets: 98, expected: 100, lost: 2, duplicates: 1, reordered: 1 })
  t.equal(monitor.malformed, 2)
  const audio = monitor.audio(7, 0xff)
  t.equal(audio.length, 100 * 160, 'the gap keeps its length')
  t.equal(audio[10 * 160], 0xff, 'a lost packet is silence')
})

t.test('jitter and drift: a sender whose clock runs 1 % fast, and arrivals that wobble', async t => {
  const monitor = new RtpMonitor()
  stream(500).forEach((p, k) => monitor.add(p, k * 19.8 + (k % 2 === 0 ? 0 : 3)))
  const [r] = monitor.reports()
  // Arrivals come 0.2 ms early per packet; the medians of each end's 25 packets are 475 packets apart.
  t.ok(Math.abs(r!.driftMs - (-0.2 * 475)) < 3.1, `drift ${r!.driftMs.toFixed(1)} ms: arrivals ran ahead of the media clock`)
  t.ok(r!.jitterMs > 2 && r!.jitterMs < 4, `jitter ${r!.jitterMs.toFixed(2)} ms for a 3 ms wobble`)
  t.ok(Math.abs(r!.gapMs.max - 22.8) < 1e-9, 'the longest gap is the wobble on top of the period')
})

t.test('one packet held up at the start is not drift', async t => {
  const monitor = new RtpMonitor()
  stream(300).forEach((p, k) => monitor.add(p, k * 20 + (k === 0 ? 15 : 0)))
  t.equal(monitor.reports()[0]!.driftMs, 0)
})

t.test('several streams are told apart by SSRC', async t => {
  const monitor = new RtpMonitor()
  const a = new RtpStream({ payloadType: 0, samplesPerPacket: 160, payloadBytes: 160, ssrc: 1 })
  const b = new RtpStream({ payloadType: 8, samplesPerPacket: 240, payloadBytes: 240, ssrc: 2 })
  for (let k = 0; k < 10; k++) {
    monitor.add(Buffer.from(a.next(Buffer.alloc(160))), k * 20)
    monitor.add(Buffer.from(b.next(Buffer.alloc(240))), k * 30)
  }
  t.same(monitor.reports().map(r => [r.ssrc, Object.keys(r.payloadTypes)[0], Object.keys(r.timestampSteps)[0]]), [[1, '0', '160'], [2, '8', '240']])
  t.equal(monitor.packetCount, 20)
  t.same(monitor.audio(1, 0xff), Buffer.alloc(0), 'no audio kept unless asked')
})

t.test('RTCP: the sender\'s reports are read, and receiver reports written from what arrived', async t => {
  const monitor = new RtpMonitor()
  const packets = stream(100)
  // 10 of the first 50 lost, none of the rest.
  packets.forEach((p, k) => { if (k >= 50 || k % 5 !== 1) monitor.add(p, k * 20) })
  const writer = new RtcpWriter('p_1@prompt-player')
  const wallMs = Date.now()
  const sr = monitor.addRtcp(Buffer.from(writer.write({ ssrc: 7, wallMs, rtpTimestamp: 1, packets: 100, octets: 16000 })), 2000)
  t.match(sr, { ssrc: 7, packets: 100, bye: false })
  const first = monitor.receiverReport(7, 99, 2250)!
  const read = readRtcp(first, 7, wallMs + 300)
  t.match(read, { kind: 'report', report: { fractionLost: Math.floor(10 * 256 / 100) / 256, packetsLost: 10 } }, 'the loss since the start')
  t.ok(read.kind === 'report' && Math.abs(read.report.rttMs! - 50) < 0.1, 'DLSR is the time since the SR arrived: 300 - 250 ms')
  const second = readRtcp(monitor.receiverReport(7, 99, 2300)!, 7, wallMs)
  t.match(second, { kind: 'report', report: { fractionLost: 0, packetsLost: 10 } }, 'nothing lost since the last report')
  t.equal(monitor.receiverReport(8, 99, 0), null, 'no report about a stream that never came')
  monitor.addRtcp(Buffer.from(writer.write({ ssrc: 7, wallMs, rtpTimestamp: 1, packets: 100, octets: 16000 }, true)), 2400)
  t.same(monitor.reports()[0]!.rtcp, { senderReports: 2, packets: 100, octets: 16000, bye: true })
  t.equal(monitor.addRtcp(Buffer.from('not rtcp at all'), 0), null)
  t.equal(monitor.malformed, 1, 'anything else is counted')
})
