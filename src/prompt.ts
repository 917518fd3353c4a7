import { CODECS, SAMPLES_PER_MS, type Codec, type Ptime } from './g711.js'
import type { Container } from './detect.js'

export const PROMPT_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'
const PROMPT_NAME = new RegExp(PROMPT_NAME_PATTERN)

export function isPromptName (name: string): boolean {
  return PROMPT_NAME.test(name)
}

/** What the API reports of a prompt (API.md "Prompt"). */
export interface PromptInfo {
  name: string
  source: {
    filename: string | null
    container: Container
    codec: string | null
    sampleRate: number | null
    channels: number | null
    durationMs: number | null
    bytes: number
    sha256: string
    extensionMismatch: boolean
  }
  telephony: { sampleRate: number, durationMs: number, packets: number }
  createdAt: string
}

/**
 * A prompt's audio in both G.711 laws, and its payloads per ptime. The audio lives in shared
 * memory and is never written after load, so any number of plays, in any thread, read the same
 * bytes; payloads are views into it, made once per codec and ptime.
 */
export class PromptAudio {
  readonly audio: Readonly<Record<Codec, Buffer>>
  private readonly frameCache = new Map<string, readonly Buffer[]>()

  constructor (audio: Record<Codec, Buffer>) {
    this.audio = audio
  }

  /**
   * The payloads at a packet time: `subarray` views of the stored audio, the last one copied
   * and padded with the codec's silence byte so that every packet is full (a short last packet
   * clicks: freeswitch#146).
   */
  frames (codec: Codec, ptimeMs: Ptime): readonly Buffer[] {
    const key = `${codec}/${ptimeMs}`
    let frames = this.frameCache.get(key)
    if (frames === undefined) {
      frames = slice(this.audio[codec], ptimeMs * SAMPLES_PER_MS, CODECS[codec].silence)
      this.frameCache.set(key, frames)
    }
    return frames
  }
}

/** A prompt of the library: its description and its audio. */
export class Prompt extends PromptAudio {
  readonly info: PromptInfo

  constructor (info: PromptInfo, audio: Record<Codec, Buffer>) {
    super(audio)
    this.info = info
  }

  get name (): string { return this.info.name }
}

export function packetCount (bytes: number, ptimeMs: number): number {
  return Math.ceil(bytes / (ptimeMs * SAMPLES_PER_MS))
}

function slice (audio: Buffer, size: number, silence: number): Buffer[] {
  const frames: Buffer[] = []
  for (let at = 0; at < audio.length; at += size) {
    if (at + size <= audio.length) {
      frames.push(audio.subarray(at, at + size))
    } else {
      const last = Buffer.alloc(size, silence)
      audio.copy(last, 0, at)
      frames.push(last)
    }
  }
  return frames
}

/** Copies bytes into shared memory, so that worker threads can read them without a copy. */
export function toShared (bytes: Uint8Array): Buffer {
  const shared = Buffer.from(new SharedArrayBuffer(bytes.byteLength))
  shared.set(bytes)
  return shared
}
