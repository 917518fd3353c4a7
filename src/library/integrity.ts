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
 * - FLAC declares its metadata blocks' lengths (checked on the bytes) and its total samples in
 *   STREAMINFO (music-metadata's duration, compared with what ffmpeg decoded).
 * - Ogg is a chain of pages, each saying its length, the last marked end-of-stream (RFC 3533):
 *   a file that ends inside a page, or after a page that is not the last, was cut.
 * - M4A is a chain of boxes, each saying its size (ISO/IEC 14496-12 §4.2): a file that ends
 *   inside one (the audio in `mdat`, or the index in `moov`) was cut; its declared duration
 *   (from `moov`) is compared with what ffmpeg decoded too.
 */
import { EngineError } from '../common/errors.js'
import { mpegHeaderAt, type Container, type Detection } from './detect.js'

/** Throws TRUNCATED_AUDIO when the bytes hold less than their container declares. */
export function checkComplete (bytes: Uint8Array, detection: Detection): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  switch (detection.container) {
    case 'wav': checkWavComplete(buf); break
    case 'wma': checkAsfComplete(buf); break
    case 'mp3': checkMpegComplete(buf, detection.audioOffset); break
    case 'flac': checkFlacComplete(buf); break
    case 'ogg': checkOggComplete(buf); break
    case 'm4a': checkMp4Complete(buf); break
  }
}

/** Throws TRUNCATED_AUDIO when a FLAC file ends inside its metadata blocks, before any audio frame. */
export function checkFlacComplete (buf: Buffer): void {
  let at = 4
  for (;;) {
    if (at + 4 > buf.length) throw cut(`the FLAC file ends inside the header of a metadata block, at byte ${buf.length}, before any audio`)
    const last = (buf[at]! & 0x80) !== 0
    const length = buf.readUIntBE(at + 1, 3)
    if (at + 4 + length > buf.length) throw cut(`the FLAC file ends inside a metadata block (${buf.length - at - 4} of ${length} bytes), before any audio`)
    at += 4 + length
    if (last) break
  }
  if (at === buf.length) throw cut('the FLAC file ends after its metadata, before any audio frame')
}

/**
 * Throws TRUNCATED_AUDIO when an Ogg file ends inside a page, or its last page is not marked
 * end-of-stream (the cut fell between two pages).
 */
export function checkOggComplete (buf: Buffer): void {
  let at = 0
  let pages = 0
  let ended = false
  while (at < buf.length) {
    if (at + 27 > buf.length || buf.toString('latin1', at, at + 4) !== 'OggS') {
      if (at + 27 > buf.length && 'OggS'.startsWith(buf.toString('latin1', at, Math.min(at + 4, buf.length)))) throw cut(`the Ogg file ends inside the header of page ${pages + 1}`, { pages })
      // Not a page where one should start: not a cut; ffmpeg decides what it holds.
      return
    }
    const segments = buf[at + 26]!
    if (at + 27 + segments > buf.length) throw cut(`the Ogg file ends inside the header of page ${pages + 1}`, { pages })
    let body = 0
    for (let i = 0; i < segments; i++) body += buf[at + 27 + i]!
    const end = at + 27 + segments + body
    if (end > buf.length) throw cut(`the Ogg file ends inside page ${pages + 1} (${buf.length - at} of its ${end - at} bytes)`, { pages })
    ended = (buf[at + 5]! & 0x04) !== 0
    pages++
    at = end
  }
  if (!ended) throw cut(`the Ogg file ends after page ${pages}, which is not its last (no end-of-stream page)`, { pages })
}

/** Throws TRUNCATED_AUDIO when an MP4 (M4A) file ends inside one of its top-level boxes. */
export function checkMp4Complete (buf: Buffer): void {
  let at = 0
  let moov = false
  while (at + 8 <= buf.length) {
    let size = buf.readUInt32BE(at)
    const type = buf.toString('latin1', at + 4, at + 8)
    if (size === 1) {
      if (at + 16 > buf.length) throw cut(`the M4A file ends inside the header of its "${printable(type)}" box`)
      size = Number(buf.readBigUInt64BE(at + 8))
    } else if (size === 0) {
      size = buf.length - at // to the end of the file, by definition
    }
    if (size < 8) return // not a box chain this reader understands: ffmpeg decides
    if (at + size > buf.length) throw cut(`the M4A file ends inside its "${printable(type)}" box (${buf.length - at} of ${size} bytes)${type === 'mdat' ? ', in the middle of the audio' : ''}`, { box: type, declaredBytes: size, presentBytes: buf.length - at })
    if (type === 'moov') moov = true
    at += size
  }
  if (at < buf.length) throw cut('the M4A file ends inside the header of a box')
  if (!moov) throw cut('the M4A file has no "moov" box, the index of its audio (it is written last, so the end of the file is missing)')
}

function printable (text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?')
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
