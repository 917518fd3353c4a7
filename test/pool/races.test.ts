/**
 * Races across instances of a pool: two uploads of one name at once on two instances (one
 * wins, whole, everywhere), two POSTs of one name (one 201, one 409), and deletes racing play
 * starts (a play gets the whole prompt or a 404, never half, never a 5xx).
 */
import t from 'tap'
import { Receiver, sample, sleep } from '../helpers/index.js'
import { RedisServer, startInstance } from '../helpers/cluster.js'
import { json, startPlay, until } from '../helpers/sse.js'

t.test('races between instances', async t => {
  const redis = await RedisServer.start(t)
  const p1 = await startInstance(t, redis, 'p1')
  const p2 = await startInstance(t, redis, 'p2')
  const welcome = sample('welcome').bytes
  const menu = sample('menu').bytes

  // Two PUTs of one name at once, different audio: one wins, whole, on both instances.
  const [a, b] = await Promise.all([
    fetch(`${p1.url}/v1/prompts/same`, { method: 'PUT', body: new Uint8Array(welcome) }),
    fetch(`${p2.url}/v1/prompts/same`, { method: 'PUT', body: new Uint8Array(menu) })
  ])
  t.ok([a.status, b.status].every(s => s === 200 || s === 201), `both answered (${a.status}, ${b.status})`)
  const shas = [(await json(a)).source.sha256, (await json(b)).source.sha256]
  await sleep(300)
  const [on1, on2] = await Promise.all([p1, p2].map(async p => await json(await fetch(`${p.url}/v1/prompts/same`))))
  t.equal(on1.source.sha256, on2.source.sha256, 'both instances hold the same winner')
  t.ok(shas.includes(on1.source.sha256), 'and it is one of the two uploads')
  const audio = await Promise.all([p1, p2].map(async p => Buffer.from(await (await fetch(`${p.url}/v1/prompts/same/audio?format=pcmu`)).arrayBuffer())))
  t.ok(audio[0]!.equals(audio[1]!), 'with the same audio, byte for byte')
  t.ok(Math.abs(audio[0]!.length / 8 - on1.telephony.durationMs) < 20, `whole: ${audio[0]!.length / 8} ms of audio for a ${on1.telephony.durationMs as number} ms prompt`)

  // Two POSTs of one name at once: one is stored, the other told it exists.
  const form = (bytes: Buffer): FormData => {
    const f = new FormData()
    f.append('file', new Blob([new Uint8Array(bytes)]), 'fresh.wav')
    return f
  }
  const posts = await Promise.all([fetch(`${p1.url}/v1/prompts`, { method: 'POST', body: form(welcome) }), fetch(`${p2.url}/v1/prompts`, { method: 'POST', body: form(menu) })])
  t.same(posts.map(r => r.status).sort(), [201, 409], 'one 201, one 409')
  t.match(await json(posts.find(r => r.status === 409)!), { code: 'PROMPT_EXISTS' })

  // Deletes racing play starts: the play has the whole prompt or none of it.
  const receiver = await Receiver.open(t)
  let played = 0
  let refused = 0
  for (let i = 0; i < 8; i++) {
    t.equal((await fetch(`${p1.url}/v1/prompts/racer`, { method: 'PUT', body: new Uint8Array(sample('goodbye').bytes) })).status, 201, `racer uploaded (${i + 1})`)
    await until('racer on p2', async () => (await fetch(`${p2.url}/v1/prompts/racer`)).status === 200, 2000)
    const [started, deleted] = await Promise.all([
      startPlay(p2.url, { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['racer'] }),
      fetch(`${p1.url}/v1/prompts/racer`, { method: 'DELETE' })
    ])
    t.equal(deleted.status, 204, 'the delete is done')
    if (started.status === 201) {
      played++
      const play = await json(started)
      const done = await until('the play ends', async () => {
        const p = await json(await fetch(`${p2.url}/v1/plays/${play.id as string}`))
        return p.state !== 'playing' ? p : undefined
      }, 15_000)
      t.match(done, { state: 'finished', packetsSent: done.durationMs / 20 }, 'a play that started has the whole prompt')
    } else {
      refused++
      t.match({ status: started.status, body: await json(started) }, { status: 404, body: { code: 'PROMPT_NOT_FOUND' } }, 'a play that lost the race is a 404')
    }
    await until('racer gone from p2', async () => (await fetch(`${p2.url}/v1/prompts/racer`)).status === 404, 2000)
  }
  t.equal(played + refused, 8, `every start answered (${played} played, ${refused} refused)`)
})
