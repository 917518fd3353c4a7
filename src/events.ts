import { EventEmitter } from 'node:events'
import type { FfmpegRun } from './ffmpeg.js'
import type { PlayInfo } from './play-handle.js'

export type PlayEventType = 'play.started' | 'play.finished' | 'play.stopped' | 'play.failed'

export interface PlayEvent {
  type: PlayEventType
  play: PlayInfo
}

// A type alias, not an interface: interfaces do not satisfy Record<string, unknown[]>.
export type EngineEvents = {
  play: [PlayEvent]
  ffmpeg: [FfmpegRun]
}

/**
 * Typed events where a listener that throws never reaches the emitter: the emitter is the
 * packet path, and an SSE client or webhook that misbehaves must not delay a pacer tick
 * (mediasoup's `safeEmit` does the same).
 */
export class SafeEmitter<Events extends Record<string, unknown[]>> {
  private readonly emitter = new EventEmitter()
  /** Where listener errors go instead of up the stack. */
  onListenerError: (err: unknown) => void = () => {}

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
        this.onListenerError(err)
      }
    }
  }
}
