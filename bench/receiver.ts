/**
 * The benchmark's receiver, a process of its own so that its work does not share a core's
 * event loop with the sender under test. Each stream under test gets its own pair of UDP
 * ports, RTP and RTCP above it (so that a sender's RTCP never lands on another stream's port);
 * per packet this keeps only counters and a gap histogram, so that it can follow thousands of
 * streams. Each RTCP sender report is answered with a receiver report, as a phone does. The
 * parent drives it over IPC:
 *   {cmd: 'open', count}   -> {ports}         bind `count` pairs on 127.0.0.1
 *   {cmd: 'press', presses: [{port, digit, afterMs, srtp?}]} -> {}   press a key back towards each
 *                             stream's source (RFC 4733), `afterMs` from now; the time the
 *                             first packet left is kept
 *   {cmd: 'report'}        -> {streams, gaps} what arrived since open
 *   {cmd: 'close'}
 * Arrival times are performance.timeOrigin + performance.now(): milliseconds comparable
 * across processes on this machine.
 */
import dgram from 'node:dgram'
import { performance } from 'node:perf_hooks'
import { bindPair } from '../cli/udp-pair.js'
import { isRtcp, keyPress, ntpMiddle, parseSdesKey, readSenderReport, receiverReport, SrtpSender, type SrtpSuiteName } from '../src/index.js'

export interface StreamStats {
  port: number
  packets: number
  expected: number
  firstArrival: number
  badSize: number
  markers: number
  /** Median offset (arrival - media time) of the last 25 packets minus that of the first 25, ms. */
  driftMs: number
  lastArrival: number
  /** RTCP sender reports that arrived, and whether one carried a BYE. */
  senderReports: number
  bye: boolean
  /** When the first packet of a key press left towards the stream's source, or 0. */
  pressAt: number
}

export interface ReceiverReport {
  streams: StreamStats[]
  /** Inter-arrival gaps over every stream, from a histogram of 0.05 ms bins. */
  gaps: { count: number, p50: number, p99: number, max: number }
}

const BIN_MS = 0.05
const BINS = 20_000 // up to 1 s

interface State {
  port: number
  packets: number
  firstSeq: number
  maxSeq: number
  firstTs: number
  tsBase: number
  /** Highest extended timestamp seen. */
  lastTs: number
  firstArrival: number
  lastArrival: number
  badSize: number
  markers: number
  head: number[]
  tail: number[]
  ssrc: number
  source: { address: string, port: number } | null
  socket: dgram.Socket
  senderReports: number
  bye: boolean
  pressAt: number
}

let sockets: dgram.Socket[] = []
let states: State[] = []
let histogram = new Float64Array(BINS)
let maxGap = 0
let gapCount = 0

function now (): number {
  return performance.timeOrigin + performance.now()
}

function onPacket (state: State, msg: Buffer): void {
  const at = now()
  // RTCP on the RTP port (RFC 5761) is not a packet of the stream.
  if (msg.length < 12 || isRtcp(msg)) return
  const seq = msg.readUInt16BE(2)
  const ts = msg.readUInt32BE(4)
  if (state.packets === 0) {
    state.firstSeq = seq
    state.maxSeq = seq
    state.firstTs = ts
    state.tsBase = 0
    state.lastTs = ts
    state.firstArrival = at
    state.ssrc = msg.readUInt32BE(8)
  } else {
    const gap = at - state.lastArrival
    histogram[Math.min(BINS - 1, Math.floor(gap / BIN_MS))]!++
    gapCount++
    if (gap > maxGap) maxGap = gap
    let ext = (state.maxSeq & ~0xffff) + seq
    if (ext < state.maxSeq - 0x8000) ext += 0x10000
    if (ext > state.maxSeq) state.maxSeq = ext
    // Extend the timestamp to the value nearest the highest seen, so that a packet reordered
    // across a 2^32 wrap is not taken for one a wrap later.
    let extTs = state.tsBase + ts
    if (extTs - state.lastTs > 2 ** 31) extTs -= 2 ** 32
    else if (state.lastTs - extTs > 2 ** 31) extTs += 2 ** 32
    if (extTs > state.lastTs) {
      state.lastTs = extTs
      state.tsBase = extTs - ts
    }
  }
  state.lastArrival = at
  state.packets++
  // A byte codec's payloads all have the stream's size; Opus packets vary, so only an empty one is bad.
  const bytes = msg.length - 12 - trailer
  if (payloadBytes === null ? bytes <= 0 : bytes !== payloadBytes) state.badSize++
  if ((msg[1]! & 0x80) !== 0) state.markers++
  let media = state.tsBase + ts
  if (media - state.lastTs > 2 ** 31) media -= 2 ** 32
  else if (state.lastTs - media > 2 ** 31) media += 2 ** 32
  const offset = at - (media - state.firstTs) / clockPerMs
  if (state.head.length < 25) state.head.push(offset)
  state.tail.push(offset)
  if (state.tail.length > 25) state.tail.shift()
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[sorted.length >> 1] ?? 0
}

function quantile (q: number): number {
  const target = q * gapCount
  let seen = 0
  for (let i = 0; i < BINS; i++) {
    seen += histogram[i]!
    if (seen >= target) return (i + 0.5) * BIN_MS
  }
  return maxGap
}

/** A sender report answered at once with a receiver report about the stream (LSR from it, DLSR 0). */
function onRtcp (state: State, msg: Buffer, rtcp: dgram.Socket, from: dgram.RemoteInfo): void {
  const sr = readSenderReport(msg)
  if (sr === null) return
  state.senderReports++
  if (sr.bye) {
    state.bye = true
    return
  }
  const expected = state.packets === 0 ? 0 : state.maxSeq - state.firstSeq + 1
  rtcp.send(receiverReport({ ssrc: 0xbe7c, about: sr.ssrc, packetsLost: expected - state.packets, highestSequence: state.maxSeq, lsr: ntpMiddle(sr.wallMs), dlsr: 0 }), from.port, from.address)
}

/** Bytes after the payload of every packet (SRTP's tag and MKI): the size check allows for them. */
let trailer = 0
/** Every payload's size (null: any, as Opus's), and the RTP clock per ms (8; 48 for Opus). */
let payloadBytes: number | null = 160
let clockPerMs = 8

/** What the streams of the next window carry: their payload size (null for any) and RTP clock. */
export interface Expect { payloadBytes: number | null, clockPerMs: number }

async function open (count: number, trailerBytes = 0, expect: Expect = { payloadBytes: 160, clockPerMs: 8 }): Promise<number[]> {
  close()
  trailer = trailerBytes
  payloadBytes = expect.payloadBytes
  clockPerMs = expect.clockPerMs
  histogram = new Float64Array(BINS)
  maxGap = 0
  gapCount = 0
  while (states.length < count) {
    const { socket, rtcpSocket } = await bindPair('127.0.0.1', 0, { recvBufferSize: 1 << 20 })
    const rtcp = rtcpSocket!
    const port = socket.address().port
    const state: State = { port, packets: 0, firstSeq: 0, maxSeq: 0, firstTs: 0, tsBase: 0, lastTs: 0, firstArrival: 0, lastArrival: 0, badSize: 0, markers: 0, head: [], tail: [], ssrc: 0, source: null, socket, senderReports: 0, bye: false, pressAt: 0 }
    socket.on('message', (msg, from) => {
      if (state.source === null) state.source = { address: from.address, port: from.port }
      onPacket(state, msg)
    })
    rtcp.on('message', (msg, from) => onRtcp(state, msg, rtcp, from))
    sockets.push(socket, rtcp)
    states.push(state)
  }
  return states.map(s => s.port)
}

/** Presses `digit` towards the stream's source as a phone does: updates every 20 ms, then three end packets. */
function press (port: number, digit: string, afterMs: number, srtp?: { suite: SrtpSuiteName, key: string }): void {
  const state = states.find(s => s.port === port)
  if (state === undefined) return
  setTimeout(() => {
    if (state.source === null) return
    let packets = keyPress(digit, { ssrc: 0xd7f, sequence: 1, timestamp: Math.floor(Math.random() * 2 ** 32), durationMs: 100 })
    if (srtp !== undefined) {
      // Sealed as the caller's phone would (the tests prove the sealing against libsrtp).
      const sender = new SrtpSender(srtp.suite, parseSdesKey(srtp.key, srtp.suite))
      packets = packets.map((p, k) => sender.sealedRtp(p, 1 + k))
    }
    const { address, port: to } = state.source
    state.pressAt = now()
    state.socket.send(packets[0]!, to, address)
    packets.slice(1).forEach((packet, i) => setTimeout(() => { try { state.socket.send(packet, to, address) } catch {} }, (i + 1) * 20))
  }, afterMs)
}

function close (): void {
  for (const socket of sockets) socket.close()
  sockets = []
  states = []
}

function report (): ReceiverReport {
  return {
    streams: states.map(s => ({
      port: s.port,
      packets: s.packets,
      expected: s.packets === 0 ? 0 : s.maxSeq - s.firstSeq + 1,
      firstArrival: s.firstArrival,
      badSize: s.badSize,
      markers: s.markers,
      driftMs: s.packets < 50 ? 0 : median(s.tail) - median(s.head),
      lastArrival: s.lastArrival,
      senderReports: s.senderReports,
      bye: s.bye,
      pressAt: s.pressAt
    })),
    gaps: { count: gapCount, p50: quantile(0.5), p99: quantile(0.99), max: maxGap }
  }
}

process.on('message', (message: { cmd: string, count?: number, trailer?: number, expect?: Expect, id: number, presses?: Array<{ port: number, digit: string, afterMs: number, srtp?: { suite: SrtpSuiteName, key: string } }> }) => {
  void (async () => {
    if (message.cmd === 'open') process.send!({ id: message.id, ports: await open(message.count!, message.trailer ?? 0, message.expect) })
    else if (message.cmd === 'press') {
      for (const p of message.presses!) press(p.port, p.digit, p.afterMs, p.srtp)
      process.send!({ id: message.id })
    } else if (message.cmd === 'report') process.send!({ id: message.id, report: report() })
    else if (message.cmd === 'close') { close(); process.send!({ id: message.id }); process.disconnect() }
  })()
})
