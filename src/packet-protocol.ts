/**
 * Messages between the HTTP thread (PacketEngine) and the packet thread (packet-worker).
 * Prompt audio crosses as views on SharedArrayBuffers: shared, never copied.
 */
import type { EngineErrorCode } from './errors.js'
import type { Codec, Ptime } from './g711.js'
import type { Endpoint, PlayState } from './play.js'

export interface WorkerSetup {
  rtpPorts: { min: number, max: number }
  /** Three Float64 counters per play slot: packets, octets, send errors. */
  counters: SharedArrayBuffer
  lateness: SharedArrayBuffer
}

export interface StartPlay {
  id: string
  slot: number
  target: Endpoint
  /** Registered prompt ids, in play order. */
  prompts: number[]
  codec: Codec
  payloadType: number
  ptimeMs: Ptime
  ssrc?: number
}

export interface Started {
  source: Endpoint
  ssrc: number
  totalPackets: number
}

export type ToWorker =
  | { type: 'prompt', id: number, PCMU: Uint8Array, PCMA: Uint8Array }
  | { type: 'release', id: number }
  | { type: 'start', call: number, play: StartPlay }
  | { type: 'stop', call: number, id: string }
  | { type: 'stopAll', call: number }

export type FromWorker =
  | { type: 'ready', niceness: number | null }
  | { type: 'reply', call: number, result?: Started }
  | { type: 'reply', call: number, error: { code: EngineErrorCode, message: string } }
  | { type: 'ended', id: string, state: Exclude<PlayState, 'playing'>, error: string | null }
