/**
 * node dist/bench/pcap-gaps.js capture.pcap
 *
 * Inter-arrival gaps and drift of the RTP streams in a capture, from the kernel's timestamps
 * (tcpdump -i lo -w capture.pcap 'udp and src portrange 20000-39999'), to check the figures of
 * the benchmark's Node receiver, whose own timing error is in every gap it reports (the
 * capture is read by cli/pcap.ts, as `prompt-player listen --pcap` reads it). The benchmark's
 * in-call section calls `kernelGaps` on its own captures.
 */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { readPcap } from '../cli/pcap.js'

interface Stream { last: number, firstAt: number, firstTs: number, head: number[], tail: number[], packets: number, tsBase: number, lastTs: number, lastSeq: number, /** The media clock's step between the last two audio packets. */ stepTs: number }

export interface KernelGaps {
  streams: number
  packets: number
  /** Gaps between consecutive packets of a stream, ms. */
  p50: number
  p99: number
  p999: number
  max: number
  /** |gap − the gap the timestamps say| (the ptime, or more across a hold): the pacing error, ms. */
  devP50: number
  devP99: number
  devP999: number
  devMax: number
  /** Sequence numbers missing in the capture: packets skipped by the sender, or dropped by the capture. */
  lost: number
  driftP50: number
  driftMax: number
}

/** The payload types of the media a capture is read for, and their RTP clock per ms. */
const MEDIA_CLOCK: ReadonlyMap<number, number> = new Map([[0, 8], [8, 8], [9, 8], [111, 48]])

/**
 * Gaps between consecutive media packets (G.711's payload types 0 and 8, G.722's 9, opus at 111)
 * of each stream, at the kernel's timestamps.
 */
export function kernelGaps (file: string): KernelGaps {
  const streams = new Map<string, Stream>()
  const gaps: number[] = []
  const devs: number[] = []
  let lost = 0
  for (const { at, from, to, payload: rtp } of readPcap(fs.readFileSync(file))) {
    // Media only: not the RTCP, the key presses or the reports the benchmark's receiver sends.
    if (rtp.length < 12 || rtp[0]! >> 6 !== 2) continue
    const clockPerMs = MEDIA_CLOCK.get(rtp[1]! & 0x7f)
    const key = `${from.port}>${to.port}/${rtp.readUInt32BE(8)}`
    if (clockPerMs === undefined) {
      // A telephone event in a media stream (a play's digits, RFC 4733): it takes its packet
      // time like audio, so it counts in the gaps and the sequence, but its timestamp is its
      // event's start, not the media clock's. Anything else (the receiver's key presses, RTCP)
      // is not a stream here.
      const s = streams.get(key)
      if (s === undefined || (rtp[1]! & 0x7f) < 96) continue
      const seq = rtp.readUInt16BE(2)
      gaps.push(at - s.last)
      const step = (seq - s.lastSeq + 65536) % 65536
      if (step > 1 && step < 1000) lost += step - 1
      s.lastSeq = seq
      s.last = at
      // The media clock moves on by one packet meanwhile.
      s.lastTs = (s.lastTs + s.stepTs) % 2 ** 32
      continue
    }
    const ts = rtp.readUInt32BE(4)
    const seq = rtp.readUInt16BE(2)
    let s = streams.get(key)
    if (s === undefined) {
      s = { last: at, firstAt: at, firstTs: ts, head: [], tail: [], packets: 0, tsBase: 0, lastTs: ts, lastSeq: seq, stepTs: 20 * clockPerMs }
      streams.set(key, s)
    } else {
      gaps.push(at - s.last)
      devs.push(Math.abs(at - s.last - ((ts - s.lastTs + 2 ** 32) % 2 ** 32) / clockPerMs))
      const step = (seq - s.lastSeq + 65536) % 65536
      if (step > 1 && step < 1000) lost += step - 1
      s.lastSeq = seq
      s.last = at
      if (ts < s.lastTs && s.lastTs - ts > 2 ** 31) s.tsBase += 2 ** 32
      const stepTs = (ts - s.lastTs + 2 ** 32) % 2 ** 32
      if (stepTs > 0 && stepTs < 48 * 120) s.stepTs = stepTs
      s.lastTs = ts
    }
    s.packets++
    const offsetMs = at - s.firstAt - (s.tsBase + ts - s.firstTs) / clockPerMs
    if (s.head.length < 25) s.head.push(offsetMs)
    s.tail.push(offsetMs)
    if (s.tail.length > 25) s.tail.shift()
  }
  const sorted = Float64Array.from(gaps).sort()
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
  const sortedDevs = Float64Array.from(devs).sort()
  const d = (p: number): number => sortedDevs[Math.min(sortedDevs.length - 1, Math.floor(p * sortedDevs.length))] ?? NaN
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1] ?? 0
  const drifts = [...streams.values()].filter(s => s.packets > 50).map(s => Math.abs(median(s.tail) - median(s.head))).sort((a, b) => a - b)
  return { streams: streams.size, packets: gaps.length + streams.size, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: q(1), devP50: d(0.5), devP99: d(0.99), devP999: d(0.999), devMax: d(1), lost, driftP50: drifts[drifts.length >> 1] ?? 0, driftMax: drifts.at(-1) ?? 0 }
}

/**
 * For each stream that a key press came back on: from the first RFC 4733 packet the far end
 * sent towards the play's port (payload type `payloadType`; its header is in the clear under
 * SRTP too) to the play's last media packet, both at the kernel's timestamps, ms. The stop
 * after a # as the wire saw it, free of the benchmark receiver's own lag. Needs a capture of
 * both directions.
 */
export function digitToLast (file: string, payloadType = 101): number[] {
  const firstPress = new Map<string, number>()
  const lastMedia = new Map<string, number>()
  for (const { at, from, to, payload: rtp } of readPcap(fs.readFileSync(file))) {
    if (rtp.length < 12 || rtp[0]! >> 6 !== 2) continue
    const type = rtp[1]! & 0x7f
    if (type === payloadType) {
      // The far end's digit: from its port to the play's, keyed as the play's stream is.
      const key = `${to.port}>${from.port}`
      if (!firstPress.has(key)) firstPress.set(key, at)
    } else if (MEDIA_CLOCK.has(type)) {
      lastMedia.set(`${from.port}>${to.port}`, at)
    }
  }
  const result: number[] = []
  for (const [key, pressed] of firstPress) {
    const last = lastMedia.get(key)
    if (last !== undefined) result.push(last - pressed)
  }
  return result
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    console.error('usage: node dist/bench/pcap-gaps.js capture.pcap')
    process.exit(2)
  }
  const g = kernelGaps(file)
  console.log(`${g.streams} streams, ${g.packets} packets (kernel timestamps)`)
  console.log(`gap ms: p50 ${g.p50.toFixed(3)}  p99 ${g.p99.toFixed(3)}  p99.9 ${g.p999.toFixed(3)}  max ${g.max.toFixed(3)}`)
  console.log(`drift ms (|last 25 - first 25| medians): p50 ${g.driftP50.toFixed(3)}  max ${g.driftMax.toFixed(3)}`)
}
