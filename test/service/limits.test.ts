/**
 * Request limits over real sockets: a rate limit per client, and an upload that trickles in
 * too slowly to finish within the request timeout.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { wavFile } from '../../src/library/wav.js'
import { ROOT, Receiver, buildApp, engineOf, sleep, tempDir } from '../helpers/index.js'
import { multipart } from '../helpers/multipart.js'

t.test('past the rate limit: 429 RATE_LIMITED with Retry-After; health checks are not limited', async t => {
  const app = await buildApp(t, { rateLimit: 5 })
  const codes: number[] = []
  for (let i = 0; i < 8; i++) codes.push((await app.inject({ url: '/v1/prompts' })).statusCode)
  t.same(codes, [200, 200, 200, 200, 200, 429, 429, 429])
  const limited = await app.inject({ url: '/v1/plays' })
  t.match(limited.json(), { statusCode: 429, code: 'RATE_LIMITED', message: /PROMPT_PLAYER_RATE_LIMIT/ })
  t.ok(Number(limited.headers['retry-after']) >= 1, `Retry-After ${limited.headers['retry-after']}`)
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200)
  await sleep(1100)
  t.equal((await app.inject({ url: '/v1/prompts' })).statusCode, 200, 'allowed again after the window')
})

t.test('an upload that trickles in is cut off by the request timeout and leaves nothing', async t => {
  const dir = tempDir(t)
  const app = await buildApp(t, { libraryDir: dir, requestTimeout: 1000 })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const port = Number(new URL(address).port)
  const socket = net.connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', chunk => { answer += chunk.toString() })
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))
  socket.write('PUT /v1/prompts/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nRIFF')
  const started = Date.now()
  const drip = setInterval(() => { if (!socket.destroyed) socket.write('x') }, 200)
  await closed
  clearInterval(drip)
  const took = Date.now() - started
  t.match(answer, /^HTTP\/1\.1 408 Request Timeout/, 'answered 408 Request Timeout')
  t.match(answer, /"code":"REQUEST_TIMEOUT".*PROMPT_PLAYER_REQUEST_TIMEOUT_MS/, 'with a code and what to change')
  t.ok(took < 4000, `the connection was closed after ${took} ms`)
  t.equal(engineOf(app).prompts.get('slow'), undefined, 'no prompt')
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [], 'no temporary file')
  t.same(fs.readdirSync(path.join(dir, 'media')), [], 'no media')
})

t.test('load shedding: while the HTTP thread lags, new calls get 503 OVERLOADED, a stop gets through, plays go on', async t => {
  const app = await buildApp(t, { overload: { maxEventLoopDelayMs: 50, sampleIntervalMs: 100 } })
  const receiver = await Receiver.open(t)
  const play = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] } })).json()
  let shed = null
  let stop = null
  for (let attempt = 0; attempt < 5 && shed === null; attempt++) {
    await sleep(150)
    // Hold the HTTP thread's event loop for 400 ms, as a burst of heavy requests would.
    const until = Date.now() + 400
    while (Date.now() < until) { /* busy */ }
    await sleep(10) // the plugin's sample, due during the hold, runs now and sees the lag
    const res = await app.inject({ url: '/v1/prompts' })
    if (res.statusCode === 503) {
      shed = res
      stop = await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id}` })
    }
  }
  t.ok(shed, 'a request was shed while the loop lagged')
  t.match(shed!.json(), { statusCode: 503, code: 'OVERLOADED', message: /event-loop delay (\d+ ms|longer than a sample interval), limit 50 ms/ })
  t.equal(shed!.headers['retry-after'], '1')
  t.equal(stop!.statusCode, 200, 'the stop got through under the same load')
  t.match(stop!.json(), { state: 'stopped' })
  const packets = await receiver.waitQuiet(300)
  const gaps = packets.slice(1).map((p, i) => p.rtp.sequenceNumber - packets[i]!.rtp.sequenceNumber)
  t.ok(gaps.every(g => g === 1), `no packet lost while the HTTP thread was held (${packets.length} packets in sequence)`)
})

t.test('an upload over the limit, streamed slowly without a length: 413 as soon as the limit is passed, nothing kept', async t => {
  const dir = tempDir(t)
  const app = await buildApp(t, { libraryDir: dir, maxUploadBytes: 200_000 })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const before = fs.readdirSync(dir).sort()
  for (const [how, head] of [
    ['PUT', 'PUT /v1/prompts/big HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['multipart POST', 'POST /v1/prompts HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Type: multipart/form-data; boundary=xyz\r\n\r\n']
  ] as const) {
    const socket = net.connect(Number(new URL(address).port), '127.0.0.1')
    socket.on('error', () => {})
    let answer = ''
    socket.on('data', chunk => { answer += chunk.toString() })
    socket.write(head)
    const chunk = Buffer.alloc(20_000, 0x41)
    const prelude = how === 'PUT' ? Buffer.from('RIFF') : Buffer.from('--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF')
    socket.write(`${prelude.length.toString(16)}\r\n`)
    socket.write(prelude)
    socket.write('\r\n')
    // 20 kB every 50 ms: the limit is passed after about half a second, the whole would take 5 s.
    let sent = prelude.length
    const started = Date.now()
    while (answer === '' && sent < 2_000_000 && !socket.destroyed) {
      socket.write(`${chunk.length.toString(16)}\r\n`)
      socket.write(chunk)
      socket.write('\r\n')
      sent += chunk.length
      await sleep(50)
    }
    const took = Date.now() - started
    t.match(answer, /^HTTP\/1\.1 413 /, `${how}: 413`)
    t.match(answer, /"code":"UPLOAD_TOO_LARGE".*larger than 200000 bytes/, `${how}: with the code and the limit`)
    t.ok(sent < 400_000, `${how}: answered after ${sent} bytes (${took} ms), not at the end of the stream`)
    socket.destroy()
  }
  t.same(fs.readdirSync(dir).sort(), before, 'no description added')
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [], 'no temporary file')
  t.equal(engineOf(app).prompts.size, 0, 'the library is still empty')
})

t.test('uploads are admitted only as far as the transcoder can take them: beyond, 503 before the body is read', async t => {
  const dir = tempDir(t)
  const app = await buildApp(t, { libraryDir: dir, maxTranscodes: 1, transcodeQueue: 1 })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const port = Number(new URL(address).port)
  const open = (name: string): { socket: net.Socket, answer: () => string, closed: Promise<void> } => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    let answer = ''
    socket.on('data', chunk => { answer += chunk.toString() })
    const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))
    // Headers and the first bytes of a 10 MB body, and then nothing: held in memory while it lasts.
    socket.write(`PUT /v1/prompts/${name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\nRIFF`)
    return { socket, answer: () => answer, closed }
  }
  const slow = [open('slow1'), open('slow2')]
  await sleep(200)
  const third = open('third')
  const started = Date.now()
  await third.closed
  const took = Date.now() - started
  t.match(third.answer(), /^HTTP\/1\.1 503 /, 'the third upload at once: 503')
  t.match(third.answer(), /retry-after: 1/i)
  t.match(third.answer(), /connection: close/i, 'and the connection is closed rather than the body read')
  t.match(third.answer(), /"code":"TRANSCODER_BUSY","message":"2 uploads are being received or transcoded, the most at once \(PROMPT_PLAYER_MAX_TRANSCODES \+ PROMPT_PLAYER_TRANSCODE_QUEUE = 2\)/)
  t.ok(took < 2000, `answered in ${took} ms, without its body`)
  t.equal(slow.map(s => s.answer()).join(''), '', 'the two admitted uploads are still being received')
  for (const s of slow) s.socket.destroy()
  await Promise.all(slow.map(s => s.closed))
  await sleep(100)
  const res = await fetch(`${address}/v1/prompts/after`, { method: 'PUT', body: fs.readFileSync(path.join(ROOT, 'prompts', 'media', fs.readdirSync(path.join(ROOT, 'prompts', 'media'))[0]!, 'source')) })
  t.equal(res.status, 201, 'once the slow uploads are gone, an upload is taken again')
  t.same(fs.readdirSync(dir).filter(f => f.endsWith('.json')), ['after.json'], 'only that prompt is stored')
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [], 'no temporary file')
})

t.test('prompts per play and the size of a play request: configurable limits, each with its code', async t => {
  const app = await buildApp(t, { maxPromptsPerPlay: 3, targets: { allow: ['127.0.0.0/8'], minPort: 1024 } })
  const receiver = await Receiver.open(t)
  const ask = async (prompts: string[]): Promise<{ statusCode: number, json: () => any }> => await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts } })
  const three = await ask(['welcome', 'menu', 'goodbye'])
  t.equal(three.statusCode, 201, 'three prompts: the most allowed here')
  await app.inject({ method: 'DELETE', url: `/v1/plays/${three.json().id}` })
  const four = await ask(['welcome', 'menu', 'goodbye', 'welcome'])
  t.equal(four.statusCode, 400)
  t.match(four.json(), { code: 'TOO_MANY_PROMPTS', message: 'a play names at most 3 prompts (PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY); this one names 4' })
  t.match((await ask(Array(1001).fill('welcome'))).json(), { statusCode: 400, code: 'INVALID_REQUEST', message: /prompts must NOT have more than 1000 items/ }, 'past the ceiling the schema says so')
  // By default 100.
  const plain = await buildApp(t)
  const hundredAndOne = await plain.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: Array(101).fill('welcome') } })
  t.match(hundredAndOne.json(), { statusCode: 400, code: 'TOO_MANY_PROMPTS', message: /at most 100 prompts/ })
  // A JSON body is small: 256 KiB at most, answered 413 before it is parsed.
  const huge = await app.inject({ method: 'POST', url: '/v1/plays', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], pad: 'x'.repeat(300_000) }) })
  t.equal(huge.statusCode, 413)
  t.match(huge.json(), { code: 'BODY_TOO_LARGE', message: 'the request body is larger than 262144 bytes, the most this call takes' })
  // Uploads keep their own, larger limit.
  const pcm = Buffer.alloc(16000 * 2 * 10)
  for (let i = 0; i < pcm.length / 2; i++) pcm.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * 440 * i / 16000)), i * 2)
  const big = wavFile(pcm, 16000)
  t.ok(big.length > 262_144, `an upload of ${big.length} bytes`)
  t.equal((await app.inject({ method: 'PUT', url: '/v1/prompts/big', payload: big })).statusCode, 201, 'is taken by PUT')
  const form = await multipart({ file: { bytes: big, filename: 'big2.wav' } })
  t.equal((await app.inject({ method: 'POST', url: '/v1/prompts', ...form })).statusCode, 201, 'and by multipart POST')
})
