import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Receiver, buildApp, engineOf, sample, sampleLibrary, sleep, tempDir } from '../helpers/index.js'

t.test('/healthz answers while the process lives; /readyz says ready with the figures', async t => {
  const app = await buildApp(t)
  t.same((await app.inject({ url: '/healthz' })).json(), { status: 'ok' })
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ready', problems: [], prompts: 9, playsRunning: 0, capacityLeft: 2000 })
})

t.test('/readyz is 503 at capacity, and ready again when a play ends', async t => {
  const app = await buildApp(t, { maxPlays: 1 })
  const receiver = await Receiver.open(t)
  const play = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] } })
  const full = await app.inject({ url: '/readyz' })
  t.equal(full.statusCode, 503)
  t.match(full.json(), { status: 'not ready', problems: ['at capacity: no play can start now'] })
  const refused = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] } })
  t.match(refused.json(), { statusCode: 503, code: 'AT_CAPACITY' })
  t.equal(refused.headers['retry-after'], '1', 'with Retry-After')
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.json().id}` })
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
})

t.test('without a working ffmpeg: /readyz says so, uploads answer 503 saying so, stored prompts still play', async t => {
  const app = await buildApp(t, { ffmpegPath: '/nonexistent/ffmpeg' })
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json().problems, [/cannot run ffmpeg at "\/nonexistent\/ffmpeg".*apt-get install -y ffmpeg/])
  const upload = await app.inject({ method: 'PUT', url: '/v1/prompts/new', payload: sample('welcome').bytes })
  t.match(upload.json(), { statusCode: 503, code: 'FFMPEG_UNAVAILABLE', message: /cannot run ffmpeg/ })
  t.equal((await app.inject({ url: '/v1/prompts/new' })).statusCode, 404, 'nothing stored')
  const receiver = await Receiver.open(t)
  const play = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] } })
  t.equal(play.statusCode, 201, 'a stored prompt plays')
  await receiver.waitFor(3)
})

t.test('a broken ffmpeg (a library missing after an upgrade): /readyz and uploads say so alike, plays go on; repaired, it is seen', async t => {
  const bin = tempDir(t)
  const ffmpeg = path.join(bin, 'ffmpeg')
  fs.writeFileSync(ffmpeg, '#!/bin/sh\necho "ffmpeg: error while loading shared libraries: libavdevice.so.59: cannot open shared object file: No such file or directory" >&2\nexit 127\n', { mode: 0o755 })
  const app = await buildApp(t, { ffmpegPath: ffmpeg })
  const reason = `cannot run ffmpeg at "${ffmpeg}": ffmpeg: error while loading shared libraries: libavdevice.so.59: cannot open shared object file: No such file or directory. Install it (apt-get install -y ffmpeg) or set FFMPEG_PATH`
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json().problems, [reason], 'readiness names the binary and what it said, on one line')
  const upload = await app.inject({ method: 'PUT', url: '/v1/prompts/new', payload: sample('welcome').bytes })
  t.equal(upload.statusCode, 503, 'an upload is not blamed for a broken ffmpeg')
  t.match(upload.json(), { code: 'FFMPEG_UNAVAILABLE', message: reason })
  t.equal((await app.inject({ url: '/v1/prompts/new' })).statusCode, 404, 'nothing stored')
  const receiver = await Receiver.open(t)
  const play = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] } })
  t.equal(play.statusCode, 201, 'a stored prompt plays')
  await receiver.waitFor(3)
  // Repaired while running: the next checks see it, without a restart.
  fs.writeFileSync(ffmpeg, '#!/bin/sh\nexec ffmpeg "$@"\n', { mode: 0o755 })
  await sleep(2100)
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200, 'ready again')
  t.equal((await app.inject({ method: 'PUT', url: '/v1/prompts/new', payload: sample('welcome').bytes })).statusCode, 201, 'uploads work again')
})

t.test('a library that cannot be written: /readyz 503 naming it, uploads 507', async t => {
  const dir = sampleLibrary(t)
  const app = await buildApp(t, { libraryDir: dir })
  fs.rmSync(path.join(dir, '.tmp'), { recursive: true })
  fs.writeFileSync(path.join(dir, '.tmp'), 'in the way')
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json().problems, [new RegExp(`the prompt library ${dir} is not readable and writable`)])
  const upload = await app.inject({ method: 'PUT', url: '/v1/prompts/new', payload: sample('welcome').bytes })
  t.match(upload.json(), { statusCode: 507, code: 'STORAGE_FAILED', message: /could not write the prompt library/ })
  t.equal(engineOf(app).prompts.size, 9)
})
