/**
 * Messages between the HTTP thread (PacketEngine) and the packet threads (src/packet/worker.ts).
 * Prompt audio crosses as views on SharedArrayBuffers: shared, never copied.
 */
import type { EngineErrorCode } from './errors.js'
import type { Codec, Ptime, Rendition, Renditions } from './codecs.js'
import type { Endpoint, PAUSE_MODES, PlayControl, PlayState, RtcpMode, STOPPED_BY } from './schemas.js'
import type { SrtpKeys } from './srtp-suites.js'
import type { DtmfEntry } from './telephone-events.js'

/**
 * Each play's counters: Float64s in one SharedArrayBuffer, a slot of COUNTERS.size per play
 * that can run at once. The packet thread writes them, the HTTP thread reads them live.
 */
export const COUNTERS = {
  packets: 0,
  octets: 1,
  sendErrors: 2,
  /** Packets of the prompt list played in the current loop: the position, in packets. */
  position: 3,
  loopsDone: 4,
  /** 1 while paused. */
  paused: 5,
  /** Packets that arrived on the play's port: of other payload types, and malformed. */
  ignored: 6,
  malformed: 7,
  /** RTCP reports about this stream received from the far end, and the latest one's figures. */
  reports: 8,
  /** When the latest arrived, in ms since the Unix epoch; 0: none yet. */
  remoteAt: 9,
  fractionLost: 10,
  packetsLost: 11,
  jitterMs: 12,
  /** NaN when the report could not give one (no SR of ours had reached the far end). */
  rttMs: 13,
  /** Sender reports sent (the BYE's included). */
  reportsSent: 14,
  /** The most any packet of the play left after its due time, in ms. */
  maxLate: 15,
  /** SRTP: packets that failed authentication or were replays (or plaintext), dropped. */
  unauthenticated: 16,
  /** Packets skipped because they were due longer ago than the late limit (never sent as a burst). */
  skipped: 17,
  size: 18
} as const

/** A control of a running play (POST /v1/plays/{id}/control). */
export type Control = PlayControl

/** Why a play stopped, when it was stopped. */
export type StoppedBy = typeof STOPPED_BY[number]

export type PauseMode = typeof PAUSE_MODES[number]

/** The counters of the play in `slot`, a view on the shared memory. */
export function countersOf (counters: Float64Array, slot: number): Float64Array {
  return counters.subarray(slot * COUNTERS.size, (slot + 1) * COUNTERS.size)
}

/**
 * How a packet thread waits for a due time: `sleep` (the timer wakes it a little early and a
 * futex sleeps the rest, to the tens of microseconds), `spin` (the rest is a busy loop), or
 * `timer` (Node's timer alone, up to a millisecond late; no grid).
 */
export const PACING_MODES = ['sleep', 'spin', 'timer'] as const
export type Pacing = typeof PACING_MODES[number]

/**
 * The RTP port claims every packet thread shares: an Int32 per even port of the range (0 free,
 * else the claiming thread's index + 1), after a cursor that spreads new plays over the range.
 * A thread claims a port with Atomics.compareExchange before it binds it.
 */
export function portClaims (range: { min: number, max: number }): SharedArrayBuffer {
  return new SharedArrayBuffer((1 + portSlots(range)) * Int32Array.BYTES_PER_ELEMENT)
}

/** The first even port of the range: RTP's (RFC 3550 §11). */
export function firstRtpPort (range: { min: number }): number {
  return range.min % 2 === 0 ? range.min : range.min + 1
}

/** Even ports in the range. */
export function portSlots (range: { min: number, max: number }): number {
  const first = firstRtpPort(range)
  return first > range.max ? 0 : Math.floor((range.max - first) / 2) + 1
}

export interface WorkerSetup {
  /** This thread's index among the packet threads. */
  thread: number
  rtpPorts: { min: number, max: number }
  /** The port claims of every thread (portClaims). */
  ports: SharedArrayBuffer
  pacing: Pacing
  /** Ptimes a packet may be late before it is skipped; 0: never. */
  lateLimitPtimes: number
  /** The play slots' counters (COUNTERS). */
  counters: SharedArrayBuffer
  lateness: SharedArrayBuffer
  /** RTCP's report interval before randomisation (RFC 3550 §6.2: 5 s). */
  rtcpIntervalMs: number
  /** SCHED_FIFO priority asked for the packet thread, 1-99; 0: none. */
  realtimePriority: number
}

/**
 * An entry of a play's list on the packet thread: a registered prompt's id; packets of the
 * codec's silence; or `packets` packets of a registered prompt's first `cycle` packets,
 * repeated (a tone's block); or digits sent as RFC 4733 events.
 */
export type ListEntry = number | { silencePackets: number } | { prompt: number, packets: number, cycle: number } | { dtmf: DtmfEntry }

export interface StartPlay {
  id: string
  slot: number
  target: Endpoint
  /** The list in play order: registered prompts' ids, and packets of the codec's silence. */
  prompts: ListEntry[]
  codec: Codec
  payloadType: number
  ptimeMs: Ptime
  ssrc?: number
  /** Times the whole list plays; 0: until stopped. */
  loop: number
  /** Packets of the list to skip at the start. */
  offsetPackets: number
  pauseMode: PauseMode
  /** The caller's key presses: their payload type, and the digits that stop the play. */
  dtmf: { payloadType: number, stopOn: string } | null
  /** RTCP from source.port + 1 to target.port + 1 ("on"), on the RTP ports ("mux"), or none. */
  rtcp: RtcpMode
  /** The first packet's sequence number; random when absent. */
  firstSequence?: number
  /** SRTP, or null for plain RTP. */
  srtp: SrtpKeys | null
}

export interface Started {
  source: Endpoint
  ssrc: number
}

export type ToWorker =
  | { type: 'prompt', id: number, audio: Renditions }
  /** A rendition made after the prompt was registered (a play's first need of it). */
  | { type: 'rendition', id: number, rendition: Rendition, bytes: Uint8Array }
  | { type: 'release', id: number }
  | { type: 'start', call: number, play: StartPlay }
  | { type: 'stop', call: number, id: string, by: StoppedBy }
  | { type: 'stopAll', call: number, by: StoppedBy }
  | { type: 'control', call: number, id: string, control: Control }

export type FromWorker =
  | { type: 'ready', niceness: number | null, realtime: number | null, tid: number | null }
  | { type: 'reply', call: number, result?: Started, changed?: boolean }
  | { type: 'reply', call: number, error: { code: EngineErrorCode, message: string, options: readonly string[] } }
  | { type: 'dtmf', id: string, digit: string, durationMs: number }
  | { type: 'ended', id: string, state: Exclude<PlayState, 'playing'>, error: string | null, stoppedBy: StoppedBy | null }
