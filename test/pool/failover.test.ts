/**
 * kill -9 of an instance while it plays, in a real pool behind HAProxy: the others report its
 * plays failed within 10 s, with the event on every stream and the webhook delivered once;
 * HAProxy stops sending to it; uploads and new plays go on; a play on a survivor loses nothing.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { Receiver, sample, sleep } from '../helpers/index.js'
import { startPool } from '../helpers/cluster.js'
import { follow, json, startPlay, until } from '../helpers/sse.js'

t.test('an instance killed while it plays: its plays fail within 10 s, once; the pool goes on', async t => {
  const { instances, lb } = await startPool(t)
  const [p1, p2, p3] = instances as [typeof instances[0], typeof instances[0], typeof instances[0]]
  t.equal((await fetch(`${lb.url}/v1/prompts/hello`, { method: 'PUT', body: new Uint8Array(sample('welcome').bytes) })).status, 201)
  await until('hello everywhere', async () => (await Promise.all(instances.map(async i => (await fetch(`${i.url}/v1/prompts/hello`)).status))).every(s => s === 200))

  // A webhook receiver: the pool must deliver each event of the lost play once.
  const hooks: Array<{ type: string, play: any }> = []
  const hookServer = http.createServer((req, res) => {
    let body = ''
    req.on('data', chunk => { body += chunk })
    req.on('end', () => { hooks.push(JSON.parse(body)); res.end() })
  })
  await new Promise<void>(resolve => hookServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => hookServer.close())
  const callbackUrl = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook`

  const doomedReceiver = await Receiver.open(t)
  const survivorReceiver = await Receiver.open(t)
  const doomed = await json(await startPlay(p1.url, { target: { host: '127.0.0.1', port: doomedReceiver.port }, prompts: ['hello', 'hello', 'hello', 'hello'], callbackUrl }))
  const survivor = await json(await startPlay(p2.url, { target: { host: '127.0.0.1', port: survivorReceiver.port }, prompts: ['hello', 'hello', 'hello', 'hello'] }))
  const stream = follow(p3.url)
  await stream.ready
  await doomedReceiver.waitFor(10)

  p1.run.child.kill('SIGKILL')
  const killedAt = performance.now()
  const failed = await until('the lost play reported failed', async () => {
    const play = await json(await fetch(`${p2.url}/v1/plays/${doomed.id as string}`))
    return play.state === 'failed' ? play : undefined
  }, 10_000)
  const detectedMs = performance.now() - killedAt
  t.ok(detectedMs <= 10_000, `reported failed ${Math.round(detectedMs)} ms after the kill`)
  t.match(failed, { id: doomed.id, instance: 'p1', state: 'failed', error: /^instance p1 was lost \(no heartbeat for 5 s\)/ })
  const event = await until('play.failed on p3\'s stream', async () => stream.events.find(e => e.type === 'play.failed' && e.play.id === doomed.id))
  t.match(event.play, { state: 'failed', error: /instance p1 was lost/ }, 'the event reached another instance\'s stream')
  await until('the webhook', async () => hooks.some(h => h.type === 'play.failed'))
  await sleep(1500)
  t.same(hooks.map(h => h.type), ['play.started', 'play.failed'], 'the webhook got started (from p1) and failed (from the pool), each once')

  // HAProxy has taken p1 out: every call through it is answered, uploads and plays go on.
  for (let i = 0; i < 9; i++) t.equal((await fetch(`${lb.url}/readyz`)).status, 200, `call ${i + 1} through HAProxy answered`)
  t.equal((await fetch(`${lb.url}/v1/prompts/after`, { method: 'PUT', body: new Uint8Array(sample('goodbye').bytes) })).status, 201, 'an upload through HAProxy')
  const fresh = await startPlay(lb.url, { target: { host: '127.0.0.1', port: survivorReceiver.port }, prompts: ['after'] })
  t.equal(fresh.status, 201, 'a new play through HAProxy')
  t.not((await json(fresh)).instance, 'p1')
  const stats = await (await fetch(`${lb.stats}/;csv`)).text()
  t.match(stats, /instances,instance1,.*DOWN/, 'HAProxy marks instance1 down')

  // The survivor's play lost no packet through all of it.
  await fetch(`${p3.url}/v1/plays/${survivor.id as string}`, { method: 'DELETE' })
  const own = survivorReceiver.packets.filter(p => p.rtp.ssrc === survivor.ssrc)
  let gaps = 0
  for (let i = 1; i < own.length; i++) gaps += ((own[i]!.rtp.sequenceNumber - own[i - 1]!.rtp.sequenceNumber + 65536) % 65536) - 1
  t.ok(own.length > 100, `the survivor's play sent through the kill (${own.length} packets)`)
  t.equal(gaps, 0, 'and lost none')
  stream.stop()
})
