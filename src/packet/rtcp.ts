/**
 * RTCP (RFC 3550 §6) for one play: the sender reports and the BYE it sends, and the receiver
 * reports the far end sends back about it. Runs on the packet thread.
 *
 * What a play sends is one compound packet (§6.1: a report first, then SDES with a CNAME):
 *
 *   SR   V=2 P RC=0 PT=200 length | SSRC | NTP timestamp (64) | RTP timestamp | packets | octets
 *   SDES V=2 P SC=1 PT=202 length | SSRC | CNAME=1 len text ... 0-padded to 32 bits
 *   BYE  V=2 P SC=1 PT=203 length | SSRC                        (at the end of the play only)
 *
 * What it reads: the report blocks of SR (200) and RR (201) packets that are about its SSRC:
 *
 *   SSRC | fraction lost (8) | cumulative lost (24) | highest sequence | jitter | LSR | DLSR
 *
 * The round trip is A - LSR - DLSR (§6.4.1), all in 1/65536 s: A is when the report arrived,
 * LSR the middle 32 bits of the NTP timestamp of our SR it answers, DLSR how long the far end
 * held it.
 */
import { performance } from 'node:perf_hooks'

const SR = 200
const RR = 201
const SDES = 202
const BYE = 203
/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX_OFFSET = 2_208_988_800

/**
 * The wall clock, in ms since the Unix epoch, as the packet thread reads it: the monotonic
 * clock from its origin, so that an NTP timestamp never jumps between two reports of a play
 * and the round trip is measured on one clock.
 */
export function wallClockMs (): number {
  return performance.timeOrigin + performance.now()
}

/** The 64-bit NTP timestamp of a wall-clock time: whole seconds since 1900, and the fraction in 1/2^32 s. */
export function ntpOf (wallMs: number): { seconds: number, fraction: number } {
  const seconds = Math.floor(wallMs / 1000)
  const fraction = Math.floor(((wallMs - seconds * 1000) / 1000) * 2 ** 32)
  return { seconds: (seconds + NTP_UNIX_OFFSET) % 2 ** 32, fraction: Math.min(fraction, 2 ** 32 - 1) }
}

/** The middle 32 bits of an NTP timestamp (§6.4.1): 16 bits of seconds, 16 of fraction. The unit of LSR, DLSR and A. */
export function ntpMiddle (wallMs: number): number {
  const { seconds, fraction } = ntpOf(wallMs)
  return (((seconds & 0xffff) << 16) | (fraction >>> 16)) >>> 0
}

export interface SenderInfo {
  ssrc: number
  /** The wall-clock time the report describes (wallClockMs). */
  wallMs: number
  /** The RTP timestamp of that same instant, on the media clock. */
  rtpTimestamp: number
  /** Packets and payload octets sent so far (§6.4.1: headers not counted). */
  packets: number
  octets: number
}

/** What protects a stream's reports (SRTCP): seals packet[0, length) in place, in `rtcpTrailerBytes` more, and answers the sealed length. */
export interface RtcpSeal {
  readonly rtcpTrailerBytes: number
  sealRtcp: (packet: Buffer, length: number) => number
}

/**
 * Writes compound RTCP packets for one stream: SR + SDES, and SR + SDES + BYE at the end, sealed
 * as SRTCP when the stream has a seal. The buffer is allocated once, at the play's start; each
 * report is written into it.
 */
export class RtcpWriter {
  private readonly report: Buffer
  private readonly reportBytes: number
  private readonly seal: RtcpSeal | null
  /** With a seal: the packets' fixed parts, copied in again before each report (sealing encrypts them in place). */
  private readonly template: Buffer | null

  constructor (cname: string, seal?: RtcpSeal) {
    const text = cnameOf(cname)
    this.seal = seal ?? null
    this.reportBytes = 28 + sdesBytes(text)
    this.report = Buffer.alloc(this.reportBytes + 8 + (this.seal?.rtcpTrailerBytes ?? 0))
    const b = this.report
    b[0] = 0x80
    b[1] = SR
    b.writeUInt16BE(28 / 4 - 1, 2)
    writeSdes(b, 28, text)
    const bye = this.reportBytes
    b[bye] = 0x81 // V=2, SC=1
    b[bye + 1] = BYE
    b.writeUInt16BE(1, bye + 2)
    this.template = this.seal === null ? null : Buffer.from(b)
  }

  /** SR + SDES about `info`, or SR + SDES + BYE with `bye`. A view on the writer's buffer: send it before the next call. */
  write (info: SenderInfo, bye = false): Buffer {
    const b = this.report
    this.template?.copy(b)
    const { seconds, fraction } = ntpOf(info.wallMs)
    b.writeUInt32BE(info.ssrc >>> 0, 4)
    b.writeUInt32BE(seconds, 8)
    b.writeUInt32BE(fraction, 12)
    b.writeUInt32BE(info.rtpTimestamp >>> 0, 16)
    b.writeUInt32BE(info.packets % 2 ** 32, 20)
    b.writeUInt32BE(info.octets % 2 ** 32, 24)
    b.writeUInt32BE(info.ssrc >>> 0, 32) // the SDES chunk's
    let length = this.reportBytes
    if (bye) {
      b.writeUInt32BE(info.ssrc >>> 0, this.reportBytes + 4)
      length += 8
    }
    if (this.seal !== null) length = this.seal.sealRtcp(b, length)
    return b.subarray(0, length)
  }
}

/** The far end's latest report about a stream (its report block, and the round trip when it can be computed). */
export interface RemoteReport {
  /** Fraction of packets lost since its previous report, 0 to 1. */
  fractionLost: number
  /** Packets lost since the start (may be negative with duplicates, §6.4.1). */
  packetsLost: number
  /** Interarrival jitter in ms (8 kHz clock). */
  jitterMs: number
  /** Round trip from LSR/DLSR; null when the far end has not yet received an SR (LSR 0). */
  rttMs: number | null
}

export type RtcpReceived =
  /** Not RTCP this parser accepts: too short, wrong version, lengths that do not add up. */
  | { kind: 'malformed' }
  /** Valid RTCP that says nothing about this stream (another SSRC, or no report block). */
  | { kind: 'foreign' }
  | { kind: 'report', report: RemoteReport }

const MALFORMED: RtcpReceived = Object.freeze({ kind: 'malformed' })
const FOREIGN: RtcpReceived = Object.freeze({ kind: 'foreign' })

/** True when a datagram on an RTP port is RTCP (RFC 5761 §4: payload types 64-95 with the marker bit, which is 192-223). */
export function isRtcp (packet: Buffer): boolean {
  return packet.length >= 2 && packet[1]! >= 192 && packet[1]! <= 223
}

/**
 * Reads a compound RTCP packet for the report block about `ssrc`. Validated as RFC 3550
 * Appendix A.2 asks: version 2 throughout, the first packet an SR or RR without padding, and
 * the packets' lengths adding up exactly to the datagram.
 */
export function readRtcp (packet: Buffer, ssrc: number, arrivedWallMs: number): RtcpReceived {
  if (packet.length < 8 || packet.length % 4 !== 0) return MALFORMED
  if ((packet[0]! & 0xe0) !== 0x80 || (packet[1] !== SR && packet[1] !== RR)) return MALFORMED
  let found: RemoteReport | null = null
  const whole = eachPacket(packet, (type, at, bytes) => {
    if (type !== SR && type !== RR) return true
    const count = packet[at]! & 0x1f
    const first = at + (type === SR ? 28 : 8)
    if (first + count * 24 > at + bytes) return false
    for (let i = 0; i < count; i++) {
      const block = first + i * 24
      if (packet.readUInt32BE(block) === ssrc >>> 0) found = reportOf(packet, block, arrivedWallMs)
    }
    return true
  })
  if (!whole) return MALFORMED
  return found === null ? FOREIGN : { kind: 'report', report: found }
}

/**
 * Walks the packets of a compound RTCP packet (§6.1), each handed to `visit` with its type,
 * offset and length; false when one is not version 2, its length runs past the end, or `visit`
 * refuses it.
 */
function eachPacket (packet: Buffer, visit: (type: number, at: number, bytes: number) => boolean): boolean {
  for (let at = 0; at < packet.length;) {
    if (packet.length - at < 4 || (packet[at]! >> 6) !== 2) return false
    const bytes = (packet.readUInt16BE(at + 2) + 1) * 4
    if (at + bytes > packet.length || !visit(packet[at + 1]!, at, bytes)) return false
    at += bytes
  }
  return true
}

/** A CNAME as SDES carries it: UTF-8, at most 255 bytes. */
function cnameOf (cname: string): Buffer {
  return Buffer.from(cname, 'utf8').subarray(0, 255)
}

/**
 * Bytes of an SDES packet of one chunk with a CNAME: header, SSRC, the item (type, length,
 * text), then at least one zero byte ending the item list, padded to 32 bits (§6.5).
 */
function sdesBytes (text: Buffer): number {
  return 8 + Math.ceil((2 + text.length + 1) / 4) * 4
}

/** Writes that SDES packet at `at` (its SSRC is written with the report); the buffer is zeroed. */
function writeSdes (b: Buffer, at: number, text: Buffer): void {
  b[at] = 0x81 // V=2, SC=1
  b[at + 1] = SDES
  b.writeUInt16BE(sdesBytes(text) / 4 - 1, at + 2)
  b[at + 8] = 1 // CNAME
  b[at + 9] = text.length
  text.copy(b, at + 10)
}

function reportOf (packet: Buffer, block: number, arrivedWallMs: number): RemoteReport {
  const lsr = packet.readUInt32BE(block + 16)
  const dlsr = packet.readUInt32BE(block + 20)
  let rttMs: number | null = null
  if (lsr !== 0) {
    // Modulo 2^32: the middle 32 bits wrap every 18 hours.
    const units = (ntpMiddle(arrivedWallMs) - lsr - dlsr) >>> 0
    // A round trip over 2^31 units (9 hours) is a negative one: clocks that disagree, or a
    // report about another SR. Not a figure to show.
    rttMs = units < 2 ** 31 ? units * 1000 / 65536 : null
  }
  return {
    fractionLost: packet[block + 4]! / 256,
    // A 24-bit two's-complement number.
    packetsLost: (packet.readUInt32BE(block + 4) << 8) >> 8,
    jitterMs: packet.readUInt32BE(block + 12) / 8,
    rttMs
  }
}

/**
 * A receiver report (RR + SDES) about one stream, as a far end sends it: for tools that play
 * the far end (`prompt-player listen`) and for tests.
 */
export function receiverReport (o: { ssrc: number, about: number, fractionLost?: number, packetsLost?: number, highestSequence?: number, jitter?: number, lsr?: number, dlsr?: number, cname?: string }): Buffer {
  const text = cnameOf(o.cname ?? 'listener')
  const b = Buffer.alloc(32 + sdesBytes(text))
  b[0] = 0x81
  b[1] = RR
  b.writeUInt16BE(32 / 4 - 1, 2)
  b.writeUInt32BE(o.ssrc >>> 0, 4)
  b.writeUInt32BE(o.about >>> 0, 8)
  b.writeUInt32BE((Math.round((o.fractionLost ?? 0) * 256) & 0xff) * 2 ** 24 + ((o.packetsLost ?? 0) & 0xffffff), 12)
  b.writeUInt32BE((o.highestSequence ?? 0) >>> 0, 16)
  b.writeUInt32BE((o.jitter ?? 0) >>> 0, 20)
  b.writeUInt32BE((o.lsr ?? 0) >>> 0, 24)
  b.writeUInt32BE((o.dlsr ?? 0) >>> 0, 28)
  writeSdes(b, 32, text)
  b.writeUInt32BE(o.ssrc >>> 0, 36)
  return b
}

/** What a sender report or BYE says, as a receiver reads it (for `listen` and tests). */
export interface SenderPacket { ssrc: number, ntpSeconds: number, ntpFraction: number, wallMs: number, rtpTimestamp: number, packets: number, octets: number, cname: string | null, bye: boolean }

/** Reads a compound packet that starts with an SR; null when it does not (for `listen` and tests). */
export function readSenderReport (packet: Buffer): SenderPacket | null {
  if (packet.length < 28 || (packet[0]! >> 6) !== 2 || packet[1] !== SR) return null
  let cname: string | null = null
  let bye = false
  const whole = eachPacket(packet, (type, at, bytes) => {
    if (type === SDES && bytes >= 10 && packet[at + 8] === 1) cname = packet.toString('utf8', at + 10, at + 10 + packet[at + 9]!)
    if (type === BYE) bye = true
    return true
  })
  if (!whole) return null
  const ntpSeconds = packet.readUInt32BE(8)
  const ntpFraction = packet.readUInt32BE(12)
  return {
    ssrc: packet.readUInt32BE(4),
    ntpSeconds,
    ntpFraction,
    wallMs: (ntpSeconds - NTP_UNIX_OFFSET) * 1000 + ntpFraction / 2 ** 32 * 1000,
    rtpTimestamp: packet.readUInt32BE(16),
    packets: packet.readUInt32BE(20),
    octets: packet.readUInt32BE(24),
    cname,
    bye
  }
}

/**
 * The time to the next report (§6.2, §6.3.1): the interval randomised to 0.5-1.5 times, so that
 * the reports of plays started together spread out; the first after half of it (§6.2 allows
 * that for a new participant), so a short play still sends one.
 */
export function nextReportMs (intervalMs: number, first: boolean, random = Math.random): number {
  return (first ? intervalMs / 2 : intervalMs) * (0.5 + random())
}
