/**
 * The pool on Redis under Sentinel, with Debian's redis-server and redis-sentinel as real
 * processes: a master, two replicas, three Sentinels, all with a password.
 * - Both replicas stopped (SIGSTOP): an upload or a delete cannot be acknowledged by one, so it
 *   is answered 503 and taken back; the master and, once they run again, the replicas hold
 *   exactly the library they held before.
 * - kill -9 of the master while uploads, plays and event readers run: Sentinel promotes a
 *   replica and the instances follow it with no restart; uploads succeed again within 15 s;
 *   every upload answered 201 is on the new master; the running play loses no packet; a reader
 *   that resumes on the other instance gets every event anyone was sent.
 */
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { Receiver, sample, sequenceBreaks, sleep, tempDir } from '../helpers/index.js'
import { spawnServer } from '../helpers/server-process.js'
import { startInstance, startSentinelSet, type RedisServer } from '../helpers/cluster.js'
import { follow, json, startPlay, until } from '../helpers/sse.js'

const WELCOME = new Uint8Array(sample('welcome').bytes)
const GOODBYE = new Uint8Array(sample('goodbye').bytes)
const WELCOME_SHA = sample('welcome').path.split('/').at(-2)

/** A client of one Redis of the set, straight to it (no Sentinel). */
function client (t: Pick<Test, 'teardown'>, redis: RedisServer | number, password: string): Redis {
  const port = typeof redis === 'number' ? redis : redis.port
  const c = new Redis({ port, host: '127.0.0.1', password, lazyConnect: false, maxRetriesPerRequest: 1 })
  c.on('error', () => {})
  t.teardown(() => c.disconnect())
  return c
}

/** The library as one Redis holds it: every description, and every media hash's fields. */
async function libraryOf (redis: Redis): Promise<{ library: Record<string, string>, media: Record<string, string[]> }> {
  const library = await redis.hgetall('prompt-player:library')
  const media: Record<string, string[]> = {}
  for (const key of (await redis.keys('prompt-player:media:*')).sort()) media[key] = (await redis.hkeys(key)).sort()
  return { library, media }
}

async function put (url: string, name: string, body: Uint8Array): Promise<Response> {
  return await fetch(`${url}/v1/prompts/${name}`, { method: 'PUT', body: body as unknown as BodyInit })
}

t.test('no replica to acknowledge: uploads and deletes answer 503, are taken back, and nothing is half-written', async t => {
  const set = await startSentinelSet(t)
  const p1 = await startInstance(t, null, 'p1', set.env)
  const master = client(t, set.master, set.password)
  const replicas = set.replicas.map(r => client(t, r, set.password))

  t.equal((await put(p1.url, 'kept', WELCOME)).status, 201, 'an upload with both replicas up')
  const held = await Promise.all(replicas.map(async r => await r.hexists('prompt-player:library', 'kept')))
  t.ok(held.includes(1), `answered 201 once a replica had it (replicas hold it: ${held.join(', ')})`)
  const before = await libraryOf(master)

  for (const r of set.replicas) r.signal('SIGSTOP')
  try {
    const started = performance.now()
    const refused = await put(p1.url, 'lost', GOODBYE)
    const tookMs = performance.now() - started
    t.equal(refused.status, 503, 'an upload no replica acknowledges is refused')
    t.equal(refused.headers.get('retry-after'), '1')
    t.match(await json(refused), { code: 'STORE_UNAVAILABLE', message: /took "lost", but 0 of the 1 replica it must reach acknowledged it within 1000 ms \(PROMPT_PLAYER_REDIS_WAIT_REPLICAS, PROMPT_PLAYER_REDIS_WAIT_MS\): it was taken back .*the library is as it was/ })
    t.ok(tookMs >= 1000, `after waiting PROMPT_PLAYER_REDIS_WAIT_MS (${Math.round(tookMs)} ms)`)
    const replaced = await put(p1.url, 'kept', GOODBYE)
    t.equal(replaced.status, 503, 'a replace likewise')
    const deleted = await fetch(`${p1.url}/v1/prompts/kept`, { method: 'DELETE' })
    t.equal(deleted.status, 503, 'and a delete')
    t.match(await json(deleted), { message: /took the delete of "kept", but 0 of the 1 replica/ })
    t.same(await libraryOf(master), before, 'the master holds exactly the library it held before')
    t.match(await json(await fetch(`${p1.url}/v1/prompts/kept`)), { name: 'kept', source: { sha256: WELCOME_SHA } }, 'the instance still serves the prompt as it was')
    t.equal((await fetch(`${p1.url}/v1/prompts/lost`)).status, 404)
  } finally {
    for (const r of set.replicas) r.signal('SIGCONT')
  }
  // The replicas receive the writes and their undoing: they end with the same library.
  for (const [i, r] of replicas.entries()) {
    await until(`replica ${i + 1} caught up`, async () => JSON.stringify(await libraryOf(r)) === JSON.stringify(before), 15_000)
  }
  t.pass('both replicas, running again, hold exactly the library they held before')
  t.equal((await put(p1.url, 'lost', GOODBYE)).status, 201, 'with a replica back, the upload is answered 201')
})

t.test('kill -9 of the master while uploads, plays and event readers run', async t => {
  const set = await startSentinelSet(t)
  const [p1, p2] = await Promise.all([startInstance(t, null, 'p1', set.env), startInstance(t, null, 'p2', set.env)])
  t.equal((await put(p1.url, 'hello', WELCOME)).status, 201)
  await until('hello on p2', async () => (await fetch(`${p2.url}/v1/prompts/hello`)).status === 200)

  // A play that runs through it all, on p2.
  const receiver = await Receiver.open(t)
  const long = await json(await startPlay(p2.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello'], loop: 0, rtcp: 'off' }))
  await receiver.waitFor(10)

  // Reader A stays on p1 all along; reader B reads from p2 and leaves before the kill.
  const a = follow(p1.url)
  const b = follow(p2.url)
  await Promise.all([a.ready, b.ready])

  // Events all along: plays started and stopped on both instances; uploads on both.
  let running = true
  const uploads: Array<{ name: string, status: number, at: number }> = []
  const churn = (async () => {
    for (let i = 0; running; i++) {
      const url = i % 2 === 0 ? p1.url : p2.url
      const started = await startPlay(url, { target: { host: '127.0.0.1', port: receiver.port + 2 }, prompts: ['hello'], rtcp: 'off' }).catch(() => null)
      if (started?.status === 201) await fetch(`${url}/v1/plays/${(await json(started)).id as string}`, { method: 'DELETE' }).catch(() => {})
      await sleep(100)
    }
  })()
  const uploading = (async () => {
    for (let i = 0; running; i++) {
      const name = `u${i}`
      const status = await put(i % 2 === 0 ? p1.url : p2.url, name, i % 2 === 0 ? WELCOME : GOODBYE).then(res => res.status, () => 0)
      uploads.push({ name, status, at: performance.now() })
      await sleep(100)
    }
  })()

  await until('B has read events', async () => b.events.length >= 6)
  b.stop()
  const lastOfB = b.events.at(-1)!.id
  await until('uploads answered 201 before the kill', async () => uploads.filter(u => u.status === 201).length >= 3)

  const killedAt = performance.now()
  const oldMaster = set.master.port
  await set.master.stop()
  const back = await until('an upload answered 201 after the kill', async () => uploads.find(u => u.at > killedAt && u.status === 201), 30_000)
  const recoveryMs = back.at - killedAt
  t.ok(recoveryMs < 15_000, `uploads succeed again ${(recoveryMs / 1000).toFixed(1)} s after the kill (within 15 s)`)
  const refused = uploads.filter(u => u.at > killedAt && u.at < back.at)
  t.ok(refused.every(u => u.status === 503), `meanwhile uploads were answered 503 (${refused.length} of them), never left hanging`)
  await sleep(1000)
  running = false
  await Promise.all([churn, uploading])

  // Sentinel promoted a replica; the instances follow it, and p1 and p2 answer from it.
  const sentinel = client(t, set.sentinels[0]!.port, set.password)
  const [, newPort] = await sentinel.call('SENTINEL', 'get-master-addr-by-name', 'pp') as [string, string]
  t.not(Number(newPort), oldMaster, `Sentinel names a new master (${newPort})`)
  t.ok(set.replicas.some(r => r.port === Number(newPort)), 'one of the replicas')
  const master = client(t, Number(newPort), set.password)
  const acknowledged = uploads.filter(u => u.status === 201).map(u => u.name)
  const missing: string[] = []
  for (const name of acknowledged) if (await master.hexists('prompt-player:library', name) !== 1) missing.push(name)
  t.same(missing, [], `every one of the ${acknowledged.length} uploads answered 201 is on the new master`)
  for (const p of [p1, p2]) {
    await until(`${p.id} lists them all`, async () => {
      const names = new Set((await json(await fetch(`${p.url}/v1/prompts`))).prompts.map((x: any) => x.name))
      return acknowledged.every(name => names.has(name))
    }, 10_000)
  }
  t.pass('both instances list every upload answered 201')
  t.match(await json(await fetch(`${p1.url}/readyz`)), { status: 'ready' }, 'p1 is ready again, with no restart')
  t.equal(p1.run.child.exitCode, null)
  t.equal(p2.run.child.exitCode, null)

  // The play ran through the failover without losing a packet.
  const before = receiver.packets.length
  await receiver.waitFor(before + 5)
  t.match(await json(await fetch(`${p1.url}/v1/plays/${long.id as string}`, { method: 'DELETE' })), { state: 'stopped' }, 'the play is stopped through the other instance, forwarded')
  const seqs = receiver.packets.filter(p => p.rtp.ssrc === receiver.packets[0]!.rtp.ssrc).map(p => p.rtp.sequenceNumber)
  const gaps = sequenceBreaks(seqs)
  t.same(gaps, [], `the play's ${seqs.length} packets came in sequence with none missing`)
  // Paced through it: packets never waited for Redis (the failover took seconds; a loaded test
  // machine delays a packet's arrival by tens of milliseconds at worst).
  const during = receiver.packets.filter(p => p.at >= killedAt - 1000 && p.at <= back.at + 1000)
  const widest = Math.max(...during.slice(1).map((p, i) => p.at - during[i]!.at))
  t.ok(during.length > (back.at - killedAt) / 20 && widest < 500, `${during.length} packets from a second before the kill to a second after uploads worked again, the widest gap ${widest.toFixed(0)} ms`)

  // Reader B resumes on the other instance: it gets every event A was sent after B left.
  const resumed = follow(p1.url, lastOfB)
  const lastOfA = a.events.at(-1)!.id
  await until('B resumed up to what A has', async () => resumed.events.some(e => e.id === lastOfA), 15_000)
  const got = new Set(resumed.events.map(e => e.id))
  const sentToA = a.events.filter(e => compare(e.id, lastOfB) > 0)
  const missed = sentToA.filter(e => !got.has(e.id))
  t.same(missed.map(e => `${e.id} ${e.type}`), [], `B resumed with every one of the ${sentToA.length} events A was sent after it left`)
  const ids = resumed.events.map(e => e.id)
  t.same(ids, [...ids].sort(compare), 'in order')
  t.equal(new Set(ids).size, ids.length, 'each once')
  const stream = new Set((await master.xrange('prompt-player:events', '-', '+')).map(([id]) => id))
  t.same(a.events.filter(e => !stream.has(e.id)).map(e => e.id), [], 'every event anyone was sent is on the new master')
  a.stop()
  resumed.stop()
})

t.test('a master with no replica: an instance that would wait for one says so at startup; with PROMPT_PLAYER_REDIS_WAIT_REPLICAS=0 it runs', async t => {
  const set = await startSentinelSet(t, { replicas: 0 })
  const refused = spawnServer(t, { ...set.env, PROMPT_PLAYER_PORT: '0', PROMPT_PLAYER_LIBRARY: tempDir(t) })
  t.equal(await refused.exit, 1)
  t.equal(refused.lines.length, 1)
  t.match(refused.lines[0], new RegExp(`^prompt-player: cannot start: the pool's Redis master answers \\(master "pp" of the Sentinels at 127\\.0\\.0\\.1:${set.sentinels[0]!.port},.*\\), but the Sentinels name no replica of it that is up: .*uploads wait for 1 to acknowledge them \\(PROMPT_PLAYER_REDIS_WAIT_REPLICAS\\); start a replica, or set PROMPT_PLAYER_REDIS_WAIT_REPLICAS to 0$`))
  const p1 = await startInstance(t, null, 'p1', { ...set.env, PROMPT_PLAYER_REDIS_WAIT_REPLICAS: '0' })
  t.equal((await put(p1.url, 'hello', WELCOME)).status, 201, 'uploads are answered once the master has them')
})

function compare (x: string, y: string): number {
  const [xm, xs] = x.split('-').map(BigInt) as [bigint, bigint]
  const [ym, ys] = y.split('-').map(BigInt) as [bigint, bigint]
  return xm === ym ? (xs === ys ? 0 : xs < ys ? -1 : 1) : xm < ym ? -1 : 1
}
