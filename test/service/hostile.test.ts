/**
 * The hostile-upload corpus (test/helpers/hostile.ts) against a real app: each upload gets its
 * 4xx with a stable code, and afterwards the library lists exactly what it listed before,
 * nothing extra is on disk (temporary files included), and the prompt the uploads tried to
 * replace still sounds as before. Then a property test over the play request schema.
 */
import fs from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import { buildApp, sample, tempDir } from '../helpers/index.js'
import { HOSTILE_NAMES, hostileCorpus } from '../helpers/hostile.js'
import { multipart } from '../helpers/multipart.js'

t.test('every hostile upload is refused with its code, by PUT and by POST, and loses nothing', async t => {
  const dir = tempDir(t)
  const app = await buildApp(t, { libraryDir: dir })
  await app.inject({ method: 'PUT', url: '/v1/prompts/keep', payload: sample('welcome').bytes })
  const tree = (): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).map(String).sort()
  const before = tree()
  const list = (await app.inject({ url: '/v1/prompts' })).body
  const audio = (await app.inject({ url: '/v1/prompts/keep/audio?format=pcmu' })).rawPayload
  const answers = new Map<string, Set<string>>()
  for (const upload of hostileCorpus()) {
    const put = await app.inject({ method: 'PUT', url: '/v1/prompts/keep', payload: upload.bytes })
    t.equal(put.statusCode, upload.status, `${upload.class} (${upload.bytes.length} bytes) by PUT: ${upload.status}`)
    t.equal(put.json().code, upload.code, `${upload.class} by PUT: ${upload.code}`)
    const post = await app.inject({ method: 'POST', url: '/v1/prompts', ...await multipart({ name: upload.name, file: { bytes: upload.bytes, filename: upload.filename } }) })
    t.equal(post.statusCode, upload.status, `${upload.class} by POST as ${upload.filename}: ${upload.status}`)
    answers.set(upload.class, (answers.get(upload.class) ?? new Set()).add(`${put.statusCode} ${put.json().code}`))
  }
  for (const name of HOSTILE_NAMES) {
    const res = await app.inject({ method: 'PUT', url: `/v1/prompts/${name}`, payload: sample('welcome').bytes })
    t.ok([400, 404].includes(res.statusCode), `name ${name}: ${res.statusCode}`)
    if (res.statusCode === 400) t.equal(res.json().code, 'INVALID_PROMPT_NAME')
  }
  t.same(tree(), before, 'nothing added or left on disk, temporary files included')
  t.equal((await app.inject({ url: '/v1/prompts' })).body, list, 'the library lists exactly what it did')
  t.same((await app.inject({ url: '/v1/prompts/keep/audio?format=pcmu' })).rawPayload, audio, 'the prompt they tried to replace is unchanged')
  t.comment([...answers].map(([k, v]) => `${k}: ${[...v].join(', ')}`).join('\n'))
})

t.test('property: any JSON body to POST /v1/plays gets a 4xx or 201, never a 5xx or a hang', async t => {
  // Loopback only: generated addresses may fall in the private ranges the default admits, and
  // tests send to 127.0.0.0/8 and ::1 alone.
  const app = await buildApp(t, { targets: { allow: ['127.0.0.0/8', '::1/128'] } })
  const body = fc.oneof(
    fc.anything(),
    fc.record({
      target: fc.oneof(fc.record({ host: fc.oneof(fc.constant('127.0.0.1'), fc.ipV4(), fc.ipV6(), fc.string()), port: fc.oneof(fc.integer(), fc.double(), fc.string()) }), fc.anything()),
      prompts: fc.oneof(fc.array(fc.oneof(fc.constant('welcome'), fc.string())), fc.anything()),
      codec: fc.oneof(fc.constant('PCMU'), fc.constant('PCMA'), fc.string()),
      ptimeMs: fc.oneof(fc.constantFrom(10, 20, 30, 40), fc.integer()),
      ssrc: fc.oneof(fc.integer(), fc.double())
    }, { requiredKeys: [] })
  )
  const started: string[] = []
  await fc.assert(fc.asyncProperty(body, async value => {
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: JSON.stringify(value) ?? 'null', headers: { 'content-type': 'application/json' } })
    if (res.statusCode === 201) {
      // Only loopback targets pass here; stop it at once.
      started.push(res.json().id)
      await app.inject({ method: 'DELETE', url: `/v1/plays/${res.json().id}` })
    }
    return res.statusCode === 201 || (res.statusCode >= 400 && res.statusCode < 500 && typeof res.json().code === 'string')
  }), { numRuns: 300, seed: 42 })
  t.pass(`300 bodies, every one answered 201 or 4xx with a code (${started.length} started and stopped)`)
})
