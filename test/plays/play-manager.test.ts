/**
 * The engine's play path without HTTP: capacity, local ports, a target that refuses, events,
 * the record of ended plays, and close. Real sockets on 127.0.0.1 throughout.
 */
import dgram from 'node:dgram'
import t from 'tap'
import type { PlayEvent } from '../../src/events/events.js'
import { Receiver, engine, rtpPorts, sleep } from '../helpers/index.js'

async function bindUdp (t: Parameters<typeof engine>[0], port: number, address = '0.0.0.0'): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve, reject) => { socket.once('error', reject); socket.bind({ port, address, exclusive: true }, resolve) })
  t.teardown(() => { try { socket.close() } catch {} })
  return socket
}

t.test('events: started then finished, each with the Play; a throwing listener breaks nothing', async t => {
  const e = await engine(t)
  const receiver = await Receiver.open(t)
  const events: PlayEvent[] = []
  const listenerErrors: unknown[] = []
  e.events.onListenerError = err => listenerErrors.push(err)
  e.events.on('play', () => { throw new Error('a broken SSE client') })
  const record = (event: PlayEvent): void => { events.push(event) }
  e.events.on('play', record)
  const play = await e.plays.create({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] })
  t.equal(play.packetsSent, 1, 'the first packet left before create returned')
  await receiver.waitFor(play.totalPackets, 10_000)
  await sleep(60)
  t.same(events.map(ev => ev.type), ['play.started', 'play.finished'])
  t.match(events[1]!.play, { id: play.id, state: 'finished', packetsSent: play.totalPackets })
  t.equal(listenerErrors.length, 2, 'the throwing listener was called and contained, twice')
  t.equal(receiver.packets.length, play.totalPackets, 'the stream was not disturbed')
  e.events.off('play', record)
})

t.test('at capacity: AT_CAPACITY naming the setting, and a slot frees when a play ends', async t => {
  const e = await engine(t, { maxPlays: 2 })
  const receiver = await Receiver.open(t)
  const target = { host: '127.0.0.1', port: receiver.port }
  const a = await e.plays.create({ target, prompts: ['menu'] })
  await e.plays.create({ target, prompts: ['menu'] })
  t.equal(e.plays.capacityLeft, 0)
  await t.rejects(e.plays.create({ target, prompts: ['menu'] }), { code: 'AT_CAPACITY', message: /2 plays are running.*(maxPlays)/ })
  await e.plays.stop(a.id)
  t.equal(e.plays.capacityLeft, 1)
  await e.plays.create({ target, prompts: ['menu'] })
})

t.test('local ports: even only, the busy ones skipped, and NO_RTP_PORT when the range is spent', async t => {
  const range = rtpPorts(6)
  const min = range.min % 2 === 0 ? range.min : range.min + 1
  // Another process holds the first even port.
  await bindUdp(t, min)
  const e = await engine(t, { rtpPorts: { min, max: min + 3 } })
  const receiver = await Receiver.open(t)
  const target = { host: '127.0.0.1', port: receiver.port }
  const play = await e.plays.create({ target, prompts: ['menu'] })
  t.equal(play.facts.source.port, min + 2, 'the busy port was skipped, the odd one never used')
  const [first] = await receiver.waitFor(1)
  t.equal(first!.from.port, min + 2, 'packets leave from the reported port')
  await t.rejects(e.plays.create({ target, prompts: ['menu'] }), { code: 'NO_RTP_PORT', message: new RegExp(`${min}-${min + 3}.*\\(rtpPorts\\)`) })
  await e.plays.stop(play.id)
  const again = await e.plays.create({ target, prompts: ['menu'] })
  t.equal(again.facts.source.port, min + 2, 'a stopped play gives its port back')
})

t.test('a target with nothing listening (ICMP port unreachable): counted, and the play goes on', async t => {
  const e = await engine(t)
  // A port that was just free: bind, note it, close.
  const probe = await bindUdp(t, 0, '127.0.0.1')
  const port = probe.address().port
  probe.close()
  const play = await e.plays.create({ target: { host: '127.0.0.1', port }, prompts: ['goodbye'] })
  await sleep(300)
  t.equal(play.state, 'playing', 'still playing: a peer may open its port late')
  t.ok(play.sendErrors > 0, `refusals counted (${play.sendErrors})`)
  t.ok(play.packetsSent > 10, `packets kept going (${play.packetsSent})`)
  await e.plays.stop(play.id)
})

t.test('ended plays stay visible for keepEndedMs, at most keepEndedMax of them', async t => {
  const e = await engine(t, { keepEndedMs: 200, keepEndedMax: 2 })
  const receiver = await Receiver.open(t)
  const target = { host: '127.0.0.1', port: receiver.port }
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const play = await e.plays.create({ target, prompts: ['menu'] })
    await e.plays.stop(play.id)
    ids.push(play.id)
  }
  t.same((await e.plays.list()).map(p => p.id), [ids[2], ids[1]], 'the newest two, newest first')
  await sleep(250)
  t.same(await e.plays.list(), [], 'gone after keepEndedMs')
  await t.rejects(e.plays.stop(ids[2]!), { code: 'PLAY_NOT_FOUND' })
})

t.test('close stops every play as stopped, frees the sockets, and refuses new plays', async t => {
  const range = rtpPorts(4)
  const e = await engine(t, { rtpPorts: range })
  const receiver = await Receiver.open(t)
  const events: PlayEvent[] = []
  e.events.on('play', ev => events.push(ev))
  const target = { host: '127.0.0.1', port: receiver.port }
  const plays = [await e.plays.create({ target, prompts: ['menu'] }), await e.plays.create({ target, prompts: ['menu'] })]
  await e.close()
  await e.close()
  t.same(plays.map(p => p.state), ['stopped', 'stopped'])
  t.equal(events.filter(ev => ev.type === 'play.stopped').length, 2, 'a stopped event for each')
  t.equal(e.closed, true)
  await t.rejects(e.plays.create({ target, prompts: ['menu'] }), { code: 'SHUTTING_DOWN', message: /shutting down/ })
  // The ports are free again: another process can bind them.
  for (const p of plays) await bindUdp(t, p.facts.source.port)
  await sleep(30) // what left before close is still being delivered
  const count = receiver.packets.length
  await sleep(60)
  t.equal(receiver.packets.length, count, 'nothing sent after close')
})

t.test('a target that cannot be reached from here is refused before any packet', async t => {
  const e = await engine(t)
  await t.rejects(e.plays.create({ target: { host: 'localhost', port: 4000 }, prompts: ['menu'] }), { code: 'TARGET_NOT_ALLOWED', message: /not an IPv4 or IPv6 address/ })
  await t.rejects(e.plays.create({ target: { host: '127.0.0.1', port: 70000 }, prompts: ['menu'] }), { code: 'TARGET_NOT_ALLOWED', message: /not a UDP port/ })
  await t.rejects(e.plays.create({ target: { host: '127.0.0.1', port: 4000 }, prompts: [] }), { code: 'PROMPT_NOT_FOUND', message: /names no prompt/ })
})

t.test('an error the packet thread did not mean to raise is INTERNAL_ERROR, not NO_RTP_PORT; the slot is freed', async t => {
  const e = await engine(t, { maxPlays: 1 })
  const receiver = await Receiver.open(t)
  const target = { host: '127.0.0.1', port: receiver.port }
  // A codec past the types (a JavaScript caller can do this) is refused on this thread.
  const odd = { target, prompts: ['menu'], codec: 'G729', payloadType: 18 } as unknown as Parameters<typeof e.plays.create>[0]
  await t.rejects(e.plays.create(odd), { code: 'INVALID_REQUEST', message: 'codec "G729" is not one prompt-player sends; use one of PCMU, PCMA, G722, opus' })
  // An SSRC past 32 bits, also past the schema: the packet thread cannot write it.
  const wide = { target, prompts: ['menu'], ssrc: 2 ** 32 } as unknown as Parameters<typeof e.plays.create>[0]
  await t.rejects(e.plays.create(wide), { code: 'INTERNAL_ERROR', message: /^the packet thread could not start the play: / })
  t.equal(e.plays.capacityLeft, 1, 'the slot is back')
  const play = await e.plays.create({ target, prompts: ['menu'] })
  await e.plays.stop(play.id)
})
