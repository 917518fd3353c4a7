/**
 * One play as the packet thread runs it: one RTP stream into one call, all its prompts back to
 * back, sent from a UDP socket of its own. The HTTP side sees it through PlayHandle.
 */
import type { Socket } from 'node:dgram'
import { SAMPLES_PER_MS, type Ptime } from '../common/g711.js'
import { PACKET_RING, RtpStream } from './rtp-packetizer.js'
import type { Scheduler, Task } from './scheduler.js'
import type { Endpoint, PlayState } from '../common/schemas.js'
import { COUNTERS } from './protocol.js'

/** A prompt's payloads at one codec and ptime (see Prompt.frames). */
export type Frames = readonly Buffer[]

export interface PlayOptions {
  id: string
  target: Endpoint
  /** The payloads of each prompt, in play order, already in the play's codec. */
  frames: readonly Frames[]
  payloadType: number
  ptimeMs: Ptime
  ssrc?: number
  /** The socket to send from: bound, and connected to the target. The play closes it. */
  socket: Socket
  scheduler: Scheduler
  /** packets, octets, send errors: written here, read by the HTTP thread (shared memory). */
  counters?: Float64Array
  /** Called once when the play ends, whatever the reason. */
  onEnd?: (play: Play) => void
}

// Errors a connected UDP socket reports when the far end sent ICMP unreachable: the call's
// media port is not open (yet, or any more). Telephony peers open ports late and close them
// early, so these are counted and sending goes on; any other send error fails the play.
const TRANSIENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAGAIN', 'ENOBUFS'])

const PACKETS = COUNTERS.packets
const OCTETS = COUNTERS.octets
const ERRORS = COUNTERS.sendErrors

export class Play implements Task {
  readonly id: string
  readonly target: Endpoint
  readonly ptimeMs: Ptime
  readonly totalPackets: number
  readonly rtp: RtpStream
  readonly counters: Float64Array
  state: PlayState = 'playing'
  error: string | null = null
  /** Task fields (see Scheduler). */
  due = 0
  slot = -1

  private readonly socket: Socket
  private readonly scheduler: Scheduler
  private readonly onEnd: ((play: Play) => void) | undefined
  private readonly frameLists: readonly Frames[]
  private listIndex = 0
  private frameIndex = 0
  private start = 0

  constructor (options: PlayOptions) {
    this.id = options.id
    this.target = options.target
    this.ptimeMs = options.ptimeMs
    this.socket = options.socket
    this.scheduler = options.scheduler
    this.onEnd = options.onEnd
    this.frameLists = options.frames
    this.counters = options.counters ?? new Float64Array(COUNTERS.size)
    this.counters.fill(0)
    this.totalPackets = this.frameLists.reduce((n, frames) => n + frames.length, 0)
    this.rtp = new RtpStream({
      payloadType: options.payloadType,
      samplesPerPacket: options.ptimeMs * SAMPLES_PER_MS,
      payloadBytes: options.ptimeMs * SAMPLES_PER_MS,
      ...(options.ssrc === undefined ? {} : { ssrc: options.ssrc })
    })
    this.socket.on('error', err => this.sendFailed(err))
  }

  get packetsSent (): number { return this.counters[PACKETS]! }
  get octetsSent (): number { return this.counters[OCTETS]! }
  get sendErrors (): number { return this.counters[ERRORS]! }

  /** Sends the first packet now, before this returns, and the rest on the scheduler's clock. */
  begin (): void {
    this.start = this.scheduler.clock.now()
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
    // A send the kernel could not take at once stays queued in libuv with its buffer. The
    // packet ring is rewritten only while fewer than PACKET_RING sends are queued; past that
    // the socket is hopelessly behind, and the packet is counted as lost, not corrupted.
    if (this.socket.getSendQueueCount() >= PACKET_RING) {
      this.rtp.drop()
      this.counters[ERRORS]!++
    } else {
      // No callback: a send the kernel takes at once costs no further work; errors come as
      // the socket's 'error' event.
      this.socket.send(this.rtp.next(payload))
      this.counters[PACKETS]!++
      this.counters[OCTETS] = this.counters[OCTETS]! + payload.length
    }
    this.due = this.start + this.rtp.count * this.ptimeMs
    return true
  }

  /** Task.failed: sending threw (a fault, not a send error); the play ends as failed. */
  failed (err: unknown): void {
    this.fail(`the play stopped on a fault while sending: ${err instanceof Error ? err.message : String(err)}`)
  }

  /** Stops sending at once: no packet of this play leaves after this returns. */
  stop (): void {
    if (this.state === 'playing') this.end('stopped', null)
  }

  /** Ends the play as failed, with a reason a person can act on. */
  fail (reason: string): void {
    if (this.state === 'playing') this.end('failed', reason)
  }

  private sendFailed (err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    this.counters[ERRORS]!++
    if (!TRANSIENT.has(code)) {
      this.fail(`sending to ${this.target.host}:${this.target.port} failed: ${err.message}`)
    }
  }

  private end (state: PlayState, error: string | null): void {
    this.state = state
    this.error = error
    this.scheduler.remove(this)
    try {
      this.socket.close()
    } catch {
      // Closed already (the fault that ended the play may be exactly that): nothing to free.
    }
    this.onEnd?.(this)
  }
}
