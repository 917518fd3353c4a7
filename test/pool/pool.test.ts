/**
 * A pool of three instances on one Redis behind HAProxy (deploy/haproxy.cfg), all real
 * processes: one library, plays any instance answers for, one event stream.
 */
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { Receiver, sample, sleep } from '../helpers/index.js'
import { startPool } from '../helpers/cluster.js'
import { follow, json, startPlay as play, until } from '../helpers/sse.js'

t.test('one library, plays any instance answers for, one event stream', async t => {
  const { instances, lb } = await startPool(t)
  const [p1, p2, p3] = instances as [typeof instances[0], typeof instances[0], typeof instances[0]]

  // An upload through the load balancer is listed and playable on every instance within a second.
  const bytes = sample('welcome').bytes
  const uploaded = await fetch(`${lb.url}/v1/prompts/hello`, { method: 'PUT', body: new Uint8Array(bytes) })
  t.equal(uploaded.status, 201, 'uploaded through HAProxy')
  const sha = (await json(uploaded)).source.sha256 as string
  const at = performance.now()
  for (const i of instances) {
    const info = await until(`hello on ${i.id}`, async () => { const r = await fetch(`${i.url}/v1/prompts/hello`); return r.status === 200 ? await json(r) : undefined }, 1000)
    t.equal(info.source.sha256, sha, `listed on ${i.id}`)
  }
  t.ok(performance.now() - at < 1000, `listed everywhere within a second (${Math.round(performance.now() - at)} ms)`)

  // Events of every instance on one stream.
  const stream = follow(p3.url)
  await stream.ready

  const receiver = await Receiver.open(t)
  const started = await play(p1.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello', 'hello', 'hello'] })
  t.equal(started.status, 201, 'a play on p1')
  const id = (await json(started)).id as string
  t.equal((await json(await fetch(`${p1.url}/v1/plays/${id}`))).instance, 'p1', 'it says which instance sends it')
  await receiver.waitFor(20)

  // Any instance answers for it: GET forwarded to the owner, with live counters.
  const viaP2 = await json(await fetch(`${p2.url}/v1/plays/${id}`))
  t.match(viaP2, { id, state: 'playing', instance: 'p1' }, 'GET on p2')
  t.ok(viaP2.packetsSent >= 20, `with live counters (${viaP2.packetsSent as number} packets)`)
  const metrics = await (await fetch(`${p3.url}/metrics`)).text()
  t.match(metrics, /^prompt_player_pool_instances 3$/m, '/metrics: the pool\'s instances alive')
  t.match(metrics, /^prompt_player_pool_plays_running\{instance="p1"\} 1$/m, 'and the plays each runs')
  t.match(metrics, /^prompt_player_pool_plays_running\{instance="p3"\} 0$/m)
  t.match(metrics, /^prompt_player_pool_store_up 1$/m)
  const listed = await json(await fetch(`${p3.url}/v1/plays`))
  t.match(listed.plays.find((p: any) => p.id === id), { instance: 'p1', state: 'playing' }, 'GET /v1/plays on p3 lists it')

  // Control through p3, forwarded to p1: answered once applied there.
  const paused = await fetch(`${p3.url}/v1/plays/${id}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operation: 'pause' }) })
  t.equal(paused.status, 200)
  t.match(await json(paused), { id, instance: 'p1', paused: true }, 'a pause through p3 applies on p1')
  const resumed = await fetch(`${p2.url}/v1/plays/${id}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operation: 'resume' }) })
  t.match(await json(resumed), { id, paused: false }, 'and a resume through p2')

  // DELETE through p2 stops the stream on p1: no packet after the answer.
  const stopped = await fetch(`${p2.url}/v1/plays/${id}`, { method: 'DELETE' })
  const answeredAt = performance.now()
  t.equal(stopped.status, 200)
  t.match(await json(stopped), { id, state: 'stopped', instance: 'p1' })
  await sleep(200)
  const late = receiver.packets.filter(p => p.at > answeredAt)
  t.same(late.length, 0, 'no packet arrived after the forwarded DELETE answered')

  // p3's stream carried p1's events, with ids that resume on another instance.
  const seen = await until('events on p3', async () => stream.events.length >= 4 ? stream.events : undefined)
  t.same(seen.filter(e => e.type === 'play.started' || e.type === 'play.stopped').map(e => [e.type, e.play.id]), [['play.started', id], ['play.stopped', id]], 'p3 saw p1\'s play start and stop')
  t.same(seen.map(e => e.type), ['play.started', 'play.paused', 'play.resumed', 'play.stopped'], 'and its pause and resume')
  stream.stop()
  const second = await play(p2.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello'] })
  const id2 = (await json(second)).id as string
  await fetch(`${p3.url}/v1/plays/${id2}`, { method: 'DELETE' })
  const again = follow(p2.url, seen[0]!.id)
  const replay = await until('replay on p2', async () => again.events.length >= 5 ? again.events.filter(e => e.type !== 'play.paused' && e.type !== 'play.resumed') : undefined)
  again.stop()
  t.same(replay.map(e => [e.type, e.play.id]), [['play.stopped', id], ['play.started', id2], ['play.stopped', id2]], 'resumed on p2 from p3\'s id: nothing missed')
})
