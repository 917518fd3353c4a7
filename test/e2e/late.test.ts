/**
 * A stall, for real: the service's process stopped (SIGSTOP) for 300 ms while it plays, then
 * continued. With the late limit (3 ptimes), the packets due more than 60 ms before it woke are
 * skipped, counted, their sequence numbers and timestamps used up; the few less late go out at
 * once, and the stream is back on its clock. With no limit, every one of them leaves at once, in
 * a burst: the behaviour the limit is there to prevent.
 */
import t from 'tap'
import { Receiver, sampleLibrary, sleep, type Received } from '../helpers/index.js'
import { spawnServer, waitForLine } from '../helpers/server-process.js'

const STALL_MS = 300

/** Packets that arrived within 2 ms of the first one after the longest silence, and that silence. */
function afterStall (packets: Received[]): { gapMs: number, burst: number } {
  let at = 1
  for (let i = 1; i < packets.length; i++) if (packets[i]!.at - packets[i - 1]!.at > packets[at]!.at - packets[at - 1]!.at) at = i
  const burst = packets.slice(at).filter(p => p.at - packets[at]!.at < 2).length
  return { gapMs: packets[at]!.at - packets[at - 1]!.at, burst }
}

t.test('a process stopped for 300 ms: past the late limit packets are skipped, not sent in a burst, and the media clock holds', async t => {
  const limited = spawnServer(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t), PROMPT_PLAYER_LATE_LIMIT_PTIMES: '3', PROMPT_PLAYER_PACKET_THREADS: '1' })
  const unlimited = spawnServer(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t), PROMPT_PLAYER_LATE_LIMIT_PTIMES: '0', PROMPT_PLAYER_PACKET_THREADS: '1' })
  const results: Record<string, { received: Received[], play: any }> = {}
  for (const [name, run] of [['limit 3', limited], ['no limit', unlimited]] as const) {
    const { url } = JSON.parse(await waitForLine(run, /prompt-player listening/))
    const receiver = await Receiver.open(t)
    const res = await fetch(`${url as string}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'], loop: 0, rtcp: 'off' }) })
    const { id } = await res.json() as { id: string }
    await receiver.waitFor(25, 10_000)
    run.child.kill('SIGSTOP')
    await sleep(STALL_MS) // the stall itself
    run.child.kill('SIGCONT')
    const count = receiver.packets.length
    await receiver.waitFor(count + 40, 10_000)
    const play = await (await fetch(`${url as string}/v1/plays/${id}`, { method: 'DELETE' })).json()
    results[name] = { received: [...receiver.packets], play }
  }

  const limit = results['limit 3']!
  const skipped = limit.play.packetsSkipped as number
  t.ok(skipped >= 8 && skipped <= STALL_MS / 20, `limit 3: ${skipped} packets skipped of the ~${STALL_MS / 20} due in the stall`)
  const seqs = limit.received.map(p => p.rtp.sequenceNumber)
  const missing = seqs.slice(1).reduce((n, s, i) => n + ((s - seqs[i]! + 65536) % 65536) - 1, 0)
  t.equal(missing, skipped, 'the sequence numbers missing at the receiver are exactly the skipped packets')
  t.ok(limit.received.slice(1).every((p, i) => ((p.rtp.timestamp - limit.received[i]!.rtp.timestamp + 2 ** 32) % 2 ** 32) === 160 * ((p.rtp.sequenceNumber - limit.received[i]!.rtp.sequenceNumber + 65536) % 65536)),
    'every timestamp on the media clock: it moved by 160 for each sequence number used, skipped or sent')
  const l = afterStall(limit.received)
  t.ok(l.gapMs >= STALL_MS - 50, `the stall at the receiver: ${l.gapMs.toFixed(0)} ms of nothing`)
  t.ok(l.burst <= 4, `then at most the packets within the limit at once: ${l.burst}`)

  const none = results['no limit']!
  t.equal(none.play.packetsSkipped, 0, 'no limit: nothing skipped')
  const n = afterStall(none.received)
  t.ok(n.burst >= 10, `no limit: ${n.burst} packets arrived at once after the stall (the burst the limit prevents)`)
})
