/**
 * SRTP in a pool of two instances on one Redis (real processes): a control of an SRTP play sent
 * to the instance that does not run it is forwarded and works, a sealed # stops it, and no key
 * reaches Redis: not its keys, streams or AOF, not a pub/sub message, not an instance's log.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Redis } from 'ioredis'
import { keyPress } from '../../src/index.js'
import { Receiver, sample, waitUntil } from '../helpers/index.js'
import { RedisServer, startInstance } from '../helpers/cluster.js'
import { json, startPlay } from '../helpers/sse.js'
import { libsrtpSeal } from '../helpers/srtp-judges.js'

t.test('an SRTP play in a pool: forwarded controls work, and no key reaches Redis or a log', async t => {
  const redis = await RedisServer.start(t)
  const monitor = new Redis(redis.url)
  const published: string[] = []
  const subscriber = new Redis(redis.url)
  t.teardown(() => { monitor.disconnect(); subscriber.disconnect() })
  await subscriber.psubscribe('*')
  subscriber.on('pmessage', (_pattern, channel, message) => published.push(`${channel} ${message}`))
  const [p1, p2] = await Promise.all([startInstance(t, redis, 'p1'), startInstance(t, redis, 'p2')])
  t.equal((await fetch(`${p1!.url}/v1/prompts/welcome`, { method: 'PUT', body: new Uint8Array(sample('welcome').bytes) })).status, 201, 'the prompt uploaded to the pool')
  const receiver = await Receiver.open(t)
  const suite = 'AEAD_AES_256_GCM'
  const remoteKey = Buffer.from(Array.from({ length: 44 }, (_, i) => (i * 37 + 11) & 0xff)).toString('base64') + '|2^31|1:1'
  const started = await startPlay(p1!.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'], loop: 0, dtmf: { stopOn: '#' }, srtp: { suite, remoteKey } })
  t.equal(started.status, 201)
  const play = await json(started)
  const localKey: string = play.srtp.localKey
  await receiver.waitFor(5)

  const control = async (operation: string): Promise<any> => await json(await fetch(`${p2!.url}/v1/plays/${play.id as string}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operation }) }))
  t.match(await control('pause'), { id: play.id, instance: 'p1', paused: true, srtp: { suite } }, 'a pause sent to p2 applies on p1')
  t.match(await control('resume'), { paused: false }, 'and a resume')
  const viaP2 = await json(await fetch(`${p2!.url}/v1/plays/${play.id as string}`))
  t.same(viaP2.srtp, { suite }, 'GET on p2 shows the suite, no key')

  const hash = await libsrtpSeal(t, { suite, key: remoteKey, packets: keyPress('#', { ssrc: 9, sequence: 1, timestamp: 1 }) })
  await receiver.send(hash[0]!, play.source.port)
  await waitUntil(async () => (await json(await fetch(`${p2!.url}/v1/plays/${play.id as string}`))).state === 'stopped', 'the sealed # to stop the play')
  t.match(await json(await fetch(`${p2!.url}/v1/plays/${play.id as string}`)), { state: 'stopped', stoppedBy: 'dtmf', received: { digits: '#' } })

  // Everything Redis holds, and every message it passed on.
  const secrets = [localKey.split('|')[0]!, remoteKey.split('|')[0]!]
  for (const key of [...secrets]) secrets.push(Buffer.from(key, 'base64').toString('hex'))
  let everything = published.join('\n')
  for (const key of await monitor.keys('*')) {
    const type = await monitor.type(key)
    if (type === 'string') everything += await monitor.get(key)
    else if (type === 'hash') everything += JSON.stringify(await monitor.hgetall(key))
    else if (type === 'stream') everything += JSON.stringify(await monitor.xrange(key, '-', '+'))
    else if (type === 'list') everything += JSON.stringify(await monitor.lrange(key, 0, -1))
    else if (type === 'set') everything += JSON.stringify(await monitor.smembers(key))
    else if (type === 'zset') everything += JSON.stringify(await monitor.zrange(key, '0', '-1'))
  }
  t.match(everything, play.id, 'Redis holds the play')
  t.ok(published.length > 0, 'and passed messages on')
  for (const file of fs.readdirSync(redis.dir, { recursive: true }) as string[]) {
    const full = path.join(redis.dir, file)
    if (fs.statSync(full).isFile()) everything += fs.readFileSync(full, 'latin1')
  }
  t.notOk(secrets.some(s => everything.includes(s)), 'no key in Redis: keys, streams, pub/sub or the append-only file')
  const logs = [...p1!.run.lines, ...p2!.run.lines].join('\n')
  t.notOk(secrets.some(s => logs.includes(s)), 'no key in either instance\'s log')
})
