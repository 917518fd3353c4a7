/**
 * Files cut short: refused with TRUNCATED_AUDIO, saying how much is there, for every container
 * and at many offsets; whole files, and WAVs written by streaming writers (length unknown),
 * are stored.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { EngineError } from '../../src/common/errors.js'
import { checkAsfComplete, checkDecodedLength, checkMpegComplete, checkWavComplete } from '../../src/library/integrity.js'
import { PromptStore } from '../../src/library/prompt-store.js'
import { Ffmpeg } from '../../src/library/ffmpeg.js'
import { wavFile } from '../../src/library/wav.js'
import { sample, tempDir } from '../helpers/index.js'

const run = promisify(execFile)

function refusal (fn: () => void): EngineError | null {
  try {
    fn()
    return null
  } catch (err) {
    return err as EngineError
  }
}

/** One second of 8 kHz 16-bit mono: 16000 bytes of data after a 44-byte header. */
const whole = wavFile(Buffer.alloc(16000, 1), 8000)

t.test('a whole WAV passes; cut anywhere after its header, it is refused saying how much is there', async t => {
  t.equal(refusal(() => checkWavComplete(whole)), null)
  for (const at of [44, 45, 1000, 8044, 15000, 16044 - 321]) {
    const err = refusal(() => checkWavComplete(whole.subarray(0, at)))
    t.equal(err?.code, 'TRUNCATED_AUDIO', `cut at byte ${at}`)
    t.match(err?.message, new RegExp(`^the WAV header declares 16000 bytes of audio but the file holds ${at - 44} \\(\\d\\.\\d\\d of 1\\.00 s\\): the file was cut short .*; upload the whole file$`))
    t.same(err?.details, { declaredBytes: 16000, presentBytes: at - 44 })
  }
  // Less than one 20 ms packet missing: some writers round, and nobody hears it.
  t.equal(refusal(() => checkWavComplete(whole.subarray(0, 16044 - 320))), null, '20 ms (320 bytes at 16 kB/s) short passes')
})

t.test('a WAV cut inside a chunk before its audio, or inside a chunk header, is refused', async t => {
  const inFmt = refusal(() => checkWavComplete(whole.subarray(0, 30)))
  t.match(inFmt, { code: 'TRUNCATED_AUDIO', message: /^the WAV file ends inside its "fmt " chunk \(10 of 16 bytes\), before any audio/ })
  const inHeader = refusal(() => checkWavComplete(whole.subarray(0, 40)))
  t.match(inHeader, { code: 'TRUNCATED_AUDIO', message: /^the WAV file ends inside the header of a chunk, at byte 40/ })
  // Ends cleanly with no data chunk: not cut, empty; ffmpeg has the word (UNDECODABLE_AUDIO).
  t.equal(refusal(() => checkWavComplete(whole.subarray(0, 36))), null)
  t.equal(refusal(() => checkWavComplete(whole.subarray(0, 12))), null)
})

t.test('chunks before the data chunk are walked, odd sizes padded to even', async t => {
  const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([5, 0, 0, 0]), Buffer.from('INFOx'), Buffer.alloc(1)])
  const withList = Buffer.concat([whole.subarray(0, 36), list, whole.subarray(36)])
  t.equal(refusal(() => checkWavComplete(withList)), null, 'a LIST chunk of odd size before the data')
  t.equal(refusal(() => checkWavComplete(withList.subarray(0, withList.length - 4000)))?.code, 'TRUNCATED_AUDIO')
})

t.test('a streaming writer\'s WAV (length 0 or 0xFFFFFFFF) is read to its end and stored', async t => {
  for (const size of [0, 0xffffffff]) {
    const streamed = Buffer.from(whole)
    streamed.writeUInt32LE(size, 40)
    t.equal(refusal(() => checkWavComplete(streamed.subarray(0, 8044))), null, `data length ${size.toString(16)}`)
  }
  // ffmpeg writing WAV to a pipe cannot seek back to fill the lengths in.
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=440:d=2', '-ar', '16000', '-f', 'wav', '-'], { encoding: 'buffer', maxBuffer: 1 << 24 })
  const dataAt = stdout.indexOf('data')
  t.equal(stdout.readUInt32LE(dataAt + 4), 0xffffffff, 'ffmpeg leaves the length unknown')
  const { store } = await PromptStore.open(tempDir(t), new Ffmpeg())
  const { prompt } = await store.put('streamed', stdout, { replace: false })
  t.equal(prompt.info.telephony.durationMs, 2000)
})

t.test('MP3 and WMA decoding clearly short of their declared duration are refused', async t => {
  t.equal(refusal(() => checkDecodedLength('mp3', 10_057, 10_000)), null, 'encoder delay and padding')
  t.equal(refusal(() => checkDecodedLength('mp3', 10_000, 9_651)), null, 'within 250 ms + 1 %')
  t.match(refusal(() => checkDecodedLength('mp3', 10_000, 9_640)), { code: 'TRUNCATED_AUDIO', message: /^the MP3 file declares 10\.0 s of audio but decodes to 9\.64 s: the file was cut short/, details: { declaredMs: 10_000, decodedMs: 9_640 } })
  t.equal(refusal(() => checkDecodedLength('wma', null, 100)), null, 'nothing declared, nothing checked')
  t.equal(refusal(() => checkDecodedLength('wma', 0, 100)), null, 'a live ASF stream declares 0')
  t.equal(refusal(() => checkDecodedLength('wav', 10_000, 100)), null, 'WAV is checked on its bytes instead')
})

t.test('every sample cut at a quarter, a half and three quarters: TRUNCATED_AUDIO through the store, nothing stored', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, new Ffmpeg())
  for (const name of ['welcome', 'menu', 'renamed', 'goodbye', 'disguised', 'hold', 'transfer', 'voicemail', 'hours']) {
    const bytes = sample(name).bytes
    const { prompt } = await store.put(name, bytes, { replace: false })
    t.ok(prompt.info.telephony.durationMs > 1000, `${name} whole is stored (${prompt.info.source.container})`)
    for (const fraction of [0.25, 0.5, 0.75]) {
      // 37 bytes past the fraction: renamed.mp3 (no length header, 104/105-byte frames) happens
      // to have frame boundaries exactly at a quarter and a half, and a cut there is invisible.
      const at = Math.floor(bytes.length * fraction) + 37
      await t.rejects(store.put(name, bytes.subarray(0, at), { replace: true }), { code: 'TRUNCATED_AUDIO', message: /cut short/ }, `${name} (${prompt.info.source.container}) cut at ${fraction * 100} %`)
    }
    t.equal(store.get(name), prompt, `${name} is still the whole one`)
  }
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [], 'nothing left in .tmp')
})

t.test('an MP3 with no length header cut between two frames cannot be told from a whole one: stored', async t => {
  const bytes = sample('renamed').bytes
  t.equal(refusal(() => checkMpegComplete(bytes.subarray(0, 3239), 0)), null, 'renamed.mp3 cut after its 31st frame')
  t.match(refusal(() => checkMpegComplete(bytes.subarray(0, 3240), 0)), { code: 'TRUNCATED_AUDIO', message: /^the MP3 file ends inside the header of audio frame 32: the file was cut short/ })
  t.match(refusal(() => checkMpegComplete(bytes.subarray(0, 3250), 0)), { code: 'TRUNCATED_AUDIO', message: /^the MP3 file ends inside audio frame 32 \(11 of its 10[45] bytes\)/ })
  t.equal(refusal(() => checkMpegComplete(Buffer.concat([bytes, Buffer.from('TAG'), Buffer.alloc(125)]), 0)), null, 'an ID3v1 tag after the frames ends the walk')
})

t.test('a WMA (ASF) is checked against the sizes its header and data objects declare', async t => {
  const wma = sample('goodbye').bytes
  t.equal(refusal(() => checkAsfComplete(wma)), null, 'the whole file passes')
  const headerSize = Number(wma.readBigUInt64LE(16))
  const dataSize = Number(wma.readBigUInt64LE(headerSize + 16))
  t.ok(headerSize + dataSize <= wma.length, `header ${headerSize} + data ${dataSize} bytes fit in ${wma.length}`)
  t.match(refusal(() => checkAsfComplete(wma.subarray(0, 20))), { code: 'TRUNCATED_AUDIO', message: /^the WMA file ends inside its header, at byte 20/ })
  t.match(refusal(() => checkAsfComplete(wma.subarray(0, 400))), { code: 'TRUNCATED_AUDIO', message: new RegExp(`^the WMA file ends inside its header \\(400 of ${headerSize} bytes\\)`) })
  t.match(refusal(() => checkAsfComplete(wma.subarray(0, headerSize + 10))), { code: 'TRUNCATED_AUDIO', message: /ends inside the header of its data object/ })
  const half = refusal(() => checkAsfComplete(wma.subarray(0, headerSize + Math.floor(dataSize / 2))))
  t.match(half, { code: 'TRUNCATED_AUDIO', message: new RegExp(`^the WMA data object declares ${dataSize} bytes but the file holds ${Math.floor(dataSize / 2)} of them \\(50 %\\)`) })
  t.equal(refusal(() => checkAsfComplete(wma.subarray(0, headerSize))), null, 'no data object at all: left for ffmpeg to call empty')
  const live = Buffer.from(wma)
  live.writeBigUInt64LE(0n, headerSize + 16)
  t.equal(refusal(() => checkAsfComplete(live.subarray(0, headerSize + 1000))), null, 'a data object of size 0 (still being written) is read to the end')
})

t.test('an MP3 cut inside its first frame, after an ID3 tag, is cut short (422), not "not audio" (415)', async t => {
  // ID3v2.3 tag of 20 bytes, then an MPEG-1 Layer III frame header (128 kbit/s, 44.1 kHz: a
  // 417-byte frame) and the file ends 300 bytes in.
  const tag = Buffer.concat([Buffer.from('ID3\x03\0\0\0\0\0\x14', 'latin1'), Buffer.alloc(20, 0x20)])
  const frame = Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x00]), Buffer.alloc(417 - 4, 0x55)])
  const cutFile = Buffer.concat([tag, frame]).subarray(0, 300)
  const { store } = await PromptStore.open(tempDir(t), new Ffmpeg())
  await t.rejects(store.put('cut', cutFile, { replace: false }), { code: 'TRUNCATED_AUDIO', message: /^the MP3 file ends inside audio frame 1 \(270 of its 417 bytes\)/ })
  t.equal(store.size, 0, 'nothing stored')
  // Without a tag, one header and no confirming frame stays "not audio": random bytes hit a sync.
  await t.rejects(store.put('cut', frame.subarray(0, 270), { replace: false }), { code: 'UNSUPPORTED_MEDIA' })
})
