/**
 * Call-progress tones in a play's list: the table of each country's tones (data, with its
 * sources), custom tones, and the cache that makes a tone's audio once per distinct tone.
 *
 * A tone's audio is one block of whole cadence cycles that is also a whole number of packets
 * at every packet time (a multiple of 120 ms): made once by ffmpeg into each codec's rendition,
 * as an upload's are, and repeated by the packet thread for as long as an entry lasts. Nothing
 * of a tone is stored per play; the cache keeps the blocks of the tones asked for most recently.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { EngineError } from '../common/errors.js'
import type { Ffmpeg } from './ffmpeg.js'
import { Prompt } from './prompt.js'
import { makeRendition, transcodeUpload, type Stager } from './prompt-store.js'
import { discard, readAudio, stage, stagedDir } from './staging.js'
import { wavFile } from './wav.js'

export const TONE_NAMES = ['dial', 'ringback', 'busy', 'congestion', 'waiting', 'beep'] as const
export type ToneName = typeof TONE_NAMES[number]

/**
 * A tone: one or two frequencies (Hz), summed, or one amplitude-modulated by `modulationHz`
 * (90 % deep), sounding on and off by `cadence` (ms on, ms off, on, off, ...; empty: steady).
 */
export interface Tone {
  frequencies: readonly number[]
  modulationHz?: number
  cadence: readonly number[]
}

const t = (frequencies: number[], cadence: number[] = [], modulationHz?: number): Tone => modulationHz === undefined ? { frequencies, cadence } : { frequencies, cadence, modulationHz }

/**
 * The tones of each country, from ITU-T E.180 and its supplement "Various tones used in
 * national networks" (tones-0203.pdf), and the national plans it cites: BT SIN 350 for gb,
 * ACIF S002 for au; as collected in Asterisk's indications.conf (configs/samples). `beep` is
 * each plan's recording-warning tone frequency, steady: its entry's durationMs is the beep.
 * Where E.180 gives a 16 Hz or 25 Hz modulation (jp ringback, in dial), it is kept as one.
 */
export const COUNTRY_TONES: Readonly<Record<string, { country: string, source: string, tones: Readonly<Record<ToneName, Tone>> }>> = {
  us: {
    country: 'United States / North America',
    source: 'ITU-T E.180 Suppl. (tones-0203); ANSI T1.401 precise tones',
    tones: { dial: t([350, 440]), ringback: t([440, 480], [2000, 4000]), busy: t([480, 620], [500, 500]), congestion: t([480, 620], [250, 250]), waiting: t([440], [300, 10000]), beep: t([1400]) }
  },
  gb: {
    country: 'United Kingdom',
    source: 'BT SIN 350; ITU-T E.180 Suppl. (tones-0203)',
    tones: { dial: t([350, 440]), ringback: t([400, 450], [400, 200, 400, 2000]), busy: t([400], [375, 375]), congestion: t([400], [400, 350, 225, 525]), waiting: t([400], [100, 4000]), beep: t([1400]) }
  },
  de: {
    country: 'Germany',
    source: 'ITU-T E.180 Suppl. (tones-0203)',
    tones: { dial: t([425]), ringback: t([425], [1000, 4000]), busy: t([425], [480, 480]), congestion: t([425], [240, 240]), waiting: t([425], [200, 200, 200, 5000]), beep: t([1400]) }
  },
  fr: {
    country: 'France',
    source: 'ITU-T E.180 Suppl. (tones-0203)',
    tones: { dial: t([440]), ringback: t([440], [1500, 3500]), busy: t([440], [500, 500]), congestion: t([440], [250, 250]), waiting: t([440], [300, 10000]), beep: t([1400]) }
  },
  jp: {
    country: 'Japan',
    source: 'ITU-T E.180 Suppl. (tones-0203): 400 Hz, ringback and waiting modulated by 16 Hz',
    tones: { dial: t([400]), ringback: t([400], [1000, 2000], 16), busy: t([400], [500, 500]), congestion: t([400], [500, 500]), waiting: t([400], [500, 8000], 16), beep: t([1400]) }
  },
  au: {
    country: 'Australia',
    source: 'ACIF S002:2001; ITU-T E.180 Suppl. (tones-0203)',
    tones: { dial: t([413, 438]), ringback: t([413, 438], [400, 200, 400, 2000]), busy: t([425], [375, 375]), congestion: t([425], [375, 375]), waiting: t([425], [200, 200, 200, 4400]), beep: t([1400]) }
  },
  cn: {
    country: 'China',
    source: 'ITU-T E.180 Suppl. (tones-0203)',
    tones: { dial: t([450]), ringback: t([450], [1000, 4000]), busy: t([450], [350, 350]), congestion: t([450], [700, 700]), waiting: t([450], [400, 4000]), beep: t([950]) }
  },
  in: {
    country: 'India',
    source: 'ITU-T E.180 Suppl. (tones-0203): 400 Hz modulated by 25 Hz for dial and ringback',
    tones: { dial: t([400], [], 25), ringback: t([400], [400, 200, 400, 2000], 25), busy: t([400], [750, 750]), congestion: t([400], [250, 250]), waiting: t([400], [200, 100, 200, 7500]), beep: t([1400]) }
  }
}

export const TONE_COUNTRIES = Object.keys(COUNTRY_TONES)

/** Custom tones' limits: frequencies in the telephone band, a cadence of whole 10 ms. */
export const TONE_LIMITS = { minHz: 50, maxHz: 4000, maxDurationMs: 600_000, maxCadenceMs: 60_000 } as const

/** A named tone of a country; INVALID_REQUEST naming the known ones otherwise. */
export function namedTone (name: string, country: string, where: string): Tone {
  if (!(TONE_NAMES as readonly string[]).includes(name)) {
    throw new EngineError('INVALID_REQUEST', `${where}: no tone named ${JSON.stringify(name)}; the tones are ${TONE_NAMES.join(', ')}, or {"frequencies": [...], "onMs": ..., "offMs": ...}`)
  }
  const table = COUNTRY_TONES[country]
  if (table === undefined) throw new EngineError('INVALID_REQUEST', `${where}: no tones for country ${JSON.stringify(country)}; the countries are ${TONE_COUNTRIES.join(', ')}`)
  return table.tones[name as ToneName]
}

/** A custom tone, checked: one or two frequencies of 50-4000 Hz, on and off in whole 10 ms. */
export function customTone (spec: { frequencies: readonly number[], onMs: number, offMs: number }, where: string): Tone {
  const { frequencies, onMs, offMs } = spec
  if (!Array.isArray(frequencies) || frequencies.length < 1 || frequencies.length > 2 || !frequencies.every(f => Number.isInteger(f) && f >= TONE_LIMITS.minHz && f <= TONE_LIMITS.maxHz)) {
    throw new EngineError('INVALID_REQUEST', `${where}: a tone has one or two frequencies, each a whole number of Hz from ${TONE_LIMITS.minHz} to ${TONE_LIMITS.maxHz}; got ${JSON.stringify(frequencies)}`)
  }
  for (const [field, ms, min] of [['onMs', onMs, 10], ['offMs', offMs, 0]] as const) {
    if (!Number.isInteger(ms) || ms < min || ms > TONE_LIMITS.maxCadenceMs || ms % 10 !== 0) {
      throw new EngineError('INVALID_REQUEST', `${where}: ${field} ${JSON.stringify(ms)} is not a multiple of 10 ms from ${min} to ${TONE_LIMITS.maxCadenceMs}`)
    }
  }
  return { frequencies: [...frequencies], cadence: offMs === 0 ? [] : [onMs, offMs] }
}

const gcd = (a: number, b: number): number => b === 0 ? a : gcd(b, a % b)

/**
 * The block a tone is made of, in ms: whole cadence cycles and whole packets at every ptime
 * (120 ms is the least common multiple of 10, 20, 30, 40 and 60). A steady tone: 3 s, whole
 * periods of every whole-Hz frequency. A cadence whose block would pass a minute: the entry's
 * own length, rounded up to 120 ms (then it is made for that length).
 */
export function blockMs (tone: Tone, durationMs: number): number {
  if (tone.cadence.length === 0) return 3000
  const cycle = tone.cadence.reduce((a, b) => a + b, 0)
  const block = cycle / gcd(cycle, 120) * 120
  return block <= 60_000 ? block : Math.ceil(durationMs / 120) * 120
}

/** A raised-cosine ramp at each edge of a burst, so that it starts and stops without a click. */
const RAMP_MS = 2
/** Each frequency at -14 dBFS: two summed peak at -8 dBFS, nowhere near clipping in any codec. */
const LEVEL = 0.2

/** The block's samples at 48 kHz, 16-bit little-endian. */
export function toneSamples (tone: Tone, ms: number, rate = 48_000): Buffer {
  const n = Math.round(ms * rate / 1000)
  const out = Buffer.alloc(n * 2)
  const ramp = RAMP_MS * rate / 1000
  // The bursts: [start, end) in samples, from the cadence over the block; steady: one.
  const bursts: Array<[number, number]> = []
  if (tone.cadence.length === 0) {
    bursts.push([0, n])
  } else {
    for (let at = 0, i = 0; at < ms; i = (i + 1) % tone.cadence.length) {
      const length = tone.cadence[i]!
      if (i % 2 === 0 && length > 0) bursts.push([Math.round(at * rate / 1000), Math.min(n, Math.round((at + length) * rate / 1000))])
      at += length
    }
  }
  const steady = tone.cadence.length === 0
  for (const [start, end] of bursts) {
    for (let s = start; s < end; s++) {
      // A steady tone keeps its phase across the block (3 s of whole periods); a burst starts at 0.
      const time = (steady ? s : s - start) / rate
      let x = 0
      for (const f of tone.frequencies) x += Math.sin(2 * Math.PI * f * time)
      if (tone.modulationHz !== undefined) x *= (1 + 0.9 * Math.sin(2 * Math.PI * tone.modulationHz * time)) / 1.9
      const edge = steady ? 1 : Math.min(1, (s - start) / ramp, (end - 1 - s) / ramp)
      const gain = edge >= 1 ? 1 : 0.5 - 0.5 * Math.cos(Math.PI * Math.max(0, edge))
      out.writeInt16LE(Math.round(x * LEVEL * gain * 32767), s * 2)
    }
  }
  return out
}

export interface ToneCacheOptions {
  ffmpeg: Ffmpeg
  /** Tones kept made (default 64); the least recently used goes first. */
  maxTones?: number
}

/** Tones' audio, made once per distinct tone (and block) as a Prompt the packet threads slice. */
export class ToneCache {
  private readonly options: ToneCacheOptions
  private readonly made = new Map<string, Promise<Prompt>>()
  private readonly removeListeners: Array<(prompt: Prompt) => void> = []
  private readonly stager: Stager

  constructor (options: ToneCacheOptions) {
    this.options = options
    const tmp = path.join(os.tmpdir(), `prompt-player-tones-${process.pid}`)
    this.stager = {
      stage: async (bytes, sha256) => await stage(tmp, bytes, sha256),
      readStaged: async staged => await readAudio(stagedDir(staged)),
      discard: async staged => { await discard(stagedDir(staged)) }
    }
  }

  /** Called with each tone's prompt when the cache lets it go. */
  onRemove (listener: (prompt: Prompt) => void): void {
    this.removeListeners.push(listener)
  }

  /** The tone's block, made now or earlier; tones asked for at once share one making. */
  async get (tone: Tone, durationMs: number): Promise<Prompt> {
    const ms = blockMs(tone, durationMs)
    const key = `${tone.frequencies.join('+')}*${tone.modulationHz ?? 0}/${tone.cadence.join(',')}@${ms}`
    let prompt = this.made.get(key)
    if (prompt !== undefined) {
      // Most recently used last.
      this.made.delete(key)
      this.made.set(key, prompt)
      return await prompt
    }
    prompt = this.make(key, tone, ms)
    this.made.set(key, prompt)
    prompt.catch(() => { if (this.made.get(key) === prompt) this.made.delete(key) })
    while (this.made.size > (this.options.maxTones ?? 64)) {
      const [oldest, evicted] = this.made.entries().next().value as [string, Promise<Prompt>]
      this.made.delete(oldest)
      void evicted.then(p => { for (const l of this.removeListeners) l(p) }, () => {})
    }
    return await prompt
  }

  async close (): Promise<void> {
    await fs.rm(path.join(os.tmpdir(), `prompt-player-tones-${process.pid}`), { recursive: true, force: true })
  }

  private async make (key: string, tone: Tone, ms: number): Promise<Prompt> {
    const wav = wavFile(toneSamples(tone, ms), 48_000)
    const transcoded = await transcodeUpload(`tone-${key}`, wav, this.options.ffmpeg, this.stager, null)
    await this.stager.discard(transcoded.staged)
    return new Prompt(transcoded.info, transcoded.audio, async (_prompt, rendition) => await makeRendition(wav, rendition, this.options.ffmpeg, this.stager))
  }
}
