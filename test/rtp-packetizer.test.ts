import t from 'tap'
import { parseRtpPacket } from 'rtp-parser'
import { HEADER_RING, RTP_HEADER_BYTES, RtpStream } from '../src/rtp-packetizer.js'

const payload = Buffer.alloc(160, 0xff)

t.test('headers follow RFC 3550: V=2, no P/X/CC, marker on the first only, steps of one and 160', async t => {
  const rtp = new RtpStream({ payloadType: 0, samplesPerPacket: 160, ssrc: 0x12345678, sequence: 65530, timestamp: 2 ** 32 - 320 })
  const parsed = []
  for (let k = 0; k < 12; k++) {
    const header = rtp.next()
    t.equal(header.length, RTP_HEADER_BYTES)
    parsed.push(parseRtpPacket(Buffer.concat([header, payload])))
  }
  for (const [k, p] of parsed.entries()) {
    t.equal(p.version, 2); t.equal(p.padding, 0); t.equal(p.extension, 0); t.equal(p.csrcCount, 0)
    t.equal(p.marker, k === 0 ? 1 : 0, `marker of packet ${k}`)
    t.equal(p.payloadType, 0)
    t.equal(p.ssrc, 0x12345678)
    t.equal(p.sequenceNumber, (65530 + k) % 65536, `sequence of packet ${k} wraps at 65536`)
    t.equal(p.timestamp, (2 ** 32 - 320 + k * 160) % 2 ** 32, `timestamp of packet ${k} wraps at 2^32`)
    t.equal(p.payload.length, 160)
  }
})

t.test('initial values are random when absent', async t => {
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const rtp = new RtpStream({ payloadType: 8, samplesPerPacket: 80 })
    seen.add(`${rtp.ssrc}/${rtp.firstSequence}/${rtp.firstTimestamp}`)
    const p = parseRtpPacket(Buffer.concat([rtp.next(), payload]))
    t.equal(p.sequenceNumber, rtp.firstSequence)
    t.equal(p.timestamp, rtp.firstTimestamp)
    t.equal(p.payloadType, 8)
  }
  t.equal(seen.size, 20, 'twenty streams, twenty different starting points')
})

t.test('the header ring: a slot is reused only HEADER_RING packets later', async t => {
  const rtp = new RtpStream({ payloadType: 0, samplesPerPacket: 160, sequence: 0 })
  const first = rtp.next()
  const held = Buffer.from(first)
  for (let i = 1; i < HEADER_RING; i++) rtp.next()
  t.same(first, held, 'slot 0 untouched while the ring goes round')
  const again = rtp.next()
  t.equal(again.buffer, first.buffer, 'same memory: nothing allocated per packet')
  t.equal(again.byteOffset, first.byteOffset)
  t.equal(again.readUInt16BE(2), HEADER_RING, 'and now it holds packet HEADER_RING')
})
