/**
 * G.711 as it travels in RTP (RFC 3551 §4.5.14): 8-bit samples at 8000 Hz, mono.
 * PT 0 is PCMU (µ-law), PT 8 is PCMA (A-law). No RFC defines a silence byte; by convention
 * it is the code for zero amplitude: 0xFF in µ-law and 0xD5 in A-law.
 */
export const LAWS = ['PCMU', 'PCMA'] as const
export type Law = typeof LAWS[number]

export interface LawInfo {
  readonly name: Law
  /** The byte that decodes to (near) zero amplitude. */
  readonly silence: number
  /** ffmpeg's raw format (`-f`) and encoder for this law. */
  readonly ffmpegFormat: 'mulaw' | 'alaw'
  readonly ffmpegCodec: 'pcm_mulaw' | 'pcm_alaw'
  /** Media type of the raw bytes (RFC 4856). */
  readonly mediaType: string
}

export const SAMPLE_RATE = 8000
/** Samples (and bytes) of G.711 per millisecond. */
export const SAMPLES_PER_MS = SAMPLE_RATE / 1000

export const G711: Readonly<Record<Law, LawInfo>> = {
  PCMU: { name: 'PCMU', silence: 0xff, ffmpegFormat: 'mulaw', ffmpegCodec: 'pcm_mulaw', mediaType: 'audio/PCMU' },
  PCMA: { name: 'PCMA', silence: 0xd5, ffmpegFormat: 'alaw', ffmpegCodec: 'pcm_alaw', mediaType: 'audio/PCMA' }
}
