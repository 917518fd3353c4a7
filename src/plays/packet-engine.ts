/**
 * The HTTP thread's side of the packet thread: starts it, registers prompt audio with it (shared
 * memory, no copy), starts and stops plays there and hears when they end. Counters and the
 * lateness histogram are read straight from shared memory.
 */
import { Worker } from 'node:worker_threads'
import { EngineError } from '../common/errors.js'
import { COUNTERS, countersOf, type Control, type FromWorker, type StartPlay, type Started, type StoppedBy, type ToWorker, type WorkerSetup } from '../packet/protocol.js'
import type { PlayState } from '../common/schemas.js'
import type { Prompt } from '../library/prompt.js'
import type { Rendition } from '../common/codecs.js'
import { LatenessStats } from '../packet/lateness.js'

export interface ThreadPriority { niceness: number | null, realtime: number | null }

export interface Ended { id: string, state: Exclude<PlayState, 'playing'>, error: string | null, stoppedBy: StoppedBy | null }

type Reply = { result?: Started, changed?: boolean }

export interface PacketEngineOptions {
  rtpPorts: { min: number, max: number }
  rtcpIntervalMs: number
  realtimePriority: number
  /** Counter slots: one per play that can run at once. */
  slots: number
  onEnded: (ended: Ended) => void
  /** A caller's key press on a play's port. */
  onDtmf: (press: { id: string, digit: string, durationMs: number }) => void
  /** The packet thread died: every play it ran is gone. */
  onCrashed: (reason: string) => void
}

export class PacketEngine {
  readonly lateness: LatenessStats
  private readonly options: PacketEngineOptions
  private readonly setup: WorkerSetup
  private readonly counters: Float64Array
  private worker: Worker
  private nextCall = 1
  private readonly calls = new Map<number, { resolve: (value: Reply) => void, reject: (err: Error) => void }>()
  private readonly promptIds = new WeakMap<Prompt, number>()
  private readonly registered = new Map<number, Prompt>()
  /** The renditions of each registered prompt that the packet thread has. */
  private readonly sent = new WeakMap<Prompt, Set<Rendition>>()
  private nextPromptId = 1
  private closing = false
  /** The packet thread's priority once it has started: niceness -10 and the SCHED_FIFO priority where it could raise them, else null. */
  readonly ready: Promise<ThreadPriority>
  private onReady: (priority: ThreadPriority) => void = () => {}
  private onStartFailed: (err: EngineError) => void = () => {}
  /** Set when a packet thread died before it was ready: no new one is started. */
  private broken: EngineError | null = null

  constructor (options: PacketEngineOptions) {
    this.options = options
    const lateness = new SharedArrayBuffer(LatenessStats.BYTES)
    this.lateness = new LatenessStats(lateness)
    const counters = new SharedArrayBuffer(options.slots * COUNTERS.size * Float64Array.BYTES_PER_ELEMENT)
    this.counters = new Float64Array(counters)
    this.setup = { rtpPorts: options.rtpPorts, rtcpIntervalMs: options.rtcpIntervalMs, realtimePriority: options.realtimePriority, counters, lateness }
    this.ready = new Promise((resolve, reject) => { this.onReady = resolve; this.onStartFailed = reject })
    this.worker = this.spawn()
  }

  /** The packets, octets and send errors of the play in `slot`, live. */
  countersOf (slot: number): Float64Array {
    return countersOf(this.counters, slot)
  }

  /**
   * The id the packet thread knows a prompt by; its audio is handed over on first use, and each
   * rendition made since then on the next use (messages arrive in order, before the play's start).
   */
  register (prompt: Prompt): number {
    let id = this.promptIds.get(prompt)
    if (id === undefined) {
      id = this.nextPromptId++
      this.promptIds.set(prompt, id)
      this.registered.set(id, prompt)
      this.handOver(id, prompt)
    } else {
      const sent = this.sent.get(prompt)!
      for (const [rendition, bytes] of Object.entries(prompt.audio) as Array<[Rendition, Buffer]>) {
        if (sent.has(rendition)) continue
        sent.add(rendition)
        this.post({ type: 'rendition', id, rendition, bytes })
      }
    }
    return id
  }

  /** Gives the packet thread a prompt's audio, every rendition it has now (shared memory, no copy). */
  private handOver (id: number, prompt: Prompt): void {
    this.sent.set(prompt, new Set(Object.keys(prompt.audio) as Rendition[]))
    this.post({ type: 'prompt', id, audio: { ...prompt.audio } })
  }

  /** The prompt left the library: the packet thread forgets it once its plays end. */
  release (prompt: Prompt): void {
    const id = this.promptIds.get(prompt)
    if (id === undefined) return
    this.promptIds.delete(prompt)
    this.registered.delete(id)
    this.post({ type: 'release', id })
  }

  /** Starts a play; resolves once its first packet has left. */
  async start (play: StartPlay): Promise<Started> {
    return (await this.call(call => ({ type: 'start', call, play }))).result!
  }

  /** Stops a play; resolves once no packet of it can leave any more. */
  async stop (id: string, by: StoppedBy): Promise<void> {
    await this.call(call => ({ type: 'stop', call, id, by }))
  }

  /** Applies a control; resolves once the packet thread has (the next packet carries it). Throws PLAY_ENDED. */
  async control (id: string, control: Control): Promise<boolean> {
    return (await this.call(call => ({ type: 'control', call, id, control }))).changed ?? false
  }

  /** Stops every play (each reported as ended) and ends the thread. */
  async close (): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.broken === null) await this.call(call => ({ type: 'stopAll', call, by: 'shutdown' }))
    await this.worker.terminate()
  }

  private async call (make: (call: number) => ToWorker): Promise<Reply> {
    if (this.broken !== null) throw this.broken
    const call = this.nextCall++
    return await new Promise((resolve, reject) => {
      this.calls.set(call, { resolve, reject })
      this.post(make(call))
    })
  }

  private post (message: ToWorker): void {
    this.worker.postMessage(message)
  }

  private spawn (first = true): Worker {
    // The thread inherits the process's flags (loaders, source maps), but not --input-type,
    // which Node refuses for a file: a script run by `node --input-type=module -e` would
    // otherwise get no packet thread at all.
    const execArgv = process.execArgv.filter(arg => !arg.startsWith('--input-type'))
    const worker = new Worker(new URL('../packet/worker.js', import.meta.url), { workerData: this.setup, name: 'prompt-player packets', execArgv })
    let ready = false
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        ready = true
        if (first) this.onReady({ niceness: message.niceness, realtime: message.realtime })
        return
      }
      if (message.type === 'ended') {
        this.options.onEnded(message)
        return
      }
      if (message.type === 'dtmf') {
        this.options.onDtmf(message)
        return
      }
      const pending = this.calls.get(message.call)
      this.calls.delete(message.call)
      if ('error' in message) pending?.reject(new EngineError(message.error.code, message.error.message, { options: message.error.options }))
      else pending?.resolve(message)
    })
    const died = (err: Error): void => {
      if (ready) this.crashed(err)
      else this.failedToStart(err, first)
    }
    worker.on('error', died)
    worker.on('exit', code => { if (!this.closing) died(new Error(`the packet thread exited with code ${code}`)) })
    return worker
  }

  /**
   * A packet thread that dies before it is ready would die again: no new one is started. The
   * engine's start fails with the reason; after a crash, every call fails with it.
   */
  private failedToStart (err: Error, first: boolean): void {
    if (this.closing || this.broken !== null) return
    this.broken = new EngineError('PACKET_THREAD_FAILED', `the packet thread could not start: ${err.message}`)
    this.worker.removeAllListeners()
    void this.worker.terminate()
    for (const { reject } of this.calls.values()) reject(this.broken)
    this.calls.clear()
    if (first) this.onStartFailed(this.broken)
    else this.options.onCrashed(this.broken.message)
  }

  /**
   * The packet thread died (a bug): every call waiting on it fails, the manager fails its plays,
   * and a new thread takes over with the prompts re-registered.
   */
  private crashed (err: Error): void {
    if (this.closing) return
    for (const { reject } of this.calls.values()) reject(new EngineError('PACKET_THREAD_FAILED', `the packet thread failed (${err.message}); a new one is taking over, retry`))
    this.calls.clear()
    this.worker.removeAllListeners()
    void this.worker.terminate()
    this.options.onCrashed(`the packet thread failed: ${err.message}`)
    this.worker = this.spawn(false)
    for (const [id, prompt] of this.registered) this.handOver(id, prompt)
  }
}
