import { CODECS, renditionOf, silenceByte, type Codec, type Ptime, type Rendition, type Renditions } from '../common/codecs.js'
import { unpackOpus } from '../common/opus-packets.js'

/**
 * A prompt's audio in each rendition made so far, and its payloads per codec and ptime. The
 * audio lives in shared memory and is never written after load, so any number of plays, in any
 * thread, read the same bytes; payloads are views into it, made once per codec and ptime.
 */
export class PromptAudio {
  readonly audio: Renditions
  private readonly frameCache = new Map<string, readonly Buffer[]>()

  constructor (audio: Renditions) {
    this.audio = audio
  }

  /** Adds a rendition made after the prompt was loaded. */
  add (rendition: Rendition, bytes: Buffer): void {
    this.audio[rendition] ??= bytes
  }

  /**
   * The payloads at a packet time. Byte codecs: `subarray` views of the stored audio, the last
   * one copied and padded with the codec's silence so that every packet is full (a short last
   * packet clicks: freeswitch#146). Opus: views of the packets of the rendition at that frame
   * duration. Throws when the rendition has not been made.
   */
  frames (codec: Codec, ptimeMs: Ptime): readonly Buffer[] {
    const key = `${codec}/${ptimeMs}`
    let frames = this.frameCache.get(key)
    if (frames === undefined) {
      const bytes = this.bytesOf(codec, ptimeMs)
      frames = codec === 'opus' ? unpackOpus(bytes) : slice(bytes, ptimeMs * CODECS[codec].bytesPerMs!, silenceByte(codec))
      this.frameCache.set(key, frames)
    }
    return frames
  }

  private bytesOf (codec: Codec, ptimeMs: Ptime): Buffer {
    const rendition = renditionOf(codec, ptimeMs)
    const bytes = this.audio[rendition]
    if (bytes === undefined) throw new Error(`the ${rendition} rendition of this prompt has not been made`)
    return bytes
  }
}

const largest = new WeakMap<readonly Buffer[], number>()

/**
 * The largest payload of a prompt's frames (every one, for a byte codec; Opus's vary): what a
 * play's packet ring must hold. Counted once per frames list, which every play of the prompt in
 * that codec and ptime shares, not once per play.
 */
export function largestPayload (frames: readonly Buffer[]): number {
  let bytes = largest.get(frames)
  if (bytes === undefined) {
    bytes = 0
    for (const frame of frames) if (frame.length > bytes) bytes = frame.length
    largest.set(frames, bytes)
  }
  return bytes
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
