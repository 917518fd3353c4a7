import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Ffmpeg, parseAudioDetails, storageProblem } from '../../src/library/ffmpeg.js'
import { correlation, referenceDecode, sample, tempDir } from '../helpers/index.js'

t.test('info runs the binary and reports its version', async t => {
  const info = await new Ffmpeg().info()
  t.equal(info.path, 'ffmpeg')
  t.match(info.version, /^\d|^n\d|^[0-9a-z.+~-]+$/i, `a version string (${info.version})`)
})

t.test('a missing ffmpeg is reported as such, with what to do', async t => {
  const missing = new Ffmpeg({ path: '/nonexistent/ffmpeg' })
  await t.rejects(missing.info(), { code: 'FFMPEG_UNAVAILABLE', message: /apt-get install -y ffmpeg.*ffmpegPath/ })
  const dir = tempDir(t)
  await t.rejects(missing.transcode(sample('welcome').path, 'wav', { PCMU: path.join(dir, 'u'), PCMA: path.join(dir, 'a') }), { code: 'FFMPEG_UNAVAILABLE' })
})

t.test('a decoding failure carries ffmpeg\'s own words', async t => {
  const dir = tempDir(t)
  const input = path.join(dir, 'in')
  fs.writeFileSync(input, 'RIFF\x24\0\0\0WAVEjunkjunkjunk')
  const err = await new Ffmpeg().transcode(input, 'wav', { PCMU: path.join(dir, 'u'), PCMA: path.join(dir, 'a') }).catch(e => e)
  t.equal(err.code, 'UNDECODABLE_AUDIO')
  t.match(err.message, /^ffmpeg could not decode the audio: .+/)
  t.match(err.details, { timedOut: false, stderr: /./ }, 'stderr kept for the log')
})

t.test('a run past its time limit is killed and says so', async t => {
  const dir = tempDir(t)
  // A tiny limit: no real decode finishes in 1 ms.
  const err = await new Ffmpeg({ timeoutMs: 1 }).transcode(sample('menu').path, 'mp3', { PCMU: path.join(dir, 'u'), PCMA: path.join(dir, 'a') }).catch(e => e)
  t.match(err, { code: 'UNDECODABLE_AUDIO', message: /did not finish within 1 ms/, details: { timedOut: true } })
})

t.test('decodeG711 gives back the 16-bit audio a caller hears', async t => {
  const dir = tempDir(t)
  const out = { PCMU: path.join(dir, 'u'), PCMA: path.join(dir, 'a') }
  const stream = await new Ffmpeg().transcode(sample('welcome').path, 'wav', out)
  t.match(stream, { sampleRate: 16000, channels: 1 }, 'ffmpeg describes the input stream')
  const ffmpeg = new Ffmpeg()
  for (const codec of ['PCMU', 'PCMA'] as const) {
    const g711 = fs.readFileSync(out[codec])
    const pcm = await ffmpeg.decodeG711(g711, codec)
    t.equal(pcm.length, g711.length * 2, `${codec}: two bytes per sample`)
    const c = correlation(await referenceDecode(sample('welcome').path), new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2), 10)
    t.ok(c > 0.95, `${codec}: decoded audio correlates with the source (${c.toFixed(4)})`)
  }
})

t.test('parseAudioDetails reads ffmpeg\'s stream description', async t => {
  t.same(parseAudioDetails('wmav2 (a[1][0][0] / 0x0161)', ['wmav2', '22050 Hz', 'mono', 'fltp', '32 kb/s']), { codec: 'wmav2', sampleRate: 22050, channels: 1 })
  t.same(parseAudioDetails('mp3', ['44100 Hz', 'stereo']), { codec: 'mp3', sampleRate: 44100, channels: 2 })
  t.same(parseAudioDetails('pcm_s16le', ['48000 Hz', '5.1(side)']), { codec: 'pcm_s16le', sampleRate: 48000, channels: 6 })
  t.same(parseAudioDetails('pcm_s16le', ['8000 Hz', '3 channels']), { codec: 'pcm_s16le', sampleRate: 8000, channels: 3 })
  t.same(parseAudioDetails(undefined, undefined), { codec: null, sampleRate: null, channels: null })
})

t.test('ffmpeg runs at a lower priority than the service (niceness 10 by default)', async t => {
  const dir = tempDir(t)
  // A long input, so that the run lasts long enough to be seen.
  const input = path.join(dir, 'long.wav')
  const seconds = 600
  const header = Buffer.alloc(44)
  const data = seconds * 44100 * 2 * 2
  header.write('RIFF', 0); header.writeUInt32LE(36 + data, 4); header.write('WAVEfmt ', 8)
  header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(2, 22)
  header.writeUInt32LE(44100, 24); header.writeUInt32LE(44100 * 4, 28); header.writeUInt16LE(4, 32); header.writeUInt16LE(16, 34)
  header.write('data', 36); header.writeUInt32LE(data, 40)
  fs.writeFileSync(input, Buffer.concat([header, Buffer.alloc(data, 1)]))
  const nicenessOfChildren = (): number[] => fs.readdirSync('/proc').filter(d => /^\d+$/.test(d)).flatMap(pid => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return stat.includes('(ffmpeg)') && Number(fields[1]) === process.pid ? [Number(fields[16])] : []
    } catch { return [] }
  })
  const seen: number[] = []
  const running = new Ffmpeg().transcode(input, 'wav', { PCMU: path.join(dir, 'u'), PCMA: path.join(dir, 'a') })
  for (let i = 0; i < 100 && seen.length === 0; i++) {
    seen.push(...nicenessOfChildren())
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  await running
  t.same(seen.slice(0, 1), [10], 'the ffmpeg child runs at niceness 10')
})

t.test('a full disk or a file-size limit is a storage problem, not undecodable audio', async t => {
  t.equal(storageProblem('ffmpeg exited with code 1', 'av_interleaved_write_frame(): No space left on device'), 'the disk is full')
  t.equal(storageProblem('ffmpeg exited with code 1', 'Error writing trailer of x: Disk quota exceeded'), 'the disk quota is exceeded')
  t.match(storageProblem('ffmpeg was killed with signal SIGXFSZ', ''), /file-size limit/)
  t.match(storageProblem('ffmpeg exited with code 1', 'x: File too large'), /file-size limit/)
  t.equal(storageProblem('ffmpeg exited with code 1', 'Invalid data found when processing input'), null)
})
