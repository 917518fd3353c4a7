/**
 * The benchmark's receiver, a process of its own so that its work does not share a core's
 * event loop with the sender under test. Each stream under test gets its own UDP port; per
 * packet this keeps only counters and a gap histogram, so that it can follow thousands of
 * streams. The parent drives it over IPC:
 *   {cmd: 'open', count}   -> {ports}         bind `count` sockets on 127.0.0.1
 *   {cmd: 'report'}        -> {streams, gaps} what arrived since open
 *   {cmd: 'close'}
 * Arrival times are performance.timeOrigin + performance.now(): milliseconds comparable
 * across processes on this machine.
 */
import dgram from 'node:dgram'
import { performance } from 'node:perf_hooks'

export interface StreamStats {
  port: number
  packets: number
  expected: number
  firstArrival: number
  badSize: number
  markers: number
  /** Median offset (arrival - media time) of the last 25 packets minus that of the first 25, ms. */
  driftMs: number
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
  if (msg.length < 12) return
  const seq = msg.readUInt16BE(2)
  const ts = msg.readUInt32BE(4)
  if (state.packets === 0) {
    state.firstSeq = seq
    state.maxSeq = seq
    state.firstTs = ts
    state.tsBase = 0
    state.lastTs = ts
    state.firstArrival = at
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
  if (msg.length - 12 !== 160) state.badSize++
  if ((msg[1]! & 0x80) !== 0) state.markers++
  let media = state.tsBase + ts
  if (media - state.lastTs > 2 ** 31) media -= 2 ** 32
  else if (state.lastTs - media > 2 ** 31) media += 2 ** 32
  const offset = at - (media - state.firstTs) / 8
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

async function open (count: number): Promise<number[]> {
  close()
  histogram = new Float64Array(BINS)
  maxGap = 0
  gapCount = 0
  for (let i = 0; i < count; i++) {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 })
    await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
    const state: State = { port: socket.address().port, packets: 0, firstSeq: 0, maxSeq: 0, firstTs: 0, tsBase: 0, lastTs: 0, firstArrival: 0, lastArrival: 0, badSize: 0, markers: 0, head: [], tail: [] }
    socket.on('message', msg => onPacket(state, msg))
    sockets.push(socket)
    states.push(state)
  }
  return states.map(s => s.port)
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
      driftMs: s.packets < 50 ? 0 : median(s.tail) - median(s.head)
    })),
    gaps: { count: gapCount, p50: quantile(0.5), p99: quantile(0.99), max: maxGap }
  }
}

process.on('message', (message: { cmd: string, count?: number, id: number }) => {
  void (async () => {
    if (message.cmd === 'open') process.send!({ id: message.id, ports: await open(message.count!) })
    else if (message.cmd === 'report') process.send!({ id: message.id, report: report() })
    else if (message.cmd === 'close') { close(); process.send!({ id: message.id }); process.disconnect() }
  })()
})
