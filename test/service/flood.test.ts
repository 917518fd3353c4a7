/**
 * A connection flood, drilled on the real server process under a low open-file limit: more
 * idle TCP connections than the process has descriptors, not one byte sent. The service caps
 * connections below the limit (keeping descriptors for the plays' sockets), closes those that
 * send nothing, survives any EMFILE, keeps the running play's pacing, and answers at once
 * when the flood ends.
 */
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { Receiver, sampleLibrary, sleep } from '../helpers/index.js'
import { spawnServer, waitForLine } from '../helpers/server-process.js'

const LIMIT = 400
const MAX_PLAYS = 50
const FLOOD = 1000

async function connectAll (port: number, count: number): Promise<{ sockets: net.Socket[], closed: () => number }> {
  let closed = 0
  const sockets: net.Socket[] = []
  for (let i = 0; i < count; i++) {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.on('close', () => { closed++ })
    sockets.push(socket)
  }
  return { sockets, closed: () => closed }
}

t.test('a flood of idle connections past the open-file limit: capped, closed, survived; the play keeps its pacing', async t => {
  const run = spawnServer(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t), PROMPT_PLAYER_MAX_PLAYS: String(MAX_PLAYS) }, { wrapper: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`] })
  const line = JSON.parse(await waitForLine(run, /prompt-player listening/))
  t.equal(line.openFileLimit, LIMIT, 'the limit is seen')
  t.ok(line.maxConnections > 16 && line.maxConnections <= LIMIT - 2 * MAX_PLAYS, `connections are capped below the limit, leaving the plays their two sockets each (${line.maxConnections as number})`)
  const port = Number(new URL(line.url as string).port)

  const receiver = await Receiver.open(t)
  const started = await fetch(`${line.url as string}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu', 'welcome', 'goodbye', 'menu'] }) })
  t.equal(started.status, 201, 'a play runs before the flood')
  const play = await started.json() as { id: string, durationMs: number }
  await receiver.waitFor(10)

  const floodAt = performance.now()
  const flood = await connectAll(port, FLOOD)
  t.teardown(() => { for (const s of flood.sockets) s.destroy() })
  // Past the cap, Node closes each new connection at once.
  for (let i = 0; i < 40 && flood.closed() < FLOOD - line.maxConnections; i++) await sleep(50)
  t.ok(flood.closed() >= FLOOD - line.maxConnections, `connections past the cap are closed at once (${flood.closed()} of ${FLOOD})`)
  // Those within it send nothing, and are closed a few seconds later.
  for (let i = 0; i < 200 && flood.closed() < FLOOD; i++) await sleep(50)
  t.equal(flood.closed(), FLOOD, `every idle connection is closed (after ${Math.round(performance.now() - floodAt)} ms)`)

  t.equal(run.child.exitCode, null, 'the service is alive')
  const asked = performance.now()
  const ready = await fetch(`${line.url as string}/readyz`)
  t.equal(ready.status, 200, `it answers once the flood ends (in ${Math.round(performance.now() - asked)} ms)`)
  const during = receiver.packets.filter(p => p.at >= floodAt)
  t.ok(during.length > 100, `the play went on through the flood (${during.length} packets)`)
  let maxGap = 0
  let lost = 0
  for (let i = 1; i < during.length; i++) {
    maxGap = Math.max(maxGap, during[i]!.at - during[i - 1]!.at)
    lost += ((during[i]!.rtp.sequenceNumber - during[i - 1]!.rtp.sequenceNumber + 65536) % 65536) - 1
  }
  t.equal(lost, 0, 'no packet lost or skipped during the flood')
  // A generous bound: a stalled or dead sender shows as seconds; pacing itself is measured by
  // the benchmark, not here.
  t.ok(maxGap < 250, `no stall during the flood (largest gap ${maxGap.toFixed(1)} ms)`)
  const state = await (await fetch(`${line.url as string}/v1/plays/${play.id}`)).json() as { state: string }
  t.equal(state.state, 'playing', 'the play is still playing')
  const another = await fetch(`${line.url as string}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'] }) })
  t.equal(another.status, 201, 'and a new play starts')
})

t.test('with the cap set past the limit, descriptors do run out: EMFILE is logged and survived', async t => {
  const run = spawnServer(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t), PROMPT_PLAYER_MAX_PLAYS: String(MAX_PLAYS), PROMPT_PLAYER_MAX_CONNECTIONS: '5000' }, { wrapper: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`] })
  const line = JSON.parse(await waitForLine(run, /prompt-player listening/))
  t.ok(run.lines.some(l => /PROMPT_PLAYER_MAX_CONNECTIONS is 5000, more than the \d+ the open-file limit leaves/.test(l)), 'the startup warns that the cap is past the limit')
  const receiver = await Receiver.open(t)
  const started = await fetch(`${line.url as string}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu', 'welcome'] }) })
  t.equal(started.status, 201)
  const flood = await connectAll(Number(new URL(line.url as string).port), FLOOD)
  t.teardown(() => { for (const s of flood.sockets) s.destroy() })
  await waitForLine(run, /out of file descriptors \(EMFILE/, 10_000)
  t.pass('the service ran out of descriptors, and said so')
  for (let i = 0; i < 200 && flood.closed() < FLOOD; i++) await sleep(50)
  for (const s of flood.sockets) s.destroy()
  await sleep(200)
  t.equal(run.child.exitCode, null, 'the service is alive')
  t.equal((await fetch(`${line.url as string}/readyz`)).status, 200, 'and answers once the flood ends')
  const before = receiver.packets.length
  await sleep(200)
  t.ok(receiver.packets.length > before, 'the play is still sending')
})
