import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Ffmpeg } from '../../src/library/ffmpeg.js'
import { PromptStore } from '../../src/library/prompt-store.js'
import { containerForExtension } from '../../src/library/detect.js'
import { LocalStorage } from '../../src/library/local-storage.js'
import { correlation, referenceDecode, sample, samples, tempDir } from '../helpers/index.js'

const ffmpeg = new Ffmpeg()

/** Everything in a directory, recursively, as relative paths: to prove nothing was left behind. */
function tree (dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map(String).sort()
}

t.test('every sample, stored under a lying or missing name, is transcoded to what ffmpeg hears in the source', async t => {
  const { store } = await PromptStore.open(tempDir(t), ffmpeg)
  for (const s of samples()) {
    const { prompt, created } = await store.put(s.name, s.bytes, { filename: s.filename, replace: true })
    t.equal(created, true)
    t.equal(prompt.info.source.container, s.container, `${s.filename}: container ${s.container}`)
    t.ok(prompt.info.source.sampleRate! > 8000, `${s.filename}: source rate reported (${prompt.info.source.sampleRate})`)
    t.ok(prompt.info.source.channels! >= 1, `${s.filename}: channels reported`)
    t.ok(prompt.info.source.codec, `${s.filename}: codec reported (${prompt.info.source.codec})`)
    const reference = await referenceDecode(s.path)
    const ours = await referenceDecode(prompt.audio.PCMU, 'mulaw')
    const ms = prompt.info.source.durationMs!
    t.ok(Math.abs(ms - reference.length / 8) < 60, `${s.filename}: duration ${ms} ms matches the decode (${reference.length / 8} ms)`)
    t.ok(Math.abs(prompt.audio.PCMU.length - reference.length) <= 8 * 30, `${s.filename}: ${prompt.audio.PCMU.length} µ-law samples for ${reference.length} decoded`)
    t.equal(prompt.audio.PCMA.length, prompt.audio.PCMU.length, 'both laws hold the same samples')
    const c = correlation(reference, ours, 40)
    t.ok(c > 0.95, `${s.filename}: µ-law rendition correlates with the source at ${c.toFixed(4)}`)
    const a = correlation(reference, await referenceDecode(prompt.audio.PCMA, 'alaw'), 40)
    t.ok(a > 0.95, `${s.filename}: A-law rendition correlates with the source at ${a.toFixed(4)}`)
    t.equal(prompt.info.telephony.packets, Math.ceil(prompt.audio.PCMU.length / 160))
    t.equal(prompt.info.telephony.durationMs, prompt.info.telephony.packets * 20)
    t.equal(prompt.info.source.extensionMismatch, containerForExtension(s.filename) !== s.container, `${s.filename}: the name ${prompt.info.source.extensionMismatch ? 'lies' : 'is true'}`)
  }
  const unrelated = correlation(await referenceDecode(sample('welcome').path), await referenceDecode(sample('goodbye').path), 40)
  t.ok(unrelated < 0.5, `two different prompts do not correlate (${unrelated.toFixed(3)}): the check can fail`)
})

t.test('FLAC, Ogg Vorbis, Ogg Opus and M4A under lying names: stored as what they are, the lie reported', async t => {
  const { store } = await PromptStore.open(tempDir(t), ffmpeg)
  const lies: Array<[string, string, string]> = [['hold', 'hold.mp3', 'flac'], ['transfer', 'transfer.wav', 'ogg'], ['voicemail', 'voicemail.m4a', 'ogg'], ['hours', 'hours.wma', 'm4a'], ['hours', 'hours', 'm4a']]
  for (const [name, filename, container] of lies) {
    const { prompt } = await store.put(`${name}-lie`, sample(name).bytes, { filename, replace: true })
    t.equal(prompt.info.source.container, container, `${filename} is ${container}`)
    if (name === 'hours') t.equal(prompt.info.source.channels, 1, 'mono AAC is reported mono (from the codec\'s configuration, not the MP4 sample entry)')
    t.equal(prompt.info.source.extensionMismatch, filename.includes('.'), `${filename}: ${filename.includes('.') ? 'the name lies' : 'no extension, no lie'}`)
    const c = correlation(await referenceDecode(sample(name).path), await referenceDecode(prompt.audio.PCMU, 'mulaw'), 40)
    t.ok(c > 0.95, `${filename}: transcoded to what ffmpeg hears in it (${c.toFixed(4)})`)
  }
})

t.test('the library is read back at startup, and media is shared between names', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, ffmpeg)
  const s = sample('welcome')
  await store.put('one', s.bytes, { filename: 'one.wav', replace: false })
  await store.put('two', s.bytes, { filename: null, replace: false })
  t.equal(fs.readdirSync(path.join(dir, 'media')).length, 1, 'the same bytes are stored once')
  const { store: again, warnings } = await PromptStore.open(dir, ffmpeg)
  t.same(warnings, [])
  t.same(again.list().map(p => p.name), ['one', 'two'])
  t.same(again.get('one')!.audio.PCMU, store.get('one')!.audio.PCMU, 'the audio is the same after a restart')
  t.same(again.get('one')!.info, store.get('one')!.info)
  const sha = store.get('one')!.info.source.sha256
  t.same(fs.readFileSync((again.storage as LocalStorage).sourcePath(sha)), s.bytes, 'the source is kept as uploaded')
  await again.delete('one')
  t.equal(fs.readdirSync(path.join(dir, 'media')).length, 1, 'media kept while "two" uses it')
  await again.delete('two')
  t.same(fs.readdirSync(path.join(dir, 'media')), [], 'media removed with its last prompt')
  t.equal(await again.delete('two'), false, 'deleting twice says so')
})

t.test('rejected uploads leave the library exactly as it was', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, ffmpeg)
  const good = sample('goodbye')
  await store.put('keep', good.bytes, { filename: 'goodbye.wma', replace: false })
  const before = tree(dir)
  const audioBefore = Buffer.from(store.get('keep')!.audio.PCMU)
  const wav = sample('welcome').bytes
  const bad: Array<[string, Buffer, string]> = [
    ['text', Buffer.from('not audio'), 'UNSUPPORTED_MEDIA'],
    ['empty', Buffer.alloc(0), 'UNSUPPORTED_MEDIA'],
    ['a WAV header with its data cut off', wav.subarray(0, 44), 'TRUNCATED_AUDIO'],
    ['an ASF header cut at 30 bytes', good.bytes.subarray(0, 30), 'TRUNCATED_AUDIO'],
    ['a WAV of a fmt chunk and nothing else', wav.subarray(0, 36), 'UNDECODABLE_AUDIO']
  ]
  for (const [what, bytes, code] of bad) {
    await t.rejects(store.put('keep', bytes, { replace: true }), { code }, `${what} is refused with ${code}`)
    t.same(tree(dir), before, `${what}: nothing added or removed on disk`)
    t.same(store.get('keep')!.audio.PCMU, audioBefore, `${what}: the prompt it tried to replace is unchanged`)
  }
  await t.rejects(store.put('bad name!', wav, { replace: true }), { code: 'INVALID_PROMPT_NAME' })
  await t.rejects(store.put('keep', wav, { replace: false }), { code: 'PROMPT_EXISTS' }, 'no replace without asking')
  t.same(store.list().map(p => p.name), ['keep'])
  t.same(tree(dir), before)
})

t.test('two uploads of one name at once: one commits after the other, both whole', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, ffmpeg)
  const results = await Promise.allSettled([
    store.put('race', sample('welcome').bytes, { replace: false }),
    store.put('race', sample('menu').bytes, { replace: false })
  ])
  const fulfilled = results.filter(r => r.status === 'fulfilled')
  t.equal(fulfilled.length, 1, 'exactly one of two creates wins')
  t.match(results.find(r => r.status === 'rejected'), { reason: { code: 'PROMPT_EXISTS' } })
  t.equal(fs.readdirSync(path.join(dir, 'media')).length, 1, 'the loser left no media')
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [], 'and no temporary files')
})

t.test('an interrupted upload leaves nothing a restart would list, and its leftovers are cleaned', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, ffmpeg)
  await store.put('whole', sample('welcome').bytes, { replace: false })
  // What a kill -9 can leave: a half-written staging directory and a media directory whose
  // description was never renamed into place.
  fs.mkdirSync(path.join(dir, '.tmp', 'abc.123'), { recursive: true })
  fs.writeFileSync(path.join(dir, '.tmp', 'abc.123', 'source'), 'partial')
  fs.writeFileSync(path.join(dir, '.tmp', 'half.json.1234'), '{"name":')
  fs.mkdirSync(path.join(dir, 'media', 'f'.repeat(64)))
  const { store: again, warnings } = await PromptStore.open(dir, ffmpeg)
  t.same(warnings, [])
  t.same(again.list().map(p => p.name), ['whole'])
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [], 'staging emptied')
  t.same(fs.readdirSync(path.join(dir, 'media')), [store.get('whole')!.info.source.sha256], 'orphan media collected')
})

t.test('an unreadable description is skipped with a warning, and nothing is deleted', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, ffmpeg)
  await store.put('fine', sample('welcome').bytes, { replace: false })
  await store.put('broken', sample('menu').bytes, { replace: false })
  fs.writeFileSync(path.join(dir, 'broken.json'), '{ not json')
  fs.writeFileSync(path.join(dir, 'other.json'), JSON.stringify({ name: 'someone-else' }))
  const before = tree(dir)
  const { store: again, warnings } = await PromptStore.open(dir, ffmpeg)
  t.same(again.list().map(p => p.name), ['fine'])
  t.same(warnings.map(w => path.basename(w.file)), ['broken.json', 'other.json'])
  t.same(tree(dir), before, 'media of the unreadable entry is kept')
})

t.test('a library that cannot be written: STORAGE_FAILED, and nothing half-written', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, ffmpeg)
  await store.checkWritable()
  // Root ignores permission bits, so make writing fail by replacing .tmp with a file.
  fs.rmSync(path.join(dir, '.tmp'), { recursive: true })
  fs.writeFileSync(path.join(dir, '.tmp'), 'not a directory')
  await t.rejects(store.put('x', sample('welcome').bytes, { replace: false }), { code: 'STORAGE_FAILED', message: /could not write the prompt library/ })
  await t.rejects(store.checkWritable(), 'the readiness check sees it')
  t.same(store.list(), [])
})
