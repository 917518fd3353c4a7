/**
 * The engine's events: a listener that throws never reaches the emitter nor the other
 * listeners, and its error is not lost (a process warning by default, the service's log in
 * the service). The local event log: ids, what a reader missed, and ids it cannot know.
 */
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import app, { serverOptions } from '../../service/app.js'
import { createEngine, LocalEventLog, type PlayEvent, type PlayInfo } from '../../src/index.js'
import { SafeEmitter } from '../../src/events/events.js'
import { Receiver, rtpPorts, sampleLibrary } from '../helpers/index.js'

t.test('a throwing listener: the others still run, and the error is a process warning by default', async t => {
  const emitter = new SafeEmitter<{ tick: [number] }>()
  const heard: number[] = []
  emitter.on('tick', () => { throw new Error('listener bug') })
  emitter.on('tick', n => heard.push(n))
  const warning = new Promise<Error>(resolve => process.once('warning', resolve))
  emitter.emit('tick', 7)
  t.same(heard, [7], 'the next listener ran')
  const w = await warning
  t.equal(w.name, 'ListenerError')
  t.match(w.message, /an event listener threw: Error: listener bug/)
})

t.test('in the service, a listener that throws is logged with its stack, and the play goes on', async t => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const engine = await createEngine({ libraryDir: sampleLibrary(t), rtpPorts: rtpPorts() })
  const fastify = Fastify({ ...serverOptions, logger: { level: 'info', stream } })
  await fastify.register(app, { engine })
  t.teardown(() => fastify.close())
  await fastify.ready()
  engine.events.on('play', () => { throw new Error('a metrics bug') })
  const receiver = await Receiver.open(t)
  const res = await fastify.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['welcome'] } })
  t.equal(res.statusCode, 201, 'the play started')
  await receiver.waitFor(3)
  const logged = lines.find(l => l.msg === 'an event listener threw; the event went on to the others')
  t.ok(logged, 'the error is in the log')
  t.equal(logged?.level, 50, 'at level error')
  t.match((logged?.err as { stack?: string })?.stack, /a metrics bug/, 'with its stack')
})

t.test('the local event log: ids in order, what a reader missed, and ids from elsewhere', async t => {
  const log = new LocalEventLog(3)
  const seen: string[] = []
  const stop = log.subscribe(logged => seen.push(logged.id))
  const event = (id: string): PlayEvent => ({ type: 'play.started', play: { id } as PlayInfo })
  const ids = ['a', 'b', 'c', 'd', 'e'].map(id => log.append(event(id)).id)
  t.same(seen, ids, 'every subscriber hears every event, in order')
  t.match(ids[0], new RegExp(`^${log.run}-1$`))
  t.same(await log.since(ids[3]!), { kind: 'events', events: [{ id: ids[4], event: event('e') }], lost: null }, 'after the fourth: the fifth')
  t.same(await log.since(`${log.run}-0`), { kind: 'events', events: [2, 3, 4].map(i => ({ id: ids[i], event: event('abcde'[i]!) })), lost: 'events 1 to 2' }, 'the first two are no longer kept')
  t.same(await log.since('0badf00d-3'), { kind: 'foreign' }, 'another run\'s id')
  t.same(await log.since('garbage'), { kind: 'foreign' })
  stop()
  log.append(event('f'))
  t.equal(seen.length, 5, 'unsubscribed')
})
