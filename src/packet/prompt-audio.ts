import { CODECS, SAMPLES_PER_MS, type Codec, type Ptime } from '../common/g711.js'

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
