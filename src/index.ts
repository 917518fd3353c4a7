/**
 * The media engine: the prompt library, transcoding, and paced RTP plays. It knows nothing of
 * HTTP; `service/plugins/engine.ts` joins it to Fastify.
 */
import { SafeEmitter, type EngineEvents } from './events.js'
import { Ffmpeg, type FfmpegInfo } from './ffmpeg.js'
import { PlayManager } from './play-manager.js'
import { DEFAULT_ALLOWED_TARGETS, type TargetPolicyOptions } from './target-policy.js'
import { PromptStore, type StoreWarning } from './prompt-store.js'
import type { LatenessStats } from './scheduler.js'

export interface EngineOptions {
  /** The prompt library directory; created when missing. */
  libraryDir: string
  /** Local UDP ports that plays send from. */
  rtpPorts?: { min: number, max: number }
  maxPlays?: number
  /** The ffmpeg binary (default: `ffmpeg` on PATH) and the wall-clock limit of one run. */
  ffmpegPath?: string
  ffmpegTimeoutMs?: number
  /** Niceness of ffmpeg runs, 0 to 19 (default 10): transcodes yield the cores to the packets. */
  ffmpegNiceness?: number
  /** Longest prompt, in seconds of decoded audio (default 600). */
  maxPromptSeconds?: number
  /** Transcodes at once (default 2) and waiting beyond them (default 32). */
  maxTranscodes?: number
  transcodeQueue?: number
  keepEndedMs?: number
  keepEndedMax?: number
  /** Where plays may send: allowed networks (default loopback and private ranges) and the lowest port (default 1024). */
  targets?: Partial<TargetPolicyOptions>
}

export interface Engine {
  readonly prompts: PromptStore
  readonly plays: PlayManager
  /** How late packets left against their due times, recorded by the packet thread. */
  readonly lateness: LatenessStats
  readonly events: SafeEmitter<EngineEvents>
  readonly ffmpeg: Ffmpeg
  /** The ffmpeg that was found at startup, or why none could be run. */
  readonly ffmpegInfo: FfmpegInfo | { error: string }
  /** Library entries that could not be loaded (they are left on disk untouched). */
  readonly warnings: StoreWarning[]
  readonly closed: boolean
  /** Stops every play (state `stopped`) and frees their sockets. Idempotent. */
  close: () => Promise<void>
}

export const DEFAULTS = {
  rtpPorts: { min: 20000, max: 39999 },
  maxPlays: 2000,
  ffmpegTimeoutMs: 60_000,
  keepEndedMs: 5 * 60_000,
  keepEndedMax: 10_000
} as const

export async function createEngine (options: EngineOptions): Promise<Engine> {
  const events = new SafeEmitter<EngineEvents>()
  const ffmpeg = new Ffmpeg({
    ...(options.ffmpegPath === undefined ? {} : { path: options.ffmpegPath }),
    timeoutMs: options.ffmpegTimeoutMs ?? DEFAULTS.ffmpegTimeoutMs,
    ...(options.ffmpegNiceness === undefined ? {} : { niceness: options.ffmpegNiceness }),
    ...(options.maxPromptSeconds === undefined ? {} : { maxSeconds: options.maxPromptSeconds }),
    ...(options.maxTranscodes === undefined ? {} : { maxConcurrent: options.maxTranscodes }),
    ...(options.transcodeQueue === undefined ? {} : { maxQueued: options.transcodeQueue }),
    onRun: run => events.emit('ffmpeg', run)
  })
  // A missing ffmpeg does not stop the engine: stored prompts can still be played.
  const ffmpegInfo = await ffmpeg.check(0)
  const { store, warnings } = await PromptStore.open(options.libraryDir, ffmpeg)
  const plays = new PlayManager({
    rtpPorts: options.rtpPorts ?? DEFAULTS.rtpPorts,
    maxPlays: options.maxPlays ?? DEFAULTS.maxPlays,
    keepEndedMs: options.keepEndedMs ?? DEFAULTS.keepEndedMs,
    keepEndedMax: options.keepEndedMax ?? DEFAULTS.keepEndedMax,
    targets: { allow: options.targets?.allow ?? DEFAULT_ALLOWED_TARGETS, minPort: options.targets?.minPort ?? 1024 }
  }, store, events)
  let closed = false
  return {
    prompts: store,
    plays,
    lateness: plays.packets.lateness,
    events,
    ffmpeg,
    ffmpegInfo,
    warnings,
    get closed () { return closed },
    async close () {
      if (closed) return
      closed = true
      await plays.close()
    }
  }
}

export { EngineError, ENGINE_ERRORS, isEngineError, type EngineErrorCode } from './errors.js'
export { detectContainer, type Container, type Detection } from './detect.js'
export { CODECS, PTIMES, type Codec, type Ptime } from './g711.js'
export { Prompt, PROMPT_NAME_PATTERN, isPromptName, type PromptInfo } from './prompt.js'
export { PromptStore } from './prompt-store.js'
export type { PlayState, Endpoint } from './play.js'
export type { PlayHandle, PlayInfo } from './play-handle.js'
export type { PlayRequest } from './play-manager.js'
export type { PlayEvent, PlayEventType } from './events.js'
export type { FfmpegRun } from './ffmpeg.js'
export { DEFAULT_ALLOWED_TARGETS, TargetPolicy, type TargetPolicyOptions } from './target-policy.js'
export type { Clock } from './clock.js'
