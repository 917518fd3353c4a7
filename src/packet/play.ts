/**
 * One play as the packet thread runs it: one RTP stream into one call, all its prompts back to
 * back (looped if asked), sent from a UDP socket of its own. The HTTP side sees it through
 * PlayHandle. Controls (pause, resume, restart, forward, reverse, seek) change what the next
 * packet carries, never when it leaves: packet k is still due at start + k * ptime, the
 * sequence number never jumps, and the timestamp follows the media clock (RFC 3550 §5.1).
 */
import type { Socket } from 'node:dgram'
import { CODECS, silencePayload, type Codec, type Ptime } from '../common/codecs.js'
import { ENGINE_DEFAULTS } from '../common/defaults.js'
import { PACKET_RING, RtpStream } from './rtp-packetizer.js'
import { largestPayload } from './prompt-audio.js'
import type { Scheduler, Task } from './scheduler.js'
import type { Endpoint, PlayState } from '../common/schemas.js'
import { COUNTERS, type Control, type PauseMode, type StoppedBy } from '../common/protocol.js'
import { DtmfReceiver, type DtmfOptions } from './dtmf.js'
import { isRtcp, nextReportMs, readRtcp, RtcpWriter, wallClockMs } from './rtcp.js'
import { SrtpReceiver, SrtpSender } from './srtp.js'
import type { SrtpKeys } from '../common/srtp-suites.js'

/** A prompt's payloads at one codec and ptime (see Prompt.frames); telephone events carry their marks. */
export type Frames = readonly Buffer[] & { readonly events?: EventMarks }

/** The frames of a `dtmf` entry: RFC 4733 events, with the codec's silence between digits. */
export interface EventMarks {
  payloadType: number
  /** Per frame: packets since its event's first, or -1 for an audio frame. */
  since: Int32Array
}

export interface PlayOptions {
  id: string
  target: Endpoint
  /** The payloads of each prompt, in play order, already in the play's codec. */
  frames: readonly Frames[]
  payloadType: number
  ptimeMs: Ptime
  ssrc?: number
  /** The first packet's sequence number (random when absent). */
  firstSequence?: number
  /**
   * SRTP (RFC 3711): RTP and RTCP sent sealed with `local`; what arrives opened with `remote`,
   * and dropped (counted as unauthenticated) when it does not open, or when there is no `remote`.
   */
  srtp?: SrtpKeys
  /** The payloads' codec: its RTP clock, and the silence sent while paused (default PCMU). */
  codec?: Codec
  /** Times the whole list plays (default 1); 0 plays it until stopped. */
  loop?: number
  /** Packets of the list skipped at the start (offsetMs / ptime). */
  offsetPackets?: number
  /** While paused: the codec's silence every ptime (default), or nothing at all ("hold"). */
  pauseMode?: PauseMode
  /** The caller's key presses (RFC 4733) on this socket, each told once to `onDigit`. */
  dtmf?: DtmfOptions & { onDigit: (digit: string, durationMs: number) => void }
  /**
   * RTCP (RFC 3550 §6): sender reports about every `intervalMs` (randomised) and a BYE at the
   * end, sent on `socket` (bound to source.port + 1, connected to target.port + 1; the play
   * closes it) or, without one, on the RTP socket (RFC 5761); the far end's reports about this
   * stream read from the same socket.
   */
  rtcp?: { socket?: Socket, cname: string, intervalMs: number }
  /** The socket to send from: bound, and connected to the target. The play closes it. */
  socket: Socket
  scheduler: Scheduler
  /** packets, octets, send errors: written here, read by the HTTP thread (shared memory). */
  counters?: Float64Array
  /** Called once when the play ends, whatever the reason. */
  onEnd?: (play: Play) => void
  /**
   * A packet due longer ago than this many ptimes is skipped (counted, its sequence number and
   * timestamp used up as a lost packet's), not sent late in a burst; 0 sends every packet
   * however late (default 3).
   */
  lateLimitPtimes?: number
}

// Errors a connected UDP socket reports when the far end sent ICMP unreachable: the call's
// media port is not open (yet, or any more). Telephony peers open ports late and close them
// early, so these are counted and sending goes on; any other send error fails the play.
const TRANSIENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAGAIN', 'ENOBUFS'])

const PACKETS = COUNTERS.packets
const OCTETS = COUNTERS.octets
const ERRORS = COUNTERS.sendErrors
const POSITION = COUNTERS.position
const LOOPS = COUNTERS.loopsDone
const PAUSED = COUNTERS.paused
const IGNORED = COUNTERS.ignored
const MALFORMED = COUNTERS.malformed
const REPORTS = COUNTERS.reports
const REPORTS_SENT = COUNTERS.reportsSent
const MAX_LATE = COUNTERS.maxLate
const UNAUTHENTICATED = COUNTERS.unauthenticated
const SKIPPED = COUNTERS.skipped

export class Play implements Task {
  readonly id: string
  readonly target: Endpoint
  readonly ptimeMs: Ptime
  readonly totalPackets: number
  readonly rtp: RtpStream
  readonly counters: Float64Array
  state: PlayState = 'playing'
  error: string | null = null
  stoppedBy: StoppedBy | null = null
  readonly loop: number
  readonly pauseMode: PauseMode
  /** Task fields (see Scheduler). */
  due = 0
  slot = -1

  private readonly socket: Socket
  private readonly scheduler: Scheduler
  private readonly onEnd: ((play: Play) => void) | undefined
  private readonly frameLists: readonly Frames[]
  /** Where each prompt starts in the list, in packets. */
  private readonly listStarts: number[]
  private readonly silence: Buffer
  /** RTP timestamp units per millisecond: the codec's clock (8, or 48 for Opus). */
  private readonly clockPerMs: number
  private listIndex = 0
  private frameIndex = 0
  /** The frame nextFrame gave: packets since its event's first (-1: audio), and the event's payload type. */
  private eventSince = -1
  private eventType = 0
  /** Packets of the list played in this loop. */
  private position = 0
  private loopsDone = 0
  private paused = false
  /** Packet times since the start, sent or not: packet k is due at start + k * ptime. */
  private ticks = 0
  private start = 0
  /** Reports the key presses still down when the play ends. */
  private flushDtmf: (() => void) | null = null
  /** RTCP's writer and socket: its own, or the RTP socket (mux). */
  private readonly rtcp: { writer: RtcpWriter, socket: Socket, intervalMs: number } | null = null
  /** When the next sender report is due, on the scheduler's clock. */
  private nextReportAt = Infinity
  /** SRTP: seals what the play sends; null for plain RTP. */
  private readonly sealer: SrtpSender | null
  /** SRTP: opens what the far end sends; null without its key (everything arriving is dropped). */
  private readonly opener: SrtpReceiver | null
  /** How late a packet may leave, in ms; later, it is skipped. Infinity: never skipped. */
  private readonly lateLimitMs: number
  /**
   * Told the outcome of each send, one function for the play's life (no closure per packet). A
   * send with no callback reports nothing: Node drops a refused send's error when nobody asked.
   */
  private readonly afterSend = (err: Error | null): void => {
    if (err != null) this.sendFailed(err)
  }

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
    this.listStarts = []
    for (let i = 0, at = 0; i < this.frameLists.length; at += this.frameLists[i]!.length, i++) this.listStarts.push(at)
    this.loop = options.loop ?? 1
    this.pauseMode = options.pauseMode ?? 'silence'
    const lateLimit = options.lateLimitPtimes ?? ENGINE_DEFAULTS.lateLimitPtimes
    this.lateLimitMs = lateLimit > 0 ? lateLimit * options.ptimeMs : Infinity
    const codec = options.codec ?? 'PCMU'
    this.silence = silencePayload(codec, options.ptimeMs)
    this.clockPerMs = CODECS[codec].clockPerMs
    // The packet ring holds the largest payload: every one for byte codecs, Opus's largest.
    const payloadBytes = this.frameLists.reduce((n, frames) => Math.max(n, largestPayload(frames)), this.silence.length)
    if ((options.offsetPackets ?? 0) > 0) this.seekTo(options.offsetPackets!)
    const srtp = options.srtp
    // The session keys are derived here, once per play; per packet only the counter and the tag are computed.
    this.sealer = srtp === undefined ? null : new SrtpSender(srtp.suite, srtp.local)
    this.opener = srtp?.remote == null ? null : new SrtpReceiver(srtp.suite, srtp.remote)
    this.rtp = new RtpStream({
      payloadType: options.payloadType,
      samplesPerPacket: options.ptimeMs * this.clockPerMs,
      payloadBytes,
      ...(options.ssrc === undefined ? {} : { ssrc: options.ssrc }),
      ...(options.firstSequence === undefined ? {} : { sequence: options.firstSequence }),
      ...(this.sealer === null ? {} : { seal: this.sealer })
    })
    this.socket.on('error', err => this.sendFailed(err))
    if (options.rtcp !== undefined) {
      const own = options.rtcp.socket
      this.rtcp = { writer: new RtcpWriter(options.rtcp.cname, this.sealer ?? undefined), socket: own ?? this.socket, intervalMs: options.rtcp.intervalMs }
      if (own !== undefined) {
        own.on('message', (packet: Buffer) => this.receiveRtcp(packet))
        // A far end with no RTCP port answers ICMP unreachable, reported on a later send: it
        // costs the play nothing (the media goes on), so it is not a send error of the play.
        own.on('error', () => {})
      }
    }
    const mux = this.rtcp?.socket === this.socket
    const dtmf = options.dtmf === undefined ? null : new DtmfReceiver(options.dtmf)
    const onDigit = options.dtmf?.onDigit
    if (dtmf !== null && onDigit !== undefined) {
      this.flushDtmf = () => { for (const open of dtmf.unfinished()) onDigit(open.digit, open.durationMs) }
    }
    const secure = srtp !== undefined
    if (dtmf !== null || mux || secure) {
      const dtmfType = options.dtmf?.payloadType ?? -1
      // The socket is connected to the target: the kernel delivers only what the call's media
      // address sends (symmetric RTP), nothing from anyone else.
      this.socket.on('message', (arrived: Buffer) => {
        if (this.state !== 'playing') return
        if (mux && isRtcp(arrived)) {
          this.receiveRtcp(arrived)
          return
        }
        let packet: Buffer | null = arrived
        if (secure) {
          // Only what the far end's key authenticates is read; the caller's audio is
          // authenticated (its sequence keeps the rollover counter right) but never decrypted.
          packet = this.opener?.openRtp(arrived, arrived.length > 1 && (arrived[1]! & 0x7f) === dtmfType) ?? null
          if (packet === null) {
            this.counters[UNAUTHENTICATED]!++
            return
          }
        }
        const r = dtmf === null ? null : dtmf.receive(packet)
        if (r === null || r.kind === 'ignored') this.counters[IGNORED]!++
        else if (r.kind === 'malformed') this.counters[MALFORMED]!++
        else if (r.kind === 'press') {
          onDigit!(r.digit, r.durationMs)
          // Barge-in: stopped at the digit's first packet; no packet of the play leaves after.
          if (r.stops) this.stop('dtmf')
        }
      })
    }
  }

  get packetsSent (): number { return this.counters[PACKETS]! }
  get octetsSent (): number { return this.counters[OCTETS]! }
  get sendErrors (): number { return this.counters[ERRORS]! }

  /**
   * Sends the first packet before this returns (on the scheduler's grid: at the next whole
   * millisecond, waited for), and the rest on the scheduler's clock.
   */
  begin (): void {
    this.start = this.scheduler.startTime()
    this.due = this.start
    if (this.rtcp !== null) this.nextReportAt = this.start + nextReportMs(this.rtcp.intervalMs, true)
    this.scheduler.add(this)
    this.scheduler.tick()
  }

  /** Task.run: sends the packet that is due, or ends the play after the last one has played. */
  run (now: number, late = 0): boolean {
    if (this.state !== 'playing') return false
    if (late > this.counters[MAX_LATE]!) this.counters[MAX_LATE] = late
    if (now >= this.nextReportAt) this.sendReport(now)
    let payload: Buffer | null
    if (this.paused) {
      payload = this.pauseMode === 'silence' ? this.silence : null
    } else {
      payload = this.nextFrame()
      if (payload === null) {
        // The last packet's audio has now played out at the far end's nominal clock.
        this.end('finished', null)
        return false
      }
    }
    this.ticks++
    this.due = this.start + this.ticks * this.ptimeMs
    this.counters[POSITION] = this.position
    if (payload === null) {
      this.rtp.hold()
      return true
    }
    if (late > this.lateLimitMs) {
      // Too late to matter: the far end has played its loss concealment there already. Sent
      // now, it would arrive in a burst with the packets after it, and a jitter buffer that
      // adapts would grow for good; skipped, it is one lost packet, and the media clock holds.
      this.rtp.drop()
      this.counters[SKIPPED]!++
      return true
    }
    if (this.sealer !== null && this.sealer.rtpLeft === 0) {
      this.fail('the SRTP key (srtp.localKey) has protected as many packets as its lifetime allows (RFC 3711 §9.2); start a new play with a new key, or give a longer lifetime')
      return false
    }
    // A send the kernel could not take at once stays queued in libuv with its buffer. The
    // packet ring is rewritten only while fewer than PACKET_RING sends are queued; past that
    // the socket is hopelessly behind, and the packet is counted as lost, not corrupted.
    if (this.socket.getSendQueueCount() >= PACKET_RING) {
      this.rtp.drop()
      this.counters[ERRORS]!++
    } else {
      // A telephone event: its payload type, the marker on its first packet, and its start's
      // timestamp on every packet of it (the media clock, less the packets it has lasted).
      const since = this.paused ? -1 : this.eventSince
      const packet = since < 0 ? this.rtp.next(payload) : this.rtp.nextEvent(payload, this.eventType, since === 0, (this.rtp.timestampNow() - since * this.rtp.samplesPerPacket + 2 ** 32) % 2 ** 32)
      this.socket.send(packet, this.afterSend)
      this.counters[PACKETS]!++
      this.counters[OCTETS] = this.counters[OCTETS]! + payload.length
    }
    return true
  }

  /**
   * Applies a control; the next packet, due within one ptime, carries its effect. Answers
   * whether it changed anything (pause on a paused play does not).
   */
  control (control: Control): boolean {
    const step = (ms: number): number => Math.round(ms / this.ptimeMs)
    let changed = true
    switch (control.operation) {
      case 'pause': changed = !this.paused; this.paused = true; break
      case 'resume': changed = this.paused; this.paused = false; break
      case 'restart': this.seekTo(0); break
      case 'forward': this.seekTo(this.position + step(control.ms)); break
      case 'reverse': this.seekTo(Math.max(0, this.position - step(control.ms))); break
      case 'seek': this.seekTo(step(control.positionMs)); break
    }
    this.report()
    return changed
  }

  /** The next payload of the list, into the next loop at its end; null when the play is done. */
  private nextFrame (): Buffer | null {
    for (;;) {
      let frames = this.frameLists[this.listIndex]
      while (frames !== undefined && this.frameIndex >= frames.length) {
        this.listIndex++
        this.frameIndex = 0
        frames = this.frameLists[this.listIndex]
      }
      if (frames !== undefined) {
        this.position++
        const events = frames.events
        this.eventSince = events === undefined ? -1 : events.since[this.frameIndex]!
        if (events !== undefined) this.eventType = events.payloadType
        return frames[this.frameIndex++]!
      }
      this.counters[LOOPS] = ++this.loopsDone
      if (this.loop !== 0 && this.loopsDone >= this.loop) return null
      this.listIndex = 0
      this.frameIndex = 0
      this.position = 0
    }
  }

  /** Moves to packet `index` of the list; past its end, the loop ends there (the next starts, or the play finishes). */
  private seekTo (index: number): void {
    if (index >= this.totalPackets) {
      this.listIndex = this.frameLists.length
      this.frameIndex = 0
      this.position = this.totalPackets
      return
    }
    let list = 0
    while (list + 1 < this.listStarts.length && this.listStarts[list + 1]! <= index) list++
    this.listIndex = list
    this.frameIndex = index - this.listStarts[list]!
    this.position = index
  }

  /** Position, loops and pause, for the HTTP thread (shared memory), after a control. */
  private report (): void {
    this.counters[POSITION] = this.position
    this.counters[LOOPS] = this.loopsDone
    this.counters[PAUSED] = this.paused ? 1 : 0
  }

  /**
   * A sender report (SR + SDES) now, or with `bye` the last one, with its BYE. The RTP timestamp
   * is the media clock's at this instant: packet k, due at start + k * ptime, has the first
   * timestamp plus k packets' samples, so the clock reads first + (now - start) * the codec's
   * clock (8 kHz, G.722's too; 48 kHz for Opus).
   */
  private sendReport (now: number, bye = false): void {
    const rtcp = this.rtcp!
    this.nextReportAt = now + nextReportMs(rtcp.intervalMs, false)
    const report = rtcp.writer.write({
      ssrc: this.rtp.ssrc,
      wallMs: wallClockMs(),
      rtpTimestamp: (this.rtp.firstTimestamp + Math.round((now - this.start) * this.clockPerMs)) % 2 ** 32,
      packets: this.counters[PACKETS]!,
      octets: this.counters[OCTETS]!
    }, bye)
    rtcp.socket.send(report)
    this.counters[REPORTS_SENT]!++
  }

  /** The far end's RTCP: its report about this stream kept (shared memory), anything else counted and dropped. */
  private receiveRtcp (arrived: Buffer): void {
    if (this.state !== 'playing') return
    const packet = this.sealer === null ? arrived : this.opener?.openRtcp(arrived) ?? null
    if (packet === null) {
      this.counters[UNAUTHENTICATED]!++
      return
    }
    const r = readRtcp(packet, this.rtp.ssrc, wallClockMs())
    if (r.kind === 'malformed') {
      this.counters[MALFORMED]!++
    } else if (r.kind === 'foreign') {
      this.counters[IGNORED]!++
    } else {
      const c = this.counters
      c[COUNTERS.fractionLost] = r.report.fractionLost
      c[COUNTERS.packetsLost] = r.report.packetsLost
      c[COUNTERS.jitterMs] = r.report.jitterMs
      c[COUNTERS.rttMs] = r.report.rttMs ?? NaN
      c[COUNTERS.remoteAt] = Date.now()
      c[REPORTS]!++
    }
  }

  /** Task.failed: sending threw (a fault, not a send error); the play ends as failed. */
  failed (err: unknown): void {
    this.fail(`the play stopped on a fault while sending: ${err instanceof Error ? err.message : String(err)}`)
  }

  /** Stops sending at once: no packet of this play leaves after this returns. */
  stop (by: StoppedBy = 'api'): void {
    if (this.state !== 'playing') return
    this.stoppedBy = by
    this.end('stopped', null)
  }

  /** Ends the play as failed, with a reason a person can act on. */
  fail (reason: string): void {
    if (this.state === 'playing') this.end('failed', reason)
  }

  private sendFailed (err: Error): void {
    // Told after the play ended (the send was queued): its counters may be another play's now.
    if (this.state !== 'playing') return
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
    this.flushDtmf?.()
    if (this.rtcp !== null) {
      // The BYE goes out before the sockets close: libuv sends at once when nothing is queued.
      try {
        this.sendReport(this.scheduler.clock.now(), true)
      } catch {
        // The socket that failed the play may be the one it would go on.
      }
      if (this.rtcp.socket !== this.socket) close(this.rtcp.socket)
    }
    close(this.socket)
    this.onEnd?.(this)
  }
}

function close (socket: Socket): void {
  try {
    socket.close()
  } catch {
    // Closed already (the fault that ended the play may be exactly that): nothing to free.
  }
}
