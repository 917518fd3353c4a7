/**
 * Where plays may send. Only the policy is asked here: nothing is sent to any of these
 * addresses (the tests send only to 127.0.0.1 and ::1).
 */
import t from 'tap'
import { ENGINE_DEFAULTS } from '../../src/common/defaults.js'
import { TargetPolicy } from '../../src/plays/target-policy.js'
import { parseCidr } from '../../src/common/networks.js'
import { Receiver, buildApp } from '../helpers/index.js'

const policy = new TargetPolicy({ allow: ENGINE_DEFAULTS.allowedTargets, minPort: 1024 })

function refusal (p: TargetPolicy, host: string, port = 40000): string | null {
  try {
    p.check({ host, port })
    return null
  } catch (err) {
    t.equal((err as { code: string }).code, 'TARGET_NOT_ALLOWED')
    return (err as Error).message
  }
}

t.test('the default admits loopback and the private ranges', async t => {
  for (const host of ['127.0.0.1', '127.9.9.9', '::1', '10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.10', 'fd12:3456::1', '::ffff:192.168.1.10']) {
    t.equal(refusal(policy, host), null, `${host} admitted`)
  }
})

t.test('everything else is refused, naming the rule', async t => {
  const cases: Array<[string, number, RegExp]> = [
    ['8.8.8.8', 40000, /not in targets\.allow \(127\.0\.0\.0\/8, ::1\/128, 10\.0\.0\.0\/8/],
    ['172.32.0.1', 40000, /not in targets\.allow/],
    ['2001:db8::1', 40000, /not in targets\.allow/],
    ['::ffff:8.8.8.8', 40000, /not in targets\.allow/],
    ['224.0.0.1', 40000, /is a multicast address; plays send to it only when targets\.allow names a network inside it/],
    ['239.255.255.250', 40000, /multicast/],
    ['ff02::1', 40000, /multicast/],
    ['255.255.255.255', 40000, /the broadcast address/],
    ['0.0.0.0', 40000, /unspecified/],
    ['::', 40000, /unspecified/],
    ['10.0.0.1', 53, /port 53 is below 1024 \(targets\.minPort\)/],
    ['127.0.0.1', 1023, /below 1024/],
    ['127.0.0.1', 0, /not a UDP port/],
    ['pbx.example', 40000, /not an IPv4 or IPv6 address/]
  ]
  for (const [host, port, message] of cases) t.match(refusal(policy, host, port), message, `${host}:${port} refused`)
})

t.test('multicast only when a network inside it is named; allowing everything does not open it', async t => {
  const open = new TargetPolicy({ allow: ['0.0.0.0/0', '::/0'], minPort: 1 })
  t.equal(refusal(open, '8.8.8.8', 53), null, 'an operator can open everything unicast')
  t.match(refusal(open, '239.1.2.3'), /multicast/, 'but not multicast')
  t.match(refusal(open, '255.255.255.255'), /broadcast/)
  const group = new TargetPolicy({ allow: ['239.1.2.0/24'], minPort: 1024 })
  t.equal(refusal(group, '239.1.2.3'), null, 'a named multicast network is admitted')
  t.match(refusal(group, '239.1.3.3'), /not in targets\.allow/, 'another group is still refused')
})

t.test('CIDRs are parsed strictly', async t => {
  t.match(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' })
  t.match(parseCidr('2001:db8::/32'), { prefix: 32, family: 'ipv6' })
  t.match(parseCidr('192.0.2.7'), { prefix: 32 }, 'a bare address is a network of one')
  t.throws(() => parseCidr('10.0.0.0/x'), { message: /no valid prefix length/ })
  t.throws(() => parseCidr('::1/129'), { message: /\(0-128\)/ })
  t.throws(() => parseCidr('example.com/8'), { message: /not a network/ })
})

t.test('over HTTP: 403 TARGET_NOT_ALLOWED naming the rule, and nothing sent', async t => {
  const app = await buildApp(t, { targets: { allow: ['127.0.0.1/32'] } })
  const receiver = await Receiver.open(t)
  const refused = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '10.9.9.9', port: 40000 }, prompts: ['welcome'] } })
  t.equal(refused.statusCode, 403)
  t.match(refused.json(), { code: 'TARGET_NOT_ALLOWED', message: /10\.9\.9\.9 is not in PROMPT_PLAYER_ALLOWED_TARGETS \(127\.0\.0\.1\/32\)/ })
  const low = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: 514 }, prompts: ['welcome'] } })
  t.match(low.json(), { statusCode: 403, message: /below 1024/ })
  const ok = await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] } })
  t.equal(ok.statusCode, 201, `the allowed network still plays (${ok.body})`)
  await receiver.waitFor(2)
})
