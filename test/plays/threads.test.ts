/**
 * Several packet threads, for real: plays spread over them by packets a second, each play's
 * stop and controls reach its own thread, one thread killed fails only its plays while the
 * other's keep their pace, and a send the kernel refuses (a route that prohibits the target, in
 * a network namespace of the test's own) reaches the play that made it.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import type { PlayEvent } from '../../src/index.js'
import { ROOT, Receiver, engine, runNode, sampleLibrary, sequenceBreaks, sleep, waitUntil } from '../helpers/index.js'

/** User and system CPU time a kernel thread of this process has used, in clock ticks. */
function cpuTicks (tid: number): number {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

t.test('plays spread over two packet threads by packets a second; each play\'s stop and controls reach its thread', async t => {
  const e = await engine(t, { packetThreads: 2 })
  const receivers = await Promise.all([0, 1, 2, 3, 4].map(async () => await Receiver.open(t)))
  // A 10 ms play sends twice what a 20 ms one does: it counts twice.
  const ptimes = [10, 20, 20, 40, 40] as const
  const plays = []
  for (const [i, ptimeMs] of ptimes.entries()) plays.push(await e.plays.create({ target: { host: '127.0.0.1', port: receivers[i]!.port }, prompts: ['menu'], ptimeMs, loop: 0 }))
  const threads = e.plays.threads()
  t.equal(threads.length, 2)
  t.same(threads.map(th => th.plays).sort(), [2, 3], 'the 10 ms play\'s thread took fewer plays')
  t.same(threads.map(th => th.packetsPerSecond), [125, 125], 'loads of 100 + 25 and 50 + 50 + 25 packets a second')
  t.ok(threads.every(th => th.tid !== null) && threads[0]!.tid !== threads[1]!.tid, `two kernel threads (${threads.map(th => th.tid).join(', ')})`)
  const before = threads.map(th => cpuTicks(th.tid!))
  for (const r of receivers) await r.waitFor(20, 5000)
  // Every play: paused (its silence then arrives), resumed, then stopped, each through its own thread.
  for (const [i, play] of plays.entries()) {
    t.match(await e.plays.control(play.id, { operation: 'pause' }), { play: { paused: true }, owner: null }, `play ${i} paused on its thread`)
    const at = receivers[i]!.packets.length
    await receivers[i]!.waitFor(at + 3, 5000)
    t.ok(receivers[i]!.packets.slice(at + 1).every(p => p.rtp.payload.every(b => b === 0xff)), `play ${i}: silence while paused`)
    t.match(await e.plays.control(play.id, { operation: 'resume' }), { play: { paused: false } })
  }
  for (const [i, play] of plays.entries()) {
    t.match(await e.plays.stop(play.id), { play: { state: 'stopped' }, owner: null }, `play ${i} stopped`)
    // What left before the answer may still be on its way: read what arrives meanwhile first
    // (another play's packets, or a pause), then nothing more may come.
    const other = receivers[(i + 1) % receivers.length]!
    await other.waitFor(other.packets.length + 2, 1000).catch(async () => { await sleep(60) })
    const count = receivers[i]!.packets.length
    await other.waitFor(other.packets.length + 3, 1000).catch(async () => { await sleep(100) })
    t.equal(receivers[i]!.packets.length, count, `play ${i}: nothing after its stop answered`)
  }
  const after = e.plays.threads().map(th => cpuTicks(th.tid!))
  t.ok(after.every((ticks, i) => ticks >= before[i]!), `CPU ticks of each thread: ${before.join(', ')} -> ${after.join(', ')}`)
  t.same(e.plays.threads().map(th => [th.plays, th.packetsPerSecond]), [[0, 0], [0, 0]], 'the loads are given back')
})

t.test('one packet thread killed: only its plays fail, the other thread\'s keep their pace, and new plays start', async t => {
  const e = await engine(t, { packetThreads: 2 })
  const [ra, rb, rc] = [await Receiver.open(t), await Receiver.open(t), await Receiver.open(t)]
  const events: PlayEvent[] = []
  e.events.on('play', ev => events.push(ev))
  const a = await e.plays.create({ target: { host: '127.0.0.1', port: ra.port }, prompts: ['menu'], loop: 0 })
  const b = await e.plays.create({ target: { host: '127.0.0.1', port: rb.port }, prompts: ['menu'], loop: 0 })
  t.same(e.plays.threads().map(th => th.plays), [1, 1], 'one play on each thread')
  await rb.waitFor(10, 5000)
  // Kill a's thread, and start a play in the same turn: placed on the (equally loaded) first
  // thread, it is posted to a thread being terminated, which never answers.
  const engineOf = e.plays as unknown as { packets: { threads: Array<{ worker: { terminate: () => Promise<number> } }> } }
  void engineOf.packets.threads[0]!.worker.terminate()
  const starting = e.plays.create({ target: { host: '127.0.0.1', port: rc.port }, prompts: ['welcome'] })
  await t.rejects(starting, { code: 'PACKET_THREAD_FAILED', message: /the packet thread failed .*a new one is taking over, retry/ }, 'the start on the dying thread: not AT_CAPACITY, retry')
  await waitUntil(() => events.some(ev => ev.type === 'play.failed'), 'a\'s failure', 5000)
  t.match(events.find(ev => ev.type === 'play.failed')!.play, { id: a.id, state: 'failed', error: /the packet thread failed/ }, 'a failed, with the reason')
  const bAt = rb.packets.length
  await rb.waitFor(bAt + 25, 5000)
  t.match(await e.plays.get(b.id), { state: 'playing' }, 'b plays on')
  // b's stream across the kill: no packet missing, no gap the kill opened.
  const seqs = rb.packets.map(p => p.rtp.sequenceNumber)
  t.ok(sequenceBreaks(seqs).length === 0, `b: ${seqs.length} packets in sequence, none lost`)
  const gaps = rb.packets.slice(1).map((p, i) => p.at - rb.packets[i]!.at)
  t.ok(Math.max(...gaps) < 100, `b's largest gap across the kill: ${Math.max(...gaps).toFixed(1)} ms`)
  t.equal(events.filter(ev => ev.type === 'play.failed').length, 1, 'only a failed')
  const c = await e.plays.create({ target: { host: '127.0.0.1', port: rc.port }, prompts: ['goodbye'] })
  await rc.waitFor(10, 5000)
  t.equal(c.state, 'playing', 'a new play starts')
  t.same(e.plays.threads().map(th => th.restarts), [1, 0], 'the dead thread was replaced')
  await e.plays.stop(b.id)
  await e.plays.stop(c.id)
})

/**
 * An engine in a network namespace of its own (unshare -n, as root), where 10.213.0.0/24 is
 * routed out of lo and vanishes: plays to .2 and .3 send fine until a route prohibits .2, when
 * the kernel refuses each of its sends with EACCES.
 */
const refusedScript = (library: string): string => `
import { execFileSync } from 'node:child_process'
import { createEngine } from ${JSON.stringify(path.join(ROOT, 'src', 'index.ts'))}
const ip = (...args) => execFileSync('ip', args)
ip('link', 'set', 'lo', 'up')
ip('addr', 'add', '10.213.0.1/32', 'dev', 'lo')
ip('route', 'add', '10.213.0.0/24', 'dev', 'lo', 'src', '10.213.0.1')
const engine = await createEngine({ libraryDir: ${JSON.stringify(library)}, packetThreads: 2, rtpPorts: { min: 30000, max: 30099 } })
const ended = []
engine.events.on('play', ev => { if (ev.type !== 'play.started') ended.push(ev) })
const refused = await engine.plays.create({ target: { host: '10.213.0.2', port: 4000 }, prompts: ['menu'], loop: 0 })
const other = await engine.plays.create({ target: { host: '10.213.0.3', port: 4000 }, prompts: ['menu'], loop: 0 })
const wait = async (check) => { for (let i = 0; i < 500 && !check(); i++) await new Promise(r => setTimeout(r, 10)) }
await wait(() => refused.packetsSent > 5)
ip('route', 'add', 'prohibit', '10.213.0.2/32')
await wait(() => ended.length > 0)
const otherBefore = other.packetsSent
await new Promise(r => setTimeout(r, 200))
console.log(JSON.stringify({ ended, threads: engine.plays.threads().map(th => th.plays), refused: refused.toJSON(), other: { state: other.state, grew: other.packetsSent - otherBefore } }))
await engine.close()
`

t.test('a send the kernel refuses (EACCES: a route prohibits the target) fails that play with the reason, and only that play', async t => {
  const { code, stdout: out, stderr: err } = await runNode(['--input-type=module', '-e', refusedScript(sampleLibrary(t))], { wrapper: ['unshare', '-n'], timeoutMs: 60_000 })
  t.equal(code, 0, `the engine in its namespace ran (${err.slice(-400)})`)
  const result = JSON.parse(out.trim().split('\n').at(-1)!)
  t.equal(result.ended.length, 1, 'one play ended')
  t.match(result.ended[0], { type: 'play.failed', play: { id: result.refused.id, state: 'failed', error: 'sending to 10.213.0.2:4000 failed: send EACCES' } }, 'the refused play failed, saying what the kernel said')
  t.ok(result.refused.sendErrors >= 1, `its refused send counted (${result.refused.sendErrors as number})`)
  t.match(result.other, { state: 'playing' }, 'the play to .3 plays on')
  t.ok(result.other.grew >= 5, `and kept sending (${result.other.grew as number} packets in 200 ms)`)
  t.same(result.threads.sort(), [0, 1], 'each was on its own thread')
})
