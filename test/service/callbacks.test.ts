/**
 * Where webhooks may go: a callbackUrl outside PROMPT_PLAYER_ALLOWED_CALLBACKS is refused when
 * the play is requested (a literal address) or when the event is delivered (a name, judged on
 * what it resolves to), and a redirect is never followed. Every request here goes to 127.0.0.1:
 * refused addresses are refused before any connection is made, and the only name looked up is
 * localhost, which /etc/hosts answers (no DNS query leaves the machine).
 */
import Fastify from 'fastify'
import t from 'tap'
import { CallbackPolicy, CallbackRefused } from '../../service/callbacks.js'
import { Receiver, buildApp, sleep } from '../helpers/index.js'

async function hookServer (t: Parameters<typeof buildApp>[0], redirectTo = '/'): Promise<{ url: string, port: number, received: Array<{ path: string, type: string }> }> {
  const hook = Fastify()
  const received: Array<{ path: string, type: string }> = []
  hook.post('/*', async (request, reply) => {
    received.push({ path: request.url, type: (request.body as { type: string }).type })
    if (request.url === '/redirect') return await reply.code(307).header('location', redirectTo).send()
    return {}
  })
  const url = await hook.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => hook.close())
  return { url, port: Number(new URL(url).port), received }
}

t.test('a literal address outside the allowlist: 403 CALLBACK_NOT_ALLOWED, and no play starts', async t => {
  const app = await buildApp(t)
  const receiver = await Receiver.open(t)
  const refused = [
    'http://169.254.169.254/latest/meta-data/', // cloud metadata, link-local
    'http://[::ffff:a9fe:a9fe]/', // the same, IPv4-mapped
    'http://2852039166/', // the same, as one number (URL parsing makes it 169.254.169.254)
    'http://8.8.8.8/events', // public
    'https://[fe80::1]/' // IPv6 link-local
  ]
  for (const callbackUrl of refused) {
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], callbackUrl } })
    t.equal(res.statusCode, 403, callbackUrl)
    t.match(res.json(), { code: 'CALLBACK_NOT_ALLOWED', message: /^callbackUrl host \S+ is not in PROMPT_PLAYER_ALLOWED_CALLBACKS \(127\.0\.0\.0\/8, ::1\/128, 10\.0\.0\.0\/8, .*\); webhooks go only to the networks named there$/ })
  }
  for (const callbackUrl of ['ftp://127.0.0.1/x', 'file:///etc/passwd']) {
    const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], callbackUrl } })
    t.equal(res.statusCode, 400, callbackUrl)
    t.match(res.json().message, /^callbackUrl must be an http or https URL/)
  }
  t.same((await app.inject({ url: '/v1/plays' })).json().plays, [], 'no play was started')
  await sleep(100)
  t.equal(receiver.packets.length, 0, 'no packet was sent')
})

t.test('a host name is judged on what it resolves to, at delivery: refused, nothing sent; allowed, delivered', async t => {
  const hook = await hookServer(t)
  const receiver = await Receiver.open(t)
  // localhost is 127.0.0.1 (and ::1): outside an allowlist of 10.0.0.0/8 only.
  const strict = await buildApp(t, { callbacks: ['10.0.0.0/8'], targets: { allow: ['127.0.0.0/8'], minPort: 1024 } })
  const refused = await strict.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], callbackUrl: `http://localhost:${hook.port}/strict` } })
  t.equal(refused.statusCode, 201, 'names are not resolved when the play is requested')
  const open = await buildApp(t, { callbacks: ['127.0.0.0/8'] })
  const allowed = await open.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], callbackUrl: `http://localhost:${hook.port}/open` } })
  t.equal(allowed.statusCode, 201)
  for (let i = 0; i < 100 && hook.received.filter(r => r.path === '/open').length < 2; i++) await sleep(50)
  await sleep(300)
  t.same(hook.received.filter(r => r.path === '/open').map(r => r.type), ['play.started', 'play.finished'], 'the allowed name got both events')
  t.same(hook.received.filter(r => r.path === '/strict'), [], 'the refused name got nothing')
  const count = async (app: typeof strict, outcome: string): Promise<number> => Number(new RegExp(`prompt_player_webhooks_total\\{outcome="${outcome}"\\} (\\d+)`).exec((await app.inject({ url: '/metrics' })).body)?.[1])
  t.equal(await count(strict, 'refused'), 2, '/metrics counts the two refused events')
  t.equal(await count(strict, 'delivered'), 0)
  t.equal(await count(open, 'delivered'), 2, '/metrics counts the two delivered events')
})

t.test('the policy\'s lookup: only allowed addresses come back; none allowed is CallbackRefused', async t => {
  const lookup = async (policy: CallbackPolicy, all: boolean): Promise<unknown> => await new Promise((resolve, reject) => {
    policy.connect('localhost', { all }, (err, address) => { if (err) reject(err); else resolve(address) })
  })
  await t.rejects(lookup(new CallbackPolicy(['10.0.0.0/8']), false), new CallbackRefused('localhost resolves to'), 'refused')
  await t.rejects(lookup(new CallbackPolicy(['10.0.0.0/8']), false), { message: /^localhost resolves to [0-9a-f.:, ]+, not in PROMPT_PLAYER_ALLOWED_CALLBACKS \(10\.0\.0\.0\/8\)$/ })
  t.equal(await lookup(new CallbackPolicy(['127.0.0.0/8']), false), '127.0.0.1')
  t.same(await lookup(new CallbackPolicy(['127.0.0.0/8']), true), [{ address: '127.0.0.1', family: 4 }])
  const everything = new CallbackPolicy(['0.0.0.0/0', '::/0'])
  t.ok(everything.allows('203.0.113.7'), 'an allowlist of everything admits a public address')
  t.notOk(everything.allows('0.0.0.0'), 'but never the unspecified address (it connects to this machine)')
  t.notOk(everything.allows('::'), 'in IPv6 neither')
})

t.test('a redirect is not followed: the webhook is not delivered elsewhere', async t => {
  const elsewhere = await hookServer(t)
  // The hook redirects to the other server; fetch would have POSTed there (307 keeps POST).
  const hook = await hookServer(t, `${elsewhere.url}/stolen`)
  const app = await buildApp(t)
  const receiver = await Receiver.open(t)
  const res = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], callbackUrl: `${hook.url}/redirect` } })
  t.equal(res.statusCode, 201)
  for (let i = 0; i < 100 && hook.received.length < 2; i++) await sleep(50)
  await sleep(300)
  t.same(hook.received.map(r => r.type), ['play.started', 'play.finished'], 'each event reached the hook once (a 3xx is not retried)')
  t.same(elsewhere.received, [], 'nothing reached the address it redirected to')
})
