/**
 * The pool's Redis stopped and started again: plays of loaded prompts go on where they run,
 * calls that need Redis answer 503 STORE_UNAVAILABLE, /readyz says why, and when Redis is back
 * everything resumes with no restart; with its append-only file, no prompt is lost.
 */
import t from 'tap'
import { Receiver, sample, sequenceBreaks, sleep } from '../helpers/index.js'
import { RedisServer, startInstance } from '../helpers/cluster.js'
import { follow, json, startPlay, until } from '../helpers/sse.js'

t.test('Redis stopped, then started again', async t => {
  const redis = await RedisServer.start(t)
  const p1 = await startInstance(t, redis, 'p1')
  const p2 = await startInstance(t, redis, 'p2')
  t.equal((await fetch(`${p1.url}/v1/prompts/hello`, { method: 'PUT', body: new Uint8Array(sample('welcome').bytes) })).status, 201)
  await until('hello on p2', async () => (await fetch(`${p2.url}/v1/prompts/hello`)).status === 200)

  // A play that runs through the outage, on p2.
  const longReceiver = await Receiver.open(t)
  const long = await json(await startPlay(p2.url, { target: { host: '127.0.0.1', port: longReceiver.port }, prompts: ['hello'], loop: 0, rtcp: 'off' }))
  await longReceiver.waitFor(5)
  const watch = follow(p1.url)
  t.teardown(() => { watch.stop() })
  await watch.ready

  await redis.stop()
  const stoppedAt = performance.now()

  // Plays of loaded prompts start, run and stop where they run.
  const receiver = await Receiver.open(t)
  const started = await startPlay(p2.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello'] })
  t.equal(started.status, 201, 'a play starts without Redis')
  const play = await json(started)
  await receiver.waitFor(10)
  t.match(await json(await fetch(`${p2.url}/v1/plays/${play.id as string}`)), { state: 'playing', instance: 'p2' }, 'and is answered for where it runs')
  t.match(await json(await fetch(`${p2.url}/v1/plays/${play.id as string}`, { method: 'DELETE' })), { state: 'stopped' }, 'and stops')

  // Calls that need Redis say so.
  const upload = await fetch(`${p1.url}/v1/prompts/second`, { method: 'PUT', body: new Uint8Array(sample('goodbye').bytes) })
  t.equal(upload.status, 503)
  t.equal(upload.headers.get('retry-after'), '1')
  t.match(await json(upload), { code: 'STORE_UNAVAILABLE', message: new RegExp(`^the pool's Redis at redis://127\\.0\\.0\\.1:${redis.port}/0 cannot be reached .*PROMPT_PLAYER_REDIS_URL`) })
  t.match(await json(await fetch(`${p1.url}/v1/plays`)), { code: 'STORE_UNAVAILABLE' }, 'the pool\'s list of plays needs Redis')
  t.match(await json(await fetch(`${p1.url}/v1/prompts/hello`, { method: 'DELETE' })), { code: 'STORE_UNAVAILABLE' }, 'so does a delete')
  t.equal((await fetch(`${p1.url}/v1/prompts/hello`)).status, 200, 'the library as loaded is still listed')
  const ready = await fetch(`${p1.url}/readyz`)
  t.equal(ready.status, 200, 'ready enough for the load balancer: plays still start here')
  t.match(await json(ready), { status: 'degraded', problems: [new RegExp(`Redis at redis://127\\.0\\.0\\.1:${redis.port}/0 cannot be reached`)] }, '/readyz says why')

  // Away longer than a heartbeat lives (5 s): every instance's heartbeat expires meanwhile.
  await sleep(stoppedAt + 6000 - performance.now())

  // Back: everything resumes, nothing restarted; the append-only file kept the library. p2 is
  // held (SIGSTOP) while Redis comes back, so that p1 reaches it first and finds p2's heartbeat
  // expired before p2 can renew it.
  const p2pid = p2.run.child.pid!
  process.kill(p2pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(p2pid, 'SIGCONT') } catch {} })
  await redis.start()
  await until('p1 reaches Redis again', async () => (await json(await fetch(`${p1.url}/readyz`))).status === 'ready', 15_000)
  const p1BackAt = performance.now()
  await sleep(1500)
  process.kill(p2pid, 'SIGCONT')
  const second = await until('an upload once Redis is back', async () => {
    const res = await fetch(`${p1.url}/v1/prompts/second`, { method: 'PUT', body: new Uint8Array(sample('goodbye').bytes) })
    return res.status === 201 ? res : undefined
  }, 15_000)
  t.equal(second.status, 201, 'uploads work again')
  await until('second on p2', async () => (await fetch(`${p2.url}/v1/prompts/second`)).status === 200, 15_000)
  t.pass('p2 follows the library again (its subscription came back)')
  // Each of the instance's Redis connections comes back on its own backoff: /readyz says
  // "degraded" until the one it pings is back, then "ready".
  let readiness: any
  await until('p1 ready again', async () => {
    const res = await fetch(`${p1.url}/readyz`)
    readiness = { code: res.status, ...await json(res) }
    return readiness.status === 'ready'
  }, 15_000).catch(err => { throw new Error(`${(err as Error).message}; last answer ${JSON.stringify(readiness)}`) })
  t.match(readiness, { code: 200, status: 'ready', problems: [] }, '/readyz says ready again')
  const names = (await json(await fetch(`${p2.url}/v1/prompts`))).prompts.map((p: any) => p.name)
  t.same(names, ['hello', 'second'], 'the prompt from before the restart is still there')
  const listed = await until('the play from the outage in the pool\'s list', async () => {
    const res = await fetch(`${p1.url}/v1/plays`)
    return res.status === 200 ? (await json(res)).plays.find((p: any) => p.id === play.id) : undefined
  }, 5000)
  t.match(listed, { state: 'stopped', instance: 'p2' }, 'the pool\'s list answers again, with the play p2 ran while Redis was away')

  // Its heartbeat expired while Redis was away, as p1's did: p1 must not take p2 for lost. p1
  // judges no instance until it has reached Redis for a heartbeat's life (5 s), and p2 has
  // beaten by then. Watched until two of p1's beats past that.
  const states = new Set<string>()
  while (performance.now() < p1BackAt + 7000) {
    // The pool's list, as p1 reads it from Redis (GET of the play itself would be forwarded to p2).
    const res = await fetch(`${p1.url}/v1/plays`)
    if (res.status === 200) states.add((await json(res)).plays.find((p: any) => p.id === long.id)?.state ?? 'missing')
    await sleep(200)
  }
  t.same([...states], ['playing'], 'the play p2 ran through the outage is playing all along in the pool\'s list, read by p1')
  const sequence = longReceiver.packets.map(p => p.rtp.sequenceNumber)
  t.same(sequenceBreaks(sequence), [], `and lost none of its ${sequence.length} packets`)
  t.match(await json(await fetch(`${p1.url}/v1/plays/${long.id as string}`, { method: 'DELETE' })), { state: 'stopped', instance: 'p2' }, 'p1 stops it, forwarded to p2')
  await until('its play.stopped on p1\'s event stream', async () => watch.events.some(e => e.type === 'play.stopped' && e.play.id === long.id), 5000)
  t.same(watch.events.filter(e => e.play.id === long.id).map(e => `${e.type} ${e.play.error as string | null ?? ''}`.trim()), ['play.stopped'], 'and its only event is play.stopped: it was never reported failed')

  // A new instance loads the library from the restarted Redis.
  await redis.stop()
  await redis.start()
  const p3 = await startInstance(t, redis, 'p3')
  t.same((await json(await fetch(`${p3.url}/v1/prompts`))).prompts.map((p: any) => p.name), ['hello', 'second'], 'a Redis restart with its append-only file loses no prompt')
})
