import t from 'tap'
import { buildApp } from '../helpers/index.js'

t.test('with tokens, every /v1 call needs one; health stays open', async t => {
  const app = await buildApp(t, { tokens: ['s3cret', 'other-token'] })
  const missing = await app.inject({ url: '/v1/prompts' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="prompt-player"')
  t.match(missing.json(), { code: 'MISSING_TOKEN', message: /Authorization: Bearer <token>/ })
  const wrong = await app.inject({ url: '/v1/plays', headers: { authorization: 'Bearer s3cre' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.headers['www-authenticate'], 'Bearer realm="prompt-player", error="invalid_token"')
  t.match(wrong.json(), { code: 'INVALID_TOKEN' })
  const basic = await app.inject({ url: '/v1/plays', headers: { authorization: 'Basic czNjcmV0' } })
  t.match(basic.json(), { statusCode: 401, code: 'INVALID_TOKEN' }, 'another scheme is no token')
  const upload = await app.inject({ method: 'PUT', url: '/v1/prompts/x', payload: Buffer.from('RIFF') })
  t.equal(upload.statusCode, 401, 'an upload without a token is refused before its body is read')
  for (const token of ['s3cret', 'other-token']) {
    const ok = await app.inject({ url: '/v1/prompts', headers: { authorization: `Bearer ${token}` } })
    t.equal(ok.statusCode, 200, `token ${token} accepted`)
  }
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, '/healthz needs no token')
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200, '/readyz needs no token')
})

t.test('without tokens, /v1 is open (the server allows that on loopback only)', async t => {
  const app = await buildApp(t)
  t.equal((await app.inject({ url: '/v1/prompts' })).statusCode, 200)
})
