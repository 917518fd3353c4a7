/**
 * Entries of a play's list other than prompts, on a real server, judged by independent
 * implementations:
 * - silence between prompts: packet by packet (G.711's zero, one unbroken stream), decoded by
 *   ffmpeg as the far end in every codec (quiet for its length), counted in position, seek,
 *   offset and loop;
 * - every country's call-progress tones, decoded by ffmpeg and read by the test's own Goertzel
 *   filter against E.180's table written here; a custom tone in every codec; one making per tone;
 * - DTMF as RFC 4733 events, read by tshark's rtpevent dissector (order, timestamps, durations,
 *   end bits, markers) in PCMU and Opus, and opened by libsrtp under SRTP;
 * - every refusal, with nothing started.
 */
import { execFileSync } from 'node:child_process'
import http from 'node:http'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { Receiver, buildApp, capture, engineOf, framesOf, longestQuiet, referenceDecode, run, waitUntil } from '../helpers/index.js'
import { ffmpegReceiver, libsrtpOpen } from '../helpers/srtp-judges.js'

async function post (app: FastifyInstance, url: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await app.inject({ method: 'POST', url, payload: body as object })
  return { status: res.statusCode, json: res.json() }
}

/** White noise prompts (never quiet, every packet different) at 16 kHz. */
async function noise (app: FastifyInstance, seconds: Record<string, number>): Promise<void> {
  let seed = 7
  for (const [name, d] of Object.entries(seconds)) {
    const wav = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `anoisesrc=d=${d}:c=white:a=0.5:seed=${seed++}`, '-ar', '16000', '-ac', '1', '-f', 'wav', '-'])
    const res = await app.inject({ method: 'PUT', url: `/v1/prompts/${name}`, payload: wav })
    if (res.statusCode !== 201) throw new Error(`noise upload: ${res.body}`)
  }
}

t.test('silence between two prompts: exactly its packets of G.711 zero, in the same unbroken stream', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.5, n2: 0.5 })
  const receiver = await Receiver.open(t)
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['n1', { silence: 750 }, 'n2'], rtcp: 'off' })
  t.equal(res.status, 201, res.json.message)
  t.match(res.json, { prompts: ['n1', 'silence:750', 'n2'], durationMs: (25 + 38 + 25) * 20 }, 'listed as "silence:750"; 750 ms is 38 packets of 20 ms, rounded up')
  await waitUntil(async () => (await app.inject({ url: `/v1/plays/${res.json.id as string}` })).json().state === 'finished', 'the play to finish')
  const packets = await receiver.waitFor(88)
  t.equal(packets.length, 88, 'the prompts\' 50 packets and the silence\'s 38')
  const n1 = framesOf(engineOf(app).prompts.get('n1')!, 'PCMU', 20)
  const n2 = framesOf(engineOf(app).prompts.get('n2')!, 'PCMU', 20)
  t.ok(packets.slice(0, 25).every((p, i) => p.rtp.payload.equals(n1[i]!)), 'n1 byte for byte')
  t.ok(packets.slice(25, 63).every(p => p.rtp.payload.length === 160 && p.rtp.payload.every(b => b === 0xff)), 'then 38 payloads of µ-law zero (0xFF)')
  t.ok(packets.slice(63).every((p, i) => p.rtp.payload.equals(n2[i]!)), 'then n2 byte for byte')
  const first = packets[0]!.rtp
  t.ok(packets.every((p, i) => p.rtp.sequenceNumber === (first.sequenceNumber + i) % 65536 && p.rtp.timestamp === (first.timestamp + i * 160) % 2 ** 32 && p.rtp.ssrc === first.ssrc), 'one stream: sequence and timestamp step by one packet throughout')
  t.same(packets.map((p, i) => p.rtp.marker ? i : -1).filter(i => i >= 0), [0], 'the marker on the first packet only')
  const decoded = await referenceDecode(Buffer.concat(packets.map(p => p.rtp.payload)), 'mulaw')
  t.ok(decoded.slice(25 * 160, 63 * 160).every(x => x === 0), 'ffmpeg decodes the silence to zero')
})

t.test('in every codec, ffmpeg as the far end hears the silence\'s length of quiet between the prompts', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.5, n2: 0.5 })
  for (const [codec, rate] of [['PCMU', 8000], ['PCMA', 8000], ['G722', 16000], ['opus', 48000]] as const) {
    const ffmpeg = await ffmpegReceiver(t, { codec, sampleRate: rate })
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: ffmpeg.port }, prompts: ['n1', { silence: 600 }, 'n2'], codec })
    t.equal(res.status, 201, res.json.message)
    const heard = await ffmpeg.done
    const quiet = longestQuiet(heard, rate)
    // Noise is never quiet for long; decoders smear a few ms into the silence at each edge.
    t.ok(quiet > 540 && quiet < 660, `${codec}: ${quiet.toFixed(0)} ms of quiet for a silence of 600 ms`)
    t.ok(heard.length / rate > 1.5, `${codec}: all of it arrived (${(heard.length / rate).toFixed(2)} s decoded)`)
  }
})

t.test('silence counts in position, seek, offset and loop like a prompt of its length', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.5 })
  const receiver = await Receiver.open(t)
  // Starting 200 ms into the silence, looped twice: 30 packets of silence, n1, then the list again.
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ silence: 400 }, 'n1', { silence: 200 }], offsetMs: 200, loop: 2, rtcp: 'off' })
  t.equal(res.status, 201, res.json.message)
  t.equal(res.json.durationMs, 1100, '400 + 500 + 200 ms')
  await waitUntil(async () => (await app.inject({ url: `/v1/plays/${res.json.id as string}` })).json().state === 'finished', 'the play to finish', 20_000)
  const payloads = (await receiver.waitFor(10 + 25 + 10 + 55)).map(p => p.rtp.payload)
  t.equal(payloads.length, 100, 'the first loop from 200 ms (45 packets), then the whole list (55)')
  const isZero = (b: Buffer): boolean => b.every(x => x === 0xff)
  const shape = (from: number, to: number): boolean => payloads.slice(from, to).every(isZero)
  t.ok(shape(0, 10) && !payloads.slice(10, 35).some(isZero) && shape(35, 45) && shape(45, 65) && !payloads.slice(65, 90).some(isZero) && shape(90, 100), 'silence, n1, silence; then again from the start')
  const seekPlay = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port + 2 }, prompts: ['n1', { silence: 60000 }], rtcp: 'off' })
  t.equal(seekPlay.status, 201)
  t.equal((await post(app, `/v1/plays/${seekPlay.json.id as string}/control`, { operation: 'seek', positionMs: 30000 })).status, 200, 'a seek into the silence')
  const at = (await app.inject({ url: `/v1/plays/${seekPlay.json.id as string}` })).json()
  t.ok(at.positionMs >= 30000 && at.positionMs < 30200, `lands there (${at.positionMs as number} ms of ${at.durationMs as number})`)
  await app.inject({ method: 'DELETE', url: `/v1/plays/${seekPlay.json.id as string}` })
})

t.test('silence out of range is refused with where and why, and nothing starts', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.2 })
  const receiver = await Receiver.open(t)
  for (const silence of [0, 60001, 1.5, -5, 'long']) {
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['n1', { silence }] })
    t.equal(res.status, 400, `silence ${JSON.stringify(silence)}: 400`)
    t.match(res.json, { code: 'INVALID_REQUEST', message: /prompts\/1\/silence must be/ }, `silence ${JSON.stringify(silence)}: ${res.json.message as string}`)
  }
  t.equal(engineOf(app).plays.runningCount, 0, 'no play started')
  t.equal(receiver.packets.length, 0, 'no packet was sent')
  await t.rejects(engineOf(app).plays.create({ target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ silence: 0 }] }), { code: 'INVALID_REQUEST', message: /prompts\[0\]: silence 0 is not a whole number of ms from 1 to 60000/ }, 'the engine checks it too')
})

/** The power of one frequency in a window of samples (Goertzel), normalised to a sine's amplitude squared / 4. */
function goertzel (x: Int16Array, f: number, rate: number): number {
  const coeff = 2 * Math.cos(2 * Math.PI * f / rate)
  let s1 = 0
  let s2 = 0
  for (const v of x) {
    const s = v + coeff * s1 - s2
    s2 = s1
    s1 = s
  }
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.length * x.length)
}

const rms = (x: Int16Array): number => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / Math.max(1, x.length))

/** Runs of on (loud) and off (quiet) 20 ms frames: [on, frames], in order. */
function runs (pcm: Int16Array, frame: number): Array<[boolean, number]> {
  const out: Array<[boolean, number]> = []
  for (let i = 0; i + frame <= pcm.length; i += frame) {
    const on = rms(pcm.subarray(i, i + frame)) > 300
    if (out.length > 0 && out.at(-1)![0] === on) out.at(-1)![1]++
    else out.push([on, 1])
  }
  return out
}

/** The tables the test checks against: written here from ITU-T E.180's supplement, not read from the project. */
const EXPECTED: Record<string, Record<string, { hz: number[], cadence: number[] }>> = {
  us: { dial: { hz: [350, 440], cadence: [] }, ringback: { hz: [440, 480], cadence: [2000, 4000] }, busy: { hz: [480, 620], cadence: [500, 500] }, congestion: { hz: [480, 620], cadence: [250, 250] }, waiting: { hz: [440], cadence: [300, 10000] }, beep: { hz: [1400], cadence: [] } },
  gb: { dial: { hz: [350, 440], cadence: [] }, ringback: { hz: [400, 450], cadence: [400, 200, 400, 2000] }, busy: { hz: [400], cadence: [375, 375] }, congestion: { hz: [400], cadence: [400, 350, 225, 525] }, waiting: { hz: [400], cadence: [100, 4000] }, beep: { hz: [1400], cadence: [] } },
  de: { dial: { hz: [425], cadence: [] }, ringback: { hz: [425], cadence: [1000, 4000] }, busy: { hz: [425], cadence: [480, 480] }, congestion: { hz: [425], cadence: [240, 240] }, waiting: { hz: [425], cadence: [200, 200, 200, 5000] }, beep: { hz: [1400], cadence: [] } },
  fr: { dial: { hz: [440], cadence: [] }, ringback: { hz: [440], cadence: [1500, 3500] }, busy: { hz: [440], cadence: [500, 500] }, congestion: { hz: [440], cadence: [250, 250] }, waiting: { hz: [440], cadence: [300, 10000] }, beep: { hz: [1400], cadence: [] } },
  jp: { dial: { hz: [400], cadence: [] }, ringback: { hz: [400], cadence: [1000, 2000] }, busy: { hz: [400], cadence: [500, 500] }, congestion: { hz: [400], cadence: [500, 500] }, waiting: { hz: [400], cadence: [500, 8000] }, beep: { hz: [1400], cadence: [] } },
  au: { dial: { hz: [413, 438], cadence: [] }, ringback: { hz: [413, 438], cadence: [400, 200, 400, 2000] }, busy: { hz: [425], cadence: [375, 375] }, congestion: { hz: [425], cadence: [375, 375] }, waiting: { hz: [425], cadence: [200, 200, 200, 4400] }, beep: { hz: [1400], cadence: [] } },
  cn: { dial: { hz: [450], cadence: [] }, ringback: { hz: [450], cadence: [1000, 4000] }, busy: { hz: [450], cadence: [350, 350] }, congestion: { hz: [450], cadence: [700, 700] }, waiting: { hz: [450], cadence: [400, 4000] }, beep: { hz: [950], cadence: [] } },
  in: { dial: { hz: [400], cadence: [] }, ringback: { hz: [400], cadence: [400, 200, 400, 2000] }, busy: { hz: [400], cadence: [750, 750] }, congestion: { hz: [400], cadence: [250, 250] }, waiting: { hz: [400], cadence: [200, 100, 200, 7500] }, beep: { hz: [1400], cadence: [] } }
}

t.test('every country\'s tones: ffmpeg\'s decode has their frequencies in the on periods, quiet in the off ones, the cadence within one ptime', async t => {
  const app = await buildApp(t, { maxPlays: 60 })
  const plays: Array<{ country: string, tone: string, receiver: Receiver, id: string, cycleMs: number }> = []
  for (const [country, tones] of Object.entries(EXPECTED)) {
    for (const [tone, { cadence }] of Object.entries(tones)) {
      // One cycle of a cadence (up to the first 2.5 s of its last silence), or 400 ms of a steady tone.
      // In whole packets, so that the next cycle's first burst does not begin in the last one.
      const cycleMs = cadence.length === 0 ? 400 : Math.floor((cadence.reduce((a, b) => a + b, 0) - Math.max(0, cadence.at(-1)! - 2500)) / 20) * 20
      const receiver = await Receiver.open(t)
      const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ tone, country, durationMs: cycleMs }], rtcp: 'off' })
      t.equal(res.status, 201, `${country} ${tone}: ${res.json.message ?? 'started'}`)
      plays.push({ country, tone, receiver, id: res.json.id, cycleMs })
    }
  }
  for (const p of plays) {
    await waitUntil(async () => (await app.inject({ url: `/v1/plays/${p.id}` })).json().state === 'finished', `${p.country} ${p.tone} to finish`, 30_000)
    const { hz, cadence } = EXPECTED[p.country]![p.tone]!
    const packets = await p.receiver.waitFor(Math.ceil(p.cycleMs / 20))
    const pcm = await referenceDecode(Buffer.concat(packets.map(x => x.rtp.payload)), 'mulaw')
    const found = runs(pcm, 160)
    const expected = cadence.length === 0 ? [[true, p.cycleMs / 20]] : cadence.map((ms, i) => [i % 2 === 0, Math.min(ms, 2500) / 20])
    const cadenceOk = found.length === expected.length && found.every(([on, n], i) => on === expected[i]![0] && Math.abs(n - (expected[i]![1] as number)) <= 1)
    // Each on frame: the table's frequencies stand out over the band around them (±150 Hz and beyond).
    let frequenciesOk = true
    let quietOk = true
    for (let i = 0; i + 160 <= pcm.length; i += 160) {
      const frame = pcm.subarray(i, i + 160)
      if (rms(frame) > 300) {
        const wanted = Math.min(...hz.map(f => goertzel(frame, f, 8000)))
        const others = Math.max(...[150, 250, 1000, 2000, 3000].map(d => goertzel(frame, (Math.max(...hz) + d) % 3900 + 60, 8000)))
        if (i > 160 && i + 320 < pcm.length && !(wanted > 5 * others)) frequenciesOk = false
      } else if (rms(frame) > 30) {
        quietOk = false
      }
    }
    t.ok(cadenceOk && frequenciesOk && quietOk, `${p.country} ${p.tone}: ${hz.join('+')} Hz, on/off ${found.map(([on, n]) => `${on ? 'on' : 'off'} ${n * 20}`).join(', ')} ms (E.180: ${cadence.length === 0 ? 'steady' : cadence.join('/')})${frequenciesOk ? '' : '; frequencies wrong'}${quietOk ? '' : '; not quiet when off'}`)
  }
})

t.test('a custom tone, in every codec: its frequencies found in what ffmpeg decodes; made once per tone and codec', async t => {
  const app = await buildApp(t)
  const transcodes: string[] = []
  engineOf(app).events.on('ffmpeg', (run: { what: string }) => transcodes.push(run.what))
  for (const [codec, rate] of [['PCMA', 8000], ['G722', 16000], ['opus', 48000]] as const) {
    const ffmpeg = await ffmpegReceiver(t, { codec, sampleRate: rate })
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: ffmpeg.port }, prompts: [{ tone: { frequencies: [697, 1209], onMs: 200, offMs: 100 }, durationMs: 900 }], codec })
    t.equal(res.status, 201, res.json.message)
    t.match(res.json, { prompts: ['tone:697+1209:200/100'], durationMs: 900 })
    const heard = await ffmpeg.done
    const frame = rate / 50
    const found = runs(heard, frame).filter(([, n]) => n >= 3)
    t.same(found.slice(0, 5).map(([on]) => on), [true, false, true, false, true], `${codec}: on, off, on, off, on`)
    const on = heard.subarray(frame * 3, frame * 8)
    const at = (f: number): number => goertzel(on, f, rate)
    t.ok(at(697) > 20 * at(850) && at(1209) > 20 * at(1000), `${codec}: 697 and 1209 Hz stand out (${Math.round(at(697))}, ${Math.round(at(1209))} against ${Math.round(at(850))}, ${Math.round(at(1000))})`)
  }
  const before = transcodes.length
  const receiver = await Receiver.open(t)
  const again = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ tone: { frequencies: [697, 1209], onMs: 200, offMs: 100 }, durationMs: 3000 }, { tone: { frequencies: [1209, 697], onMs: 200, offMs: 100 }, durationMs: 100 }], codec: 'opus', rtcp: 'off' })
  t.equal(again.status, 201)
  t.equal(transcodes.length - before, 1, 'the same tone again, longer: no ffmpeg run; the other order of its frequencies is another tone: one')
  await app.inject({ method: 'DELETE', url: `/v1/plays/${again.json.id as string}` })
})

t.test('tones refused with what is known, and nothing starts', async t => {
  const app = await buildApp(t)
  const receiver = await Receiver.open(t)
  const cases: Array<[unknown, RegExp]> = [
    [{ tone: 'ringing', durationMs: 1000 }, /prompts\[0\]: no tone named "ringing"; the tones are dial, ringback, busy, congestion, waiting, beep/],
    [{ tone: 'ringback', country: 'xx', durationMs: 1000 }, /prompts\[0\]: no tones for country "xx"; the countries are us, gb, de, fr, jp, au, cn, in/],
    [{ tone: { frequencies: [4001], onMs: 100, offMs: 0 }, durationMs: 100 }, /frequencies\/0 must be <= 4000/],
    [{ tone: { frequencies: [40], onMs: 100, offMs: 0 }, durationMs: 100 }, /frequencies\/0 must be >= 50/],
    [{ tone: { frequencies: [400, 450, 500], onMs: 100, offMs: 0 }, durationMs: 100 }, /frequencies must NOT have more than 2 items/],
    [{ tone: { frequencies: [400], onMs: 105, offMs: 0 }, durationMs: 100 }, /onMs must be multiple of 10/],
    [{ tone: 'busy', durationMs: 0 }, /durationMs must be >= 1/]
  ]
  for (const [entry, message] of cases) {
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: [entry] })
    t.equal(res.status, 400, JSON.stringify(entry))
    t.match(res.json, { code: 'INVALID_REQUEST', message }, res.json.message)
  }
  t.equal(engineOf(app).plays.runningCount, 0, 'no play started')
  t.equal(receiver.packets.length, 0, 'no packet was sent')
})

/** tshark's reading of RTP on `port` in a capture: each packet's header and, for telephone events, the event. */
async function tsharkRtp (file: string, port: number, eventType: number): Promise<Array<{ seq: number, ts: number, marker: boolean, pt: number, event: number | null, end: boolean, duration: number | null }>> {
  const out = (await run('tshark', ['-r', file, '-d', `udp.port==${port},rtp`, '-d', `rtp.pt==${eventType},rtpevent`, '-Y', 'rtp', '-T', 'fields',
    '-e', 'rtp.seq', '-e', 'rtp.timestamp', '-e', 'rtp.marker', '-e', 'rtp.p_type', '-e', 'rtpevent.event_id', '-e', 'rtpevent.end_of_event', '-e', 'rtpevent.duration'])).toString()
  return out.split('\n').filter(Boolean).map(line => {
    const [seq, ts, marker, pt, event, end, duration] = line.split('\t')
    const yes = (v: string | undefined): boolean => v === '1' || v === 'True'
    return { seq: Number(seq), ts: Number(ts), marker: yes(marker), pt: Number(pt), event: event === '' || event === undefined ? null : Number(event), end: yes(end), duration: duration === '' || duration === undefined ? null : Number(duration) }
  })
}

t.test('DTMF sent into the call: tshark reads RFC 4733 events in the play\'s stream, in order, with their durations and end bits', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.3 })
  for (const [codec, clockPerMs, pt] of [['PCMU', 8, 101], ['opus', 48, 110]] as const) {
    const receiver = await Receiver.open(t)
    const pcap = await capture(t, receiver.port)
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['n1', { dtmf: '1234#', durationMs: 100, gapMs: 70 }, 'n1'], codec, dtmf: { payloadType: pt }, rtcp: 'off' })
    t.equal(res.status, 201, res.json.message)
    // Each digit 5 packets and the end twice more; 70 ms of gap is those two and 2 of silence.
    const digitPackets = 5 * 7 + 4 * 2
    const n1 = framesOf(engineOf(app).prompts.get('n1')!, codec, 20).length
    t.match(res.json, { prompts: ['n1', 'dtmf:1234#', 'n1'], durationMs: (n1 + digitPackets + n1) * 20 })
    await waitUntil(async () => (await app.inject({ url: `/v1/plays/${res.json.id as string}` })).json().state === 'finished', 'the play to finish')
    await pcap.stop(n1 + digitPackets + n1)
    const packets = await tsharkRtp(pcap.file, receiver.port, pt)
    t.equal(packets.length, n1 + digitPackets + n1, `${codec}: every packet captured`)
    t.ok(packets.every((p, i) => p.seq === (packets[0]!.seq + i) % 65536), `${codec}: one sequence, no gap, through the digits`)
    const events = packets.filter(p => p.pt === pt)
    t.equal(events.length, 35, `${codec}: 35 event packets of payload type ${pt}`)
    const byEvent: Array<typeof events> = []
    for (const p of events) {
      if (p.marker) byEvent.push([])
      byEvent.at(-1)!.push(p)
    }
    t.same(byEvent.map(e => e[0]!.event), [1, 2, 3, 4, 11], `${codec}: the digits 1, 2, 3, 4, # in order, each starting with the marker`)
    const step = 20 * clockPerMs
    for (const e of byEvent) {
      t.ok(e.length === 7 && e.every(p => p.ts === e[0]!.ts && p.event === e[0]!.event), `${codec} event ${e[0]!.event!}: 7 packets with one timestamp`)
      t.same(e.map(p => p.duration), [1, 2, 3, 4, 5, 5, 5].map(k => k * step), `${codec} event ${e[0]!.event!}: the duration growing one ptime a packet, then the end sent again`)
      t.same(e.map(p => p.end), [false, false, false, false, true, true, true], `${codec} event ${e[0]!.event!}: the end bit on the last three`)
      const index = packets.indexOf(e[0]!)
      t.equal(e[0]!.ts, (packets[0]!.ts + index * step) % 2 ** 32, `${codec} event ${e[0]!.event!}: its timestamp is the media clock at its start`)
    }
    const audio = packets.filter(p => p.pt !== pt)
    t.ok(audio.every(p => p.ts === (packets[0]!.ts + packets.indexOf(p) * step) % 2 ** 32), `${codec}: the audio after the digits is on the media clock`)
    t.same(packets.map((p, i) => p.marker ? i : -1).filter(i => i >= 0), [0, ...byEvent.map(e => packets.indexOf(e[0]!))], `${codec}: markers on the stream's first packet and each event's first only`)
  }
})

t.test('DTMF refused with where and why', async t => {
  const app = await buildApp(t)
  const receiver = await Receiver.open(t)
  for (const [entry, message] of [
    [{ dtmf: '' }, /prompts\/0\/dtmf must NOT have fewer than 1 characters/],
    [{ dtmf: '12x' }, /prompts\/0\/dtmf must match pattern/],
    [{ dtmf: '1', durationMs: 20 }, /prompts\/0\/durationMs must be >= 40/],
    [{ dtmf: '1', gapMs: -1 }, /prompts\/0\/gapMs must be >= 0/]
  ] as const) {
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: [entry] })
    t.equal(res.status, 400, JSON.stringify(entry))
    t.match(res.json, { code: 'INVALID_REQUEST', message }, res.json.message)
  }
  await t.rejects(engineOf(app).plays.create({ target: { host: '127.0.0.1', port: receiver.port }, prompts: [{ dtmf: '' }] }), { code: 'INVALID_REQUEST', message: /prompts\[0\]: dtmf "" is not 1 to 32 of the digits/ }, 'the engine checks it too')
  t.equal(receiver.packets.length, 0, 'no packet was sent')
})

t.test('under SRTP, digits, a tone and silence are sealed like the audio: libsrtp opens every packet, and the events are there once opened', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.2 })
  const suite = 'AES_CM_128_HMAC_SHA1_80'
  const key = Buffer.from(Array.from({ length: 30 }, (_, i) => i * 7 + 1)).toString('base64')
  const receiver = await Receiver.open(t)
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['n1', { dtmf: '9*', gapMs: 100 }, { tone: 'beep', durationMs: 200 }, { silence: 100 }], ssrc: 0x5eed, dtmf: { payloadType: 101 }, srtp: { suite, localKey: key }, rtcp: 'off' })
  t.equal(res.status, 201, res.json.message)
  const total = res.json.durationMs / 20
  await waitUntil(async () => (await app.inject({ url: `/v1/plays/${res.json.id as string}` })).json().state === 'finished', 'the play to finish')
  const packets = await receiver.waitFor(total)
  t.ok(packets.every(p => p.raw.length > 12 + 4 + 10 - 1) && packets.some(p => (p.raw[1]! & 0x7f) === 101), 'sealed packets, some of payload type 101')
  const opened = await libsrtpOpen(t, { suite, key, ssrc: 0x5eed, packets: packets.map(p => p.raw) })
  t.equal(opened.length, total, `libsrtp authenticated and opened all ${total} packets`)
  const events = opened.filter(p => (p[1]! & 0x7f) === 101).map(p => ({ event: p[12]!, end: (p[13]! & 0x80) !== 0, duration: p.readUInt16BE(14), marker: (p[1]! & 0x80) !== 0 }))
  t.same(events.map(e => e.event), [9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10], 'the digits 9 and * in the clear once opened')
  t.same(events.map(e => e.end), [false, false, false, false, true, true, true, false, false, false, false, true, true, true], 'with their end bits')
  t.same(events.map(e => e.marker), [true, false, false, false, false, false, false, true, false, false, false, false, false, false], 'and their markers')
})

t.test('everything mixed with a prompt and a URL, in G.722 and looped: one unbroken stream by tshark, the events where the list puts them, pause and seek counting them', async t => {
  const app = await buildApp(t)
  await noise(app, { n1: 0.2 })
  // A URL prompt: a WAV served by an origin on loopback.
  const wav = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'anoisesrc=d=0.2:c=pink:a=0.5:seed=3', '-ar', '16000', '-ac', '1', '-f', 'wav', '-'])
  const origin = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'audio/wav' }).end(wav) })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  t.teardown(() => origin.close())
  const url = `http://127.0.0.1:${(origin.address() as { port: number }).port}/n2.wav`
  const list = ['n1', { silence: 100 }, { url }, { tone: 'busy', country: 'de', durationMs: 960 }, { dtmf: '5', durationMs: 60 }, { tone: { frequencies: [1000], onMs: 100, offMs: 0 }, durationMs: 100 }]
  const receiver = await Receiver.open(t)
  const pcap = await capture(t, receiver.port)
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: list, codec: 'G722', dtmf: { payloadType: 101 }, loop: 2, rtcp: 'off' })
  t.equal(res.status, 201, res.json.message)
  // 10 + 5 + 10 + 48 + (3 + 2) + 5 packets of 20 ms.
  t.match(res.json, { prompts: ['n1', 'silence:100', url, 'tone:busy:de', 'dtmf:5', 'tone:1000:100/0'], durationMs: 83 * 20 })
  const id = res.json.id as string
  // Into the tone: a seek to 500 ms, then a pause of 200 ms in silence mode.
  await waitUntil(async () => (await app.inject({ url: `/v1/plays/${id}` })).json().positionMs >= 100, 'the play under way')
  t.equal((await post(app, `/v1/plays/${id}/control`, { operation: 'seek', positionMs: 500 })).status, 200)
  t.equal((await post(app, `/v1/plays/${id}/control`, { operation: 'pause' })).status, 200)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal((await post(app, `/v1/plays/${id}/control`, { operation: 'resume' })).status, 200)
  await waitUntil(async () => (await app.inject({ url: `/v1/plays/${id}` })).json().state === 'finished', 'the play to finish', 20_000)
  const play = (await app.inject({ url: `/v1/plays/${id}` })).json()
  t.equal(play.loopsDone, 2, 'both loops played')
  await pcap.stop(play.packetsSent)
  const packets = await tsharkRtp(pcap.file, receiver.port, 101)
  t.equal(packets.length, play.packetsSent, `tshark reads every packet sent (${play.packetsSent as number})`)
  t.ok(packets.every((p, i) => p.seq === (packets[0]!.seq + i) % 65536), 'one sequence, no gap')
  const audio = packets.filter(p => p.pt === 9)
  t.ok(audio.every(p => (p.ts - packets[0]!.ts - packets.indexOf(p) * 160) % 2 ** 32 === 0), 'G.722\'s audio on its 8 kHz media clock throughout, across the seek, the pause and the loop')
  const digits = packets.filter(p => p.pt === 101)
  t.same(digits.filter(p => p.marker).map(p => p.event), [5, 5], 'the digit once per loop')
  t.same(digits.map(p => p.duration), [160, 320, 480, 480, 480, 160, 320, 480, 480, 480], 'its durations one ptime a step, then the end twice more, in each loop')
})
