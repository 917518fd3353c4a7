/**
 * Opus packets out of the Ogg files ffmpeg writes, checked against ffprobe's own reading of the
 * same files (packet count and sizes), and the refusals of files that are not what the
 * renditions need.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { oggOpusFile, oggPackets, opusPacketsOf } from '../../src/library/ogg.js'
import { countOpus, opusPacketMs, packOpus, unpackOpus } from '../../src/common/opus-packets.js'
import { correlation, decodeAt, sample, tempDir } from '../helpers/index.js'

/** ffmpeg encodes the welcome sample to Ogg Opus with these options; ffprobe lists its packets' sizes. */
function encode (dir: string, name: string, options: string[]): { file: Buffer, sizes: number[] } {
  const out = path.join(dir, `${name}.ogg`)
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', sample('welcome').path, '-c:a', 'libopus', ...options, out])
  const probed = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'packet=size', '-of', 'json', out], { encoding: 'utf8' })) as { packets: Array<{ size: string }> }
  const sizes = probed.packets.map(p => Number(p.size))
  return { file: fs.readFileSync(out), sizes }
}

t.test('the packets of an Ogg Opus file are the ones ffprobe reads, at every frame duration', async t => {
  const dir = tempDir(t)
  for (const frameMs of [10, 20, 40, 60]) {
    const { file, sizes } = encode(dir, `mono-${frameMs}`, ['-ac', '1', '-ar', '48000', '-b:a', '32k', '-frame_duration', String(frameMs)])
    const packets = opusPacketsOf(file, frameMs)
    t.same(packets.map(p => p.length), sizes, `${frameMs} ms: ${packets.length} packets, each of the size ffprobe reports`)
    t.ok(packets.every(p => opusPacketMs(p) === frameMs), `${frameMs} ms: each lasts ${frameMs} ms by its TOC`)
    const packed = packOpus(packets)
    t.equal(countOpus(packed), packets.length, 'stored length-prefixed: counted')
    t.same(unpackOpus(packed), packets, 'and cut back into the same packets')
  }
  // A large packet spans lacing values of 255: 256 kbit/s at 60 ms makes them.
  const { file, sizes } = encode(dir, 'large', ['-ac', '1', '-ar', '48000', '-b:a', '256k', '-frame_duration', '60'])
  const large = opusPacketsOf(file, 60)
  t.ok(Math.max(...sizes) > 255, `packets past 255 bytes (${Math.max(...sizes)})`)
  t.same(large.map(p => p.length), sizes, 'joined across lacing values as ffprobe reads them')
})

t.test('refusals: not Ogg, cut short, stereo, another frame duration, a rendition cut short', async t => {
  const dir = tempDir(t)
  const { file } = encode(dir, 'twenty', ['-ac', '1', '-ar', '48000', '-frame_duration', '20'])
  t.throws(() => oggPackets(Buffer.from('RIFF....WAVEfmt ')), /not an Ogg page at byte 0/)
  t.throws(() => oggPackets(file.subarray(0, file.length - 10)), /an Ogg page is cut short/)
  t.throws(() => opusPacketsOf(file, 40), /Opus packet 0 lasts 20 ms, not the 40 ms asked for/)
  const stereo = encode(dir, 'stereo', ['-ac', '2', '-ar', '48000']).file
  t.throws(() => opusPacketsOf(stereo, 20), /the Opus stream has 2 channels; prompts are encoded mono/)
  const vorbis = path.join(dir, 'vorbis.ogg')
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', sample('welcome').path, '-c:a', 'libvorbis', vorbis])
  t.throws(() => opusPacketsOf(fs.readFileSync(vorbis), 20), /does not start with an OpusHead packet/)
  const packed = packOpus([Buffer.from([0xf8, 0xff, 0xfe]), Buffer.from([0xf8, 1, 2, 3])])
  t.throws(() => unpackOpus(packed.subarray(0, packed.length - 1)), /ends inside a packet of 4 bytes/)
  t.throws(() => unpackOpus(packed.subarray(0, 6)), /ends inside a packet's length, at byte 5 of 6/)
  t.ok(Number.isNaN(opusPacketMs(Buffer.alloc(0))), 'an empty packet has no duration')
  t.ok(Number.isNaN(opusPacketMs(Buffer.from([0xfb]))), 'a code 3 packet without its frame count has none')
  // RFC 6716 table 2: SILK 10/20/40/60, hybrid 10/20, CELT 2.5/5/10/20; code 1 and 2 two frames.
  t.same([0, 3, 12, 13, 16, 31].map(config => opusPacketMs(Buffer.from([config << 3]))), [10, 60, 10, 20, 2.5, 20])
  t.equal(opusPacketMs(Buffer.from([(31 << 3) | 1])), 40)
  t.equal(opusPacketMs(Buffer.from([(31 << 3) | 3, 3])), 60)
})

t.test('an Ogg Opus file written of packets as they arrived: ffprobe reads the same packets, ffmpeg decodes the same audio', async t => {
  const dir = tempDir(t)
  const { file } = encode(dir, 'source', ['-ac', '1', '-ar', '48000', '-b:a', '256k', '-frame_duration', '40'])
  const packets = opusPacketsOf(file, 40)
  const written = path.join(dir, 'written.ogg')
  fs.writeFileSync(written, oggOpusFile(packets))
  const probed = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=size', '-of', 'json', written], { encoding: 'utf8' })) as { packets: Array<{ size: string }> }
  t.same(probed.packets.map(p => Number(p.size)), packets.map(p => p.length), 'ffprobe reads each packet whole, those past 255 bytes too')
  // No pre-skip in the written file: its decode starts 312 samples (libopus's delay) earlier.
  const c = correlation(await decodeAt(path.join(dir, 'source.ogg'), 48000), await decodeAt(written, 48000), 400)
  t.ok(c > 0.999, `ffmpeg decodes it to the audio of ffmpeg's own file (${c.toFixed(5)})`)
})
