/**
 * Controls of a running play, on a real server, received by a UDP socket on 127.0.0.1 and
 * checked packet by packet: what each packet carries, and that the wire rules hold through
 * every control (sequence never jumps, timestamp follows the media clock, no burst).
 */
import { execFileSync } from 'node:child_process'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { PlayEvent } from '../../src/index.js'
import { Receiver, buildApp, engineOf, sleep, framesOf, type Received } from '../helpers/index.js'

async function post (app: FastifyInstance, url: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await app.inject({ method: 'POST', url, payload: body as object })
  return { status: res.statusCode, json: res.json() }
}

/**
 * Uploads prompts of white noise (every 20 ms different, unlike speech with its silences), so
 * that each packet's payload tells exactly which frame of the list it is.
 */
async function noise (app: FastifyInstance, seconds: Record<string, number>): Promise<void> {
  let seed = 1
  for (const [name, d] of Object.entries(seconds)) {
    const wav = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `anoisesrc=d=${d}:c=white:a=0.5:seed=${seed++}`, '-ar', '8000', '-ac', '1', '-f', 'wav', '-'])
    const res = await app.inject({ method: 'PUT', url: `/v1/prompts/${name}`, payload: wav })
    if (res.statusCode !== 201) throw new Error(`noise upload: ${res.body}`)
  }
}

/** The payloads of prompts at 20 ms PCMU, back to back, as the engine slices them. */
function listFrames (app: FastifyInstance, names: string[]): Buffer[] {
  return names.flatMap(name => [...framesOf(engineOf(app).prompts.get(name)!, 'PCMU', 20)])
}

const isSilence = (payload: Buffer): boolean => payload.every(b => b === 0xff)

/** Sequence numbers consecutive and no duplicate; the number of gaps. */
function sequenceGaps (packets: Received[]): number {
  let gaps = 0
  for (let i = 1; i < packets.length; i++) if (packets[i]!.rtp.sequenceNumber !== (packets[i - 1]!.rtp.sequenceNumber + 1) % 65536) gaps++
  return gaps
}

async function start (t: Test, app: FastifyInstance, body: Record<string, unknown>): Promise<{ play: any, receiver: Receiver }> {
  const receiver = await Receiver.open(t)
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, ...body })
  t.equal(res.status, 201, 'the play started')
  return { play: res.json, receiver }
}

t.test('pause with silence, then resume: silence from the next packet, the audio goes on where it was, the stream unbroken', async t => {
  const app = await buildApp(t)
  const events: string[] = []
  engineOf(app).events.on('play', (e: PlayEvent) => events.push(e.type))
  await noise(app, { n1: 2, n2: 2 })
  const frames = listFrames(app, ['n1', 'n2'])
  const { play, receiver } = await start(t, app, { prompts: ['n1', 'n2'] })
  await receiver.waitFor(15)
  const paused = await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'pause' })
  t.equal(paused.status, 200)
  t.match(paused.json, { paused: true, state: 'playing' })
  t.equal((await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'pause' })).json.paused, true, 'pause on a paused play changes nothing')
  await sleep(300)
  const resumed = await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'resume' })
  t.match(resumed.json, { paused: false })
  await sleep(300)
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id as string}` })
  await sleep(50)

  const packets = receiver.packets
  t.notOk(frames.some(isSilence), 'no frame of the noise is silence')
  const firstSilence = packets.findIndex(p => isSilence(p.rtp.payload))
  t.ok(firstSilence > 0 && firstSilence <= paused.json.packetsSent, `silence from the packet after the answer at the latest (packet ${firstSilence}, ${paused.json.packetsSent as number} sent when it answered)`)
  const audioAgain = packets.findIndex((p, i) => i > firstSilence && !isSilence(p.rtp.payload))
  t.ok(audioAgain > firstSilence + 10 && audioAgain <= resumed.json.packetsSent, `audio again from the packet after the resume answered at the latest (packet ${audioAgain})`)
  t.ok(packets.slice(firstSilence, audioAgain).every(p => isSilence(p.rtp.payload)), 'silence all the while')
  t.ok(packets[audioAgain]!.rtp.payload.equals(frames[firstSilence]!), 'the audio resumes with the frame that was due when it paused')
  t.ok(packets.slice(audioAgain, audioAgain + 5).every((p, i) => p.rtp.payload.equals(frames[firstSilence + i]!)), 'and goes on from there')
  t.equal(sequenceGaps(packets), 0, 'the sequence number never jumps')
  t.ok(packets.every((p, i) => i === 0 || p.rtp.timestamp === (packets[i - 1]!.rtp.timestamp + 160) % 2 ** 32), 'the timestamp grows by 160 every packet, silence included')
  t.equal(packets.filter(p => p.rtp.marker === 1).length, 1, 'one marker: a silent pause is the same talkspurt')
  t.same(events.filter(e => e === 'play.paused' || e === 'play.resumed'), ['play.paused', 'play.resumed'], 'the events, once each')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.notMatch(metrics, /plays_ended_total\{state="playing"\}/, 'a pause is not counted as an end')
  t.match(metrics, /^prompt_player_plays_ended_total\{state="stopped"\} 1$/m)
})

t.test('pause with hold: nothing sent; resuming sets the marker and moves the timestamp on by the time paused', async t => {
  const app = await buildApp(t)
  const { play, receiver } = await start(t, app, { prompts: ['welcome', 'menu'], pauseMode: 'hold' })
  t.equal(play.pauseMode, 'hold')
  await receiver.waitFor(10)
  await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'pause' })
  await sleep(60)
  const before = receiver.packets.length
  await sleep(400)
  t.equal(receiver.packets.length, before, 'nothing is sent while held')
  await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'resume' })
  await receiver.waitFor(before + 5)
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id as string}` })
  const last = receiver.packets[before - 1]!
  const next = receiver.packets[before]!
  t.equal(next.rtp.marker, 1, 'the first packet after the hold has the marker bit')
  t.equal(next.rtp.sequenceNumber, (last.rtp.sequenceNumber + 1) % 65536, 'the sequence number goes on by one')
  const step = (next.rtp.timestamp - last.rtp.timestamp + 2 ** 32) % 2 ** 32
  const elapsed = next.at - last.at
  t.equal(step % 160, 0, 'the timestamp moved by whole packets')
  t.ok(Math.abs(step / 8 - elapsed) <= 40, `by the time held (${step / 8} ms of timestamp for ${elapsed.toFixed(0)} ms between the packets)`)
  t.equal(sequenceGaps(receiver.packets), 0)
})

/**
 * Where in `frames` each packet's payload is: following on from the packet before when it
 * matches, else found by its next four payloads (a jump). -1 for silence or no match.
 */
function positions (packets: Received[], frames: Buffer[]): number[] {
  const pos: number[] = []
  for (let j = 0; j < packets.length; j++) {
    const prev = pos[j - 1] ?? -2
    if (prev >= 0 && frames[prev + 1]?.equals(packets[j]!.rtp.payload) === true) {
      pos.push(prev + 1)
      continue
    }
    let found = -1
    for (let i = 0; i < frames.length && found < 0; i++) {
      if ([0, 1, 2, 3].every(d => j + d >= packets.length || frames[i + d]?.equals(packets[j + d]!.rtp.payload) === true)) found = i
    }
    pos.push(found)
  }
  return pos
}

t.test('seek, forward and reverse across prompt boundaries, restart, and past the end', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 3, n2: 3 })
  const names = ['n1', 'n2']
  const frames = listFrames(app, names)
  const boundary = framesOf(engineOf(app).prompts.get('n1')!, 'PCMU', 20).length
  const { play, receiver } = await start(t, app, { prompts: names })
  await receiver.waitFor(5)
  const control = async (body: Record<string, unknown>): Promise<void> => {
    const from = receiver.packets.length
    t.equal((await post(app, `/v1/plays/${play.id as string}/control`, body)).status, 200, JSON.stringify(body))
    await receiver.waitFor(from + 10)
  }
  await control({ operation: 'seek', positionMs: (boundary - 4) * 20 })
  await control({ operation: 'forward', ms: 1000 })
  await control({ operation: 'reverse', ms: 500 })
  await control({ operation: 'reverse', ms: 60_000 })
  await control({ operation: 'seek', positionMs: (boundary + 30) * 20 })
  await control({ operation: 'restart' })
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id as string}` })
  const pos = positions(receiver.packets, frames)
  t.notOk(pos.includes(-1), 'every packet carries a frame of the list')
  const jumps: Array<[number, number]> = []
  for (let j = 1; j < pos.length; j++) if (pos[j] !== pos[j - 1]! + 1) jumps.push([pos[j - 1]!, pos[j]!])
  t.equal(jumps.length, 6, 'one jump per control, nothing else')
  t.same(jumps[0]![1], boundary - 4, 'seek: to 4 packets before the next prompt')
  t.equal(jumps[1]![1] - jumps[1]![0], 51, 'forward 1000 ms: 50 packets ahead of the next one due, across the boundary')
  t.ok(jumps[1]![1] > boundary, 'into the next prompt')
  t.equal(jumps[2]![1] - jumps[2]![0], -24, 'reverse 500 ms: 25 packets back from the next one due')
  t.equal(jumps[3]![1], 0, 'reverse past the start: the start')
  t.equal(jumps[4]![1], boundary + 30, 'seek into the second prompt')
  t.equal(jumps[5]![1], 0, 'restart: the start')
  t.equal(sequenceGaps(receiver.packets), 0, 'the sequence number never jumped')
  t.ok(receiver.packets.every((p, i) => i === 0 || p.rtp.timestamp === (receiver.packets[i - 1]!.rtp.timestamp + 160) % 2 ** 32), 'nor the timestamp')
  // No burst: no more packets than packet times passed (arrival times in a busy test process
  // bunch up, so the count over the whole stream is what is checked; the pacing itself is the
  // benchmark's).
  const all = receiver.packets
  const spanMs = all.at(-1)!.at - all[0]!.at
  t.ok(all.length - 1 <= spanMs / 20 + 3, `no burst: ${all.length} packets in ${spanMs.toFixed(0)} ms`)

  // Seeking past the end ends the pass: with loop 1, the play finishes.
  const second = await start(t, app, { prompts: ['goodbye'] })
  await second.receiver.waitFor(3)
  await post(app, `/v1/plays/${second.play.id as string}/control`, { operation: 'seek', positionMs: 3_600_000 })
  await sleep(100)
  t.match((await app.inject({ url: `/v1/plays/${second.play.id as string}` })).json(), { state: 'finished', stoppedBy: null })
})

t.test('loop 3 is one continuous stream of the list three times; offsetMs starts inside it', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 1.5 })
  const frames = listFrames(app, ['n1'])
  const { play, receiver } = await start(t, app, { prompts: ['n1'], loop: 3, offsetMs: 200 })
  t.match(play, { loop: 3, loopsDone: 0 })
  await receiver.waitQuiet(300, 20_000)
  const packets = receiver.packets
  const expected = [...frames.slice(10), ...frames, ...frames]
  t.equal(packets.length, expected.length, `${expected.length} packets: the list less 10 (offsetMs 200), then twice whole`)
  t.ok(packets.every((p, i) => p.rtp.payload.equals(expected[i]!)), 'each carrying the frame due')
  t.equal(sequenceGaps(packets), 0, 'one stream: the sequence never jumps')
  t.equal(packets.filter(p => p.rtp.marker === 1).length, 1, 'one marker')
  t.match((await app.inject({ url: `/v1/plays/${play.id as string}` })).json(), { state: 'finished', loopsDone: 3 })
  const forever = await start(t, app, { prompts: ['n1'], loop: 0 })
  await forever.receiver.waitFor(frames.length * 2 + 5, 20_000)
  t.match((await app.inject({ url: `/v1/plays/${forever.play.id as string}` })).json(), { state: 'playing', loopsDone: 2 }, 'loop 0 goes on')
  t.match((await app.inject({ method: 'DELETE', url: `/v1/plays/${forever.play.id as string}` })).json(), { state: 'stopped', stoppedBy: 'api' })
  const past = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'], offsetMs: 3_600_000 })
  t.match(past, { status: 400, json: { code: 'INVALID_REQUEST', message: /^offsetMs 3600000 is past the end of the prompts, which last \d+ ms/ } })
})

t.test('refusals: an ended play is 409, an unknown operation 400, an unknown play 404; shutdown says so', async t => {
  const app = await buildApp(t)
  const { play } = await start(t, app, { prompts: ['welcome'] })
  t.match((await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'rewind' })), { status: 400, json: { code: 'INVALID_REQUEST' } })
  t.match((await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'seek' })), { status: 400, json: { code: 'INVALID_REQUEST' } }, 'seek needs positionMs')
  t.match((await post(app, '/v1/plays/p_nope/control', { operation: 'pause' })), { status: 404, json: { code: 'PLAY_NOT_FOUND' } })
  await app.inject({ method: 'DELETE', url: `/v1/plays/${play.id as string}` })
  t.match((await post(app, `/v1/plays/${play.id as string}/control`, { operation: 'pause' })), { status: 409, json: { code: 'PLAY_ENDED', message: /has stopped; only a running play can be controlled/ } })
  const last = await start(t, app, { prompts: ['welcome'] })
  await engineOf(app).close()
  t.match((await app.inject({ url: `/v1/plays/${last.play.id as string}` })).json(), { state: 'stopped', stoppedBy: 'shutdown' })
})
