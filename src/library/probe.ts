import { parseBuffer } from 'music-metadata'
import type { Detection } from './detect.js'

/** What the source says about itself, read by music-metadata. Unknown fields are null. */
export interface SourceFacts {
  codec: string | null
  sampleRate: number | null
  channels: number | null
  durationMs: number | null
}

/**
 * Reads codec, rate, channels and duration with music-metadata, telling it the detected MIME
 * type so that it never chooses a parser itself: its file-path API goes by the extension, and
 * an MP3 named `.wma` then fails with "Invalid ASF header object size".
 *
 * music-metadata is a reader of tags and headers, not a decoder: when it cannot read a file
 * that ffmpeg can decode (some ADPCM WAVs), the facts are null and ffmpeg has the last word.
 */
export async function probe (bytes: Uint8Array, detection: Detection): Promise<SourceFacts> {
  try {
    const { format } = await parseBuffer(bytes, { mimeType: detection.mimeType, size: bytes.byteLength }, { duration: true, skipCovers: true })
    return {
      codec: format.codec ?? null,
      sampleRate: format.sampleRate ?? null,
      // For MP4, music-metadata reads the sample entry's channel count, which muxers often leave
      // at 2 for mono AAC: unknown here, so ffmpeg's reading of the codec's configuration is used.
      channels: detection.container === 'm4a' ? null : format.numberOfChannels ?? null,
      durationMs: format.duration === undefined ? null : Math.round(format.duration * 1000)
    }
  } catch {
    return { codec: null, sampleRate: null, channels: null, durationMs: null }
  }
}
