/**
 * The pool's Redis stopped and started again: plays of loaded prompts go on where they run,
 * calls that need Redis answer 503 STORE_UNAVAILABLE, /readyz says why, and when Redis is back
 * everything resumes with no restart; with its append-only file, no prompt is lost.
 */
import t from 'tap'
import { Receiver, sample } from '../helpers/index.js'
import { RedisServer, startInstance } from '../helpers/cluster.js'
import { json, startPlay, until } from '../helpers/sse.js'

t.test('Redis stopped, then started again', async t => {
  const redis = await RedisServer.start(t)
  const p1 = await startInstance(t, redis, 'p1')
  const p2 = await startInstance(t, redis, 'p2')
  t.equal((await fetch(`${p1.url}/v1/prompts/hello`, { method: 'PUT', body: new Uint8Array(sample('welcome').bytes) })).status, 201)
  await until('hello on p2', async () => (await fetch(`${p2.url}/v1/prompts/hello`)).status === 200)

  await redis.stop()

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

  // Back: everything resumes, nothing restarted; the append-only file kept the library.
  await redis.start()
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

  // A new instance loads the library from the restarted Redis.
  await redis.stop()
  await redis.start()
  const p3 = await startInstance(t, redis, 'p3')
  t.same((await json(await fetch(`${p3.url}/v1/prompts`))).prompts.map((p: any) => p.name), ['hello', 'second'], 'a Redis restart with its append-only file loses no prompt')
})
