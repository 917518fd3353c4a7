import t from 'tap'
import { parseRtpPacket } from 'rtp-parser'
import { PACKET_RING, RTP_HEADER_BYTES, RtpStream } from '../../src/packet/rtp-packetizer.js'

const payload = (k: number): Buffer => Buffer.alloc(160, k)

t.test('packets follow RFC 3550: V=2, no P/X/CC, marker on the first only, steps of one and 160', async t => {
  const rtp = new RtpStream({ payloadType: 0, samplesPerPacket: 160, payloadBytes: 160, ssrc: 0x12345678, sequence: 65530, timestamp: 2 ** 32 - 320 })
  const parsed = []
  for (let k = 0; k < 12; k++) {
    const packet = rtp.next(payload(k))
    t.equal(packet.length, RTP_HEADER_BYTES + 160)
    parsed.push(parseRtpPacket(Buffer.from(packet)))
  }
  for (const [k, p] of parsed.entries()) {
    t.equal(p.version, 2); t.equal(p.padding, 0); t.equal(p.extension, 0); t.equal(p.csrcCount, 0)
    t.equal(p.marker, k === 0 ? 1 : 0, `marker of packet ${k}`)
    t.equal(p.payloadType, 0)
    t.equal(p.ssrc, 0x12345678)
    t.equal(p.sequenceNumber, (65530 + k) % 65536, `sequence of packet ${k} wraps at 65536`)
    t.equal(p.timestamp, (2 ** 32 - 320 + k * 160) % 2 ** 32, `timestamp of packet ${k} wraps at 2^32`)
    t.same(p.payload, payload(k), `payload of packet ${k}`)
  }
})

t.test('initial values are random when absent', async t => {
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const rtp = new RtpStream({ payloadType: 8, samplesPerPacket: 80, payloadBytes: 80 })
    seen.add(`${rtp.ssrc}/${rtp.firstSequence}/${rtp.firstTimestamp}`)
    const p = parseRtpPacket(Buffer.from(rtp.next(Buffer.alloc(80))))
    t.equal(p.sequenceNumber, rtp.firstSequence)
    t.equal(p.timestamp, rtp.firstTimestamp)
    t.equal(p.payloadType, 8)
  }
  t.equal(seen.size, 20, 'twenty streams, twenty different starting points')
})

t.test('the packet ring: a slot is reused only PACKET_RING packets later; a dropped packet uses up a number', async t => {
  const rtp = new RtpStream({ payloadType: 0, samplesPerPacket: 160, payloadBytes: 160, sequence: 0 })
  const first = rtp.next(payload(1))
  const held = Buffer.from(first)
  for (let i = 1; i < PACKET_RING; i++) rtp.next(payload(2))
  t.same(first, held, 'slot 0 untouched while the ring goes round')
  const again = rtp.next(payload(3))
  t.equal(again.buffer, first.buffer, 'same memory: nothing allocated per packet')
  t.equal(again.byteOffset, first.byteOffset)
  t.equal(again.readUInt16BE(2), PACKET_RING, 'and now it holds packet PACKET_RING')
  rtp.drop()
  t.equal(rtp.next(payload(4)).readUInt16BE(2), PACKET_RING + 2, 'the dropped packet left a gap in the sequence')
})
