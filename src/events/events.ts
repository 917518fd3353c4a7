import { EventEmitter } from 'node:events'
import type { FfmpegRun } from '../library/ffmpeg.js'
import type { PlayInfo } from '../common/schemas.js'

export type PlayEventType = 'play.started' | 'play.paused' | 'play.resumed' | 'play.dtmf' | 'play.finished' | 'play.stopped' | 'play.failed'

export interface PlayEvent {
  type: PlayEventType
  play: PlayInfo
  /** play.dtmf: the key, and how long it was held (as far as known when it was reported). */
  digit?: string
  durationMs?: number
}

// A type alias, not an interface: interfaces do not satisfy Record<string, unknown[]>.
export type EngineEvents = {
  play: [PlayEvent]
  ffmpeg: [FfmpegRun]
}

/**
 * Typed events where a listener that throws never reaches the emitter: the emitter is the
 * play manager on the HTTP thread, and an SSE client, a webhook or a metric that misbehaves
 * must not break a play's start or end (mediasoup's `safeEmit` does the same). The error is
 * not lost: it goes to `onListenerError`, which the service points at its log.
 */
export class SafeEmitter<Events extends Record<string, unknown[]>> {
  private readonly emitter = new EventEmitter()
  /** Where listener errors go instead of up the stack: by default a process warning (stderr). */
  onListenerError: (err: unknown) => void

  constructor (onListenerError?: (err: unknown) => void) {
    this.onListenerError = onListenerError ?? (err => {
      process.emitWarning(`an event listener threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`, 'ListenerError')
    })
  }

  on<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void)
    return this
  }

  off<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this {
    this.emitter.off(event, listener as (...args: unknown[]) => void)
    return this
  }

  emit<K extends keyof Events & string> (event: K, ...args: Events[K]): void {
    for (const listener of this.emitter.listeners(event)) {
      try {
        (listener as (...a: Events[K]) => void)(...args)
      } catch (err) {
        try {
          this.onListenerError(err)
        } catch {}
      }
    }
  }
}
