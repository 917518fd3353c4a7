/**
 * Prompts from URLs against a real HTTP origin on 127.0.0.1 (node:http) that counts what it is
 * asked: bytes trusted over names and Content-Types, HTTP caching (ETag and max-age, 304,
 * no-store), redirects, the allowed networks, time and size limits, coalesced fetches, the
 * bound of the cache and a restart that keeps it. Every refusal leaves nothing cached.
 */
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { LIBRARY, Receiver, buildApp, engineOf, rtpPorts, sample, sampleLibrary, sleep } from '../helpers/index.js'

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

interface Origin { url: string, gets: (p: string) => number, conditional: (p: string) => number, route: (p: string, h: Handler) => void }

async function origin (t: Parameters<typeof buildApp>[0]): Promise<Origin> {
  const routes = new Map<string, Handler>()
  const gets = new Map<string, number>()
  const conditional = new Map<string, number>()
  const server = http.createServer((req, res) => {
    const p = req.url!.split('?')[0]!
    gets.set(p, (gets.get(p) ?? 0) + 1)
    if (req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined) conditional.set(p, (conditional.get(p) ?? 0) + 1)
    if (req.method !== 'GET') { res.statusCode = 405; res.end(); return }
    const handler = routes.get(p)
    if (handler === undefined) { res.writeHead(404, { 'content-type': 'text/html' }); res.end('<html><body>Not Found</body></html>'); return }
    handler(req, res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const port = (server.address() as { port: number }).port
  return { url: `http://127.0.0.1:${port}`, gets: p => gets.get(p) ?? 0, conditional: p => conditional.get(p) ?? 0, route: (p, h) => routes.set(p, h) }
}

const serve = (bytes: Buffer, headers: http.OutgoingHttpHeaders = {}): Handler => (_req, res) => { res.writeHead(200, { 'content-length': bytes.length, ...headers }); res.end(bytes) }

const FETCH = { allow: ['127.0.0.0/8'], timeoutMs: 3000, maxBytes: 1 << 20, maxRedirects: 5 }

async function play (app: Awaited<ReturnType<typeof buildApp>>, port: number, prompts: unknown[]): Promise<{ statusCode: number, json: () => any }> {
  const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port }, prompts, rtcp: 'off' } })
  if (res.statusCode === 201) await app.inject({ method: 'DELETE', url: `/v1/plays/${res.json().id as string}` })
  return res
}

t.test('bytes, not names: an MP3 at a URL with no extension, a WAV named .mp3 served as text/plain; the caller hears exactly the upload\'s transcode', async t => {
  const o = await origin(t)
  o.route('/signed/abc123', serve(sample('menu').bytes, { 'content-type': 'application/octet-stream' }))
  o.route('/welcome.mp3', serve(sample('welcome').bytes, { 'content-type': 'text/plain' }))
  const app = await buildApp(t, { fetch: FETCH })
  const receiver = await Receiver.open(t)
  const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ url: `${o.url}/signed/abc123` }, 'goodbye', { url: `${o.url}/welcome.mp3` }], rtcp: 'off' } })
  t.equal(res.statusCode, 201, `names and URLs mixed: 201 ${res.statusCode === 201 ? '' : res.body}`)
  const p = res.json()
  t.same(p.prompts, [`${o.url}/signed/abc123`, 'goodbye', `${o.url}/welcome.mp3`], 'Play prompts lists the URLs')
  await receiver.waitQuiet(400, 30_000)
  const heard = Buffer.concat(receiver.packets.map(r => r.raw.subarray(12)))
  const pcmu = (name: string): Buffer => fs.readFileSync(path.join(LIBRARY, 'media', JSON.parse(fs.readFileSync(path.join(LIBRARY, `${name}.json`), 'utf8')).source.sha256, 'pcmu'))
  const menu = pcmu('menu')
  t.ok(heard.subarray(0, menu.length).equals(menu), 'the URL\'s MP3 is heard as its upload is transcoded, byte for byte')
  t.equal(receiver.packets.length, p.durationMs / 20, 'the whole list played')
  t.match(engineOf(app).urls.list().map(e => [e.url, e.container]).sort(), [[`${o.url}/signed/abc123`, 'mp3'], [`${o.url}/welcome.mp3`, 'wav']])
})

t.test('not audio, or an error: refused naming the URL, and nothing cached', async t => {
  const o = await origin(t)
  o.route('/error-page', serve(Buffer.from('<!DOCTYPE html><html><body>Service unavailable</body></html>'), { 'content-type': 'audio/mpeg' }))
  o.route('/json', serve(Buffer.from('{"error":"expired signature"}'), { 'content-type': 'audio/wav' }))
  o.route('/image', serve(Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(100)])))
  o.route('/cut', serve(sample('welcome').bytes.subarray(0, 20000)))
  o.route('/gone', (_req, res) => { res.writeHead(410, { 'content-type': 'text/html' }); res.end('<h1>Gone</h1>') })
  const app = await buildApp(t, { fetch: FETCH })
  const cases: Array<[string, number, string, RegExp]> = [
    ['/error-page', 415, 'UNSUPPORTED_MEDIA', /error-page: the bytes start like an HTML or XML document/],
    ['/json', 415, 'UNSUPPORTED_MEDIA', /JSON/],
    ['/image', 415, 'UNSUPPORTED_MEDIA', /PNG image/],
    ['/cut', 422, 'TRUNCATED_AUDIO', /cut short/],
    ['/gone', 502, 'FETCH_FAILED', /gone could not be fetched: .*answered 410 Gone/],
    ['/missing', 502, 'FETCH_FAILED', /answered 404 Not Found/]
  ]
  for (const [p, status, code, message] of cases) {
    const res = await play(app, 40000, [{ url: `${o.url}${p}` }])
    t.equal(res.statusCode, status, `${p}: ${status}`)
    t.match(res.json(), { code, message }, `${p}: ${code}, naming the URL`)
  }
  t.same(engineOf(app).urls.list(), [], 'nothing was cached')
  t.equal((await play(app, 40000, [{ url: 'ftp://127.0.0.1/x.wav' }])).statusCode, 400, 'ftp is refused by the schema')
})

t.test('HTTP caching: fresh entries play from the cache; stale ones are revalidated, and a 304 fetches nothing; no-store keeps nothing', async t => {
  const o = await origin(t)
  const bytes = sample('goodbye').bytes
  o.route('/etag', (req, res) => {
    if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=1' }); res.end(); return }
    serve(bytes, { etag: '"v1"', 'cache-control': 'max-age=1' })(req, res)
  })
  o.route('/no-store', serve(bytes, { 'cache-control': 'no-store' }))
  const app = await buildApp(t, { fetch: FETCH })
  const url = `${o.url}/etag`
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  t.equal(o.gets('/etag'), 1, 'fresh (max-age=1): the second play did not fetch')
  await sleep(1100)
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  t.equal(o.gets('/etag'), 2, 'stale: revalidated')
  t.equal(o.conditional('/etag'), 1, 'with If-None-Match')
  t.match(engineOf(app).urls.stats, { hits: 1, misses: 1, revalidations: 1 })
  const [entry] = engineOf(app).urls.list()
  t.ok(Date.parse(entry!.validatedAt) > Date.parse(entry!.fetchedAt), 'the entry records its revalidation')
  for (let i = 0; i < 2; i++) t.equal((await play(app, 40000, [{ url: `${o.url}/no-store` }])).statusCode, 201)
  t.equal(o.gets('/no-store'), 2, 'no-store: fetched for each play')
  t.notOk(engineOf(app).urls.list().some(e => e.url.endsWith('/no-store')), 'and never kept')
})

t.test('stale-while-revalidate: a stale entry within its window plays at once, the revalidation runs behind it', async t => {
  const o = await origin(t)
  o.route('/swr', (req, res) => {
    const headers = { etag: '"s1"', 'cache-control': 'max-age=1, stale-while-revalidate=60' }
    if (req.headers['if-none-match'] === '"s1"') { setTimeout(() => { res.writeHead(304, headers); res.end() }, 1500); return }
    serve(sample('welcome').bytes, headers)(req, res)
  })
  const app = await buildApp(t, { fetch: FETCH })
  const url = `${o.url}/swr`
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  await sleep(1100)
  const started = Date.now()
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  t.ok(Date.now() - started < 1000, `the play did not wait for the origin's slow 304 (${Date.now() - started} ms)`)
  for (let i = 0; i < 40 && o.conditional('/swr') === 0; i++) await sleep(50)
  t.equal(o.conditional('/swr'), 1, 'the revalidation went out')
  await sleep(1600)
  t.ok(Date.parse(engineOf(app).urls.list()[0]!.validatedAt) > started, 'and its 304 renewed the entry')
})

t.test('a new body on revalidation replaces the entry; a play already running keeps its audio', async t => {
  const o = await origin(t)
  let version = 1
  o.route('/changing', (req, res) => serve(sample(version === 1 ? 'welcome' : 'goodbye').bytes, { etag: `"v${version}"`, 'cache-control': 'max-age=0' })(req, res))
  const app = await buildApp(t, { fetch: FETCH })
  const receiver = await Receiver.open(t)
  const url = `${o.url}/changing`
  const first = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ url }], rtcp: 'off' } })
  t.equal(first.statusCode, 201)
  version = 2
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  t.not(engineOf(app).urls.list()[0]!.durationMs, 2000, 'the entry is now the new body (goodbye, not welcome)')
  await receiver.waitQuiet(400, 30_000)
  t.equal(receiver.packets.length, 100, 'the running play went on with the audio it started with: welcome, 100 packets')
})

t.test('redirects: followed up to the limit, each hop checked against the allowed networks', async t => {
  const o = await origin(t)
  o.route('/audio', serve(sample('welcome').bytes))
  const redirect = (to: string): Handler => (_req, res) => { res.writeHead(302, { location: to }); res.end() }
  o.route('/r1', redirect('/r2'))
  o.route('/r2', redirect(`${o.url}/audio`))
  for (let i = 0; i < 7; i++) o.route(`/loop${i}`, redirect(`/loop${i + 1}`))
  o.route('/away', redirect('http://10.255.255.1:9/secret.wav'))
  const app = await buildApp(t, { fetch: FETCH })
  t.equal((await play(app, 40000, [{ url: `${o.url}/r1` }])).statusCode, 201, 'two redirects: followed')
  const loop = await play(app, 40000, [{ url: `${o.url}/loop0` }])
  t.match([loop.statusCode, loop.json().message], [502, /more than 5 redirects/])
  const away = await play(app, 40000, [{ url: `${o.url}/away` }])
  t.match([away.statusCode, away.json().code, away.json().message], [403, 'URL_NOT_ALLOWED', /redirected to http:\/\/10\.255\.255\.1:9\/secret\.wav.*not in the allowed networks.*PROMPT_PLAYER_ALLOWED_FETCH/])
  const direct = await play(app, 40000, [{ url: 'http://192.168.255.1:9/x.wav' }])
  t.match([direct.statusCode, direct.json().code], [403, 'URL_NOT_ALLOWED'], 'a literal host outside the list: refused before any connection')
  t.equal(engineOf(app).urls.list().length, 1, 'only the good one is cached')

  // A name is judged by what it resolves to, in the connection's own lookup.
  const strict = await buildApp(t, { fetch: { ...FETCH, allow: ['10.0.0.0/8'] } })
  const byName = await play(strict, 40000, [{ url: `${o.url.replace('127.0.0.1', 'localhost')}/audio` }])
  t.match([byName.statusCode, byName.json().code, byName.json().message], [403, 'URL_NOT_ALLOWED', /localhost resolves to .*127\.0\.0\.1.*none of them in the allowed networks \(10\.0\.0\.0\/8\)/])
  t.equal(o.gets('/audio'), 1, 'no connection was made')
  const allowed = await play(app, 40000, [{ url: `${o.url.replace('127.0.0.1', 'localhost')}/audio` }])
  t.equal(allowed.statusCode, 201, 'the same name, allowed where it resolves to loopback')
})

t.test('time and size limits: a body that trickles past the limit, one larger than the largest prompt', async t => {
  const o = await origin(t)
  o.route('/slow', (_req, res) => {
    res.writeHead(200)
    const timer = setInterval(() => res.write(Buffer.alloc(100)), 200)
    res.on('close', () => clearInterval(timer))
  })
  const big = Buffer.concat([sample('welcome').bytes, Buffer.alloc(200_000)])
  o.route('/big', serve(big))
  o.route('/big-chunked', (_req, res) => { res.writeHead(200); res.end(big) })
  const app = await buildApp(t, { fetch: { ...FETCH, timeoutMs: 1000, maxBytes: 150_000 } })
  const started = Date.now()
  const slow = await play(app, 40000, [{ url: `${o.url}/slow` }])
  t.match([slow.statusCode, slow.json().code, slow.json().message], [504, 'FETCH_TIMEOUT', /did not answer in full within 1000 ms \(PROMPT_PLAYER_FETCH_TIMEOUT_MS\)/])
  t.ok(Date.now() - started < 2500, 'answered at the limit')
  for (const p of ['/big', '/big-chunked']) {
    const res = await play(app, 40000, [{ url: `${o.url}${p}` }])
    t.match([res.statusCode, res.json().message], [502, /larger than 150000 bytes.*PROMPT_PLAYER_MAX_UPLOAD_BYTES/], p)
  }
  t.same(engineOf(app).urls.list(), [])
})

t.test('20 plays of one cold URL at once: one GET', async t => {
  const o = await origin(t)
  o.route('/cold', (req, res) => { setTimeout(() => serve(sample('menu').bytes)(req, res), 200) })
  // Twenty plays start at the same moment, each on its own port: room for them all.
  const app = await buildApp(t, { fetch: FETCH, rtpPorts: rtpPorts(100) })
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await play(app, 40000, [{ url: `${o.url}/cold` }])))
  t.same(answers.map(a => a.statusCode), Array(20).fill(201), answers.filter(a => a.statusCode !== 201).map(a => a.json().message).join('; '))
  t.equal(o.gets('/cold'), 1, 'the origin saw one GET')
})

t.test('the cache\'s bound: least recently used evicted, fetched again when played; a restart keeps the rest', async t => {
  const o = await origin(t)
  for (const name of ['welcome', 'goodbye', 'menu']) o.route(`/${name}`, serve(sample(name).bytes, { 'cache-control': 'max-age=3600' }))
  const libraryDir = sampleLibrary(t)
  // welcome (2.0 s) and goodbye (2.5 s) fit (about 28 KB a second: both laws, G.722 and Opus),
  // menu (4 s) after them does not.
  const fetch = { ...FETCH, cacheBytes: 200_000 }
  const app = await buildApp(t, { libraryDir, fetch })
  for (const name of ['welcome', 'goodbye']) t.equal((await play(app, 40000, [{ url: `${o.url}/${name}` }])).statusCode, 201)
  t.equal((await play(app, 40000, [{ url: `${o.url}/welcome` }])).statusCode, 201, 'welcome used again: goodbye is now the least recent')
  t.equal((await play(app, 40000, [{ url: `${o.url}/menu` }])).statusCode, 201)
  const kept = engineOf(app).urls.list().map(e => e.url.split('/').pop()).sort()
  t.same(kept, ['menu', 'welcome'], 'goodbye was evicted')
  t.ok(engineOf(app).urls.bytes <= 200_000, `the bound holds (${engineOf(app).urls.bytes} bytes)`)
  t.equal((await play(app, 40000, [{ url: `${o.url}/goodbye` }])).statusCode, 201)
  t.equal(o.gets('/goodbye'), 2, 'an evicted entry is fetched again')
  await app.close()

  const again = await buildApp(t, { libraryDir, fetch })
  const before = o.gets('/menu') + o.gets('/welcome') + o.gets('/goodbye')
  const listed = engineOf(again).urls.list().map(e => e.url.split('/').pop()).sort()
  t.ok(listed.length >= 1, `the cache survived the restart: ${listed.join(', ')}`)
  for (const name of listed) t.equal((await play(again, 40000, [{ url: `${o.url}/${name!}` }])).statusCode, 201)
  t.equal(o.gets('/menu') + o.gets('/welcome') + o.gets('/goodbye'), before, 'and plays from it without a fetch')
})

t.test('GET /v1/cache lists the entries; DELETE /v1/cache?url= evicts one, and its next play fetches it again', async t => {
  const o = await origin(t)
  o.route('/a', serve(sample('welcome').bytes, { 'cache-control': 'max-age=3600' }))
  const app = await buildApp(t, { fetch: FETCH })
  const url = `${o.url}/a`
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  const list = (await app.inject({ url: '/v1/cache' })).json()
  t.match(list, { entries: [{ url, container: 'wav', sourceBytes: sample('welcome').bytes.length, durationMs: 2000 }], stats: { misses: 1, hits: 0 } })
  t.equal(list.bytes, list.entries[0].bytes, 'bytes: the audio kept')
  const renditions = engineOf(app).prompts.get('welcome')!.describe().renditions
  const kept = renditions.reduce((n, r) => n + r.bytes, 0)
  t.equal(list.entries[0].bytes, kept, `the renditions of welcome made at the fetch, as the library's own upload made them: ${renditions.map(r => `${r.codec} ${r.bytes}`).join(', ')}`)
  const missing = await app.inject({ method: 'DELETE', url: `/v1/cache?url=${encodeURIComponent(`${o.url}/nope`)}` })
  t.match([missing.statusCode, missing.json().code], [404, 'NOT_CACHED'])
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/cache?url=${encodeURIComponent(url)}` })).statusCode, 204)
  t.same((await app.inject({ url: '/v1/cache' })).json().entries, [])
  t.equal((await play(app, 40000, [{ url }])).statusCode, 201)
  t.equal(o.gets('/a'), 2, 'fetched again after the eviction')
  t.equal((await play(app, 40000, [{ url: `${o.url}/nope` }])).statusCode, 502)
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /prompt_player_url_cache_total\{result="miss"\} 3\n/, 'the metric counts the misses (the refused one too)')
  t.match(metrics, /prompt_player_url_cache_total\{result="refusal"\} 1\n/, 'and the refusal')
  t.match(metrics, new RegExp(`prompt_player_url_cache_bytes ${kept}\\n`), 'and the bytes kept')
})

t.test('URL prompts in G.722 and Opus: the renditions made at the fetch, Opus at another ptime made from the body the cache keeps (or, with no-store, holds for that play)', async t => {
  const o = await origin(t)
  o.route('/kept', serve(sample('welcome').bytes, { 'cache-control': 'max-age=600' }))
  o.route('/once', serve(sample('welcome').bytes, { 'cache-control': 'no-store' }))
  const dir = sampleLibrary(t)
  const app = await buildApp(t, { fetch: FETCH, libraryDir: dir })
  const url = `${o.url}/kept`
  const receiver = await Receiver.open(t)
  const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ url }], codec: 'G722', rtcp: 'off' } })
  t.equal(res.statusCode, 201, 'a URL played in G.722')
  const entry = engineOf(app).urls.list().find(e => e.url === url)!
  const opus40 = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port + 2 }, prompts: [{ url }], codec: 'opus', ptimeMs: 40, rtcp: 'off' } })
  t.equal(opus40.statusCode, 201, `Opus at 40 ms from the cached URL: ${opus40.statusCode === 201 ? '' : opus40.body}`)
  t.equal(o.gets('/kept'), 1, 'made from the body the cache kept: no second fetch')
  const grown = engineOf(app).urls.list().find(e => e.url === url)!
  t.ok(grown.bytes > entry.bytes, `the entry counts the new rendition: ${entry.bytes} then ${grown.bytes} bytes`)
  const media = fs.readdirSync(path.join(dir, '.url-cache')).find(f => f.startsWith('media-'))!
  t.same(fs.readdirSync(path.join(dir, '.url-cache', media)).sort(), ['g722', 'opus-20', 'opus-40', 'pcma', 'pcmu', 'source'], 'kept beside the others, with the body')
  const once = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port + 4 }, prompts: [{ url: `${o.url}/once` }], codec: 'opus', ptimeMs: 60, rtcp: 'off' } })
  t.equal(once.statusCode, 201, `no-store: Opus at 60 ms from the body held for the play: ${once.statusCode === 201 ? '' : once.body}`)
  for (const id of [res.json().id, opus40.json().id, once.json().id]) await app.inject({ method: 'DELETE', url: `/v1/plays/${id as string}` })
})
