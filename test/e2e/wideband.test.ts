/**
 * G.722 and Opus end to end, judged by independent implementations: ffmpeg as the call's far
 * end (an SDP with a=rtpmap:9 G722/8000 or a=rtpmap:111 opus/48000/2) decodes what a real
 * server sent, and the audio is compared with the source at 16 and 48 kHz; tshark's RTP
 * analysis reads a capture of plays paused in hold mode and seeked.
 */
import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Receiver, bandRms, buildApp, capture, correlation, decodeAt, engineOf, longestQuiet, run, sampleLibrary, tempDir, waitUntil, framesOf } from '../helpers/index.js'
import { ffmpegReceiver, libsrtpOpen } from '../helpers/srtp-judges.js'

/** A 1 s sweep from 200 Hz to 7 kHz at 48 kHz: a waveform that no lag but the right one matches, with energy G.711 cuts off. */
async function sweep (dir: string): Promise<string> {
  const file = path.join(dir, 'sweep.wav')
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'aevalsrc=0.4*sin(2*PI*(200*t+3400*t*t)):s=48000:d=1', '-c:a', 'pcm_s16le', file])
  return file
}

async function post (app: FastifyInstance, url: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await app.inject({ method: 'POST', url, payload: body as Record<string, unknown> })
  return { status: res.statusCode, json: res.json() }
}

async function setup (t: Test): Promise<{ app: FastifyInstance, source: string }> {
  const dir = tempDir(t, 'wideband-')
  const source = await sweep(dir)
  const app = await buildApp(t, { libraryDir: sampleLibrary(t) })
  const res = await app.inject({ method: 'PUT', url: '/v1/prompts/sweep', payload: fs.readFileSync(source), headers: { 'content-type': 'application/octet-stream' } })
  if (res.statusCode !== 201) throw new Error(`upload failed: ${res.body}`)
  return { app, source }
}

t.test('the renditions made at upload, reported by GET', async t => {
  const { app, source } = await setup(t)
  const prompt = (await app.inject({ method: 'GET', url: '/v1/prompts/sweep' })).json()
  const byCodec = Object.fromEntries(prompt.renditions.map((r: any) => [`${r.codec}/${r.frameMs}`, r.bytes]))
  t.same(Object.keys(byCodec).sort(), ['G722/null', 'PCMA/null', 'PCMU/null', 'opus/20'], 'G.711 in both laws, G.722, and Opus at 20 ms')
  t.equal(byCodec['PCMU/null'], 8000, '1 s of G.711: 8,000 bytes')
  t.equal(byCodec['G722/null'], 8000, '1 s of G.722: 8,000 bytes (two 16 kHz samples a byte)')
  // 32 kbit/s for 1 s is 4,000 bytes of Opus, plus 2 bytes of length per 20 ms packet.
  t.ok(byCodec['opus/20'] > 3000 && byCodec['opus/20'] < 6000, `Opus at 32 kbit/s: ${byCodec['opus/20']} bytes`)

  // opusBitrate (PROMPT_PLAYER_OPUS_BITRATE) sets the encoder's rate.
  const rich = await buildApp(t, { libraryDir: tempDir(t), opusBitrate: 64000 })
  const res = await rich.inject({ method: 'PUT', url: '/v1/prompts/sweep', payload: fs.readFileSync(path.join(path.dirname(source), 'sweep.wav')), headers: { 'content-type': 'application/octet-stream' } })
  const opus64 = res.json().renditions.find((r: any) => r.codec === 'opus').bytes
  t.ok(opus64 > 1.6 * byCodec['opus/20'], `at 64 kbit/s the Opus rendition is ${opus64} bytes, ${(opus64 / byCodec['opus/20']).toFixed(2)} times the 32 kbit/s one`)
})

t.test('G.722: ffmpeg decodes 16 kHz audio that matches the source, with the band above 4 kHz that G.711 loses', async t => {
  const { app, source } = await setup(t)
  const heard: Record<string, Int16Array> = {}
  for (const codec of ['G722', 'PCMU'] as const) {
    const receiver = await ffmpegReceiver(t, { codec, sampleRate: 16000 })
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['sweep'], codec })
    t.equal(res.status, 201, res.json.message)
    t.match(res.json, { codec, payloadType: codec === 'G722' ? 9 : 0, durationMs: 1000 })
    heard[codec] = await receiver.done
    t.ok(receiver.endedByItself(), `${codec}: ffmpeg ended at the play's RTCP BYE`)
  }
  const reference = await decodeAt(source, 16000)
  const g722 = heard.G722!
  t.ok(Math.abs(g722.length - 16000) < 1600, `G.722: ${g722.length} samples at 16 kHz for 1 s`)
  const c = correlation(reference, g722, 200)
  t.ok(c > 0.9, `G.722 as ffmpeg decodes it correlates with the source at 16 kHz: ${c.toFixed(3)}`)
  const sourceHigh = await bandRms(reference)
  const g722High = await bandRms(g722)
  const g711High = await bandRms(heard.PCMU!)
  t.ok(g722High > 0.5 * sourceHigh, `G.722 keeps the band from 5 to 7 kHz: RMS ${g722High.toFixed(0)} of the source's ${sourceHigh.toFixed(0)}`)
  t.ok(g722High > 10 * g711High, `G.711 of the same source does not (RMS ${g711High.toFixed(0)})`)
})

/**
 * The source through libopus and back, as ffmpeg does it on its own (same bitrate and frame
 * duration): what a perfect transport of the encoder's packets decodes to. libopus is
 * deterministic, so what arrived must match it almost exactly, whatever Opus loses of a sweep.
 */
async function opusRoundTrip (dir: string, source: string, frameMs: number): Promise<Int16Array> {
  const ogg = path.join(dir, `round-trip-${frameMs}.ogg`)
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', source, '-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-b:a', '32k', '-frame_duration', String(frameMs), ogg])
  return await decodeAt(ogg, 48000)
}

t.test('Opus: ffmpeg decodes 48 kHz audio that matches the source, at every ptime', async t => {
  const { app, source } = await setup(t)
  const dir = tempDir(t, 'opus-')
  const reference = await decodeAt(source, 48000)
  const reversed = reference.slice().reverse()
  // The four packet times at once: each its own far end.
  const ptimes = [20, 60, 10, 40]
  const receivers = await Promise.all(ptimes.map(async () => await ffmpegReceiver(t, { codec: 'opus', sampleRate: 48000, payloadType: 96 })))
  const plays = await Promise.all(ptimes.map(async (ptimeMs, i) => await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receivers[i]!.port }, prompts: ['sweep'], codec: 'opus', payloadType: 96, ptimeMs })))
  for (const [i, ptimeMs] of ptimes.entries()) {
    t.equal(plays[i]!.status, 201, plays[i]!.json.message)
    t.match(plays[i]!.json, { codec: 'opus', payloadType: 96, ptimeMs })
    const heard = await receivers[i]!.done
    t.ok(receivers[i]!.endedByItself(), `${ptimeMs} ms: ffmpeg ended at the play's RTCP BYE`)
    t.ok(Math.abs(heard.length - 48000) < 4800, `${ptimeMs} ms: ${heard.length} samples at 48 kHz for 1 s`)
    // Opus is perceptual: against the source the match is close (0.97-0.98 here at 32 kbit/s),
    // against libopus's own round trip near exact.
    const c = correlation(reference, heard, 1000)
    t.ok(c > 0.85, `${ptimeMs} ms: what ffmpeg decoded correlates with the source at 48 kHz: ${c.toFixed(3)}`)
    const unrelated = correlation(reversed, heard, 1000)
    t.ok(unrelated < 0.2, `${ptimeMs} ms: and not with the source played backwards (${unrelated.toFixed(3)})`)
    const exact = correlation(await opusRoundTrip(dir, source, ptimeMs), heard, 1000)
    t.ok(exact > 0.99, `${ptimeMs} ms: it is what libopus's own encode and decode of the source gives: ${exact.toFixed(4)}`)
  }
  const prompt = (await app.inject({ method: 'GET', url: '/v1/prompts/sweep' })).json()
  t.same(prompt.renditions.filter((r: any) => r.codec === 'opus').map((r: any) => r.frameMs), [10, 20, 40, 60], 'the Opus renditions the plays needed were made once and kept')
})

/** tshark's reading of a capture, with UDP `port` decoded as RTP: its stream analysis (-z rtp,streams) and each packet's header fields. */
async function tshark (file: string, port: number): Promise<{ streams: string[][], packets: Array<{ at: number, seq: number, timestamp: number, marker: boolean, payloadBytes: number }>, reports: Array<{ at: number, packets: number, octets: number, timestamp: number }> }> {
  const decodeAs = ['-d', `udp.port==${port},rtp`, '-d', `udp.port==${port + 1},rtcp`]
  const report = (await run('tshark', ['-r', file, ...decodeAs, '-q', '-z', 'rtp,streams'])).toString()
  // One row per stream: start, end, addresses and ports, SSRC, payload, packets, lost (n (x%)),
  // delta min/mean/max, jitter min/mean/max, and "X" where tshark saw a problem.
  const streams = report.split('\n').filter(line => /^\s+\d+\.\d+\s+\d+\.\d+\s+\S+\s+\d+/.test(line)).map(line => line.trim().split(/\s+/))
  const fields = async (filter: string, names: string[]): Promise<string[][]> =>
    (await run('tshark', ['-r', file, ...decodeAs, '-Y', filter, '-T', 'fields', ...names.flatMap(n => ['-e', n])])).toString().split('\n').filter(Boolean).map(line => line.split('\t'))
  const packets = (await fields('rtp', ['frame.time_relative', 'rtp.seq', 'rtp.timestamp', 'rtp.marker', 'udp.length'])).map(([at, seq, timestamp, marker, udp]) =>
    ({ at: Number(at) * 1000, seq: Number(seq), timestamp: Number(timestamp), marker: marker === '1' || marker === 'True', payloadBytes: Number(udp) - 8 - 12 }))
  const reports = (await fields('rtcp.pt == 200', ['frame.time_relative', 'rtcp.sender.packetcount', 'rtcp.sender.octetcount', 'rtcp.timestamp.rtp'])).map(([at, count, octets, timestamp]) =>
    ({ at: Number(at) * 1000, packets: Number(count), octets: Number(octets), timestamp: Number(timestamp) }))
  return { streams, packets, reports }
}

t.test('tshark finds no sequence or timestamp errors, across a pause in hold mode and a seek', async t => {
  const { app } = await setup(t)
  for (const [codec, clockPerMs] of [['G722', 8], ['opus', 48]] as const) {
    const receiver = await Receiver.open(t)
    const port = receiver.port
    const cap = await capture(t, port)
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port }, prompts: ['sweep'], codec, loop: 0, pauseMode: 'hold' })
    t.equal(res.status, 201, res.json.message)
    const id = res.json.id
    const control = async (body: unknown): Promise<void> => {
      const r = await post(app, `/v1/plays/${id}/control`, body)
      t.equal(r.status, 200, `${codec}: ${JSON.stringify(body)}`)
    }
    await receiver.waitFor(15)
    await control({ operation: 'pause' })
    const paused = receiver.packets.length
    await new Promise(resolve => setTimeout(resolve, 200))
    t.ok(receiver.packets.length - paused <= 1, `${codec}: nothing sent while held (${receiver.packets.length - paused} packets)`)
    await control({ operation: 'resume' })
    await receiver.waitFor(paused + 10)
    await control({ operation: 'seek', positionMs: 700 })
    // Past the seek, to the end of the prompt and into the next loop.
    await receiver.waitFor(receiver.packets.length + 40)
    await app.inject({ method: 'DELETE', url: `/v1/plays/${id}` })
    const sent = receiver.packets.length
    await cap.stop(sent)
    const { streams, packets, reports } = await tshark(cap.file, port)
    t.equal(streams.length, 1, `${codec}: one RTP stream in the capture`)
    const row = streams[0]!
    t.equal(Number(row[8]), sent, `${codec}: tshark counts the ${sent} packets sent`)
    t.equal(row[9], '0', `${codec}: and none lost (no sequence gap)`)
    t.notOk(row.at(-1) === 'X', `${codec}: and flags no problem (wrong sequence or timestamp): ${row.join(' ')}`)
    if (codec === 'G722') {
      // tshark knows G.722's RTP clock (8000, RFC 3551 §4.5.2): a timestamp growing by 16 a
      // millisecond would show as jitter of whole packet times.
      t.ok(Number(row[16]) < 5, `G722: tshark's jitter on the 8 kHz clock stays under 5 ms (max ${row[16]} ms)`)
    }
    // Each packet's header as tshark decoded it: the sequence never jumps, the timestamp grows
    // by one ptime of the codec's clock, and after the hold by the time held, with the marker.
    let problems = 0
    let markers = 0
    for (let k = 1; k < packets.length; k++) {
      const p = packets[k]!
      const step = (p.timestamp - packets[k - 1]!.timestamp + 2 ** 32) % 2 ** 32
      if (p.seq !== (packets[k - 1]!.seq + 1) % 65536) problems++
      if (p.marker) {
        markers++
        if (step % (20 * clockPerMs) !== 0 || step < 200 / 20 * 20 * clockPerMs) problems++
      } else if (step !== 20 * clockPerMs) {
        problems++
      }
    }
    t.equal(problems, 0, `${codec}: sequence +1 and timestamp +${20 * clockPerMs} per packet, across the hold and the seek`)
    t.equal(markers, 1, `${codec}: one marker after the start, on the packet after the hold`)

    // RTCP: the sender report sent with the BYE counts this codec's octets (Opus's vary by
    // packet) and reads the codec's clock at the instant it left.
    const last = reports.at(-1)
    t.ok(last !== undefined, `${codec}: tshark decoded the sender report sent with the BYE`)
    if (last === undefined) continue
    t.equal(last.packets, sent, `${codec}: the report counts the ${sent} packets`)
    t.equal(last.octets, packets.reduce((n, p) => n + p.payloadBytes, 0), `${codec}: and their payload octets (${last.octets})`)
    const first = packets[0]!
    const clockMs = ((last.timestamp - first.timestamp + 2 ** 32) % 2 ** 32) / clockPerMs
    const wallMs = last.at - first.at
    t.ok(Math.abs(clockMs - wallMs) < 5, `${codec}: its RTP timestamp is the media clock at ${clockPerMs} per ms: ${clockMs.toFixed(1)} ms after the first packet's, sent ${wallMs.toFixed(1)} ms after it`)
  }
})

/** The longest run of samples under `level` in magnitude, in ms at `rate`. */
t.test("a pause in silence mode sends the codec's silence: ffmpeg decodes it to quiet, the stream never stops", async t => {
  const { app } = await setup(t)
  for (const [codec, rate] of [['G722', 16000], ['opus', 48000]] as const) {
    const ffmpeg = await ffmpegReceiver(t, { codec, sampleRate: rate })
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: ffmpeg.port }, prompts: ['sweep'], codec })
    t.equal(res.status, 201, res.json.message)
    const id = res.json.id
    await waitUntil(async () => (await app.inject({ url: `/v1/plays/${id}` })).json().positionMs >= 300, 'the sweep to play 300 ms')
    t.equal((await post(app, `/v1/plays/${id}/control`, { operation: 'pause' })).status, 200)
    await new Promise(resolve => setTimeout(resolve, 1000))
    t.equal((await post(app, `/v1/plays/${id}/control`, { operation: 'resume' })).status, 200)
    const heard = await ffmpeg.done
    // The sweep is never quiet for more than a few ms; the pause is quiet for its whole second
    // (less what a decoder spends fading in and out).
    const quiet = longestQuiet(heard, rate)
    t.ok(quiet > 850 && quiet < 1200, `${codec}: ${quiet.toFixed(0)} ms of quiet in what ffmpeg decoded, for a pause of 1000 ms`)
    const play = (await app.inject({ url: `/v1/plays/${id}` })).json()
    t.ok(play.packetsSent >= 95, `${codec}: the silence was sent: ${play.packetsSent} packets for 1 s of prompt and 1 s of pause`)
  }
})

t.test('SRTP with G.722 and Opus: ffmpeg decodes AES-CM live; libsrtp opens every GCM packet, whatever its length', async t => {
  const { app, source } = await setup(t)
  const suite = 'AES_CM_128_HMAC_SHA1_80'
  const key = Buffer.from(Array.from({ length: 30 }, (_, i) => i * 7 + 1)).toString('base64')
  const ffmpeg = await ffmpegReceiver(t, { suite, key, codec: 'G722', sampleRate: 16000 })
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: ffmpeg.port }, prompts: ['sweep'], codec: 'G722', srtp: { suite, localKey: key } })
  t.equal(res.status, 201, res.json.message)
  const c = correlation(await decodeAt(source, 16000), await ffmpeg.done, 200)
  t.ok(c > 0.9, `G.722 over SRTP as ffmpeg decrypts and decodes it correlates with the source at ${c.toFixed(3)}`)
  t.ok(ffmpeg.endedByItself(), 'ffmpeg ended at the SRTCP BYE')

  const gcm = 'AEAD_AES_128_GCM'
  const gcmKey = Buffer.from(Array.from({ length: 28 }, (_, i) => 255 - i)).toString('base64')
  const receiver = await Receiver.open(t)
  const play = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['sweep'], codec: 'opus', ssrc: 0x0b05, srtp: { suite: gcm, localKey: gcmKey } })
  t.equal(play.status, 201, play.json.message)
  const expected = framesOf(engineOf(app).prompts.get('sweep')!, 'opus', 20)
  await receiver.waitFor(expected.length, 15_000)
  const sizes = new Set(receiver.packets.map(p => p.raw.length))
  t.ok(sizes.size > 5, `Opus packets of ${sizes.size} different lengths`)
  const opened = await libsrtpOpen(t, { suite: gcm, key: gcmKey, ssrc: 0x0b05, packets: receiver.packets.map(p => p.raw) })
  t.equal(opened.length, expected.length, `libsrtp authenticated and opened all ${expected.length} packets`)
  const wrong = opened.filter((p, k) => !p.subarray(12).equals(expected[k]!)).length
  t.equal(wrong, 0, 'each is the Opus packet of the rendition, in order')
})

t.test('offsets and seeks land on packet boundaries of the codec; refusals name what works', async t => {
  const { app } = await setup(t)
  const receiver = await Receiver.open(t)
  const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['sweep'], codec: 'opus', ptimeMs: 60, offsetMs: 610, rtcp: 'off' })
  t.equal(res.status, 201, res.json.message)
  const frames = framesOf(engineOf(app).prompts.get('sweep')!, 'opus', 60)
  await receiver.waitFor(frames.length - 10)
  await receiver.waitQuiet(200)
  t.equal(receiver.packets.length, frames.length - 10, `offsetMs 610 at 60 ms starts at packet 10 (600 ms): ${receiver.packets.length} of ${frames.length} sent`)
  t.ok(receiver.packets[0]!.rtp.payload.equals(frames[10]!), 'the first packet sent is the rendition\'s 11th, whole')

  for (const [body, pattern] of [
    [{ codec: 'opus', ptimeMs: 30 }, /ptimeMs 30 is not a packet time of opus; use one of 10, 20, 40, 60/],
    [{ codec: 'G722', ptimeMs: 60 }, /ptimeMs 60 is not a packet time of G722; use one of 10, 20, 30, 40/],
    [{ codec: 'PCMU', ptimeMs: 60 }, /ptimeMs 60 is not a packet time of PCMU/],
    [{ codec: 'opus', payloadType: 9 }, /payloadType 9 is not dynamic; opus has no static payload type/],
    [{ codec: 'G729' }, /^body\/codec must be one of PCMU, PCMA, G722, opus$/]
  ] as const) {
    const before = engineOf(app).prompts.get('sweep')!.describe().renditions.length
    const refused = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['sweep'], ...body })
    t.equal(refused.status, 400, JSON.stringify(body))
    t.match(refused.json, { code: 'INVALID_REQUEST', message: pattern }, refused.json.message)
    t.equal(engineOf(app).prompts.get('sweep')!.describe().renditions.length, before, 'and no rendition was made for it')
  }
})

t.test('a library stored before G.722 and Opus: the first play in a codec makes its rendition, stores it, and later plays reuse it', async t => {
  // The sample library as an earlier version stored it: G.711 only.
  const library = sampleLibrary(t)
  for (const sha of fs.readdirSync(path.join(library, 'media'))) {
    for (const file of ['g722', 'opus-20']) fs.rmSync(path.join(library, 'media', sha, file))
  }
  const app = await buildApp(t, { libraryDir: library })
  const welcome = engineOf(app).prompts.get('welcome')!
  const media = path.join(library, 'media', welcome.info.source.sha256)
  t.same(welcome.describe().renditions.map(r => r.codec), ['PCMU', 'PCMA'], 'loaded with G.711 only')
  const receivers = await Promise.all([0, 1, 2].map(async () => await Receiver.open(t)))
  // Three plays at once share one rendition, made once.
  const plays = await Promise.all(receivers.map(async r => await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: r.port }, prompts: ['welcome'], codec: 'G722', rtcp: 'off' })))
  t.same(plays.map(p => p.status), [201, 201, 201])
  t.ok(fs.existsSync(path.join(media, 'g722')), 'the G.722 rendition is stored beside the laws')
  const stored = fs.readFileSync(path.join(media, 'g722'))
  // A restart reads it back instead of making it again.
  const again = await buildApp(t, { libraryDir: library })
  t.ok(engineOf(again).prompts.get('welcome')!.audio.G722?.equals(stored), 'a new engine on the library loads the stored rendition')
  await again.close()
  for (const r of receivers) await r.waitFor(Math.ceil(stored.length / 160))
  t.ok(receivers.every(r => r.packets[0]!.rtp.payload.equals(stored.subarray(0, 160))), 'every play sent the stored rendition')
  t.same(welcome.describe().renditions.map(r => r.codec), ['PCMU', 'PCMA', 'G722'], 'GET reports it')
  for (const r of receivers) await r.waitQuiet(100)
  // Deleting the prompt deletes every rendition with its media.
  t.equal((await app.inject({ method: 'DELETE', url: '/v1/prompts/welcome' })).statusCode, 204)
  t.notOk(fs.existsSync(media), 'deleting the prompt removed its media directory, every rendition in it')
})

t.test('loop and barge-in in G.722 and Opus: the stream runs on across the loop, and the caller\'s # stops it', async t => {
  const { app } = await setup(t)
  const { keyPress } = await import('../../src/index.js')
  for (const [codec, clockPerMs] of [['G722', 8], ['opus', 48]] as const) {
    const receiver = await Receiver.open(t)
    const res = await post(app, '/v1/plays', { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['sweep'], codec, loop: 0, rtcp: 'off', dtmf: { stopOn: '#' } })
    t.equal(res.status, 201, res.json.message)
    const { id, source } = res.json
    await waitUntil(async () => (await app.inject({ url: `/v1/plays/${id as string}` })).json().loopsDone >= 1, 'one loop played', 10_000, 50)
    await receiver.waitFor(receiver.packets.length + 5)
    for (const packet of keyPress('#', { ssrc: 0xca11, sequence: 1, timestamp: 0 })) await receiver.send(packet, source.port)
    await waitUntil(async () => (await app.inject({ url: `/v1/plays/${id as string}` })).json().state !== 'playing', 'the # to stop the play')
    const play = (await app.inject({ url: `/v1/plays/${id as string}` })).json()
    t.match(play, { state: 'stopped', stoppedBy: 'dtmf', received: { digits: '#' } }, `${codec}: the caller's # stopped the play`)
    t.ok(play.loopsDone >= 1, `${codec}: after ${play.loopsDone as number} loop(s)`)
    const p = receiver.packets
    const breaks = p.slice(1).filter((x, k) => x.rtp.sequenceNumber !== (p[k]!.rtp.sequenceNumber + 1) % 65536 || x.rtp.timestamp !== (p[k]!.rtp.timestamp + 20 * clockPerMs) % 2 ** 32 || x.rtp.marker !== 0).length
    t.equal(breaks, 0, `${codec}: ${p.length} packets, one stream across the loop: no gap in sequence or timestamp, no marker`)
  }
})
