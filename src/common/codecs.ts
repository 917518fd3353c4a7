/**
 * The codecs a play can send, as RTP carries them:
 *
 * - PCMU, PCMA: G.711 (RFC 3551 §4.5.14), 8 kHz, 8 bytes a millisecond; static PT 0 and 8.
 * - G722: G.722 (RFC 3551 §4.5.2), 16 kHz audio in 8 bytes a millisecond, with an RTP clock of
 *   8000 (an error in the original RFC 1890 kept for compatibility): the timestamp grows by 8
 *   per millisecond, not 16. Static PT 9.
 * - opus: Opus (RFC 7587), an RTP clock of 48000 whatever the audio's bandwidth, one Opus packet
 *   per RTP packet, its duration the ptime; dynamic PT, 111 by convention (WebRTC's).
 *
 * Each codec's audio of a prompt is a rendition made from the source by ffmpeg (never from
 * another rendition). The byte codecs are cut into payloads at any ptime; Opus packets are
 * encoded at one frame duration, so each Opus ptime is a rendition of its own.
 */
import { G711 } from './g711.js'
import { countOpus } from './opus-packets.js'

export const CODEC_NAMES = ['PCMU', 'PCMA', 'G722', 'opus'] as const
export type Codec = typeof CODEC_NAMES[number]

/** Every packet time some codec allows; CODECS[codec].ptimes says which for each. */
export const PTIMES = [10, 20, 30, 40, 60] as const
export type Ptime = typeof PTIMES[number]

export interface CodecInfo {
  readonly name: Codec
  /** Payload type when the request gives none: RFC 3551's static one, or opus's usual 111. */
  readonly payloadType: number
  /** RTP timestamp units per millisecond: its clock rate / 1000. */
  readonly clockPerMs: number
  /** The audio's own sample rate (G.722's 16000 differs from its RTP clock). */
  readonly sampleRate: number
  /** Packet times a play of this codec may use. */
  readonly ptimes: readonly Ptime[]
  /** Bytes per millisecond for the byte codecs (any ptime cuts them); null for Opus (one packet per frame). */
  readonly bytesPerMs: number | null
  /** The a=rtpmap encoding name and clock (and channels), as an SDP names it. */
  readonly rtpmap: string
}

export const CODECS: Readonly<Record<Codec, CodecInfo>> = {
  PCMU: { name: 'PCMU', payloadType: 0, clockPerMs: 8, sampleRate: 8000, ptimes: [10, 20, 30, 40], bytesPerMs: 8, rtpmap: 'PCMU/8000' },
  PCMA: { name: 'PCMA', payloadType: 8, clockPerMs: 8, sampleRate: 8000, ptimes: [10, 20, 30, 40], bytesPerMs: 8, rtpmap: 'PCMA/8000' },
  G722: { name: 'G722', payloadType: 9, clockPerMs: 8, sampleRate: 16000, ptimes: [10, 20, 30, 40], bytesPerMs: 8, rtpmap: 'G722/8000' },
  // RFC 7587 §7: the rtpmap is always opus/48000/2, mono or not.
  opus: { name: 'opus', payloadType: 111, clockPerMs: 48, sampleRate: 48000, ptimes: [10, 20, 40, 60], bytesPerMs: null, rtpmap: 'opus/48000/2' }
}

/**
 * One stored form of a prompt's audio: a G.711 law, G.722, or Opus at one frame duration.
 * Its name is also its file (lowercase) in a library directory and its field in Redis.
 */
export const RENDITIONS = ['PCMU', 'PCMA', 'G722', 'opus-10', 'opus-20', 'opus-40', 'opus-60'] as const
export type Rendition = typeof RENDITIONS[number]

/** Made at every upload; the others (Opus at 10, 40 or 60 ms) at the first play that needs them. */
export const UPLOAD_RENDITIONS: readonly Rendition[] = ['PCMU', 'PCMA', 'G722', 'opus-20']

/** The rendition a play of `codec` at `ptimeMs` slices. */
export function renditionOf (codec: Codec, ptimeMs: Ptime): Rendition {
  return codec === 'opus' ? `opus-${ptimeMs as 10 | 20 | 40 | 60}` : codec
}

/** A rendition's codec, and for Opus its frame duration. */
export function describeRendition (rendition: Rendition): { codec: Codec, frameMs: number | null } {
  if (rendition.startsWith('opus-')) return { codec: 'opus', frameMs: Number(rendition.slice(5)) }
  return { codec: rendition as Codec, frameMs: null }
}

/** The byte that decodes to (near) zero in G.722: ffmpeg decodes a run of 0xFF to samples of ±2. */
const G722_SILENCE = 0xff

/**
 * What libopus sends for digital silence (CELT, fullband, one frame or two or three of 20 ms):
 * its own output for an input of zeros, read with ffprobe -show_data. A decoder plays zeros.
 */
const OPUS_SILENCE: Readonly<Record<number, readonly number[]>> = {
  10: [0xf0, 0xff, 0xfe],
  20: [0xf8, 0xff, 0xfe],
  40: [0xf9, 0xff, 0xfe, 0xff, 0xfe],
  60: [0xfb, 0x03, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe]
}

/** The byte that pads a byte codec's last payload and fills its silence. */
export function silenceByte (codec: Exclude<Codec, 'opus'>): number {
  return codec === 'G722' ? G722_SILENCE : G711[codec].silence
}

/** One packet time of the codec's silence: the payload sent while a play is paused. */
export function silencePayload (codec: Codec, ptimeMs: Ptime): Buffer {
  if (codec === 'opus') return Buffer.from(OPUS_SILENCE[ptimeMs]!)
  return Buffer.alloc(ptimeMs * CODECS[codec].bytesPerMs!, silenceByte(codec))
}

/**
 * A prompt's renditions, each in shared memory: the two G.711 laws always (a prompt's length is
 * theirs), the others once made. Renditions are added, never changed.
 */
export type Renditions = { PCMU: Buffer, PCMA: Buffer } & Partial<Record<Rendition, Buffer>>

/** How many packets a rendition's bytes make at a codec and ptime: a play's length, each prompt's last packet padded. */
export function packetsIn (bytes: Buffer, codec: Codec, ptimeMs: Ptime): number {
  return codec === 'opus' ? countOpus(bytes) : Math.ceil(bytes.length / (ptimeMs * CODECS[codec].bytesPerMs!))
}
