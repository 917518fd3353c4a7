/**
 * A play as the HTTP thread knows it: what was asked, where it goes, its state, and its
 * counters read live from the memory the packet thread writes.
 */
import type { Codec, Ptime } from '../common/codecs.js'
import type { Endpoint, PlayCreatedInfo, PlayInfo, PlayState, RtcpMode } from '../common/schemas.js'
import { COUNTERS, type PauseMode, type StoppedBy } from '../common/protocol.js'
import type { SrtpSuiteName } from '../common/srtp-suites.js'

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
  rtcp: RtcpMode
  /** The SRTP suite, never a key; null for plain RTP. */
  srtp: { suite: SrtpSuiteName } | null
  /** The key the play sends with: for the answer to its start only (`answer()`), never in toJSON. */
  localKey: string | null
  slot: number
  counters: Float64Array
}

/** What a play is and stays: as asked, and where it was set up to send from. */
type Facts = Omit<PlayHandleOptions, 'slot' | 'counters' | 'localKey'>

export class PlayHandle {
  readonly facts: Readonly<Facts>
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
  private localKey: string | null

  constructor (options: PlayHandleOptions) {
    const { slot, counters, localKey, ...facts } = options
    this.facts = facts
    this.slot = slot
    this.counters = counters
    this.localKey = localKey
  }

  /**
   * The answer to the play's start (POST /v1/plays' 201): the Play, with `srtp.localKey` for the
   * application's SDP answer. The key is given once and forgotten here: no later read of the
   * play (GET, lists, events, webhooks, the pool's record) can carry it.
   */
  answer (): PlayCreatedInfo {
    const json = this.toJSON()
    const localKey = this.localKey
    this.localKey = null
    return json.srtp === null || localKey === null ? json : { ...json, srtp: { ...json.srtp, localKey } }
  }

  get id (): string { return this.facts.id }
  get totalPackets (): number { return this.facts.totalPackets }
  /** One pass of the prompt list. */
  get durationMs (): number { return this.facts.totalPackets * this.facts.ptimeMs }
  get packetsSent (): number { return this.counters[COUNTERS.packets]! }
  get octetsSent (): number { return this.counters[COUNTERS.octets]! }
  get sendErrors (): number { return this.counters[COUNTERS.sendErrors]! }
  get packetsSkipped (): number { return this.counters[COUNTERS.skipped]! }
  get paused (): boolean { return this.counters[COUNTERS.paused] === 1 && this.state === 'playing' }
  get positionMs (): number { return this.counters[COUNTERS.position]! * this.facts.ptimeMs }
  get loopsDone (): number { return this.counters[COUNTERS.loopsDone]! }

  /** The far end's latest RTCP report about the stream, or null before the first. */
  get remote (): PlayInfo['remote'] {
    const c = this.counters
    if (c[COUNTERS.remoteAt] === 0) return null
    const rtt = c[COUNTERS.rttMs]!
    return {
      fractionLost: c[COUNTERS.fractionLost]!,
      packetsLost: c[COUNTERS.packetsLost]!,
      jitterMs: round(c[COUNTERS.jitterMs]!),
      rttMs: Number.isNaN(rtt) ? null : round(rtt),
      at: new Date(c[COUNTERS.remoteAt]!).toISOString()
    }
  }

  /** Records the end; the final counters are copied out of the shared slot before it is reused. */
  ended (state: Exclude<PlayState, 'playing'>, error: string | null, stoppedBy: StoppedBy | null = null): void {
    this.state = state
    this.error = error
    this.stoppedBy = stoppedBy
    this.endedAt = new Date()
    this.counters = Float64Array.from(this.counters)
    this.slot = -1
  }

  /**
   * The Play as the API shows it. Written out field by field: an object spread from the facts
   * then grown by twenty more properties took 16 µs a call in V8 (a slow-mode object), this
   * about 0.5 µs, and a busy instance's GET /v1/plays, events and webhooks call it per play.
   */
  toJSON (): PlayInfo {
    const f = this.facts
    return {
      id: f.id,
      target: f.target,
      source: f.source,
      prompts: f.prompts,
      codec: f.codec,
      payloadType: f.payloadType,
      ptimeMs: f.ptimeMs,
      ssrc: f.ssrc,
      callbackUrl: f.callbackUrl,
      instance: f.instance,
      loop: f.loop,
      pauseMode: f.pauseMode,
      rtcp: f.rtcp,
      srtp: f.srtp,
      state: this.state,
      durationMs: this.durationMs,
      packetsSent: this.packetsSent,
      octetsSent: this.octetsSent,
      sendErrors: this.sendErrors,
      startedAt: this.startedAt.toISOString(),
      endedAt: this.endedAt?.toISOString() ?? null,
      error: this.error,
      paused: this.paused,
      positionMs: this.positionMs,
      loopsDone: this.loopsDone,
      stoppedBy: this.stoppedBy,
      received: { digits: this.digits, ignored: this.counters[COUNTERS.ignored]!, malformed: this.counters[COUNTERS.malformed]!, reports: this.counters[COUNTERS.reports]!, unauthenticated: this.counters[COUNTERS.unauthenticated]! },
      reportsSent: this.counters[COUNTERS.reportsSent]!,
      maxLateMs: round(this.counters[COUNTERS.maxLate]!),
      packetsSkipped: this.counters[COUNTERS.skipped]!,
      remote: this.remote
    }
  }
}

/** To the microsecond: what a report's 1/65536 s and 1/8000 s units resolve. */
function round (ms: number): number {
  return Math.round(ms * 1000) / 1000
}
