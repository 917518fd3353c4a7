/**
 * The HTTP thread's side of the packet threads: starts them, places each play on one for its
 * whole life (the one with the fewest packets a second to send), registers prompt audio with
 * it (shared memory, no copy), sends its stop and controls there, and hears when it ends.
 * Counters, the lateness histograms and the RTP port claims are shared memory, read (and for
 * the ports, claimed) by every thread with no message between them.
 */
import { Worker } from 'node:worker_threads'
import { EngineError } from '../common/errors.js'
import { COUNTERS, countersOf, portClaims, type Control, type FromWorker, type ListEntry, type Pacing, type StartPlay, type Started, type StoppedBy, type ToWorker, type WorkerSetup } from '../common/protocol.js'
import type { PlayState } from '../common/schemas.js'
import type { Prompt } from '../library/prompt.js'
import type { DtmfEntry } from '../common/telephone-events.js'
import type { Rendition } from '../common/codecs.js'
import { LatenessStats } from '../common/lateness.js'

/**
 * The packet thread's entry, beside this file: worker.js in a build, worker.ts when the service
 * runs from its source under a TypeScript loader (a Worker's entry is not remapped by every loader).
 */
const WORKER_URL = import.meta.url.endsWith('.ts') ? new URL('../packet/worker.ts', import.meta.url) : new URL('../packet/worker.js', import.meta.url)

/** An entry of a play's list as the HTTP thread hands it over: a prompt, silence, or a tone's block repeated. */
export type PlayListEntry = Prompt | { silencePackets: number } | { tone: Prompt, packets: number, cycle: number } | { dtmf: DtmfEntry }

export interface ThreadPriority { niceness: number | null, realtime: number | null }

export interface Ended { id: string, state: Exclude<PlayState, 'playing'>, error: string | null, stoppedBy: StoppedBy | null }

type Reply = { result?: Started, changed?: boolean }

export interface PacketEngineOptions {
  rtpPorts: { min: number, max: number }
  rtcpIntervalMs: number
  realtimePriority: number
  /** Packet threads; each play lives on one. */
  threads: number
  /** How a thread waits for a due time (see Pacing). */
  pacing: Pacing
  /** Ptimes a packet may be late before it is skipped; 0: never skipped. */
  lateLimitPtimes: number
  /** Counter slots: one per play that can run at once. */
  slots: number
  onEnded: (ended: Ended) => void
  /** A caller's key press on a play's port. */
  onDtmf: (press: { id: string, digit: string, durationMs: number }) => void
  /** A packet thread died: the plays it ran (`ids`) are gone; a new thread has taken its place. */
  onCrashed: (reason: string, ids: string[]) => void
}

/** A packet thread as the engine sees it, for /metrics and the benchmark. */
export interface PacketThreadInfo {
  index: number
  /** The thread's id in the kernel (/proc/<pid>/task/<tid>), once it is running; null before. */
  tid: number | null
  plays: number
  /** Packets a second its plays send: its load (a 10 ms play counts twice a 20 ms one). */
  packetsPerSecond: number
  lateness: LatenessStats
  /** Times a new thread took this one's place after it died. */
  restarts: number
}

/** One packet thread: its worker, its calls waiting for a reply, and what it has been given. */
class PacketThread {
  worker!: Worker
  tid: number | null = null
  restarts = 0
  readonly lateness: LatenessStats
  readonly latenessMemory: SharedArrayBuffer
  readonly calls = new Map<number, { resolve: (value: Reply) => void, reject: (err: Error) => void }>()
  /** The renditions of each prompt (by id) that this thread has. */
  readonly sent = new Map<number, Set<Rendition>>()
  /** Its running plays and the packets a second each sends. */
  readonly plays = new Map<string, number>()
  packetsPerSecond = 0

  constructor (readonly index: number) {
    this.latenessMemory = new SharedArrayBuffer(LatenessStats.BYTES)
    this.lateness = new LatenessStats(this.latenessMemory)
  }

  info (): PacketThreadInfo {
    return { index: this.index, tid: this.tid, plays: this.plays.size, packetsPerSecond: this.packetsPerSecond, lateness: this.lateness, restarts: this.restarts }
  }
}

export class PacketEngine {
  private readonly options: PacketEngineOptions
  private readonly counters: Float64Array
  private readonly countersMemory: SharedArrayBuffer
  private readonly portsMemory: SharedArrayBuffer
  private readonly threads: PacketThread[]
  /** Which thread each running play is on. */
  private readonly placed = new Map<string, PacketThread>()
  private nextCall = 1
  private readonly promptIds = new WeakMap<Prompt, number>()
  private readonly registered = new Map<number, Prompt>()
  private nextPromptId = 1
  private closing = false
  /** The packet threads' priority once all have started: niceness -10 and the SCHED_FIFO priority where they could raise them, else null. */
  readonly ready: Promise<ThreadPriority>
  /** Set when a packet thread died before it was ready: no new one is started. */
  private broken: EngineError | null = null
  private readonly starting: Array<{ resolve: (p: ThreadPriority) => void, reject: (err: EngineError) => void }> = []

  constructor (options: PacketEngineOptions) {
    this.options = options
    this.countersMemory = new SharedArrayBuffer(options.slots * COUNTERS.size * Float64Array.BYTES_PER_ELEMENT)
    this.counters = new Float64Array(this.countersMemory)
    this.portsMemory = portClaims(options.rtpPorts)
    this.threads = Array.from({ length: Math.max(1, options.threads) }, (_, i) => new PacketThread(i))
    const ready = this.threads.map(() => new Promise<ThreadPriority>((resolve, reject) => { this.starting.push({ resolve, reject }) }))
    this.ready = Promise.all(ready).then(all => all[0]!)
    // Every thread's start is awaited by `ready`; one failing rejects it, and the rest are unhandled otherwise.
    for (const promise of ready) promise.catch(() => {})
    for (const thread of this.threads) this.spawn(thread, true)
  }

  /** The packets, octets and send errors of the play in `slot`, live. */
  countersOf (slot: number): Float64Array {
    return countersOf(this.counters, slot)
  }

  /** How late packets left, every thread's histogram summed (read at the call). */
  get lateness (): LatenessStats {
    return LatenessStats.sum(this.threads.map(t => t.lateness))
  }

  /** Each packet thread: its plays, load, lateness and kernel thread id. */
  threadInfo (): PacketThreadInfo[] {
    return this.threads.map(t => t.info())
  }

  /** The prompt's id in the packet threads: its audio goes to a thread before its first play there. */
  private promptId (prompt: Prompt): number {
    let id = this.promptIds.get(prompt)
    if (id === undefined) {
      id = this.nextPromptId++
      this.promptIds.set(prompt, id)
      this.registered.set(id, prompt)
    }
    return id
  }

  /**
   * Gives `thread` what it lacks of a prompt's audio, every rendition it has now (shared memory,
   * no copy): the whole prompt the first time, each rendition made since then after (messages
   * arrive in order, before the play's start).
   */
  private handOver (thread: PacketThread, id: number, prompt: Prompt): void {
    const sent = thread.sent.get(id)
    if (sent === undefined) {
      thread.sent.set(id, new Set(Object.keys(prompt.audio) as Rendition[]))
      thread.worker.postMessage({ type: 'prompt', id, audio: { ...prompt.audio } } satisfies ToWorker)
      return
    }
    for (const [rendition, bytes] of Object.entries(prompt.audio) as Array<[Rendition, Buffer]>) {
      if (sent.has(rendition)) continue
      sent.add(rendition)
      thread.worker.postMessage({ type: 'rendition', id, rendition, bytes } satisfies ToWorker)
    }
  }

  /** The prompt left the library: each thread forgets it once its plays end. */
  release (prompt: Prompt): void {
    const id = this.promptIds.get(prompt)
    if (id === undefined) return
    this.promptIds.delete(prompt)
    this.registered.delete(id)
    for (const thread of this.threads) {
      if (thread.sent.delete(id)) thread.worker.postMessage({ type: 'release', id } satisfies ToWorker)
    }
  }

  /**
   * Starts a play on the thread with the fewest packets a second to send; resolves once its
   * first packet has left.
   */
  async start (play: Omit<StartPlay, 'prompts'>, list: readonly PlayListEntry[]): Promise<Started> {
    if (this.broken !== null) throw this.broken
    let thread = this.threads[0]!
    for (const t of this.threads) if (t.packetsPerSecond < thread.packetsPerSecond) thread = t
    const ids: ListEntry[] = list.map(p => {
      if ('silencePackets' in p || 'dtmf' in p) return p
      if ('tone' in p) {
        const id = this.promptId(p.tone)
        this.handOver(thread, id, p.tone)
        return { prompt: id, packets: p.packets, cycle: p.cycle }
      }
      const id = this.promptId(p)
      this.handOver(thread, id, p)
      return id
    })
    const rate = 1000 / play.ptimeMs
    thread.plays.set(play.id, rate)
    thread.packetsPerSecond += rate
    this.placed.set(play.id, thread)
    try {
      return (await this.call(thread, call => ({ type: 'start', call, play: { ...play, prompts: ids } }))).result!
    } catch (err) {
      this.unplace(play.id)
      throw err
    }
  }

  /** Stops a play; resolves once no packet of it can leave any more. */
  async stop (id: string, by: StoppedBy): Promise<void> {
    const thread = this.placed.get(id)
    if (thread === undefined) return
    await this.call(thread, call => ({ type: 'stop', call, id, by }))
  }

  /** Applies a control; resolves once the packet thread has (the next packet carries it). Throws PLAY_ENDED. */
  async control (id: string, control: Control): Promise<boolean> {
    const thread = this.placed.get(id)
    if (thread === undefined) throw new EngineError('PLAY_ENDED', `play ${id} has ended; only a running play can be controlled`)
    return (await this.call(thread, call => ({ type: 'control', call, id, control }))).changed ?? false
  }

  /** Stops every play (each reported as ended) and ends the threads. */
  async close (): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.broken === null) await Promise.all(this.threads.map(async thread => await this.call(thread, call => ({ type: 'stopAll', call, by: 'shutdown' }))))
    await Promise.all(this.threads.map(async thread => await thread.worker.terminate()))
  }

  private unplace (id: string): void {
    const thread = this.placed.get(id)
    if (thread === undefined) return
    this.placed.delete(id)
    const rate = thread.plays.get(id)
    if (rate !== undefined) {
      thread.plays.delete(id)
      thread.packetsPerSecond -= rate
    }
  }

  private async call (thread: PacketThread, make: (call: number) => ToWorker): Promise<Reply> {
    if (this.broken !== null) throw this.broken
    const call = this.nextCall++
    return await new Promise((resolve, reject) => {
      thread.calls.set(call, { resolve, reject })
      thread.worker.postMessage(make(call))
    })
  }

  private spawn (thread: PacketThread, first: boolean): void {
    // The thread inherits the process's flags (loaders, source maps), but not --input-type,
    // which Node refuses for a file: a script run by `node --input-type=module -e` would
    // otherwise get no packet thread at all.
    const execArgv = process.execArgv.filter(arg => !arg.startsWith('--input-type'))
    const setup: WorkerSetup = {
      thread: thread.index,
      rtpPorts: this.options.rtpPorts,
      rtcpIntervalMs: this.options.rtcpIntervalMs,
      realtimePriority: this.options.realtimePriority,
      pacing: this.options.pacing,
      lateLimitPtimes: this.options.lateLimitPtimes,
      counters: this.countersMemory,
      lateness: thread.latenessMemory,
      ports: this.portsMemory
    }
    const name = this.threads.length === 1 ? 'prompt-player packets' : `prompt-player packets ${thread.index + 1}`
    const worker = new Worker(WORKER_URL, { workerData: setup, name, execArgv })
    thread.worker = worker
    let ready = false
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        ready = true
        thread.tid = message.tid
        if (first) this.starting[thread.index]!.resolve({ niceness: message.niceness, realtime: message.realtime })
        return
      }
      if (message.type === 'ended') {
        this.unplace(message.id)
        this.options.onEnded(message)
        return
      }
      if (message.type === 'dtmf') {
        this.options.onDtmf(message)
        return
      }
      const pending = thread.calls.get(message.call)
      thread.calls.delete(message.call)
      if ('error' in message) pending?.reject(new EngineError(message.error.code, message.error.message, { options: message.error.options }))
      else pending?.resolve(message)
    })
    const died = (err: Error): void => {
      if (thread.worker !== worker) return
      if (ready) this.crashed(thread, err)
      else this.failedToStart(thread, err, first)
    }
    worker.on('error', died)
    worker.on('exit', code => { if (!this.closing) died(new Error(`the packet thread exited with code ${code}`)) })
  }

  /**
   * A packet thread that dies before it is ready would die again: no new one is started. The
   * engine's start fails with the reason; after a crash, every call fails with it.
   */
  private failedToStart (thread: PacketThread, err: Error, first: boolean): void {
    if (this.closing || this.broken !== null) return
    this.broken = new EngineError('PACKET_THREAD_FAILED', `the packet thread could not start: ${err.message}`)
    for (const t of this.threads) {
      t.worker.removeAllListeners()
      void t.worker.terminate()
      for (const { reject } of t.calls.values()) reject(this.broken)
      t.calls.clear()
    }
    if (first) this.starting[thread.index]!.reject(this.broken)
    else this.options.onCrashed(this.broken.message, [...this.placed.keys()])
  }

  /**
   * A packet thread died (a bug): its calls fail, the manager fails its plays (only its own:
   * the other threads go on pacing theirs), its RTP ports are given back, and a new thread
   * takes its place, given the prompts again as it needs them.
   */
  private crashed (thread: PacketThread, err: Error): void {
    if (this.closing) return
    for (const { reject } of thread.calls.values()) reject(new EngineError('PACKET_THREAD_FAILED', `the packet thread failed (${err.message}); a new one is taking over, retry`))
    thread.calls.clear()
    thread.worker.removeAllListeners()
    void thread.worker.terminate()
    const ids = [...thread.plays.keys()]
    for (const id of ids) this.unplace(id)
    // Its sockets closed with it: the ports it held are free for the other threads.
    const claims = new Int32Array(this.portsMemory)
    for (let i = 1; i < claims.length; i++) Atomics.compareExchange(claims, i, thread.index + 1, 0)
    thread.sent.clear()
    thread.tid = null
    thread.restarts++
    this.options.onCrashed(`the packet thread failed: ${err.message}`, ids)
    this.spawn(thread, false)
  }
}
