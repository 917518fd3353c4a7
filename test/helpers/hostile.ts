/**
 * The hostile-upload corpus, generated: every class of bad upload the service must refuse,
 * built from the sample prompts and a seeded generator, so that a run is repeatable.
 */
import { sample } from './index.js'

export interface HostileUpload {
  class: string
  name: string
  /** The file name it claims, for multipart. */
  filename: string
  bytes: Buffer
  /** The status and code it must get. */
  status: number
  code: string
}

function seeded (seed: number): () => number {
  let state = seed >>> 0
  return () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state >>> 24 }
}

export function hostileCorpus (): HostileUpload[] {
  const corpus: HostileUpload[] = []
  const add = (klass: string, filename: string, bytes: Buffer, status: number, code: string): void => {
    corpus.push({ class: klass, name: `${klass.replace(/[^a-z0-9]+/gi, '-')}-${corpus.length}`.slice(0, 60), filename, bytes, status, code })
  }
  add('empty body', 'hello.wav', Buffer.alloc(0), 415, 'UNSUPPORTED_MEDIA')
  add('text under an audio name', 'hello.mp3', Buffer.from('This is not audio.\n'.repeat(20)), 415, 'UNSUPPORTED_MEDIA')
  add('HTML error page under an audio name', 'hello.wav', Buffer.from('<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>'), 415, 'UNSUPPORTED_MEDIA')
  add('JSON under an audio name', 'hello.wma', Buffer.from('{"error":"not found"}'), 415, 'UNSUPPORTED_MEDIA')
  add('PNG image under an audio name', 'hello.wav', Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(200)]), 415, 'UNSUPPORTED_MEDIA')
  add('JPEG image under an audio name', 'hello.mp3', Buffer.concat([Buffer.from('ffd8ffe000104a46494600', 'hex'), Buffer.alloc(200)]), 415, 'UNSUPPORTED_MEDIA')
  add('PDF under an audio name', 'hello.wma', Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'), 415, 'UNSUPPORTED_MEDIA')
  const next = seeded(7)
  for (let i = 0; i < 20; i++) {
    const bytes = Buffer.alloc(16 + i * 97)
    for (let j = 0; j < bytes.length; j++) bytes[j] = next()
    add('random bytes', `noise-${i}.wav`, bytes, 415, 'UNSUPPORTED_MEDIA')
  }
  // Cut inside the header, before any audio. Cut inside a chunk, or after a data chunk's
  // header that declares audio: cut short. Cut cleanly between chunks: nothing to decode.
  const wav = sample('welcome').bytes
  for (const at of [12, 36]) add('WAV cut between header chunks', 'cut.wav', wav.subarray(0, at), 422, 'UNDECODABLE_AUDIO')
  for (const at of [20, 40, 44]) add('WAV cut inside its header', 'cut.wav', wav.subarray(0, at), 422, 'TRUNCATED_AUDIO')
  const wma = sample('goodbye').bytes
  for (const at of [16, 30, 100, 400]) add('WMA cut inside its header', 'cut.wma', wma.subarray(0, at), 422, 'TRUNCATED_AUDIO')
  // Cut in the middle of the audio, at many offsets: each container declares more than is there.
  const mp3 = sample('menu').bytes
  for (const [label, bytes, filename] of [['WAV', wav, 'cut.wav'], ['MP3', mp3, 'cut.mp3'], ['WMA', wma, 'cut.wma']] as const) {
    for (const fraction of [0.1, 0.33, 0.5, 0.66, 0.9]) {
      add(`${label} cut in the middle of its audio`, filename, bytes.subarray(0, Math.floor(bytes.length * fraction)), 422, 'TRUNCATED_AUDIO')
    }
  }
  // FLAC, Ogg (Vorbis, Opus) and M4A: cut inside their headers, and in the middle of the audio.
  const flac = sample('hold').bytes
  const vorbis = sample('transfer').bytes
  const opus = sample('voicemail').bytes
  const m4a = sample('hours').bytes
  for (const at of [6, 30]) add('FLAC cut inside its metadata', 'cut.flac', flac.subarray(0, at), 422, 'TRUNCATED_AUDIO')
  for (const at of [10, 40]) add('Ogg cut inside its first page', 'cut.ogg', vorbis.subarray(0, at), 422, 'TRUNCATED_AUDIO')
  for (const at of [12, 40]) add('M4A cut inside its first boxes', 'cut.m4a', m4a.subarray(0, at), 422, 'TRUNCATED_AUDIO')
  for (const [label, bytes, filename] of [['FLAC', flac, 'cut.flac'], ['Ogg Vorbis', vorbis, 'cut.ogg'], ['Ogg Opus', opus, 'cut.opus'], ['M4A', m4a, 'cut.m4a']] as const) {
    for (const fraction of [0.1, 0.5, 0.9]) {
      add(`${label} cut in the middle of its audio`, filename, bytes.subarray(0, Math.floor(bytes.length * fraction) + 37), 422, 'TRUNCATED_AUDIO')
    }
  }
  // Right magic, wrong content: an MP4 video's brands, an Ogg stream of video.
  const video = Buffer.from(m4a)
  video.write('isom', 8, 'latin1')
  for (let at = 16; at + 4 <= video.readUInt32BE(0); at += 4) video.write('avc1', at, 'latin1')
  add('MP4 with video brands under an audio name', 'video.m4a', video, 415, 'UNSUPPORTED_MEDIA')
  const theora = Buffer.from(vorbis)
  theora.write('\x80theora', 27 + theora[26]!, 'latin1')
  add('Ogg Theora under an audio name', 'video.ogg', theora, 415, 'UNSUPPORTED_MEDIA')
  // Headers that claim gigabytes, with a few bytes behind them.
  const huge = Buffer.from(wav.subarray(0, 44))
  huge.writeUInt32LE(0xfffffff0, 4)
  huge.writeUInt32LE(0xffffffd0, 40)
  add('WAV header claiming 4 GB', 'huge.wav', Buffer.concat([huge, Buffer.alloc(64)]), 422, 'TRUNCATED_AUDIO')
  // A container with no audio stream: a WAV of a fmt chunk and nothing else.
  add('WAV with no data chunk', 'nodata.wav', Buffer.concat([wav.subarray(0, 36)]), 422, 'UNDECODABLE_AUDIO')
  return corpus
}

/** Names that must be refused with 400 INVALID_PROMPT_NAME, as they appear in a URL. */
export const HOSTILE_NAMES = ['..', '..%2F..%2Fetc%2Fpasswd', 'a%2Fb', 'nul%00byte', '%C3%A9t%C3%A9', '-leading-dash', 'a'.repeat(65), 'space%20name', '.hidden']
