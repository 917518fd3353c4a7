/**
 * Starts, finds and stops plays from the HTTP thread: capacity, the target policy, events, and
 * the record of plays (a PlayRecord: this instance's plays in memory, or a shared record). The
 * packets themselves leave from the packet thread (PacketEngine), which owns the sockets and
 * the scheduler.
 */
import { randomBytes } from 'node:crypto'
import { EngineError } from '../common/errors.js'
import type { SafeEmitter, EngineEvents, PlayEventType } from '../events/events.js'
import { CODEC_NAMES, CODECS, type CodecInfo } from '../common/codecs.js'
import { PacketEngine, type Ended, type PacketThreadInfo, type PlayListEntry, type ThreadPriority } from './packet-engine.js'
import { DTMF_DEFAULTS, dtmfPackets } from '../common/telephone-events.js'
import { blockMs, customTone, namedTone, TONE_LIMITS, type Tone, type ToneCache } from '../library/tones.js'
import type { Pacing } from '../common/protocol.js'
import { PlayHandle } from './play-handle.js'
import { entryName, MAX_SILENCE_MS, type PlayControl, type PlayInfo, type PlayRequest } from '../common/schemas.js'
import type { Prompt } from '../library/prompt.js'
import type { UrlCache } from '../library/url-cache.js'
import type { PlayRecord } from './play-record.js'
import type { PromptStore } from '../library/prompt-store.js'
import { TargetPolicy, type TargetPolicyOptions } from './target-policy.js'
import { isSrtpSuiteName, makeSdesKey, parseSdesKey, SRTP_SUITE_NAMES, SrtpKeyError, type SrtpKeys } from '../common/srtp-suites.js'

export interface PlayManagerOptions {
  /** Local UDP ports plays send from; RTP uses the even ones, RTCP the odd one above. */
  rtpPorts: { min: number, max: number }
  /** RTCP's sender report interval before randomisation. */
  rtcpIntervalMs: number
  /** SCHED_FIFO priority asked for the packet threads; 0: none. */
  realtimePriority: number
  /** Packet threads (PROMPT_PLAYER_PACKET_THREADS). */
  packetThreads: number
  /** How the packet threads wait for a due time. */
  pacing: Pacing
  /** Ptimes a packet may be late before it is skipped; 0: never. */
  lateLimitPtimes: number
  /** Plays running at once before AT_CAPACITY. */
  maxPlays: number
  /** How long an ended play stays visible to GET (for the error message; the record keeps them). */
  keepEndedMs: number
  /** Where plays may send. */
  targets: TargetPolicyOptions
  /** This instance's id, reported in every Play it sends. */
  instance: string
}

/**
 * Where a call on a play is answered: here, with the play as it is now (`owner` null), or by
 * the instance that runs it, at its address (undefined when it has no heartbeat).
 */
export type Located =
  | { play: PlayInfo, owner: null }
  | { play: PlayInfo, owner: { instance: string, address: string | undefined } }

export class PlayManager {
  readonly targets: TargetPolicy
  /** The packet thread's priority once it runs: niceness -10 and SCHED_FIFO where it could raise them, else null. */
  readonly packetThreadReady: Promise<ThreadPriority>
  private readonly packets: PacketEngine
  private readonly options: PlayManagerOptions
  private readonly store: PromptStore
  private readonly urls: UrlCache
  private readonly tones: ToneCache
  private readonly events: SafeEmitter<EngineEvents>
  private readonly record: PlayRecord
  private readonly running = new Map<string, PlayHandle>()
  private readonly freeSlots: number[]
  private readonly endedTotals = { packets: 0, octets: 0, sendErrors: 0, skipped: 0 }
  /** Ends the packet thread reported before the start was acknowledged here. */
  private readonly endedEarly = new Map<string, Ended>()
  private closed = false
  /** Plays started since the engine started. */
  startedCount = 0

  constructor (options: PlayManagerOptions, store: PromptStore, events: SafeEmitter<EngineEvents>, record: PlayRecord, urls: UrlCache, tones: ToneCache) {
    this.options = options
    this.urls = urls
    this.tones = tones
    this.targets = new TargetPolicy(options.targets)
    this.store = store
    this.events = events
    this.record = record
    this.freeSlots = Array.from({ length: options.maxPlays }, (_, i) => options.maxPlays - 1 - i)
    this.packets = new PacketEngine({
      rtpPorts: options.rtpPorts,
      rtcpIntervalMs: options.rtcpIntervalMs,
      realtimePriority: options.realtimePriority,
      threads: options.packetThreads,
      pacing: options.pacing,
      lateLimitPtimes: options.lateLimitPtimes,
      slots: options.maxPlays,
      onEnded: ended => this.onEnded(ended),
      onDtmf: press => this.onDtmf(press),
      onCrashed: (reason, ids) => this.onCrashed(reason, ids)
    })
    this.packetThreadReady = this.packets.ready
    store.onRemove(prompt => this.packets.release(prompt))
    urls.onRemove(prompt => this.packets.release(prompt))
    tones.onRemove(prompt => this.packets.release(prompt))
    // Plays of an instance found lost (a shared record): reported here, once in the pool.
    record.onLost?.(play => { this.events.emit('play', { type: 'play.failed', play }) })
  }

  get runningCount (): number { return this.running.size }

  /** How late packets left against their due times, recorded by the packet threads (summed). */
  get lateness (): PacketEngine['lateness'] { return this.packets.lateness }

  /** Each packet thread: its plays, load, lateness and kernel thread id. */
  threads (): PacketThreadInfo[] { return this.packets.threadInfo() }

  /** Plays that can still start before AT_CAPACITY. */
  get capacityLeft (): number { return this.freeSlots.length }

  async create (request: PlayRequest): Promise<PlayHandle> {
    if (this.closed) throw new EngineError('SHUTTING_DOWN', 'the player is shutting down and starts no new plays')
    const names = request.prompts.map(p => typeof p === 'string' ? p : null)
    const prompts: Array<Prompt | undefined> = names.map(name => name === null ? undefined : this.store.get(name))
    const missing = names.filter((name, i) => name !== null && prompts[i] === undefined)
    if (missing.length > 0) {
      throw new EngineError('PROMPT_NOT_FOUND', `no prompt named ${missing.map(n => `"${n}"`).join(', ')} in the library; upload it first`, { details: { missing } })
    }
    if (prompts.length === 0) {
      throw new EngineError('PROMPT_NOT_FOUND', 'the play names no prompt; give at least one prompt name')
    }
    // The HTTP schema checks these; a JavaScript caller of the engine may pass anything.
    const tones: Array<Tone | undefined> = []
    for (const [i, p] of request.prompts.entries()) {
      if (typeof p === 'object' && 'silence' in p && !(Number.isInteger(p.silence) && p.silence >= 1 && p.silence <= MAX_SILENCE_MS)) {
        throw new EngineError('INVALID_REQUEST', `prompts[${i}]: silence ${JSON.stringify(p.silence)} is not a whole number of ms from 1 to ${MAX_SILENCE_MS}`)
      }
      if (typeof p === 'object' && 'dtmf' in p) {
        const durationMs = p.durationMs ?? DTMF_DEFAULTS.durationMs
        const gapMs = p.gapMs ?? DTMF_DEFAULTS.gapMs
        if (typeof p.dtmf !== 'string' || !/^[0-9*#A-Da-d]{1,32}$/.test(p.dtmf)) throw new EngineError('INVALID_REQUEST', `prompts[${i}]: dtmf ${JSON.stringify(p.dtmf)} is not 1 to 32 of the digits 0-9, *, # and A-D`)
        if (!Number.isInteger(durationMs) || durationMs < 40 || durationMs > 1000) throw new EngineError('INVALID_REQUEST', `prompts[${i}]: a digit's durationMs ${JSON.stringify(durationMs)} is not a whole number of ms from 40 to 1000`)
        if (!Number.isInteger(gapMs) || gapMs < 0 || gapMs > 10000) throw new EngineError('INVALID_REQUEST', `prompts[${i}]: gapMs ${JSON.stringify(gapMs)} is not a whole number of ms from 0 to 10000`)
      }
      if (typeof p === 'object' && 'tone' in p) {
        const where = `prompts[${i}]`
        if (!(Number.isInteger(p.durationMs) && p.durationMs >= 1 && p.durationMs <= TONE_LIMITS.maxDurationMs)) {
          throw new EngineError('INVALID_REQUEST', `${where}: a tone's durationMs ${JSON.stringify(p.durationMs)} is not a whole number of ms from 1 to ${TONE_LIMITS.maxDurationMs}`)
        }
        tones[i] = typeof p.tone === 'string' ? namedTone(p.tone, p.country ?? 'us', where) : customTone(p.tone, where)
      }
    }
    this.targets.check(request.target)
    const codec = request.codec ?? 'PCMU'
    const ptimeMs = request.ptimeMs ?? 20
    const info = CODECS[codec] as CodecInfo | undefined
    // The HTTP schema allows only these; a JavaScript caller of the engine may pass anything.
    if (info === undefined) throw new EngineError('INVALID_REQUEST', `codec ${JSON.stringify(codec)} is not one prompt-player sends; use one of ${CODEC_NAMES.join(', ')}`)
    if (!info.ptimes.includes(ptimeMs)) {
      throw new EngineError('INVALID_REQUEST', `ptimeMs ${ptimeMs} is not a packet time of ${codec}; use one of ${info.ptimes.join(', ')}`)
    }
    if (codec === 'opus' && request.payloadType !== undefined && (request.payloadType < 96 || request.payloadType > 127)) {
      throw new EngineError('INVALID_REQUEST', `payloadType ${request.payloadType} is not dynamic; opus has no static payload type (RFC 7587): use the a=rtpmap number of the call's SDP, 96-127 (default 111)`)
    }
    const srtp = request.srtp === undefined ? null : secureMedia(request.srtp)
    const rtcp = request.rtcp ?? 'on'
    if (rtcp === 'on' && request.target.port === 65535) {
      throw new EngineError('INVALID_REQUEST', 'target port 65535 leaves no port above it for RTCP (target.port + 1); give an even media port, or rtcp "mux" or "off"')
    }
    // URLs last: every cheaper check has passed before anything is fetched. The play starts
    // once each is ready (from the cache, revalidated, or fetched and transcoded).
    await Promise.all(request.prompts.map(async (p, i) => {
      if (typeof p === 'object' && 'url' in p) prompts[i] = await this.urls.get(p.url)
    }))
    // Each prompt's rendition in the play's codec: there already (made at upload), or made once
    // now from its source and kept, before the play starts; the packet thread only slices.
    await Promise.all([...new Set(prompts)].map(async p => { await p?.ensure(codec, ptimeMs) }))
    // Tones: each one's block, made once per distinct tone (and kept), in the play's codec.
    const blocks = await Promise.all(tones.map(async (tone, i) => {
      if (tone === undefined) return undefined
      const block = await this.tones.get(tone, (request.prompts[i] as { durationMs: number }).durationMs)
      await block.ensure(codec, ptimeMs)
      return block
    }))
    // Silence is the codec's silence payload, once per packet, rounded up to whole packets; a
    // tone its block's packets, repeated for its duration, rounded up likewise.
    const list: PlayListEntry[] = request.prompts.map((p, i) => {
      if (typeof p === 'object' && 'silence' in p) return { silencePackets: Math.ceil(p.silence / ptimeMs) }
      if (typeof p === 'object' && 'tone' in p) return { tone: blocks[i]!, packets: Math.ceil(p.durationMs / ptimeMs), cycle: blockMs(tones[i]!, p.durationMs) / ptimeMs }
      // Digits: RFC 4733 events with the request's telephone-event payload type.
      if (typeof p === 'object' && 'dtmf' in p) return { dtmf: { digits: p.dtmf, durationMs: p.durationMs ?? DTMF_DEFAULTS.durationMs, gapMs: p.gapMs ?? DTMF_DEFAULTS.gapMs, payloadType: request.dtmf?.payloadType ?? 101 } }
      return prompts[i]!
    })
    // The list's length at this ptime, each prompt's last packet padded: the play's length, and
    // where offsetMs may point.
    const listPackets = list.reduce((n, p) => n + ('silencePackets' in p ? p.silencePackets : 'tone' in p ? p.packets : 'dtmf' in p ? dtmfPackets(p.dtmf, ptimeMs) : p.packets(codec, ptimeMs)), 0)
    const offsetPackets = Math.floor((request.offsetMs ?? 0) / ptimeMs)
    if (offsetPackets >= listPackets) {
      throw new EngineError('INVALID_REQUEST', `offsetMs ${request.offsetMs ?? 0} is past the end of the prompts, which last ${listPackets * ptimeMs} ms; give an offset below that`)
    }
    const slot = this.freeSlots.pop()
    if (slot === undefined) {
      throw new EngineError('AT_CAPACITY', `${this.options.maxPlays} plays are running, the most this player is configured for (maxPlays); retry when one ends`, { options: ['maxPlays'] })
    }
    const loop = request.loop ?? 1
    const pauseMode = request.pauseMode ?? 'silence'
    const payloadType = request.payloadType ?? info.payloadType
    const id = playId()
    const target = { host: request.target.host, port: request.target.port }
    let started
    try {
      started = await this.packets.start({
        id,
        slot,
        target,
        codec,
        payloadType,
        ptimeMs,
        loop,
        offsetPackets,
        pauseMode,
        rtcp,
        dtmf: request.dtmf === undefined ? null : { payloadType: request.dtmf.payloadType ?? 101, stopOn: request.dtmf.stopOn ?? '' },
        srtp: srtp?.keys ?? null,
        ...(request.ssrc === undefined ? {} : { ssrc: request.ssrc }),
        ...(request.firstSequence === undefined ? {} : { firstSequence: request.firstSequence })
      }, list)
    } catch (err) {
      this.freeSlots.push(slot)
      throw err
    }
    const play = new PlayHandle({
      id,
      target,
      source: started.source,
      prompts: request.prompts.map(entryName),
      codec,
      payloadType,
      ptimeMs,
      ssrc: started.ssrc,
      totalPackets: listPackets,
      callbackUrl: request.callbackUrl ?? null,
      instance: this.options.instance,
      loop,
      pauseMode,
      rtcp,
      srtp: srtp === null ? null : { suite: srtp.keys.suite },
      localKey: srtp?.localKey ?? null,
      slot,
      counters: this.packets.countersOf(slot)
    })
    this.running.set(id, play)
    await this.record.put(play)
    this.startedCount++
    this.emit('play.started', play)
    // A play can end before its start is acknowledged here (a one-packet prompt, a send error).
    const early = this.endedEarly.get(id)
    if (early !== undefined) {
      this.endedEarly.delete(id)
      this.onEnded(early)
    }
    return play
  }

  /**
   * A play, running or ended recently: this instance's running ones live from their packet
   * thread's counters (without the record, which may be out of reach), the others from the
   * record. Throws PLAY_NOT_FOUND.
   */
  async get (id: string): Promise<PlayInfo> {
    const local = this.running.get(id)
    if (local !== undefined) return local.toJSON()
    const play = await this.record.get(id)
    if (play === undefined) throw this.notFound(id)
    return play
  }

  /**
   * Where a call on a play is answered: here (`play`, serialised once), or by the instance that
   * runs it (`owner`, with its address when it is alive; the caller forwards the call there). A
   * call already forwarded (`forwarded`) is answered here whatever the record says, never sent
   * on again. Throws PLAY_NOT_FOUND.
   */
  async locate (id: string, forwarded = false): Promise<Located> {
    const local = this.running.get(id)
    if (local !== undefined) return { play: local.toJSON(), owner: null }
    return await this.elsewhere(id, forwarded)
  }

  /** The running plays, newest first, then those ended recently, the latest ended first; this instance's live, each serialised once. */
  async list (): Promise<PlayInfo[]> {
    const listed = await this.record.list()
    // A record of this instance alone serialises its plays live already.
    return this.record.live === true ? listed : listed.map(play => this.running.get(play.id)?.toJSON() ?? play)
  }

  /** This instance's id. */
  get instance (): string { return this.options.instance }

  /**
   * Stops a play of this instance and resolves once no packet of it can leave; answers it in
   * its final state. A play another instance runs is located (`owner`) for the caller to
   * forward the stop; one that has ended is answered as it ended. Throws PLAY_NOT_FOUND.
   */
  async stop (id: string, forwarded = false): Promise<Located> {
    const play = this.running.get(id)
    if (play === undefined) return await this.elsewhere(id, forwarded)
    await this.packets.stop(id, 'api')
    return { play: play.toJSON(), owner: null }
  }

  /**
   * Controls a play of this instance; answers once its packet thread has applied it, so the
   * next packet (within one ptime) carries it. A play another instance runs is located
   * (`owner`). Throws PLAY_ENDED for a play that has ended, PLAY_NOT_FOUND for one that is
   * unknown. Pause and resume are reported as events.
   */
  async control (id: string, control: PlayControl, forwarded = false): Promise<Located> {
    const play = this.running.get(id)
    if (play === undefined) {
      const found = await this.elsewhere(id, forwarded)
      if (found.play.state !== 'playing') throw new EngineError('PLAY_ENDED', `play ${id} has ${found.play.state}; only a running play can be controlled`)
      if (found.owner === null) throw new EngineError('PLAY_NOT_FOUND', `play ${id} runs on instance ${found.play.instance}, not on this one`)
      return found
    }
    const changed = await this.packets.control(id, control)
    if (changed && (control.operation === 'pause' || control.operation === 'resume')) this.emit(control.operation === 'pause' ? 'play.paused' : 'play.resumed', play)
    return { play: play.toJSON(), owner: null }
  }

  /** A play not running here, from the record (read once): its owner when it runs elsewhere and the call may go there. */
  private async elsewhere (id: string, forwarded: boolean): Promise<Located> {
    const play = await this.record.get(id)
    if (play === undefined) throw this.notFound(id)
    if (play.state !== 'playing' || play.instance === this.options.instance || forwarded) return { play, owner: null }
    return { play, owner: { instance: play.instance, address: await this.record.addressOf?.(play.instance) } }
  }

  /** Packets, octets, refused sends and late packets skipped of every play since the engine started. */
  totals (): { packets: number, octets: number, sendErrors: number, skipped: number } {
    const totals = { ...this.endedTotals }
    for (const play of this.running.values()) {
      totals.packets += play.packetsSent
      totals.octets += play.octetsSent
      totals.sendErrors += play.sendErrors
      totals.skipped += play.packetsSkipped
    }
    return totals
  }

  /** Stops every play (state `stopped`, events sent) and ends the packet thread. Idempotent. */
  async close (): Promise<void> {
    this.closed = true
    await this.packets.close()
  }

  /** A key press of the caller: recorded on the play, and reported (before the play's end, if it stops it). */
  private onDtmf (press: { id: string, digit: string, durationMs: number }): void {
    const play = this.running.get(press.id)
    if (play === undefined) return
    play.digits += press.digit
    this.events.emit('play', { type: 'play.dtmf', play: play.toJSON(), digit: press.digit, durationMs: press.durationMs })
  }

  /** A packet thread died: its plays failed (those of the other threads play on). */
  private onCrashed (reason: string, ids: string[]): void {
    for (const id of ids) if (this.running.has(id)) this.onEnded({ id, state: 'failed', error: reason, stoppedBy: null })
  }

  private onEnded (ended: Ended): void {
    const play = this.running.get(ended.id)
    if (play === undefined) {
      this.endedEarly.set(ended.id, ended)
      return
    }
    this.endedTotals.packets += play.packetsSent
    this.endedTotals.octets += play.octetsSent
    this.endedTotals.sendErrors += play.sendErrors
    this.endedTotals.skipped += play.packetsSkipped
    const slot = play.slot
    play.ended(ended.state, ended.error, ended.stoppedBy)
    this.freeSlots.push(slot)
    this.running.delete(play.id)
    void this.record.put(play)
    this.emit(`play.${ended.state}`, play)
  }

  private emit (type: PlayEventType, play: PlayHandle): void {
    this.events.emit('play', { type, play: play.toJSON() })
  }

  private notFound (id: string): EngineError {
    return new EngineError('PLAY_NOT_FOUND', `no play with id "${id}" is running or ended in the last ${Math.round(this.options.keepEndedMs / 1000)} s`)
  }
}

/**
 * A request's `srtp` checked and turned into keys for the packet thread: the suite known, each
 * key of the suite's length, no session parameter; the local key made when absent. Refusals
 * are INVALID_REQUEST naming the field, and never repeat a key.
 */
function secureMedia (srtp: NonNullable<PlayRequest['srtp']>): { keys: SrtpKeys, localKey: string } {
  const suite = srtp.suite
  if (!isSrtpSuiteName(suite)) {
    throw new EngineError('INVALID_REQUEST', `srtp.suite "${suite}" is not a suite prompt-player speaks; use one of ${SRTP_SUITE_NAMES.join(', ')} (the a=crypto line's second word)`)
  }
  try {
    const remote = srtp.remoteKey === undefined ? null : parseSdesKey(srtp.remoteKey, suite, 'srtp.remoteKey')
    const localKey = srtp.localKey ?? makeSdesKey(suite, srtp.remoteKey)
    return { keys: { suite, local: parseSdesKey(localKey, suite, 'srtp.localKey'), remote }, localKey }
  } catch (err) {
    if (err instanceof SrtpKeyError) throw new EngineError('INVALID_REQUEST', err.message)
    throw err
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
