/**
 * Is the file whole? A file cut short (a copy or transfer that stopped, a disk that filled while
 * it was written) still decodes: ffmpeg plays the part that is there, and a caller would hear
 * "press one for sa-". So an upload whose container declares more audio than it holds is
 * refused with TRUNCATED_AUDIO, saying how much is missing.
 *
 * - WAV declares the length of its data chunk: checked on the bytes, before any transcode.
 *   A length of 0 or 0xFFFFFFFF is what streaming writers put when they could not know it
 *   (ffmpeg writing to a pipe does): such a file is read to its end, as players do.
 * - WMA (ASF) declares the size of its header and data objects: checked on the bytes.
 * - MP3 (a Xing/Info or VBRI header's frame count) and WMA (the ASF file properties' play
 *   duration) declare a duration, which music-metadata reads; it is compared with what ffmpeg
 *   decoded, as a second line.
 * - An MP3 without such a header declares nothing, but its frames say how long each is: when
 *   they chain to the end of the file and the last one is cut, the file was cut (unless the cut
 *   fell exactly between two frames, which cannot be told from a whole file).
 */
import { EngineError } from '../common/errors.js'
import { mpegHeaderAt, type Container, type Detection } from './detect.js'

/** Throws TRUNCATED_AUDIO when the bytes hold less than their container declares. */
export function checkComplete (bytes: Uint8Array, detection: Detection): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (detection.container === 'wav') checkWavComplete(buf)
  else if (detection.container === 'wma') checkAsfComplete(buf)
  else checkMpegComplete(buf, detection.audioOffset)
}

/** Unknown length, as streaming WAV writers put it. */
const UNKNOWN = new Set([0, 0xffffffff])

/** Missing audio shorter than one 20 ms packet is not worth a refusal (some writers round). */
const WAV_SLACK_MS = 20

/**
 * Throws TRUNCATED_AUDIO when a WAV file ends before its data chunk does, or inside a chunk
 * before the data chunk. A file that ends cleanly without any data chunk is left for ffmpeg to
 * call undecodable: it was not cut, it holds no audio.
 */
export function checkWavComplete (buf: Buffer): void {
  let at = 12
  let byteRate: number | null = null
  while (at < buf.length) {
    if (at + 8 > buf.length) throw cut(`the WAV file ends inside the header of a chunk, at byte ${buf.length}, before any audio`)
    const id = buf.toString('latin1', at, at + 4)
    const size = buf.readUInt32LE(at + 4)
    const body = at + 8
    if (id === 'data') {
      if (UNKNOWN.has(size)) return
      const present = buf.length - body
      const slack = byteRate === null ? 0 : Math.floor(byteRate * WAV_SLACK_MS / 1000)
      if (present + slack < size) {
        const seconds = byteRate === null || byteRate === 0 ? '' : ` (${fmt(present / byteRate)} of ${fmt(size / byteRate)} s)`
        throw cut(`the WAV header declares ${size} bytes of audio but the file holds ${present}${seconds}`, { declaredBytes: size, presentBytes: present })
      }
      return
    }
    if (body + size > buf.length) {
      throw cut(`the WAV file ends inside its "${id.replace(/[^\x20-\x7e]/g, '?')}" chunk (${buf.length - body} of ${size} bytes), before any audio`)
    }
    if (id === 'fmt ' && size >= 16) byteRate = buf.readUInt32LE(body + 8)
    at = body + size + (size & 1)
  }
}

// ASF Data Object GUID 75B22636-668E-11CF-A6D9-00AA0062CE6C, as stored.
const ASF_DATA_GUID = Buffer.from('3626b2758e66cf11a6d900aa0062ce6c', 'hex')

/**
 * Throws TRUNCATED_AUDIO when an ASF (WMA) file ends inside its header object or before the end
 * its data object declares (ASF spec 3.1 and 5.1: each object starts with a GUID and a 64-bit
 * size). A data object of size 0 (a live stream being written) is read to the end.
 */
export function checkAsfComplete (buf: Buffer): void {
  if (buf.length < 30) throw cut(`the WMA file ends inside its header, at byte ${buf.length}`)
  const headerSize = Number(buf.readBigUInt64LE(16))
  if (headerSize > buf.length) throw cut(`the WMA file ends inside its header (${buf.length} of ${headerSize} bytes), before any audio`)
  if (headerSize + 24 > buf.length) {
    if (headerSize === buf.length) return // no data object at all: nothing to decode, ffmpeg says so
    throw cut('the WMA file ends inside the header of its data object, before any audio')
  }
  if (!buf.subarray(headerSize, headerSize + 16).equals(ASF_DATA_GUID)) return
  const dataSize = Number(buf.readBigUInt64LE(headerSize + 16))
  if (dataSize === 0) return
  const present = buf.length - headerSize
  if (present < dataSize) {
    throw cut(`the WMA data object declares ${dataSize} bytes but the file holds ${present} of them (${Math.floor(100 * present / dataSize)} %)`, { declaredBytes: dataSize, presentBytes: present })
  }
}

/**
 * Throws TRUNCATED_AUDIO when the MPEG frames from `offset` chain up to the end of the file and
 * the last one is incomplete. Anything else after the frames (an ID3v1 or APE tag, junk) ends
 * the walk without a verdict.
 */
export function checkMpegComplete (buf: Buffer, offset: number): void {
  let at = offset
  let frames = 0
  for (;;) {
    const header = mpegHeaderAt(buf, at)
    if (header === null) {
      // One to three bytes of a frame sync and nothing after: cut inside the next frame's header.
      if (frames > 0 && at < buf.length && buf.length - at < 4 && buf[at] === 0xff) {
        throw cut(`the MP3 file ends inside the header of audio frame ${frames + 1}`, { frames, presentBytes: buf.length - at })
      }
      return
    }
    if (at + header.frameLength > buf.length) {
      throw cut(`the MP3 file ends inside audio frame ${frames + 1} (${buf.length - at} of its ${header.frameLength} bytes)`, { frames, frameBytes: header.frameLength, presentBytes: buf.length - at })
    }
    frames++
    at += header.frameLength
  }
}

/**
 * Throws TRUNCATED_AUDIO when an MP3 or WMA decodes to clearly less than its headers declare:
 * more than 250 ms plus 1 % short (encoder delay and padding make MP3s differ by tens of ms).
 */
export function checkDecodedLength (container: Container, declaredMs: number | null, decodedMs: number): void {
  if (container === 'wav' || declaredMs === null || !(declaredMs > 0)) return
  if (decodedMs + 250 + declaredMs / 100 >= declaredMs) return
  throw cut(`the ${container.toUpperCase()} file declares ${fmt(declaredMs / 1000)} s of audio but decodes to ${fmt(decodedMs / 1000)} s`, { declaredMs, decodedMs })
}

function cut (what: string, details?: Record<string, unknown>): EngineError {
  return new EngineError('TRUNCATED_AUDIO', `${what}: the file was cut short (an interrupted copy or transfer?); upload the whole file`, { details })
}

function fmt (seconds: number): string {
  return seconds.toFixed(seconds < 10 ? 2 : 1)
}
