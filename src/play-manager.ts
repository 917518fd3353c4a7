/**
 * Starts, finds and stops plays: capacity, the target policy, the local RTP ports, and the
 * record of plays that ended recently.
 */
import dgram from 'node:dgram'
import { BlockList, isIP } from 'node:net'
import { randomBytes } from 'node:crypto'
import { EngineError } from './errors.js'
import type { SafeEmitter, EngineEvents, PlayEventType } from './events.js'
import { CODECS, type Codec, type Ptime } from './g711.js'
import { Play, type Endpoint } from './play.js'
import type { PromptStore } from './prompt-store.js'
import type { Scheduler } from './scheduler.js'

export interface PlayRequest {
  target: Endpoint
  prompts: readonly string[]
  codec?: Codec
  payloadType?: number
  ptimeMs?: Ptime
  ssrc?: number
  callbackUrl?: string | null
}

export interface PlayManagerOptions {
  /** Local UDP ports plays send from; RTP uses the even ones (RTCP would take the odd one above). */
  rtpPorts: { min: number, max: number }
  /** Plays running at once before AT_CAPACITY. */
  maxPlays: number
  /** How long an ended play stays visible to GET. */
  keepEndedMs: number
  /** How many ended plays stay visible at most. */
  keepEndedMax: number
}

export class PlayManager {
  private readonly options: PlayManagerOptions
  private readonly store: PromptStore
  private readonly scheduler: Scheduler
  private readonly events: SafeEmitter<EngineEvents>
  private readonly running = new Map<string, Play>()
  private readonly ended = new Map<string, Play>()
  private readonly portsInUse = new Set<number>()
  private nextPort: number
  private starting = 0
  private closed = false
  /** Counters of plays that have ended; running plays add theirs in `totals()`. */
  private readonly endedTotals = { packets: 0, octets: 0, sendErrors: 0 }
  /** Plays started since the engine started. */
  startedCount = 0

  constructor (options: PlayManagerOptions, store: PromptStore, scheduler: Scheduler, events: SafeEmitter<EngineEvents>) {
    this.options = options
    this.store = store
    this.scheduler = scheduler
    this.events = events
    this.nextPort = evenAtLeast(options.rtpPorts.min)
  }

  get runningCount (): number { return this.running.size }

  /** Plays that can still start before AT_CAPACITY. */
  get capacityLeft (): number { return Math.max(0, this.options.maxPlays - this.running.size - this.starting) }

  async create (request: PlayRequest): Promise<Play> {
    if (this.closed) throw new EngineError('AT_CAPACITY', 'the player is shutting down and starts no new plays')
    const prompts = request.prompts.map(name => this.store.get(name))
    const missing = request.prompts.filter((_, i) => prompts[i] === undefined)
    if (missing.length > 0) {
      throw new EngineError('PROMPT_NOT_FOUND', `no prompt named ${missing.map(n => `"${n}"`).join(', ')} in the library; upload it first`, { details: { missing } })
    }
    if (prompts.length === 0) {
      throw new EngineError('PROMPT_NOT_FOUND', 'the play names no prompt; give at least one prompt name')
    }
    checkTarget(request.target)
    if (this.capacityLeft === 0) {
      throw new EngineError('AT_CAPACITY', `${this.options.maxPlays} plays are running, the most this player is configured for (PROMPT_PLAYER_MAX_PLAYS); retry when one ends`)
    }
    const codec = request.codec ?? 'PCMU'
    this.starting++
    let bound: { socket: dgram.Socket, source: Endpoint }
    try {
      bound = await this.openSocket(request.target)
    } finally {
      this.starting--
    }
    const play = new Play({
      id: playId(),
      target: { host: request.target.host, port: request.target.port },
      prompts: prompts as NonNullable<typeof prompts[number]>[],
      codec,
      payloadType: request.payloadType ?? CODECS[codec].payloadType,
      ptimeMs: request.ptimeMs ?? 20,
      ...(request.ssrc === undefined ? {} : { ssrc: request.ssrc }),
      callbackUrl: request.callbackUrl ?? null,
      socket: bound.socket,
      source: bound.source,
      scheduler: this.scheduler,
      onEnd: p => this.onEnd(p)
    })
    this.running.set(play.id, play)
    this.startedCount++
    play.begin()
    this.emit('play.started', play)
    return play
  }

  get (id: string): Play | undefined {
    this.prune()
    return this.running.get(id) ?? this.ended.get(id)
  }

  /** The running plays, then those ended recently, newest first. */
  list (): Play[] {
    this.prune()
    return [...this.running.values(), ...[...this.ended.values()].reverse()]
  }

  getOrThrow (id: string): Play {
    const play = this.get(id)
    if (play === undefined) throw new EngineError('PLAY_NOT_FOUND', `no play with id "${id}" is running or ended in the last ${Math.round(this.options.keepEndedMs / 1000)} s`)
    return play
  }

  /** Stops a play; returns it (in its final state), or throws PLAY_NOT_FOUND. */
  stop (id: string): Play {
    const play = this.getOrThrow(id)
    play.stop()
    return play
  }

  /** Stops every play (state `stopped`) and frees their sockets. Idempotent. */
  close (): void {
    this.closed = true
    for (const play of [...this.running.values()]) play.stop()
  }

  /** Packets, octets and refused sends of every play since the engine started. */
  totals (): { packets: number, octets: number, sendErrors: number } {
    const totals = { ...this.endedTotals }
    for (const play of this.running.values()) {
      totals.packets += play.packetsSent
      totals.octets += play.octetsSent
      totals.sendErrors += play.sendErrors
    }
    return totals
  }

  private onEnd (play: Play): void {
    this.endedTotals.packets += play.packetsSent
    this.endedTotals.octets += play.octetsSent
    this.endedTotals.sendErrors += play.sendErrors
    this.running.delete(play.id)
    this.portsInUse.delete(play.source.port)
    this.ended.set(play.id, play)
    this.prune()
    this.emit(`play.${play.state}` as PlayEventType, play)
  }

  private emit (type: PlayEventType, play: Play): void {
    this.events.emit('play', { type, play: play.toJSON() })
  }

  private prune (): void {
    const horizon = Date.now() - this.options.keepEndedMs
    for (const [id, play] of this.ended) {
      if (this.ended.size > this.options.keepEndedMax || (play.endedAt?.getTime() ?? 0) < horizon) this.ended.delete(id)
      else break
    }
  }

  /**
   * Binds a socket on the next free even port of the range (RFC 3550 §11: RTP on an even port,
   * RTCP on the next) and connects it to the target, so each send needs no address lookup and
   * the kernel reports ICMP unreachable back to us. Packets leave from the port a symmetric-RTP
   * peer would answer to (RFC 4961).
   */
  private async openSocket (target: Endpoint): Promise<{ socket: dgram.Socket, source: Endpoint }> {
    const { min, max } = this.options.rtpPorts
    const family = isIP(target.host) === 6 ? 'udp6' : 'udp4'
    const address = family === 'udp6' ? '::' : '0.0.0.0'
    const slots = Math.floor((max - evenAtLeast(min)) / 2) + 1
    let lastError: unknown = null
    for (let tried = 0; tried < slots; tried++) {
      const port = this.nextPort
      this.nextPort = port + 2 > max ? evenAtLeast(min) : port + 2
      if (this.portsInUse.has(port)) continue
      const socket = dgram.createSocket({ type: family })
      this.portsInUse.add(port)
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject)
          socket.bind({ port, address, exclusive: true }, () => {
            socket.off('error', reject)
            resolve()
          })
        })
      } catch (err) {
        this.portsInUse.delete(port)
        socket.close()
        lastError = err
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue
        throw new EngineError('NO_RTP_PORT', `cannot bind a UDP socket on ${address} port ${port}: ${(err as Error).message}`, { cause: err })
      }
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject)
          socket.connect(target.port, target.host, () => {
            socket.off('error', reject)
            resolve()
          })
        })
      } catch (err) {
        this.portsInUse.delete(port)
        socket.close()
        throw new EngineError('TARGET_NOT_ALLOWED', `cannot send to ${target.host}:${target.port}: ${(err as Error).message}`, { cause: err })
      }
      return { socket, source: { host: address, port } }
    }
    throw new EngineError('NO_RTP_PORT', `every even UDP port in ${min}-${max} is in use (PROMPT_PLAYER_RTP_PORTS); widen the range or stop some plays`, { cause: lastError })
  }
}

function evenAtLeast (n: number): number {
  return n % 2 === 0 ? n : n + 1
}

const UNSPECIFIED = new BlockList()
UNSPECIFIED.addAddress('0.0.0.0', 'ipv4')
UNSPECIFIED.addAddress('::', 'ipv6')

/** The minimum every deployment needs; the configurable allowlist comes with the hardening work. */
function checkTarget (target: Endpoint): void {
  const family = isIP(target.host)
  if (family === 0) {
    throw new EngineError('TARGET_NOT_ALLOWED', `target host "${target.host}" is not an IPv4 or IPv6 address; give the address from the call's SDP (c= line), not a name`)
  }
  if (UNSPECIFIED.check(target.host, family === 6 ? 'ipv6' : 'ipv4')) {
    throw new EngineError('TARGET_NOT_ALLOWED', `target host ${target.host} is the unspecified address; a call's SDP with c=0.0.0.0 is on hold and takes no media`)
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new EngineError('TARGET_NOT_ALLOWED', `target port ${target.port} is not a UDP port (1-65535)`)
  }
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** `p_` and a ULID: 48 bits of milliseconds, 80 random bits, in Crockford base32; sorts by time. */
export function playId (now = Date.now()): string {
  let time = ''
  for (let i = 0, t = now; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32]! + time
  let random = ''
  for (const byte of randomBytes(16)) random += CROCKFORD[byte % 32]
  return `p_${time}${random}`
}
