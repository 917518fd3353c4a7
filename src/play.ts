/**
 * One play: one RTP stream into one call, all its prompts back to back, sent from a UDP
 * socket of its own (the `source` the API reports, the same for the whole play).
 */
import type { Socket } from 'node:dgram'
import { SAMPLES_PER_MS, type Codec, type Ptime } from './g711.js'
import type { Prompt } from './prompt.js'
import { HEADER_RING, RtpStream } from './rtp-packetizer.js'
import type { Scheduler, Task } from './scheduler.js'

export type PlayState = 'playing' | 'finished' | 'stopped' | 'failed'

export interface Endpoint { host: string, port: number }

export interface PlayOptions {
  id: string
  target: Endpoint
  prompts: readonly Prompt[]
  codec: Codec
  payloadType: number
  ptimeMs: Ptime
  ssrc?: number
  callbackUrl?: string | null
  /** The socket to send from: bound, and connected to the target. The play closes it. */
  socket: Socket
  source: Endpoint
  scheduler: Scheduler
  /** Called once when the play ends, whatever the reason. */
  onEnd?: (play: Play) => void
}

/** The Play resource of API.md. */
export interface PlayInfo {
  id: string
  state: PlayState
  target: Endpoint
  source: Endpoint
  prompts: string[]
  codec: Codec
  payloadType: number
  ptimeMs: number
  ssrc: number
  durationMs: number
  packetsSent: number
  octetsSent: number
  sendErrors: number
  startedAt: string
  endedAt: string | null
  error: string | null
  callbackUrl: string | null
}

// Errors a connected UDP socket reports when the far end sent ICMP unreachable: the call's
// media port is not open (yet, or any more). Telephony peers open ports late and close them
// early, so these are counted and sending goes on; any other send error fails the play.
const TRANSIENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAGAIN', 'ENOBUFS'])

export class Play implements Task {
  readonly id: string
  readonly target: Endpoint
  readonly source: Endpoint
  readonly prompts: readonly Prompt[]
  readonly codec: Codec
  readonly ptimeMs: Ptime
  readonly callbackUrl: string | null
  readonly durationMs: number
  readonly totalPackets: number
  readonly rtp: RtpStream
  state: PlayState = 'playing'
  packetsSent = 0
  octetsSent = 0
  sendErrors = 0
  startedAt: Date | null = null
  endedAt: Date | null = null
  error: string | null = null
  /** Task fields (see Scheduler). */
  due = 0
  slot = -1

  private readonly socket: Socket
  private readonly scheduler: Scheduler
  private readonly onEnd: ((play: Play) => void) | undefined
  private readonly frameLists: ReadonlyArray<readonly Buffer[]>
  private listIndex = 0
  private frameIndex = 0
  private start = 0
  private inFlight = 0
  private readonly onSent: (err: Error | null) => void

  constructor (options: PlayOptions) {
    this.id = options.id
    this.target = options.target
    this.source = options.source
    this.prompts = options.prompts
    this.codec = options.codec
    this.ptimeMs = options.ptimeMs
    this.callbackUrl = options.callbackUrl ?? null
    this.socket = options.socket
    this.scheduler = options.scheduler
    this.onEnd = options.onEnd
    this.frameLists = options.prompts.map(p => p.frames(options.codec, options.ptimeMs))
    this.totalPackets = this.frameLists.reduce((n, frames) => n + frames.length, 0)
    this.durationMs = this.totalPackets * options.ptimeMs
    this.rtp = new RtpStream({
      payloadType: options.payloadType,
      samplesPerPacket: options.ptimeMs * SAMPLES_PER_MS,
      ...(options.ssrc === undefined ? {} : { ssrc: options.ssrc })
    })
    // One callback for every send of this play: nothing is allocated per packet for it.
    this.onSent = (err) => {
      this.inFlight--
      if (err) this.sendFailed(err)
    }
    this.socket.on('error', err => this.sendFailed(err))
  }

  /** Sends the first packet now, before this returns, and the rest on the scheduler's clock. */
  begin (): void {
    this.start = this.scheduler.clock.now()
    this.startedAt = new Date()
    this.due = this.start
    this.scheduler.add(this)
    this.scheduler.tick()
  }

  /** Task.run: sends the packet that is due, or ends the play after the last one has played. */
  run (): boolean {
    if (this.state !== 'playing') return false
    let frames = this.frameLists[this.listIndex]
    while (frames !== undefined && this.frameIndex >= frames.length) {
      this.listIndex++
      this.frameIndex = 0
      frames = this.frameLists[this.listIndex]
    }
    if (frames === undefined) {
      // The last packet's audio has now played out at the far end's nominal clock.
      this.end('finished', null)
      return false
    }
    const payload = frames[this.frameIndex++]!
    if (this.inFlight >= HEADER_RING) {
      // The kernel has not taken the last HEADER_RING packets: a header slot is still held by a
      // pending send and must not be rewritten. Count the packet as lost rather than corrupt one.
      this.rtp.count++
      this.sendErrors++
    } else {
      const header = this.rtp.next()
      this.inFlight++
      this.socket.send([header, payload], this.onSent)
      this.packetsSent++
      this.octetsSent += payload.length
    }
    this.due = this.start + this.rtp.count * this.ptimeMs
    return true
  }

  /** Stops sending at once: no packet of this play leaves after this returns. */
  stop (): void {
    if (this.state === 'playing') this.end('stopped', null)
  }

  /** Ends the play as failed, with a reason a person can act on. */
  fail (reason: string): void {
    if (this.state === 'playing') this.end('failed', reason)
  }

  toJSON (): PlayInfo {
    return {
      id: this.id,
      state: this.state,
      target: this.target,
      source: this.source,
      prompts: this.prompts.map(p => p.name),
      codec: this.codec,
      payloadType: this.rtp.payloadType,
      ptimeMs: this.ptimeMs,
      ssrc: this.rtp.ssrc,
      durationMs: this.durationMs,
      packetsSent: this.packetsSent,
      octetsSent: this.octetsSent,
      sendErrors: this.sendErrors,
      startedAt: (this.startedAt ?? new Date()).toISOString(),
      endedAt: this.endedAt?.toISOString() ?? null,
      error: this.error,
      callbackUrl: this.callbackUrl
    }
  }

  private sendFailed (err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    this.sendErrors++
    if (!TRANSIENT.has(code)) {
      this.fail(`sending to ${this.target.host}:${this.target.port} failed: ${err.message}`)
    }
  }

  private end (state: PlayState, error: string | null): void {
    this.state = state
    this.error = error
    this.endedAt = new Date()
    this.scheduler.remove(this)
    this.socket.close()
    this.onEnd?.(this)
  }
}

