import t from 'tap'
import { containerForExtension, describe, detectContainer, extensionMismatch } from '../../src/library/detect.js'
import { EngineError } from '../../src/common/errors.js'
import { samples } from '../helpers/index.js'

t.test('every sample is recognised by its bytes, whatever its file name says', async t => {
  const all = samples()
  t.ok(all.some(s => s.filename.endsWith('.wma') && s.container === 'mp3'), 'an MP3 named .wma is among the samples')
  t.ok(all.some(s => s.filename.endsWith('.wav') && s.container === 'wma'), 'a WMA named .wav is among the samples')
  for (const s of all) {
    t.equal(detectContainer(s.bytes).container, s.container, `${s.filename} is ${s.container}`)
  }
})

t.test('an MP3 with an ID3v2 tag: the audio offset skips the tag', async t => {
  const menu = samples().find(s => s.name === 'menu')!
  t.equal(menu.bytes.toString('latin1', 0, 3), 'ID3', 'the sample starts with an ID3 tag')
  const d = detectContainer(menu.bytes)
  t.equal(d.container, 'mp3')
  t.ok(d.audioOffset > 10, 'audio starts after the tag')
  t.equal(menu.bytes[d.audioOffset], 0xff, 'a frame sync at the audio offset')
})

/** An Ogg page whose first packet starts with `packet` (RFC 3533 §6). */
function oggPage (packet: string): Buffer {
  const body = Buffer.from(packet.padEnd(30, '\0'), 'latin1')
  const header = Buffer.alloc(28)
  header.write('OggS', 0, 'latin1')
  header[5] = 0x02 // beginning of stream
  header[26] = 1
  header[27] = body.length
  return Buffer.concat([header, body])
}

/** An MP4 `ftyp` box with a major brand and compatible brands, then an empty `moov`. */
function ftyp (major: string, compatible: string[]): Buffer {
  const box = Buffer.alloc(16 + 4 * compatible.length)
  box.writeUInt32BE(box.length, 0)
  box.write('ftyp', 4, 'latin1')
  box.write(major, 8, 'latin1')
  compatible.forEach((brand, i) => box.write(brand, 16 + 4 * i, 'latin1'))
  return Buffer.concat([box, Buffer.from('\0\0\0\x08moov', 'latin1')])
}

t.test('FLAC, Ogg Vorbis and Opus, and M4A are told from their bytes; an M4A brand may be a compatible one', async t => {
  t.match(detectContainer(Buffer.from('fLaC\0\0\0\x22', 'latin1')), { container: 'flac', ffmpegFormat: 'flac', mimeType: 'audio/flac' })
  t.match(detectContainer(oggPage('\x01vorbis')), { container: 'ogg', ffmpegFormat: 'ogg' })
  t.match(detectContainer(oggPage('OpusHead')), { container: 'ogg', ffmpegFormat: 'ogg' })
  t.match(detectContainer(Buffer.from('OggS\0\x02', 'latin1')), { container: 'ogg' }, 'an Ogg file too short to tell its codec is Ogg, left to the integrity check (cut)')
  t.match(detectContainer(ftyp('M4A ', ['M4A ', 'isom'])), { container: 'm4a', ffmpegFormat: 'mov', mimeType: 'audio/mp4' })
  t.match(detectContainer(ftyp('mp42', ['isom', 'M4A '])), { container: 'm4a' }, 'M4A among the compatible brands')
  t.match(detectContainer(ftyp('M4B ', [])), { container: 'm4a' }, 'an audiobook')
})

function refused (bytes: Uint8Array): EngineError {
  try {
    detectContainer(bytes)
  } catch (err) {
    return err as EngineError
  }
  throw new Error('accepted')
}

t.test('non-audio is refused with UNSUPPORTED_MEDIA and says what it looks like', async t => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['empty', Buffer.alloc(0), /empty/],
    ['PNG', Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(32)]), /PNG image/],
    ['JPEG', Buffer.from('ffd8ffe000104a464946', 'hex'), /JPEG/],
    ['PDF', Buffer.from('%PDF-1.7\n'), /PDF/],
    ['HTML error page', Buffer.from('<!doctype html><h1>502 Bad Gateway</h1>'), /HTML/],
    ['JSON', Buffer.from('{"error":"nope"}'), /JSON/],
    ['text', Buffer.from('hello world\n'), /plain text/],
    ['Ogg Theora (video)', oggPage('\x80theora'), /Ogg stream whose first stream is Theora video, not Vorbis or Opus/],
    ['Ogg Speex', oggPage('Speex   1.2'), /Speex/],
    ['an MP4 video', ftyp('isom', ['isom', 'iso2', 'avc1', 'mp41']), /MP4 file with the brands "isom", "isom", "iso2", "avc1", "mp41", none of them an audio brand/],
    ['a QuickTime movie', ftyp('qt  ', ['qt  ']), /"qt"/],
    ['AVI', Buffer.from('RIFF\0\0\0\0AVI LIST'), /not WAVE/],
    ['ADTS AAC', Buffer.from('fff15080', 'hex'), /AAC/],
    ['random bytes', Buffer.from('00112233445566778899aabbccddeeff', 'hex'), /not a known audio container/]
  ]
  for (const [what, bytes, message] of cases) {
    const err = refused(bytes)
    t.equal(err.code, 'UNSUPPORTED_MEDIA', `${what} is refused`)
    t.match(err.message, message, `${what}: message says what it is`)
    t.match(err.message, /expected WAV, MP3, WMA, FLAC, Ogg \(Vorbis or Opus\) or M4A \(AAC\) audio/, `${what}: message says what is accepted`)
  }
})

t.test('an ID3 tag with no MPEG audio behind it is refused', async t => {
  const tag = Buffer.from('ID3\x03\0\0\0\0\0\x0a' + 'x'.repeat(10) + 'not audio at all', 'latin1')
  t.match(refused(tag), { code: 'UNSUPPORTED_MEDIA', message: /ID3 tag of 10 bytes, but no MPEG audio frame/ })
})

t.test('a lone frame sync is not taken for MP3 unless the next frames confirm it', async t => {
  const mp3 = samples().find(s => s.name === 'renamed')!
  t.equal(detectContainer(mp3.bytes).container, 'mp3', 'the whole file is MP3')
  const header = mp3.bytes.subarray(0, 4)
  t.equal(refused(Buffer.concat([header, Buffer.alloc(2000, 0x41)])).code, 'UNSUPPORTED_MEDIA', 'one header followed by garbage is refused')
  t.equal(refused(header).code, 'UNSUPPORTED_MEDIA', 'a header alone is refused')
})

t.test('random data is never mistaken for audio (seeded sweep)', async t => {
  let seed = 42
  const next = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24 }
  let accepted = 0
  for (let i = 0; i < 20000; i++) {
    const bytes = Buffer.alloc(64 + (i % 200))
    for (let j = 0; j < bytes.length; j++) bytes[j] = next()
    if (i % 3 === 0) { bytes[0] = 0xff; bytes[1] = 0xfb } // a plausible MPEG-1 Layer III sync
    try { detectContainer(bytes); accepted++ } catch (err) { if ((err as EngineError).code !== 'UNSUPPORTED_MEDIA') throw err }
  }
  t.equal(accepted, 0, 'no random buffer was accepted')
})

t.test('extensions: reported only to say whether the name lied', async t => {
  t.equal(containerForExtension('hello.WMA'), 'wma')
  t.equal(containerForExtension('hello'), null)
  t.equal(containerForExtension(null), null)
  t.equal(extensionMismatch('hello.wma', 'mp3'), true, 'an MP3 named .wma lies')
  t.equal(extensionMismatch('hello.mp3', 'mp3'), false)
  t.equal(extensionMismatch('hello.txt', 'wav'), true, 'a WAV named .txt lies too')
  t.equal(extensionMismatch('hello', 'wav'), false, 'no extension cannot lie')
  t.equal(extensionMismatch(null, 'wav'), false, 'no name cannot lie')
})

t.test('describe names gzip, GIF, ZIP and AIFF', async t => {
  t.match(describe(Buffer.from('1f8b0800', 'hex')), /gzip/)
  t.match(describe(Buffer.from('GIF89a')), /GIF/)
  t.match(describe(Buffer.from('PK\x03\x04')), /ZIP/)
  t.match(describe(Buffer.from('FORM\0\0\0\0AIFF')), /AIFF/)
})
