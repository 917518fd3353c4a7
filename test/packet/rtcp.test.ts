/**
 * RTCP packets as RFC 3550 §6 lays them out, byte by byte: the sender report and BYE a play
 * writes, the receiver reports it reads (the round trip from a known LSR and DLSR), and the
 * packets it must drop.
 */
import t from 'tap'
import { isRtcp, nextReportMs, ntpMiddle, ntpOf, readRtcp, readSenderReport, receiverReport, RtcpWriter } from '../../src/packet/rtcp.js'

const WALL = Date.UTC(2026, 10, 29, 12, 0, 0, 250)

t.test('NTP timestamps: seconds since 1900, the fraction in 1/2^32 s, and the middle 32 bits', async t => {
  const { seconds, fraction } = ntpOf(WALL)
  t.equal(seconds, WALL / 1000 - 0.25 + 2_208_988_800, 'seconds since 1900')
  t.equal(fraction, 2 ** 30, 'a quarter of a second')
  t.equal(ntpMiddle(WALL), ((seconds & 0xffff) * 65536 + 16384), '16 bits of seconds, 16 of fraction')
  t.equal(ntpMiddle(WALL + 1000) - ntpMiddle(WALL), 65536, 'one second is 65536 units')
  t.equal(ntpOf(WALL + 999.9999999).fraction <= 2 ** 32 - 1, true, 'the fraction never overflows')
})

t.test('SR + SDES: every field where §6.4.1 and §6.5 put it; the BYE appended at the end', async t => {
  const writer = new RtcpWriter('p_42@prompt-player')
  const report = Buffer.from(writer.write({ ssrc: 0xdeadbeef, wallMs: WALL, rtpTimestamp: 123456, packets: 250, octets: 40000 }))
  t.equal(report.length % 4, 0, 'a multiple of 32 bits')
  t.equal(report[0], 0x80, 'V=2, no padding, RC=0')
  t.equal(report[1], 200, 'SR')
  t.equal((report.readUInt16BE(2) + 1) * 4, 28, 'its length: header, SSRC, sender info')
  t.equal(report.readUInt32BE(4), 0xdeadbeef)
  t.equal(report.readUInt32BE(8), ntpOf(WALL).seconds)
  t.equal(report.readUInt32BE(12), ntpOf(WALL).fraction)
  t.equal(report.readUInt32BE(16), 123456, 'RTP timestamp')
  t.equal(report.readUInt32BE(20), 250, 'packets')
  t.equal(report.readUInt32BE(24), 40000, 'octets')
  t.equal(report[28], 0x81, 'SDES: V=2, one chunk')
  t.equal(report[29], 202)
  t.equal(28 + (report.readUInt16BE(30) + 1) * 4, report.length, 'SDES ends the compound packet')
  t.equal(report.readUInt32BE(32), 0xdeadbeef, 'the chunk is about the stream')
  t.equal(report[36], 1, 'CNAME')
  t.equal(report.toString('utf8', 38, 38 + report[37]!), 'p_42@prompt-player')
  t.equal(report[38 + report[37]!], 0, 'the item list ends with a zero byte')
  t.same(readSenderReport(report), { ssrc: 0xdeadbeef, ntpSeconds: ntpOf(WALL).seconds, ntpFraction: 2 ** 30, wallMs: WALL, rtpTimestamp: 123456, packets: 250, octets: 40000, cname: 'p_42@prompt-player', bye: false })

  const last = writer.write({ ssrc: 0xdeadbeef, wallMs: WALL + 5000, rtpTimestamp: 2 ** 32 + 5, packets: 2 ** 32 + 3, octets: 7 }, true)
  t.equal(last.length, report.length + 8, 'BYE: header and SSRC')
  t.equal(last[report.length], 0x81)
  t.equal(last[report.length + 1], 203, 'BYE')
  t.equal(last.readUInt32BE(report.length + 4), 0xdeadbeef)
  t.match(readSenderReport(last), { bye: true, packets: 3, rtpTimestamp: 5 }, 'counters wrap at 2^32 as §6.4.1 says')
  t.equal(readSenderReport(Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 0])), null, 'an RR is no sender report')
})

t.test('a receiver report about the stream: loss, jitter and the round trip from LSR and DLSR', async t => {
  const ssrc = 0x11223344
  // Our SR left at WALL; the far end held it 250 ms; its report arrives 40 ms after that.
  const lsr = ntpMiddle(WALL)
  const dlsr = 0.25 * 65536
  const rr = receiverReport({ ssrc: 0xcafe, about: ssrc, fractionLost: 0.25, packetsLost: 7, highestSequence: 1000, jitter: 80, lsr, dlsr })
  t.ok(isRtcp(rr), 'recognised on an RTP port (RFC 5761)')
  const read = readRtcp(rr, ssrc, WALL + 290)
  t.equal(read.kind, 'report')
  if (read.kind !== 'report') return
  t.equal(read.report.fractionLost, 0.25)
  t.equal(read.report.packetsLost, 7)
  t.equal(read.report.jitterMs, 10, '80 units of the 8 kHz clock')
  t.ok(Math.abs(read.report.rttMs! - 40) < 0.05, `rtt = A - LSR - DLSR = 40 ms (${read.report.rttMs})`)

  const negative = readRtcp(receiverReport({ ssrc: 1, about: ssrc, packetsLost: -2 }), ssrc, WALL)
  t.match(negative, { kind: 'report', report: { packetsLost: -2, rttMs: null } }, 'cumulative loss is signed (duplicates); no SR seen yet: no round trip')
  const early = readRtcp(receiverReport({ ssrc: 1, about: ssrc, lsr, dlsr: 65536 }), ssrc, WALL + 100)
  t.match(early, { kind: 'report', report: { rttMs: null } }, 'a round trip that comes out negative is not shown')
  t.equal(readRtcp(receiverReport({ ssrc: 1, about: 999 }), ssrc, WALL).kind, 'foreign', 'a report about another stream')

  // An SR from a far end that sends too, with two report blocks: ours is the second.
  const sr = Buffer.alloc(28 + 48)
  sr[0] = 0x82
  sr[1] = 200
  sr.writeUInt16BE(sr.length / 4 - 1, 2)
  sr.writeUInt32BE(777, 28)
  sr.writeUInt32BE(ssrc, 52)
  sr[56] = 128
  t.match(readRtcp(sr, ssrc, WALL), { kind: 'report', report: { fractionLost: 0.5 } }, 'the block about us, found in an SR')
})

t.test('malformed RTCP is refused, never read past its end', async t => {
  const rr = receiverReport({ ssrc: 1, about: 2 })
  const cases: Array<[string, Buffer]> = [
    ['truncated', rr.subarray(0, 6)],
    ['not a multiple of 32 bits', Buffer.concat([rr, Buffer.alloc(2)])],
    ['version 1', Buffer.from([0x41, ...rr.subarray(1)])],
    ['padding on the first packet', Buffer.from([0xa1, ...rr.subarray(1)])],
    ['starting with SDES', rr.subarray(32)],
    ['a length past the end', (() => { const b = Buffer.from(rr); b.writeUInt16BE(0xffff, 2); return b })()],
    ['a second packet past the end', (() => { const b = Buffer.from(rr); b.writeUInt16BE(0x7fff, 34); return b })()],
    ['31 report blocks in 32 bytes', (() => { const b = Buffer.from(rr); b[0] = 0x9f; return b })()],
    ['a second packet of version 0', (() => { const b = Buffer.from(rr); b[32] = 0x01; return b })()],
    ['RTP audio', Buffer.concat([Buffer.from([0x80, 0x00]), Buffer.alloc(170)])]
  ]
  for (const [what, packet] of cases) t.equal(readRtcp(packet, 2, WALL).kind, 'malformed', what)
  t.equal(readRtcp(rr, 2, WALL).kind, 'report', 'the same report whole is read')
  t.notOk(isRtcp(Buffer.from([0x80, 0x00, 0, 0])), 'PCMU is not RTCP')
  t.notOk(isRtcp(Buffer.from([0x80, 101 | 0x80])), 'a telephone event with the marker bit is not RTCP')
})

t.test('the report interval: randomised 0.5-1.5 times, the first after half', async t => {
  t.equal(nextReportMs(5000, false, () => 0), 2500)
  t.equal(nextReportMs(5000, false, () => 0.999999) < 7500, true)
  t.equal(nextReportMs(5000, true, () => 0.5), 2500)
  const draws = Array.from({ length: 1000 }, () => nextReportMs(5000, false))
  t.ok(Math.min(...draws) >= 2500 && Math.max(...draws) < 7500, 'within bounds')
  t.ok(new Set(draws).size > 900, 'and spread')
})
