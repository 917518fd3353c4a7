/**
 * G.722 and Opus in a pool: the renditions live in Redis beside the laws, one instance uses what
 * another made, and a delete removes every rendition. Real processes on one real Redis.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Receiver, sample, waitUntil } from '../helpers/index.js'
import { RedisServer, startInstance } from '../helpers/cluster.js'
import { json, startPlay } from '../helpers/sse.js'

/** An instance's count of ffmpeg transcode runs, from its /metrics. */
async function transcodes (url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return [...text.matchAll(/^prompt_player_ffmpeg_runs_total\{what="transcode",outcome="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)
}

t.test('renditions in a pool: made once, in Redis, used by every instance, deleted with the prompt', async t => {
  const redis = await RedisServer.start(t)
  const monitor = new Redis(redis.url)
  t.teardown(() => { monitor.disconnect() })
  const [p1, p2, p3] = await Promise.all([startInstance(t, redis, 'p1'), startInstance(t, redis, 'p2'), startInstance(t, redis, 'p3')])

  const uploaded = await fetch(`${p1.url}/v1/prompts/hello`, { method: 'PUT', body: new Uint8Array(sample('welcome').bytes) })
  t.equal(uploaded.status, 201)
  const sha = (await json(uploaded)).source.sha256 as string
  const key = `prompt-player:media:${sha}`
  t.same((await monitor.hkeys(key)).sort(), ['g722', 'opus-20', 'pcma', 'pcmu', 'source'], 'the upload\'s renditions are in Redis beside the laws')
  await waitUntil(async () => (await fetch(`${p2.url}/v1/prompts/hello`)).status === 200, 'hello on p2')
  const onP2 = await json(await fetch(`${p2.url}/v1/prompts/hello`))
  t.same(onP2.renditions.map((r: any) => `${r.codec}/${r.frameMs ?? ''}`), ['PCMU/', 'PCMA/', 'G722/', 'opus/20'], 'p2 has them, read from Redis')

  // G.722 on p2: what it sends is the rendition in Redis, made on p1.
  const g722 = await monitor.hgetBuffer(key, 'g722')
  const receiver = await Receiver.open(t)
  const before = await transcodes(p2.url)
  const played = await startPlay(p2.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello'], codec: 'G722', rtcp: 'off' })
  t.equal(played.status, 201)
  const packets = await receiver.waitFor(Math.ceil(g722!.length / 160))
  t.ok(Buffer.concat(packets.map(p => p.rtp.payload)).subarray(0, g722!.length).equals(g722!), 'p2 sent the G.722 rendition p1 made, byte for byte')
  t.equal(await transcodes(p2.url), before, 'without running ffmpeg')

  // Opus at 40 ms: made once, by the first instance that needs it, and found in Redis by the next.
  const r2 = await Receiver.open(t)
  t.equal((await startPlay(p2.url, { target: { host: '127.0.0.1', port: r2.port }, prompts: ['hello'], codec: 'opus', ptimeMs: 40, rtcp: 'off' })).status, 201)
  t.equal(await transcodes(p2.url), before + 1, 'p2 made the 40 ms Opus rendition (one ffmpeg run)')
  const opus40 = await monitor.hgetBuffer(key, 'opus-40')
  t.ok(opus40 !== null && opus40.length > 0, 'and stored it in Redis')
  const r3 = await Receiver.open(t)
  const p3Before = await transcodes(p3.url)
  t.equal((await startPlay(p3.url, { target: { host: '127.0.0.1', port: r3.port }, prompts: ['hello'], codec: 'opus', ptimeMs: 40, rtcp: 'off' })).status, 201)
  t.equal(await transcodes(p3.url), p3Before, 'p3 read it from Redis instead of making it again')
  await r2.waitFor(40)
  await r3.waitFor(40)
  await r2.waitQuiet(200)
  await r3.waitQuiet(200)
  t.same(r3.packets.map(p => p.rtp.payload.toString('hex')), r2.packets.map(p => p.rtp.payload.toString('hex')), 'p3 sent exactly the Opus packets p2 sent')

  // Deleting the prompt removes every rendition.
  t.equal((await fetch(`${p3.url}/v1/prompts/hello`, { method: 'DELETE' })).status, 204)
  await waitUntil(async () => await monitor.exists(key) === 0, 'the media to leave Redis')
  t.pass('the media hash, every rendition in it, is gone from Redis')
})

t.test('a pool that keeps no sources: the upload\'s renditions play; another is refused with the reason, and nothing changes', async t => {
  const redis = await RedisServer.start(t)
  const monitor = new Redis(redis.url)
  t.teardown(() => { monitor.disconnect() })
  const p1 = await startInstance(t, redis, 'p1', { PROMPT_PLAYER_REDIS_KEEP_SOURCE: 'false' })
  const uploaded = await fetch(`${p1.url}/v1/prompts/hello`, { method: 'PUT', body: new Uint8Array(sample('welcome').bytes) })
  t.equal(uploaded.status, 201)
  const key = `prompt-player:media:${(await json(uploaded)).source.sha256 as string}`
  t.same((await monitor.hkeys(key)).sort(), ['g722', 'opus-20', 'pcma', 'pcmu'], 'the renditions made at upload, and no source')
  const receiver = await Receiver.open(t)
  t.equal((await startPlay(p1.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello'], codec: 'opus', rtcp: 'off' })).status, 201, 'Opus at 20 ms plays')
  const refused = await startPlay(p1.url, { target: { host: '127.0.0.1', port: receiver.port + 2 }, prompts: ['hello'], codec: 'opus', ptimeMs: 60, rtcp: 'off' })
  t.equal(refused.status, 400)
  t.match(await json(refused), { code: 'INVALID_REQUEST', message: 'the prompt "hello" has no opus-60 rendition, and the library did not keep its source to make one (PROMPT_PLAYER_REDIS_KEEP_SOURCE); upload it again to make every rendition' })
  t.same((await monitor.hkeys(key)).sort(), ['g722', 'opus-20', 'pcma', 'pcmu'], 'Redis is as it was')
})
