/**
 * A play as the HTTP thread knows it: what was asked, where it goes, its state, and its
 * counters read live from the memory the packet thread writes.
 */
import type { Codec, Ptime } from '../common/g711.js'
import type { Endpoint, PlayInfo, PlayState } from '../common/schemas.js'
import { COUNTERS, type PauseMode, type StoppedBy } from '../packet/protocol.js'

export interface PlayHandleOptions {
  id: string
  target: Endpoint
  source: Endpoint
  prompts: string[]
  codec: Codec
  payloadType: number
  ptimeMs: Ptime
  ssrc: number
  totalPackets: number
  callbackUrl: string | null
  /** The instance that sends it: this one. */
  instance: string
  loop: number
  pauseMode: PauseMode
  slot: number
  counters: Float64Array
}

export class PlayHandle {
  readonly id: string
  readonly target: Endpoint
  readonly source: Endpoint
  readonly prompts: string[]
  readonly codec: Codec
  readonly payloadType: number
  readonly ptimeMs: Ptime
  readonly ssrc: number
  readonly totalPackets: number
  readonly durationMs: number
  readonly callbackUrl: string | null
  readonly instance: string
  readonly loop: number
  readonly pauseMode: PauseMode
  readonly startedAt = new Date()
  /** The counter slot while running; -1 once ended (the slot serves another play). */
  slot: number
  state: PlayState = 'playing'
  endedAt: Date | null = null
  error: string | null = null
  stoppedBy: StoppedBy | null = null
  /** The caller's key presses so far. */
  digits = ''
  private counters: Float64Array

  constructor (options: PlayHandleOptions) {
    this.id = options.id
    this.target = options.target
    this.source = options.source
    this.prompts = options.prompts
    this.codec = options.codec
    this.payloadType = options.payloadType
    this.ptimeMs = options.ptimeMs
    this.ssrc = options.ssrc
    this.totalPackets = options.totalPackets
    this.durationMs = options.totalPackets * options.ptimeMs
    this.callbackUrl = options.callbackUrl
    this.instance = options.instance
    this.loop = options.loop
    this.pauseMode = options.pauseMode
    this.slot = options.slot
    this.counters = options.counters
  }

  get packetsSent (): number { return this.counters[COUNTERS.packets]! }
  get octetsSent (): number { return this.counters[COUNTERS.octets]! }
  get sendErrors (): number { return this.counters[COUNTERS.sendErrors]! }
  get paused (): boolean { return this.counters[COUNTERS.paused] === 1 && this.state === 'playing' }
  get positionMs (): number { return this.counters[COUNTERS.position]! * this.ptimeMs }
  get loopsDone (): number { return this.counters[COUNTERS.loopsDone]! }

  /** Records the end; the final counters are copied out of the shared slot before it is reused. */
  ended (state: Exclude<PlayState, 'playing'>, error: string | null, stoppedBy: StoppedBy | null = null): void {
    this.state = state
    this.error = error
    this.stoppedBy = stoppedBy
    this.endedAt = new Date()
    this.counters = Float64Array.from(this.counters)
    this.slot = -1
  }

  toJSON (): PlayInfo {
    return {
      id: this.id,
      state: this.state,
      target: this.target,
      source: this.source,
      prompts: this.prompts,
      codec: this.codec,
      payloadType: this.payloadType,
      ptimeMs: this.ptimeMs,
      ssrc: this.ssrc,
      durationMs: this.durationMs,
      packetsSent: this.packetsSent,
      octetsSent: this.octetsSent,
      sendErrors: this.sendErrors,
      startedAt: this.startedAt.toISOString(),
      endedAt: this.endedAt?.toISOString() ?? null,
      error: this.error,
      callbackUrl: this.callbackUrl,
      instance: this.instance,
      loop: this.loop,
      pauseMode: this.pauseMode,
      paused: this.paused,
      positionMs: this.positionMs,
      loopsDone: this.loopsDone,
      stoppedBy: this.stoppedBy,
      received: { digits: this.digits, ignored: this.counters[COUNTERS.ignored]!, malformed: this.counters[COUNTERS.malformed]! }
    }
  }
}
