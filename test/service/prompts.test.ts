import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { buildApp, correlation, referenceDecode, sample, samples, tempDir } from '../helpers/index.js'
import { multipart } from '../helpers/multipart.js'

t.test('PUT raw bytes: 201 then 200, container from the bytes whatever the Content-Type', async t => {
  const app = await buildApp(t, { libraryDir: tempDir(t) })
  for (const s of samples()) {
    // A lying Content-Type on purpose: the bytes decide.
    const res = await app.inject({ method: 'PUT', url: `/v1/prompts/${s.name}`, payload: s.bytes, headers: { 'content-type': 'text/plain' } })
    t.equal(res.statusCode, 201, `${s.filename} created`)
    t.match(res.json(), { name: s.name, source: { container: s.container, filename: null, bytes: s.bytes.length, extensionMismatch: false }, telephony: { sampleRate: 8000 } })
  }
  const again = await app.inject({ method: 'PUT', url: '/v1/prompts/welcome', payload: sample('menu').bytes })
  t.equal(again.statusCode, 200, 'a second PUT replaces')
  t.equal(again.json().source.container, 'mp3', 'and the prompt is now the MP3')
  const noType = await app.inject({ method: 'PUT', url: '/v1/prompts/bare', payload: sample('goodbye').bytes })
  t.equal(noType.statusCode, 201, 'no Content-Type at all (curl -T) is fine')
  const json = await app.inject({ method: 'PUT', url: '/v1/prompts/j', payload: sample('renamed').bytes, headers: { 'content-type': 'application/json' } })
  t.equal(json.statusCode, 201, 'audio sent as application/json is still read as bytes')
  t.equal(json.json().source.container, 'mp3')
})

t.test('POST multipart: name from the part or the file name stem, extensionMismatch when the name lies', async t => {
  const app = await buildApp(t, { libraryDir: tempDir(t) })
  const mp3AsWma = sample('renamed')
  let res = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ file: { bytes: mp3AsWma.bytes, filename: 'hello.wma', type: 'audio/x-ms-wma' } }) })
  t.equal(res.statusCode, 201)
  t.match(res.json(), { name: 'hello', source: { filename: 'hello.wma', container: 'mp3', extensionMismatch: true } }, 'MP3 named hello.wma')
  res = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ file: { bytes: sample('disguised').bytes, filename: 'x.wav' }, name: 'greeting' }) })
  t.match(res.json(), { name: 'greeting', source: { filename: 'x.wav', container: 'wma', extensionMismatch: true } }, 'WMA named .wav, name part after the file')
  res = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ name: 'first', file: { bytes: sample('welcome').bytes, filename: 'welcome.wav' } }) })
  t.match(res.json(), { name: 'first', source: { extensionMismatch: false } }, 'name part before the file')
  res = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ file: { bytes: sample('welcome').bytes, filename: 'hello.wav' } }) })
  t.equal(res.statusCode, 409, 'POST does not replace')
  t.match(res.json(), { code: 'PROMPT_EXISTS', message: /"hello" exists already/ })
  t.equal((await app.inject({ url: '/v1/prompts/hello' })).json().source.container, 'mp3', 'the existing prompt is untouched')
})

t.test('POST refusals: no file part, no usable name, not multipart', async t => {
  const app = await buildApp(t, { libraryDir: tempDir(t) })
  let res = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ name: 'x' }) })
  t.match(res.json(), { statusCode: 400, code: 'MISSING_FILE_PART', message: /no part named "file"/ })
  res = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ file: { bytes: sample('welcome').bytes } }) })
  t.match(res.json(), { statusCode: 400, code: 'INVALID_PROMPT_NAME', message: /add a "name" part/ })
  res = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ file: { bytes: sample('welcome').bytes, filename: 'my greeting!.wav' } }) })
  t.match(res.json(), { statusCode: 400, code: 'INVALID_PROMPT_NAME' }, 'a stem that is no valid name')
  res = await app.inject({ method: 'POST', url: '/v1/prompts', payload: sample('welcome').bytes, headers: { 'content-type': 'audio/wav' } })
  t.match(res.json(), { statusCode: 415, code: 'UNSUPPORTED_CONTENT_TYPE', message: /multipart\/form-data.*PUT/ })
  const list = await app.inject({ url: '/v1/prompts' })
  t.same(list.json(), { prompts: [] }, 'nothing was stored')
})

t.test('bad uploads: 415, 422, 413 and 400, each leaving the library exactly as it was', async t => {
  const dir = tempDir(t)
  const app = await buildApp(t, { libraryDir: dir, maxUploadBytes: 200_000 })
  await app.inject({ method: 'PUT', url: '/v1/prompts/keep', payload: sample('goodbye').bytes })
  const snapshot = (): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).map(String).sort()
  const before = snapshot()
  const listBefore = (await app.inject({ url: '/v1/prompts' })).json()
  const audioBefore = (await app.inject({ url: '/v1/prompts/keep/audio?format=pcmu' })).rawPayload
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(100)])
  const cases: Array<[string, { url: string, payload?: Buffer }, number, string, RegExp]> = [
    ['a PNG named .wav', { url: '/v1/prompts/keep', payload: png }, 415, 'UNSUPPORTED_MEDIA', /PNG image; expected WAV, MP3, WMA, FLAC/],
    ['an empty body', { url: '/v1/prompts/keep' }, 415, 'UNSUPPORTED_MEDIA', /empty/],
    ['random bytes', { url: '/v1/prompts/keep', payload: Buffer.from('0123456789abcdef'.repeat(64), 'hex') }, 415, 'UNSUPPORTED_MEDIA', /not a known audio container/],
    ['a WAV cut after its header', { url: '/v1/prompts/keep', payload: sample('welcome').bytes.subarray(0, 44) }, 422, 'TRUNCATED_AUDIO', /^the WAV file ends inside its "LIST" chunk .*cut short/],
    ['a WAV with no audio', { url: '/v1/prompts/keep', payload: sample('welcome').bytes.subarray(0, 36) }, 422, 'UNDECODABLE_AUDIO', /./],
    ['over the size limit', { url: '/v1/prompts/keep', payload: Buffer.concat([sample('welcome').bytes, Buffer.alloc(200_000)]) }, 413, 'UPLOAD_TOO_LARGE', /larger than 200000 bytes/],
    ['a name with ..', { url: '/v1/prompts/..%2Fetc', payload: sample('welcome').bytes }, 400, 'INVALID_PROMPT_NAME', /not valid/],
    ['a 65-character name', { url: `/v1/prompts/${'a'.repeat(65)}`, payload: sample('welcome').bytes }, 400, 'INVALID_PROMPT_NAME', /1 to 64/]
  ]
  for (const [what, req, status, code, message] of cases) {
    const res = await app.inject({ method: 'PUT', ...req })
    t.equal(res.statusCode, status, `${what}: ${status}`)
    t.match(res.json(), { statusCode: status, code, message }, `${what}: ${code}`)
    t.same(snapshot(), before, `${what}: nothing changed on disk`)
  }
  const big = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ file: { bytes: Buffer.alloc(300_000), filename: 'big.wav' } }) })
  t.match(big.json(), { statusCode: 413, code: 'UPLOAD_TOO_LARGE' }, 'multipart over the limit')
  t.same((await app.inject({ url: '/v1/prompts' })).json(), listBefore, 'the list is as before')
  t.same((await app.inject({ url: '/v1/prompts/keep/audio?format=pcmu' })).rawPayload, audioBefore, 'the prompt the uploads tried to replace still sounds the same')
})

t.test('GET, list and DELETE', async t => {
  const app = await buildApp(t)
  const list = (await app.inject({ url: '/v1/prompts' })).json()
  t.same(list.prompts.map((p: { name: string }) => p.name), ['disguised', 'goodbye', 'hold', 'hours', 'menu', 'renamed', 'transfer', 'voicemail', 'welcome'], 'the sample library, sorted')
  const one = await app.inject({ url: '/v1/prompts/menu' })
  t.match(one.json(), { name: 'menu', source: { container: 'mp3', filename: 'menu.mp3', sampleRate: 22050, channels: 2 } })
  const missing = await app.inject({ url: '/v1/prompts/nope' })
  t.match(missing.json(), { statusCode: 404, code: 'PROMPT_NOT_FOUND', message: /no prompt named "nope"/ })
  t.equal((await app.inject({ method: 'DELETE', url: '/v1/prompts/menu' })).statusCode, 204)
  t.match((await app.inject({ method: 'DELETE', url: '/v1/prompts/menu' })).json(), { statusCode: 404, code: 'PROMPT_NOT_FOUND' })
  t.equal((await app.inject({ url: '/v1/prompts/menu' })).statusCode, 404)
  t.match((await app.inject({ url: '/v1/nothing' })).json(), { statusCode: 404, code: 'NOT_FOUND', message: /no route GET \/v1\/nothing/ })
})

t.test('the preview is what a caller hears: WAV 8 kHz mono 16-bit, and the raw G.711', async t => {
  const app = await buildApp(t)
  const wav = await app.inject({ url: '/v1/prompts/welcome/audio' })
  t.equal(wav.statusCode, 200)
  t.equal(wav.headers['content-type'], 'audio/wav')
  const body = wav.rawPayload
  t.equal(body.toString('latin1', 0, 4), 'RIFF')
  t.equal(body.toString('latin1', 8, 12), 'WAVE')
  t.equal(body.readUInt16LE(20), 1, 'PCM')
  t.equal(body.readUInt16LE(22), 1, 'mono')
  t.equal(body.readUInt32LE(24), 8000, '8 kHz')
  t.equal(body.readUInt16LE(34), 16, '16-bit')
  t.equal(body.readUInt32LE(40), body.length - 44, 'data size in the header')
  const dir = tempDir(t)
  fs.writeFileSync(path.join(dir, 'preview.wav'), body)
  const heard = await referenceDecode(path.join(dir, 'preview.wav'))
  const source = await referenceDecode(sample('welcome').path)
  const c = correlation(source, heard, 40)
  t.ok(c > 0.95, `the preview correlates with the source (${c.toFixed(4)})`)
  for (const [format, type] of [['pcmu', 'audio/PCMU'], ['pcma', 'audio/PCMA']]) {
    const raw = await app.inject({ url: `/v1/prompts/welcome/audio?format=${format}` })
    t.equal(raw.headers['content-type'], type)
    t.equal(raw.rawPayload.length, (body.length - 44) / 2, `${format}: one byte per sample`)
  }
  t.match((await app.inject({ url: '/v1/prompts/welcome/audio?format=ogg' })).json(), { statusCode: 400, code: 'INVALID_REQUEST', message: /format/ })
})

t.test('limits: a prompt longer than allowed is 422, a full transcode queue is 503 with Retry-After', async t => {
  const dir = tempDir(t)
  const app = await buildApp(t, { libraryDir: dir, maxPromptSeconds: 3, maxTranscodes: 1, transcodeQueue: 0 })
  const long = await app.inject({ method: 'PUT', url: '/v1/prompts/long', payload: sample('menu').bytes })
  t.equal(long.statusCode, 422)
  t.match(long.json(), { code: 'PROMPT_TOO_LONG', message: /more than 3 s.*PROMPT_PLAYER_MAX_PROMPT_SECONDS/ })
  t.equal((await app.inject({ url: '/v1/prompts/long' })).statusCode, 404, 'nothing stored')
  t.same(fs.readdirSync(path.join(dir, 'media')), [], 'no media left behind')
  const [a, b] = await Promise.all([
    app.inject({ method: 'PUT', url: '/v1/prompts/a', payload: sample('welcome').bytes }),
    app.inject({ method: 'PUT', url: '/v1/prompts/b', payload: sample('goodbye').bytes })
  ])
  t.same([a!.statusCode, b!.statusCode].sort(), [201, 503], 'one transcodes, the other is turned away')
  const busy = a!.statusCode === 503 ? a! : b!
  t.match(busy.json(), { code: 'TRANSCODER_BUSY', message: /^1 uploads are being received or transcoded, the most at once \(PROMPT_PLAYER_MAX_TRANSCODES \+ PROMPT_PLAYER_TRANSCODE_QUEUE = 1\); retry shortly$/ })
  t.equal(busy.headers['retry-after'], '1')
})

t.test('a transcode queue lets uploads wait their turn', async t => {
  const app = await buildApp(t, { libraryDir: tempDir(t), maxTranscodes: 1, transcodeQueue: 4 })
  const results = await Promise.all(['welcome', 'goodbye', 'renamed'].map(async name => await app.inject({ method: 'PUT', url: `/v1/prompts/${name}`, payload: sample(name).bytes })))
  t.same(results.map(r => r.statusCode), [201, 201, 201], 'all three stored, one after the other')
})
