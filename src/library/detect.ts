import { EngineError } from '../common/errors.js'
import type { CONTAINERS } from '../common/schemas.js'

/**
 * Decides the container from the leading bytes alone: never from a file name, an extension
 * or a Content-Type. Renamed files and extension-less URLs are normal in telephony, and the
 * players that trusted the name (asterisk#463, freeswitch#827) broke on them.
 */
export type Container = typeof CONTAINERS[number]

export interface Detection {
  container: Container
  /** MIME type to hand music-metadata so that it does not guess by itself. */
  mimeType: string
  /** ffmpeg demuxer name (`-f`), so that ffmpeg does not guess either. */
  ffmpegFormat: string
  /** Offset of the first MPEG audio frame (after an ID3v2 tag), 0 for other containers. */
  audioOffset: number
}

/** Extensions people give each container, used only to report a lying name. */
export const CONTAINER_EXTENSIONS: Readonly<Record<Container, readonly string[]>> = {
  wav: ['wav', 'wave'],
  mp3: ['mp3', 'mpga', 'mpeg', 'mp2', 'mpa'],
  wma: ['wma', 'asf', 'wmv'],
  flac: ['flac'],
  ogg: ['ogg', 'oga', 'opus'],
  m4a: ['m4a', 'm4b', 'mp4', 'aac']
}

const SUPPORTED = 'expected WAV, MP3, WMA, FLAC, Ogg (Vorbis or Opus) or M4A (AAC) audio'

// ASF Header Object GUID 75B22630-668E-11CF-A6D9-00AA0062CE6C, as stored (little-endian fields).
const ASF_HEADER_GUID = Buffer.from('3026b2758e66cf11a6d900aa0062ce6c', 'hex')

export function detectContainer (bytes: Uint8Array): Detection {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.length === 0) {
    throw new EngineError('UNSUPPORTED_MEDIA', `the upload is empty; ${SUPPORTED}`)
  }
  if (buf.length >= 12 && buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WAVE') {
    return { container: 'wav', mimeType: 'audio/wav', ffmpegFormat: 'wav', audioOffset: 0 }
  }
  if (buf.length >= 16 && buf.subarray(0, 16).equals(ASF_HEADER_GUID)) {
    return { container: 'wma', mimeType: 'audio/ms-wma', ffmpegFormat: 'asf', audioOffset: 0 }
  }
  if (buf.length >= 4 && buf.toString('latin1', 0, 4) === 'fLaC') {
    return { container: 'flac', mimeType: 'audio/flac', ffmpegFormat: 'flac', audioOffset: 0 }
  }
  if (buf.length >= 4 && buf.toString('latin1', 0, 4) === 'OggS') {
    const codec = oggCodec(buf)
    // Too short to tell the codec: an Ogg file cut inside its first page, which the integrity
    // check refuses as such.
    if (codec === null || codec === 'vorbis' || codec === 'opus') return { container: 'ogg', mimeType: 'audio/ogg', ffmpegFormat: 'ogg', audioOffset: 0 }
    throw new EngineError('UNSUPPORTED_MEDIA', `the bytes are an Ogg stream whose first stream is ${codec}, not Vorbis or Opus audio; ${SUPPORTED}`)
  }
  if (buf.length >= 12 && buf.toString('latin1', 4, 8) === 'ftyp') {
    const brands = mp4Brands(buf)
    if (brands.some(b => AUDIO_BRANDS.has(b))) return { container: 'm4a', mimeType: 'audio/mp4', ffmpegFormat: 'mov', audioOffset: 0 }
    throw new EngineError('UNSUPPORTED_MEDIA', `the bytes are an MP4 file with the brands ${brands.map(b => `"${b.trim()}"`).join(', ')}, none of them an audio brand (M4A, M4B): a video, or another kind of MP4; ${SUPPORTED}`)
  }
  let offset = 0
  if (buf.length >= 10 && buf.toString('latin1', 0, 3) === 'ID3' && buf[3]! < 0xff && buf[4]! < 0xff) {
    // ID3v2 header: "ID3", version (2), flags (1), size as a 28-bit syncsafe integer (4);
    // a footer of 10 more bytes when flag bit 4 is set (ID3v2.4 §3.1).
    const size = ((buf[6]! & 0x7f) << 21) | ((buf[7]! & 0x7f) << 14) | ((buf[8]! & 0x7f) << 7) | (buf[9]! & 0x7f)
    offset = 10 + size + ((buf[5]! & 0x10) !== 0 ? 10 : 0)
    // Some encoders pad between the tag and the first frame.
    while (offset < buf.length && buf[offset] === 0 && offset < 10 + size + 4096) offset++
    // After an ID3 tag, one frame header is evidence enough: the tag says an MP3 follows, and
    // random bytes rarely carry one. The chain of frames is checked for files with no tag. A
    // file cut inside its first frame is then an MP3 cut short (TRUNCATED_AUDIO), not "not audio".
    if (mpegHeaderAt(buf, offset) === null) {
      throw new EngineError('UNSUPPORTED_MEDIA', `the bytes start with an ID3 tag of ${size} bytes, but no MPEG audio frame follows it; ${SUPPORTED}`)
    }
    return { container: 'mp3', mimeType: 'audio/mpeg', ffmpegFormat: 'mp3', audioOffset: offset }
  }
  if (isMpegAudioAt(buf, 0)) {
    return { container: 'mp3', mimeType: 'audio/mpeg', ffmpegFormat: 'mp3', audioOffset: 0 }
  }
  throw new EngineError('UNSUPPORTED_MEDIA', `${describe(buf)}; ${SUPPORTED}`)
}

/**
 * The codec of an Ogg stream's first logical stream, from the first packet of its first page
 * (RFC 3533: a 27-byte page header, a segment table, then the packet; Vorbis I §4.2.1 and RFC
 * 7845 §5.1 for the identification headers).
 */
function oggCodec (buf: Buffer): string | null {
  if (buf.length < 28) return null
  const segments = buf[26]!
  const start = 27 + segments
  if (buf.length < start + 8) return null
  const packet = buf.subarray(start, start + 64)
  if (packet.toString('latin1', 0, 7) === '\x01vorbis') return 'vorbis'
  if (packet.toString('latin1', 0, 8) === 'OpusHead') return 'opus'
  if (packet.toString('latin1', 0, 5) === '\x7fFLAC') return 'FLAC'
  if (packet.toString('latin1', 0, 8) === 'Speex   ') return 'Speex'
  if (packet.toString('latin1', 0, 7) === '\x80theora') return 'Theora video'
  return 'of an unknown codec'
}

/** MP4 brands that say audio only (ISO/IEC 14496-12 §4.3 `ftyp`; Apple's M4A and M4B, Adobe's F4A). */
const AUDIO_BRANDS = new Set(['M4A ', 'M4B ', 'F4A '])

/** The major and compatible brands of an MP4 file's `ftyp` box. */
function mp4Brands (buf: Buffer): string[] {
  const size = Math.min(buf.readUInt32BE(0), buf.length, 256)
  const brands = [buf.toString('latin1', 8, 12)]
  for (let at = 16; at + 4 <= size; at += 4) brands.push(buf.toString('latin1', at, at + 4))
  return brands
}

/** The container an extension names, if any: only to say whether a file name lied. */
export function containerForExtension (filename: string | null | undefined): Container | null {
  if (!filename) return null
  const dot = filename.lastIndexOf('.')
  if (dot < 0) return null
  const ext = filename.slice(dot + 1).toLowerCase()
  for (const [container, exts] of Object.entries(CONTAINER_EXTENSIONS)) {
    if (exts.includes(ext)) return container as Container
  }
  return null
}

/**
 * True when an extension is there and names some other known audio container than the one
 * detected. An unknown or missing extension says nothing, so it cannot lie.
 */
export function extensionMismatch (filename: string | null | undefined, container: Container): boolean {
  if (!filename) return false
  const dot = filename.lastIndexOf('.')
  if (dot < 0) return false
  const named = containerForExtension(filename)
  return named !== container
}

export interface MpegHeader { version: number, layer: number, sampleRate: number, frameLength: number }

// Bitrates in kbit/s by [MPEG-1 ? 0 : 1][layer 1..3][index]; index 0 (free format) and 15 are refused.
const BITRATES: readonly (readonly (readonly number[])[])[] = [
  [[], [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]],
  [[], [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]]
]
const SAMPLE_RATES: Readonly<Record<number, readonly number[]>> = {
  3: [44100, 48000, 32000], // MPEG-1
  2: [22050, 24000, 16000], // MPEG-2
  0: [11025, 12000, 8000] // MPEG-2.5
}

/** Parses an MPEG audio frame header (ISO 11172-3 §2.4.2.3) at `at`, or null. */
export function mpegHeaderAt (buf: Buffer, at: number): MpegHeader | null {
  if (at + 4 > buf.length) return null
  const b1 = buf[at + 1]!
  const b2 = buf[at + 2]!
  if (buf[at] !== 0xff || (b1 & 0xe0) !== 0xe0) return null
  const version = (b1 >> 3) & 3 // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
  const layerBits = (b1 >> 1) & 3 // 0: reserved (AAC ADTS uses it), 1: III, 2: II, 3: I
  const bitrateIndex = b2 >> 4
  const rateIndex = (b2 >> 2) & 3
  if (version === 1 || layerBits === 0 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return null
  const layer = 4 - layerBits
  const sampleRate = SAMPLE_RATES[version]![rateIndex]!
  const bitrate = BITRATES[version === 3 ? 0 : 1]![layer]![bitrateIndex]! * 1000
  const padding = (b2 >> 1) & 1
  let frameLength: number
  if (layer === 1) frameLength = (Math.floor(12 * bitrate / sampleRate) + padding) * 4
  else if (layer === 3 && version !== 3) frameLength = Math.floor(72 * bitrate / sampleRate) + padding
  else frameLength = Math.floor(144 * bitrate / sampleRate) + padding
  return { version, layer, sampleRate, frameLength }
}

/**
 * A frame sync alone is 11 bits and random data hits it often; even two chained headers match
 * by chance about once in 10^5. So a stream counts as MPEG audio only when three frames
 * follow each other exactly, with the same version, layer and rate (or two, when the data
 * ends exactly after the second).
 */
function isMpegAudioAt (buf: Buffer, at: number): boolean {
  const first = mpegHeaderAt(buf, at)
  if (!first) return false
  let frames = 1
  let next = at + first.frameLength
  while (frames < 3) {
    if (next === buf.length) return frames >= 2
    const header = mpegHeaderAt(buf, next)
    if (header === null || header.version !== first.version || header.layer !== first.layer || header.sampleRate !== first.sampleRate) return false
    frames++
    next += header.frameLength
  }
  return true
}

const SIGNATURES: ReadonlyArray<[string, (b: Buffer) => boolean]> = [
  ['a PNG image', b => b.subarray(0, 8).equals(Buffer.from('89504e470d0a1a0a', 'hex'))],
  ['a JPEG image', b => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['a GIF image', b => b.toString('latin1', 0, 4) === 'GIF8'],
  ['a PDF document', b => b.toString('latin1', 0, 5) === '%PDF-'],
  ['a ZIP archive (or an Office document)', b => b.toString('latin1', 0, 4) === 'PK\x03\x04'],
  ['a gzip archive', b => b[0] === 0x1f && b[1] === 0x8b],
  ['an AIFF file (AIFF is not supported yet)', b => b.toString('latin1', 0, 4) === 'FORM' && b.toString('latin1', 8, 11) === 'AIF'],
  ['a RIFF file that is not WAVE (an AVI or WebP?)', b => b.toString('latin1', 0, 4) === 'RIFF'],
  ['AAC in ADTS frames (AAC is not supported yet)', b => b[0] === 0xff && (b[1]! & 0xf6) === 0xf0],
  ['an HTML or XML document', b => /^\s*</.test(b.toString('latin1', 0, 64))],
  ['JSON', b => /^\s*[[{]/.test(b.toString('latin1', 0, 64))]
]

/** Says what the bytes look like, for a message a person can act on. */
export function describe (buf: Buffer): string {
  for (const [what, test] of SIGNATURES) {
    if (test(buf)) return `the bytes start like ${what}`
  }
  const head = buf.subarray(0, 512)
  let printable = 0
  for (const byte of head) {
    if ((byte >= 0x20 && byte < 0x7f) || byte === 0x09 || byte === 0x0a || byte === 0x0d) printable++
  }
  if (printable === head.length) return 'the bytes are plain text'
  const hex = buf.subarray(0, 8).toString('hex').replace(/(..)(?!$)/g, '$1 ')
  return `the bytes (starting ${hex}) are not a known audio container`
}
