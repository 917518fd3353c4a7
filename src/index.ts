/**
 * The media engine: the prompt library, transcoding, and paced RTP plays. It knows nothing of
 * HTTP or of environment variables; `service/plugins/engine.ts` joins it to Fastify. This file
 * is the only part of `src/` that the service, the command line and the client import.
 *
 *   src/common/    what both threads share: codecs, errors, the resource schemas, defaults
 *   src/library/   the prompt library: detection, probing, integrity, ffmpeg, storage
 *   src/plays/     plays as the HTTP thread sees them: manager, handle, target policy, record
 *   src/events/    the engine's events and their log
 *   src/packet/    everything that runs on the packet thread, and nothing else
 *   src/pool/      a pool of instances on Redis: the seams' shared implementations
 */
import os from 'node:os'
import path from 'node:path'
import { ENGINE_DEFAULTS } from './common/defaults.js'
import { SafeEmitter, type EngineEvents } from './events/events.js'
import { LocalEventLog, type EventLog } from './events/event-log.js'
import { Ffmpeg, type FfmpegInfo, type FfmpegUnusable } from './library/ffmpeg.js'
import { PromptStore } from './library/prompt-store.js'
import { UrlCache } from './library/url-cache.js'
import { ToneCache } from './library/tones.js'
import type { LibraryStorage, StoreWarning } from './library/storage.js'
import type { LatenessStats } from './common/lateness.js'
import type { Pacing } from './common/protocol.js'
import { PlayManager } from './plays/play-manager.js'
import { LocalPlayRecord, type PlayRecord } from './plays/play-record.js'
import { RedisPool, type Pool, type PoolOptions } from './pool/pool.js'

export interface EngineOptions {
  /** The prompt library directory (created when missing), or another storage. */
  libraryDir: string
  /** Where the library rests instead of `libraryDir` (a shared storage). */
  storage?: LibraryStorage
  /** The record of plays (default: this instance's, in memory). */
  playRecord?: PlayRecord
  /** The log of events (default: this instance's, in memory, the last 1000). */
  eventLog?: EventLog
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
  /** The Opus encoder's bitrate for Opus renditions, 6000-510000 bit/s (default 32000); renditions keep the rate they were made with. */
  opusBitrate?: number
  keepEndedMs?: number
  keepEndedMax?: number
  /** Where plays may send: allowed networks (default loopback and private ranges) and the lowest port (default 1024). */
  targets?: { allow?: readonly string[], minPort?: number }
  /**
   * Prompts from URLs: where they may be fetched from (default loopback and the private
   * ranges), the time limit of one fetch (default 10 s), the largest body (default 50 MiB),
   * redirects followed (default 5), and the audio the cache keeps (default 256 MiB).
   */
  fetch?: { allow?: readonly string[], timeoutMs?: number, maxBytes?: number, maxRedirects?: number, cacheBytes?: number }
  /** RTCP's sender report interval, randomised 0.5-1.5 times (default 5000 ms, RFC 3550 §6.2). */
  rtcpIntervalMs?: number
  /** SCHED_FIFO priority (1-99) of the packet threads where the process may set it (default 10); 0: niceness only. */
  realtimePriority?: number
  /** Threads that send packets; each play lives on one (default: the cores the process may run on). */
  packetThreads?: number
  /**
   * How a packet thread waits for a due time (default `sleep`): `sleep` wakes a little early on
   * Node's timer and sleeps the rest on a futex; `spin` busy-waits the rest; `timer` sends when
   * Node's timer fires, up to a millisecond late.
   */
  pacing?: Pacing
  /** A packet due longer ago than this many ptimes is skipped (counted), not sent late in a burst; 0: never (default 3). */
  lateLimitPtimes?: number
  /** Where an event listener's error goes (default: a process warning on stderr). */
  onListenerError?: (err: unknown) => void
  /** This instance's id, in every Play it reports (default: the host name). */
  instanceId?: string
  /**
   * A pool of instances on one Redis: the library, the record of plays and the events are
   * shared (instead of `libraryDir`, `storage`, `playRecord`, `eventLog`). Call `engine.join`
   * once this instance answers at an address.
   */
  pool?: Pick<PoolOptions, 'redisUrl' | 'sentinels' | 'master' | 'password' | 'waitReplicas' | 'waitMs' | 'keepSource' | 'lostAfterMs'>
  /** Where the pool's background errors go (a lost Redis, a failed write). */
  onPoolError?: (err: unknown, what: string) => void
}

export interface Engine {
  readonly prompts: PromptStore
  readonly plays: PlayManager
  /** Prompts fetched from URLs, kept by this instance. */
  readonly urls: UrlCache
  /** How late packets left against their due times, every packet thread summed (read at each use). */
  readonly lateness: LatenessStats
  readonly events: SafeEmitter<EngineEvents>
  /** Every play event with its id, the last ones kept for readers that reconnect. */
  readonly eventLog: EventLog
  readonly ffmpeg: Ffmpeg
  /** The ffmpeg that was found at startup, or why none could be run. */
  readonly ffmpegInfo: FfmpegInfo | FfmpegUnusable
  /** The packet thread's niceness: -10 when it could raise its priority, else null. */
  readonly packetThreadNiceness: number | null
  /** The packet thread's SCHED_FIFO priority when it could take one, else null. */
  readonly packetThreadRealtime: number | null
  /** Library entries that could not be loaded (they are left untouched). */
  readonly warnings: StoreWarning[]
  /** This instance's id. */
  readonly instance: string
  /** The pool this instance is part of, or null. */
  readonly pool: Pool | null
  /** In a pool: starts answering for this instance's plays at `address` (the heartbeat begins). */
  join: (address: string) => Promise<void>
  readonly closed: boolean
  /** Stops every play (state `stopped`) and frees their sockets. Idempotent. */
  close: () => Promise<void>
}

export async function createEngine (options: EngineOptions): Promise<Engine> {
  const events = new SafeEmitter<EngineEvents>(options.onListenerError)
  const instance = options.instanceId ?? os.hostname()
  const keepEndedMs = options.keepEndedMs ?? ENGINE_DEFAULTS.keepEndedMs
  const keepEndedMax = options.keepEndedMax ?? ENGINE_DEFAULTS.keepEndedMax
  const pool = options.pool === undefined
    ? null
    : await RedisPool.connect({ ...options.pool, instance, keepEndedMs, keepEndedMax, ...(options.onPoolError === undefined ? {} : { onError: options.onPoolError }) })
  const eventLog = pool?.events ?? options.eventLog ?? new LocalEventLog()
  events.on('play', event => { eventLog.append(event) })
  const ffmpeg = new Ffmpeg({
    path: options.ffmpegPath ?? ENGINE_DEFAULTS.ffmpegPath,
    timeoutMs: options.ffmpegTimeoutMs ?? ENGINE_DEFAULTS.ffmpegTimeoutMs,
    niceness: options.ffmpegNiceness ?? ENGINE_DEFAULTS.ffmpegNiceness,
    maxSeconds: options.maxPromptSeconds ?? ENGINE_DEFAULTS.maxPromptSeconds,
    maxConcurrent: options.maxTranscodes ?? ENGINE_DEFAULTS.maxTranscodes,
    maxQueued: options.transcodeQueue ?? ENGINE_DEFAULTS.transcodeQueue,
    opusBitrate: options.opusBitrate ?? ENGINE_DEFAULTS.opusBitrate,
    onRun: run => events.emit('ffmpeg', run)
  })
  // A missing ffmpeg does not stop the engine: stored prompts can still be played.
  const ffmpegInfo = await ffmpeg.check(0)
  const { store, warnings } = await PromptStore.open(pool?.storage ?? options.storage ?? options.libraryDir, ffmpeg)
  const record = pool?.plays ?? options.playRecord ?? new LocalPlayRecord({ keepEndedMs, keepEndedMax })
  // Each instance keeps its own URL cache, in its library directory.
  const urls = await UrlCache.open({
    dir: path.join(options.libraryDir, '.url-cache'),
    maxBytes: options.fetch?.cacheBytes ?? ENGINE_DEFAULTS.fetch.cacheBytes,
    fetch: {
      allow: options.fetch?.allow ?? ENGINE_DEFAULTS.allowedTargets,
      timeoutMs: options.fetch?.timeoutMs ?? ENGINE_DEFAULTS.fetch.timeoutMs,
      maxBytes: options.fetch?.maxBytes ?? ENGINE_DEFAULTS.fetch.maxBytes,
      maxRedirects: options.fetch?.maxRedirects ?? ENGINE_DEFAULTS.fetch.maxRedirects
    },
    ffmpeg
  })
  // Tones' audio, made once per distinct tone, on this instance.
  const tones = new ToneCache({ ffmpeg })
  const plays = new PlayManager({
    rtpPorts: options.rtpPorts ?? ENGINE_DEFAULTS.rtpPorts,
    rtcpIntervalMs: options.rtcpIntervalMs ?? ENGINE_DEFAULTS.rtcpIntervalMs,
    realtimePriority: options.realtimePriority ?? ENGINE_DEFAULTS.realtimePriority,
    packetThreads: options.packetThreads ?? os.availableParallelism(),
    pacing: options.pacing ?? ENGINE_DEFAULTS.pacing,
    lateLimitPtimes: options.lateLimitPtimes ?? ENGINE_DEFAULTS.lateLimitPtimes,
    maxPlays: options.maxPlays ?? ENGINE_DEFAULTS.maxPlays,
    keepEndedMs,
    targets: { allow: options.targets?.allow ?? ENGINE_DEFAULTS.allowedTargets, minPort: options.targets?.minPort ?? ENGINE_DEFAULTS.minTargetPort },
    instance
  }, store, events, record, urls, tones)
  const { niceness: packetThreadNiceness, realtime: packetThreadRealtime } = await plays.packetThreadReady
  let closed = false
  return {
    prompts: store,
    plays,
    urls,
    get lateness () { return plays.lateness },
    events,
    eventLog,
    ffmpeg,
    ffmpegInfo,
    packetThreadNiceness,
    packetThreadRealtime,
    warnings,
    instance,
    pool,
    async join (address: string) { await pool?.join(address) },
    get closed () { return closed },
    async close () {
      if (closed) return
      closed = true
      await plays.close()
      urls.close()
      await tones.close()
      await pool?.close()
    }
  }
}

export { ENGINE_DEFAULTS } from './common/defaults.js'
export { EngineError, ENGINE_ERRORS, isEngineError, type EngineErrorCode } from './common/errors.js'
export { CODECS, CODEC_NAMES, PTIMES, RENDITIONS, UPLOAD_RENDITIONS, renditionOf, silencePayload, type Codec, type CodecInfo, type Ptime, type Rendition, type Renditions } from './common/codecs.js'
export { G711, LAWS, SAMPLE_RATE, type Law } from './common/g711.js'
export { opusPacketMs, unpackOpus } from './common/opus-packets.js'
export {
  CONTAINERS, ContainerName, Endpoint, MAX_PROMPTS_PER_PLAY_LIMIT, Play, PlayControl, PlayCreated, PlayRequest, PromptResource as PromptSchema, Rendition as RenditionSchema, PromptName,
  PROMPT_NAME_PATTERN, type PlayCreatedInfo, type PlayInfo, type PlayState, type PromptInfo, type PromptResourceInfo, type RenditionInfo
} from './common/schemas.js'
export { SRTP_SUITE_NAMES, SRTP_SUITES, makeSdesKey, parseSdesKey, type SrtpSuiteName } from './common/srtp-suites.js'
export { detectContainer, type Container, type Detection } from './library/detect.js'
export { Ffmpeg, type FfmpegInfo, type FfmpegRun, type FfmpegUnusable } from './library/ffmpeg.js'
export { LocalStorage } from './library/local-storage.js'
export { Prompt, isPromptName } from './library/prompt.js'
export { PromptStore, type AudioFormat } from './library/prompt-store.js'
export type { LibraryStorage, Staged, StoredPrompt, StoreWarning } from './library/storage.js'
export { wavFile } from './library/wav.js'
export type { UrlCache, CacheEntryInfo, CacheStats } from './library/url-cache.js'
export { LatenessStats } from './common/lateness.js'
export { PACING_MODES, type Pacing } from './common/protocol.js'
export type { PacketThreadInfo } from './plays/packet-engine.js'
export { keyPress } from './packet/dtmf.js'
// For tools that play the far end or measure the packet path (the benchmark's receiver seals its key presses).
export { SrtpSender, SrtpReceiver } from './packet/srtp.js'
export { RtpStream } from './packet/rtp-packetizer.js'
export { isRtcp, ntpMiddle, readSenderReport, receiverReport, wallClockMs, type SenderPacket } from './packet/rtcp.js'
export type { Clock } from './packet/clock.js'
export type { PlayHandle } from './plays/play-handle.js'
export type { Located, PlayManager } from './plays/play-manager.js'
export { LocalPlayRecord, type PlayRecord, type RecordedPlay } from './plays/play-record.js'
export { TargetPolicy, type TargetPolicyOptions } from './plays/target-policy.js'
export { AllowedNetworks, blockListOf, isUnspecified, parseCidr, unmapped } from './common/networks.js'
export type { Pool, PoolOptions } from './pool/pool.js'
export type { PoolInstance } from './pool/redis-play-record.js'
export { LocalEventLog, RETAINED_EVENTS, type EventLog, type LoggedEvent, type Missed } from './events/event-log.js'
export type { EngineEvents, PlayEvent, PlayEventType, SafeEmitter } from './events/events.js'
