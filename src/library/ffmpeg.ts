/**
 * The only module that runs ffmpeg. Every run has a time limit, and a failure carries the
 * exit status and the end of ffmpeg's stderr, so that a person can see why.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import ffmpeg from 'fluent-ffmpeg'
import { ENGINE_DEFAULTS } from '../common/defaults.js'
import { EngineError } from '../common/errors.js'
import { G711, SAMPLE_RATE, type Law } from '../common/g711.js'
import { CODECS, describeRendition, type Rendition } from '../common/codecs.js'
import { packOpus } from '../common/opus-packets.js'
import { oggOpusFile, opusPacketsOf } from './ogg.js'

export interface FfmpegOptions {
  /** The ffmpeg binary: a path, or a name looked up on PATH. */
  path?: string
  /** Wall-clock limit for one run. */
  timeoutMs?: number
  /**
   * Scheduling niceness of every ffmpeg run (0 to 19). Transcodes are CPU-bound and the packet
   * thread is not: below the service's priority, ffmpeg gets the cores only when the packets
   * have had them, so uploads cannot make packets late. Default 10.
   */
  niceness?: number
  /** Longest audio a transcode produces (it stops one second past, so a too-long upload is seen). */
  maxSeconds?: number
  /** Transcodes running at once, and waiting beyond those; past both, TRANSCODER_BUSY. */
  maxConcurrent?: number
  maxQueued?: number
  /** The Opus encoder's bitrate, bits per second (default 32000). */
  opusBitrate?: number
  /** Told of every decode run: how long it took and whether it worked (for metrics). */
  onRun?: (run: FfmpegRun) => void
}

export interface FfmpegRun {
  what: 'transcode' | 'preview'
  durationMs: number
  ok: boolean
}

export interface FfmpegInfo {
  path: string
  /** The first line of `ffmpeg -version`, e.g. "ffmpeg version 5.1.6-0+deb12u1". */
  version: string
}

/** Why no ffmpeg can be run, and the options that would fix it (for the service to name). */
export interface FfmpegUnusable {
  error: string
  options: readonly string[]
}

/** What ffmpeg said of the input audio stream while decoding it; null where it did not say. */
export interface DecodedStream {
  codec: string | null
  sampleRate: number | null
  channels: number | null
}

const STDERR_TAIL = 600

export class Ffmpeg {
  readonly path: string
  readonly timeoutMs: number
  readonly niceness: number
  readonly maxSeconds: number
  readonly maxConcurrent: number
  readonly maxQueued: number
  readonly opusBitrate: number
  private running = 0
  private readonly waiting: Array<() => void> = []
  private health: { at: number, result: Promise<FfmpegInfo | FfmpegUnusable> } | null = null
  private readonly onRun: ((run: FfmpegRun) => void) | undefined

  constructor (options: FfmpegOptions = {}) {
    this.path = options.path ?? ENGINE_DEFAULTS.ffmpegPath
    this.timeoutMs = options.timeoutMs ?? ENGINE_DEFAULTS.ffmpegTimeoutMs
    this.niceness = options.niceness ?? ENGINE_DEFAULTS.ffmpegNiceness
    this.maxSeconds = options.maxSeconds ?? ENGINE_DEFAULTS.maxPromptSeconds
    this.maxConcurrent = options.maxConcurrent ?? ENGINE_DEFAULTS.maxTranscodes
    this.maxQueued = options.maxQueued ?? ENGINE_DEFAULTS.transcodeQueue
    this.opusBitrate = options.opusBitrate ?? ENGINE_DEFAULTS.opusBitrate
    this.onRun = options.onRun
  }

  /** Runs `ffmpeg -version`: proves the binary starts and says which one it is. */
  async info (): Promise<FfmpegInfo> {
    return await new Promise((resolve, reject) => {
      execFile(this.path, ['-hide_banner', '-version'], { timeout: this.timeoutMs }, (err, stdout, stderr) => {
        if (err) {
          // One line a person can act on: what the binary said (a missing library, say), or why it did not start.
          reject(this.unavailable(lastLine(String(stderr)) || err.message.split('\n')[0]!, err))
          return
        }
        const first = stdout.split('\n', 1)[0]!.trim()
        resolve({ path: this.path, version: /^ffmpeg version (\S+)/.exec(first)?.[1] ?? first })
      })
    })
  }

  /**
   * Whether ffmpeg runs now: `info()`, or why it failed, as of at most `maxAgeMs` ago. For
   * readiness checks, and to tell a broken ffmpeg from a broken upload; an ffmpeg installed or
   * repaired while the service runs is seen within that time.
   */
  async check (maxAgeMs = 2000): Promise<FfmpegInfo | FfmpegUnusable> {
    const now = performance.now()
    if (this.health === null || now - this.health.at > maxAgeMs) {
      this.health = { at: now, result: this.info().catch((err: Error) => ({ error: err.message, options: err instanceof EngineError ? err.options : [] })) }
    }
    return await this.health.result
  }

  /**
   * Decodes a stored source file once, into each rendition asked for in one run: 8 kHz mono
   * G.711 in either law, 16 kHz G.722, Opus at 48 kHz with one frame duration (its packets read
   * out of the Ogg file and stored length-prefixed, see opus-packets). The demuxer is named
   * (`-f`) from the content detection, so ffmpeg never guesses from the file name either.
   * ffmpeg's resampler low-pass filters before it decimates; writing our own would alias.
   */
  async transcode (inputPath: string, inputFormat: string, outputs: Partial<Record<Rendition, string>>): Promise<DecodedStream> {
    await this.slot()
    try {
      return await this.transcodeNow(inputPath, inputFormat, outputs)
    } finally {
      this.running--
      this.waiting.shift()?.()
    }
  }

  /** Waits for a transcode slot; refuses at once when the queue is full too. */
  private async slot (): Promise<void> {
    if (this.running < this.maxConcurrent) {
      this.running++
      return
    }
    if (this.waiting.length >= this.maxQueued) {
      throw new EngineError('TRANSCODER_BUSY', `${this.maxConcurrent} transcodes are running and ${this.waiting.length} waiting, the most configured (maxTranscodes, transcodeQueue); retry shortly`, { options: ['maxTranscodes', 'transcodeQueue'] })
    }
    await new Promise<void>(resolve => this.waiting.push(resolve))
    this.running++
  }

  private async transcodeNow (inputPath: string, inputFormat: string, outputs: Partial<Record<Rendition, string>>): Promise<DecodedStream> {
    const command = ffmpeg(inputPath, { timeout: this.timeoutMs / 1000, niceness: this.niceness })
      .setFfmpegPath(this.path)
      .inputFormat(inputFormat)
      .inputOptions(['-nostdin'])
    const opus: Array<{ file: string, frameMs: number }> = []
    for (const [rendition, file] of Object.entries(outputs) as Array<[Rendition, string]>) {
      const { codec, frameMs } = describeRendition(rendition)
      const rate = CODECS[codec].sampleRate
      const output = command.output(codec === 'opus' ? `${file}.ogg` : file)
        .outputOptions(['-map', '0:a:0', '-vn', '-sn', '-dn', '-t', String(this.maxSeconds + 1)])
        .audioFilters(`aresample=${rate}`)
        .audioChannels(1)
        .audioFrequency(rate)
      if (codec === 'opus') {
        output.audioCodec('libopus').audioBitrate(`${this.opusBitrate / 1000}k`).outputOptions(['-frame_duration', String(frameMs)]).format('ogg')
        opus.push({ file, frameMs: frameMs! })
      } else if (codec === 'G722') {
        output.audioCodec('g722').format('g722')
      } else {
        output.audioCodec(G711[codec as Law].ffmpegCodec).format(G711[codec as Law].ffmpegFormat)
      }
    }
    const stream: DecodedStream = { codec: null, sampleRate: null, channels: null }
    command.on('codecData', (data: { audio?: string, audio_details?: string[] }) => {
      Object.assign(stream, parseAudioDetails(data.audio, data.audio_details))
    })
    await this.run(command, 'decode the audio', 'transcode')
    for (const { file, frameMs } of opus) {
      // The packets as RTP carries them; the Ogg framing is not kept. Rewritten in place, then
      // renamed: never more disk than the Ogg file took (a full disk fails here or not at all).
      const ogg = `${file}.ogg`
      await fs.writeFile(ogg, packOpus(opusPacketsOf(await fs.readFile(ogg), frameMs)))
      await fs.rename(ogg, file)
    }
    return stream
  }

  /**
   * G.711 bytes back to 16-bit little-endian PCM at 8 kHz: what a caller hears. The output goes
   * to a temporary file, not a stream: with an output stream, fluent-ffmpeg reports "Output
   * stream closed" when ffmpeg's exit is seen more than 20 ms after its stdout closed, which
   * happens under load (fluent-ffmpeg issues #1067, #1171; seen here in a full test run).
   */
  async decodeG711 (bytes: Buffer, codec: Law): Promise<Buffer> {
    return await this.decodeRaw(bytes, G711[codec].ffmpegFormat, ['-ar', String(SAMPLE_RATE), '-ac', '1'], 'decode G.711')
  }

  /** G.722 bytes back to 16-bit little-endian PCM at 16 kHz, as decodeG711 does. */
  async decodeG722 (bytes: Buffer): Promise<Buffer> {
    // ffmpeg's g722 demuxer knows its rate (16 kHz) and channels (mono), and takes no options for them.
    return await this.decodeRaw(bytes, 'g722', [], 'decode G.722')
  }

  /** Opus packets (mono, as they arrived over RTP) back to 16-bit little-endian PCM at 48 kHz. */
  async decodeOpus (packets: readonly Uint8Array[]): Promise<Buffer> {
    return await this.decodeRaw(oggOpusFile(packets), 'ogg', [], 'decode Opus')
  }

  private async decodeRaw (bytes: Buffer, format: string, inputOptions: string[], what: string): Promise<Buffer> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'prompt-player-decode-'))
    try {
      const output = path.join(dir, 'pcm')
      const command = ffmpeg(Readable.from([bytes]), { timeout: this.timeoutMs / 1000, niceness: this.niceness })
        .setFfmpegPath(this.path)
        .inputFormat(format)
        .inputOptions(inputOptions)
        .audioCodec('pcm_s16le')
        .format('s16le')
        .output(output)
      await this.run(command, what, 'preview')
      return await fs.readFile(output)
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  }

  private async run (command: ffmpeg.FfmpegCommand, what: string, kind: FfmpegRun['what']): Promise<void> {
    const started = performance.now()
    let ok = false
    try {
      await this.spawn(command, what)
      ok = true
    } catch (err) {
      // A run that failed may be ffmpeg's own fault (a missing library after an upgrade, a
      // binary replaced by something else): if ffmpeg cannot even say its version, the upload
      // is not to blame, and the answer is the one /readyz gives.
      if (err instanceof EngineError && err.code === 'UNDECODABLE_AUDIO' && err.details?.timedOut !== true) {
        const health = await this.check(1000)
        if ('error' in health) throw new EngineError('FFMPEG_UNAVAILABLE', health.error, { cause: err, options: health.options })
      }
      throw err
    } finally {
      this.onRun?.({ what: kind, durationMs: performance.now() - started, ok })
    }
  }

  private unavailable (why: string, cause: Error): EngineError {
    return new EngineError('FFMPEG_UNAVAILABLE', `cannot run ffmpeg at "${this.path}": ${why}. Install it (apt-get install -y ffmpeg) or set ffmpegPath`, { cause, options: ['ffmpegPath'] })
  }

  private async spawn (command: ffmpeg.FfmpegCommand, what: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      command
        .on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
          if (/Cannot find ffmpeg|ENOENT|EACCES/.test(err.message)) {
            reject(this.unavailable(err.message, err))
            return
          }
          const tail = (stderr ?? '').trim().slice(-STDERR_TAIL)
          const full = storageProblem(err.message, tail)
          if (full !== null) {
            reject(writeFailed(full, tail, err))
            return
          }
          const timedOut = /timeout/.test(err.message)
          const reason = timedOut
            ? `ffmpeg did not finish within ${this.timeoutMs} ms`
            : `ffmpeg could not ${what}: ${lastLine(tail) || err.message}`
          reject(new EngineError('UNDECODABLE_AUDIO', reason, { cause: err, details: { ffmpeg: err.message, stderr: tail, timedOut } }))
        })
        .on('end', (_stdout: string | null, stderr: string | null) => {
          // ffmpeg 5 exits 0 when it cannot write its trailer or close an output ("Error
          // writing trailer of x: No space left on device"), with the output empty or short.
          const tail = (stderr ?? '').trim().slice(-STDERR_TAIL)
          const problem = storageProblem('', tail) ?? (/Error (writing trailer|closing file)/.test(tail) ? lastLine(tail) : null)
          if (problem !== null) {
            reject(writeFailed(problem, tail))
            return
          }
          resolve()
        })
        .run()
    })
  }
}

/**
 * A full disk or a file-size limit is the machine's problem, not the upload's: it must not be
 * reported as undecodable audio. ffmpeg says so on stderr, or (RLIMIT_FSIZE) dies of SIGXFSZ.
 */
export function storageProblem (message: string, stderr: string): string | null {
  if (/No space left on device/i.test(stderr)) return 'the disk is full'
  if (/Disk quota exceeded/i.test(stderr)) return 'the disk quota is exceeded'
  if (/SIGXFSZ/.test(message) || /File too large/i.test(stderr)) return 'a file-size limit was reached (ulimit -f, systemd LimitFSIZE)'
  return null
}

function writeFailed (problem: string, stderr: string, cause?: Error): EngineError {
  return new EngineError('STORAGE_FAILED', `ffmpeg could not write its output (${problem})`, { cause, details: { stderr } })
}

function lastLine (text: string): string {
  const lines = text.split('\n').map(l => l.trim()).filter(Boolean)
  return lines.at(-1) ?? ''
}

const LAYOUT_CHANNELS: Readonly<Record<string, number>> = { mono: 1, stereo: 2, 2.1: 3, quad: 4, '5.0': 5, 5.1: 6, 7.1: 8 }

/** Reads ffmpeg's stream line, e.g. "wmav2, 22050 Hz, mono, fltp, 32 kb/s". */
export function parseAudioDetails (codec: string | undefined, details: string[] | undefined): DecodedStream {
  const parts = (details ?? []).map(d => d.trim())
  const rate = parts.map(p => /^(\d+) Hz$/.exec(p)).find(Boolean)
  const layout = parts.map(p => LAYOUT_CHANNELS[p.replace(/\(.*\)$/, '')] ?? Number(/^(\d+) channels$/.exec(p)?.[1] ?? NaN)).find(n => !Number.isNaN(n))
  return {
    codec: codec?.split(' ')[0] ?? null,
    sampleRate: rate ? Number(rate[1]) : null,
    channels: layout ?? null
  }
}
