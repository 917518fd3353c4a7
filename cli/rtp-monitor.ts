/**
 * What arrived on an RTP port, per stream (SSRC): counts, loss, reordering, payload types and
 * sizes, timestamp steps, inter-arrival gaps, RFC 3550 interarrival jitter, and drift of the
 * media clock against the arrival clock. It answers "the caller hears nothing" (nothing
 * arrived, or from whom) and "the audio sounds robotic" (gaps, loss, jitter, wrong sizes).
 * Packets are parsed with rtp-parser. The sender's RTCP is read too (its reports' counts, its
 * BYE), and a receiver report about a stream can be written from what arrived, as a phone would
 * send it back; nothing here sends anything.
 */
import { parseRtpPacket } from 'rtp-parser'
import { ntpMiddle, readSenderReport, receiverReport, type SenderPacket } from '../src/index.js'

export interface StreamReport {
  ssrc: number
  payloadTypes: Record<string, number>
  from: string
  packets: number
  /** Highest extended sequence number minus the first, plus one (RFC 3550 A.3). */
  expected: number
  lost: number
  duplicates: number
  /** Packets that arrived after one with a higher sequence number. */
  reordered: number
  markers: number
  payloadBytes: Record<string, number>
  timestampSteps: Record<string, number>
  /** Inter-arrival gaps in ms. */
  gapMs: { p50: number, p99: number, max: number, mean: number }
  /** RFC 3550 §6.4.1 interarrival jitter, in ms. */
  jitterMs: number
  /**
   * How far arrival time ran ahead of media time (timestamps / clock rate) over the stream, ms:
   * the median offset of the last packets minus that of the first ones, so that one packet held
   * up at either end does not count as drift.
   */
  driftMs: number
  durationMs: number
  /** The sender's RTCP about this stream: its reports, what the last one counted, and its BYE. */
  rtcp: { senderReports: number, packets: number, octets: number, bye: boolean } | null
}

interface Stream {
  ssrc: number
  from: string
  payloadTypes: Map<number, number>
  packets: number
  firstSeq: number
  maxExtSeq: number
  seen: Set<number>
  duplicates: number
  reordered: number
  markers: number
  sizes: Map<number, number>
  steps: Map<number, number>
  gaps: number[]
  lastArrival: number
  firstArrival: number
  firstTs: number
  lastTs: number
  maxTs: number
  jitter: number
  lastTransit: number | null
  /** Payloads by extended sequence number, when audio is kept. */
  payloads: Map<number, Buffer> | null
  tsWraps: number
  prevTs: number
  /** Arrival minus media time (ms) of the first packets, and of the latest ones (a ring). */
  headOffsets: number[]
  tailOffsets: number[]
  /** What the last receiver report covered (RFC 3550 A.3): for the fraction lost since then. */
  reportedExpected: number
  reportedPackets: number
}

interface SenderSide {
  senderReports: number
  last: SenderPacket
  /** When the last SR arrived (ms, monotonic): for DLSR. */
  lastAt: number
  bye: boolean
}

/** Packets whose offsets are medianed at each end of a stream for drift. */
const DRIFT_WINDOW = 25

export interface RtpMonitorOptions {
  /** RTP clock rate of the payload (8000 for G.711). */
  clockRate?: number
  /** Keep payloads, to write the audio afterwards. */
  keepAudio?: boolean
}

export class RtpMonitor {
  readonly clockRate: number
  private readonly keepAudio: boolean
  private readonly streams = new Map<number, Stream>()
  private readonly senders = new Map<number, SenderSide>()
  /** Datagrams that were not RTP, and RTCP that was not a sender report. */
  malformed = 0

  constructor (options: RtpMonitorOptions = {}) {
    this.clockRate = options.clockRate ?? 8000
    this.keepAudio = options.keepAudio ?? false
  }

  get packetCount (): number {
    let n = 0
    for (const s of this.streams.values()) n += s.packets
    return n
  }

  /** Takes one datagram, with its arrival time in ms on a monotonic clock. */
  add (datagram: Buffer, arrivalMs: number, from = ''): void {
    let rtp
    try {
      rtp = parseRtpPacket(datagram)
    } catch {
      this.malformed++
      return
    }
    if (rtp.version !== 2) {
      this.malformed++
      return
    }
    let s = this.streams.get(rtp.ssrc)
    if (s === undefined) {
      s = {
        ssrc: rtp.ssrc, from, payloadTypes: new Map(), packets: 0, firstSeq: rtp.sequenceNumber, maxExtSeq: rtp.sequenceNumber,
        seen: new Set(), duplicates: 0, reordered: 0, markers: 0, sizes: new Map(), steps: new Map(), gaps: [],
        lastArrival: arrivalMs, firstArrival: arrivalMs, firstTs: rtp.timestamp, lastTs: rtp.timestamp, maxTs: rtp.timestamp,
        jitter: 0, lastTransit: null, payloads: this.keepAudio ? new Map() : null, tsWraps: 0, prevTs: rtp.timestamp,
        headOffsets: [], tailOffsets: [], reportedExpected: 0, reportedPackets: 0
      }
      this.streams.set(rtp.ssrc, s)
    } else {
      s.gaps.push(arrivalMs - s.lastArrival)
      s.lastArrival = arrivalMs
    }
    // Extend the 16-bit sequence number to the one nearest the highest seen (RFC 3550 A.1).
    const cycle = s.maxExtSeq - (s.maxExtSeq & 0xffff)
    let ext = cycle + rtp.sequenceNumber
    if (ext - s.maxExtSeq > 0x8000) ext -= 0x10000
    else if (s.maxExtSeq - ext > 0x8000) ext += 0x10000
    if (s.seen.has(ext)) {
      s.duplicates++
      return
    }
    s.seen.add(ext)
    s.packets++
    if (ext < s.firstSeq) s.firstSeq = ext
    if (ext < s.maxExtSeq) s.reordered++
    // Timestamps extended the same way, so that drift survives a 2^32 wrap.
    let ts = rtp.timestamp + s.tsWraps * 2 ** 32
    if (ts - s.maxTs > 2 ** 31) ts -= 2 ** 32
    else if (s.maxTs - ts > 2 ** 31) { s.tsWraps++; ts += 2 ** 32 }
    if (ext > s.maxExtSeq) {
      if (s.packets > 1) inc(s.steps, (ts - s.maxTs) / (ext - s.maxExtSeq))
      s.maxExtSeq = ext
      s.maxTs = ts
      s.lastTs = ts
    }
    inc(s.payloadTypes, rtp.payloadType)
    inc(s.sizes, rtp.payload.length)
    if (rtp.marker) s.markers++
    // RFC 3550 A.8: J += (|D| - J) / 16, D the change in transit time, in timestamp units.
    const transit = arrivalMs * this.clockRate / 1000 - ts
    if (s.lastTransit !== null) s.jitter += (Math.abs(transit - s.lastTransit) - s.jitter) / 16
    s.lastTransit = transit
    const offset = arrivalMs - (ts - s.firstTs) * 1000 / this.clockRate
    if (s.headOffsets.length < DRIFT_WINDOW) s.headOffsets.push(offset)
    s.tailOffsets.push(offset)
    if (s.tailOffsets.length > DRIFT_WINDOW) s.tailOffsets.shift()
    s.payloads?.set(ext, Buffer.from(rtp.payload))
  }

  /** Takes one RTCP datagram; answers the sender report it starts with, or null when it is none (counted as malformed). */
  addRtcp (datagram: Buffer, arrivalMs: number): SenderPacket | null {
    const sr = readSenderReport(datagram)
    if (sr === null) {
      this.malformed++
      return null
    }
    const side = this.senders.get(sr.ssrc)
    if (side === undefined) this.senders.set(sr.ssrc, { senderReports: 1, last: sr, lastAt: arrivalMs, bye: sr.bye })
    else Object.assign(side, { senderReports: side.senderReports + 1, last: sr, lastAt: arrivalMs, bye: side.bye || sr.bye })
    return sr
  }

  /**
   * A receiver report (RFC 3550 §6.4.2) about stream `ssrc` from what arrived, sent as `from`:
   * the fraction lost since the previous one, cumulative loss, the highest sequence number,
   * the jitter, and LSR/DLSR from the sender's last SR, so the sender can compute the round trip.
   */
  receiverReport (ssrc: number, from: number, nowMs: number): Buffer | null {
    const s = this.streams.get(ssrc)
    if (s === undefined) return null
    const expected = s.maxExtSeq - s.firstSeq + 1
    const expectedInterval = expected - s.reportedExpected
    const lostInterval = expectedInterval - (s.packets - s.reportedPackets)
    s.reportedExpected = expected
    s.reportedPackets = s.packets
    const side = this.senders.get(ssrc)
    return receiverReport({
      ssrc: from,
      about: ssrc,
      fractionLost: expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor(lostInterval * 256 / expectedInterval)) / 256,
      packetsLost: Math.max(-0x800000, Math.min(0x7fffff, expected - s.packets)),
      highestSequence: s.maxExtSeq,
      jitter: Math.round(s.jitter),
      lsr: side === undefined ? 0 : ntpMiddle(side.last.wallMs),
      dlsr: side === undefined ? 0 : Math.round((nowMs - side.lastAt) * 65.536),
      cname: 'prompt-player-listen'
    })
  }

  reports (): StreamReport[] {
    return [...this.streams.values()].map(s => {
      const gaps = Float64Array.from(s.gaps).sort()
      const expected = s.maxExtSeq - s.firstSeq + 1
      const arrivalMs = s.lastArrival - s.firstArrival
      return {
        ssrc: s.ssrc,
        from: s.from,
        payloadTypes: record(s.payloadTypes),
        packets: s.packets,
        expected,
        lost: Math.max(0, expected - s.packets),
        duplicates: s.duplicates,
        reordered: s.reordered,
        markers: s.markers,
        payloadBytes: record(s.sizes),
        timestampSteps: record(s.steps),
        gapMs: {
          p50: quantile(gaps, 0.5),
          p99: quantile(gaps, 0.99),
          max: gaps.length === 0 ? 0 : gaps[gaps.length - 1]!,
          mean: gaps.length === 0 ? 0 : arrivalMs / gaps.length
        },
        jitterMs: s.jitter * 1000 / this.clockRate,
        driftMs: median(s.tailOffsets) - median(s.headOffsets),
        durationMs: arrivalMs,
        rtcp: this.rtcpOf(s.ssrc)
      }
    })
  }

  private rtcpOf (ssrc: number): StreamReport['rtcp'] {
    const side = this.senders.get(ssrc)
    return side === undefined ? null : { senderReports: side.senderReports, packets: side.last.packets, octets: side.last.octets, bye: side.bye }
  }

  /**
   * The payloads of one stream in sequence order, lost packets filled with `silence` so that
   * the audio keeps its timing. Only with `keepAudio`.
   */
  audio (ssrc: number, silence: number): Buffer {
    const s = this.streams.get(ssrc)
    if (s?.payloads == null) return Buffer.alloc(0)
    const size = [...s.sizes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0
    const parts: Buffer[] = []
    for (let ext = s.firstSeq; ext <= s.maxExtSeq; ext++) parts.push(s.payloads.get(ext) ?? Buffer.alloc(size, silence))
    return Buffer.concat(parts)
  }

  /** The payloads of one stream in sequence order, lost ones left out (for a codec whose decoder conceals loss, as Opus's). Only with `keepAudio`. */
  payloads (ssrc: number): Buffer[] {
    const s = this.streams.get(ssrc)
    if (s?.payloads == null) return []
    const parts: Buffer[] = []
    for (let ext = s.firstSeq; ext <= s.maxExtSeq; ext++) {
      const payload = s.payloads.get(ext)
      if (payload !== undefined) parts.push(payload)
    }
    return parts
  }
}

function inc (map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

function record (map: Map<number, number>): Record<string, number> {
  return Object.fromEntries([...map.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [String(k), v]))
}

function median (values: number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5)
}

function quantile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}
