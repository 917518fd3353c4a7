/**
 * The command line against a real server: upload, play, stop, and listen receiving a real
 * play on 127.0.0.1 and reporting it.
 */
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { run } from '../../cli/index.js'
import { ROOT, buildApp, correlation, referenceDecode, rtpPorts, sample, sampleLibrary, sleep, tempDir } from '../helpers/index.js'

function io (): { out: string[], err: string[], io: Parameters<typeof run>[1] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: s => out.push(s), err: s => err.push(s), env: {} } }
}

async function server (t: Parameters<typeof buildApp>[0]): Promise<string> {
  const app = await buildApp(t)
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

t.test('upload reports the real container and the lying name', async t => {
  const url = await server(t)
  const dir = tempDir(t)
  const file = path.join(dir, 'hello.wma')
  fs.writeFileSync(file, sample('renamed').bytes)
  const c = io()
  t.equal(await run(['upload', file, '--url', url], c.io), 0)
  t.match(c.out[0], /^hello: mp3 \(MPEG 2 Layer 3, 22050 Hz, 1 ch, \d+ ms\) - the name hello.wma says otherwise; plays as \d+ packets/)
  const again = io()
  t.equal(await run(['upload', file, '--url', url], again.io), 1, 'no replace without --replace')
  t.match(again.err[0], /409 PROMPT_EXISTS/)
  t.equal(await run(['upload', file, '--url', url, '--replace', '--name', 'other'], io().io), 0)
})

t.test('listen reports a real play and writes what it heard; play --wait and stop', async t => {
  const url = await server(t)
  const dir = tempDir(t)
  const wav = path.join(dir, 'heard.wav')
  const listener = io()
  const listening = run(['listen', '--port', '0', '--idle', '1', '--json', '--wav', wav], listener.io)
  for (let i = 0; i < 50 && listener.err.length === 0; i++) await sleep(20)
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(listener.err[0]!)![1])
  const player = io()
  t.equal(await run(['play', 'welcome', '--to', `127.0.0.1:${port}`, '--wait', '--url', url], player.io), 0)
  t.match(player.out[0], /^p_\w+: playing welcome to 127\.0\.0\.1:\d+ from port \d+, PCMU\/20 ms, SSRC \d+, 2\.00 s$/)
  t.match(player.out[1], /^p_\w+: finished after 100 packets$/)
  t.equal(await listening, 0)
  const report = JSON.parse(listener.out[0]!)
  t.equal(report.streams.length, 1)
  const s = report.streams[0]
  t.match(s, { packets: 100, expected: 100, lost: 0, reordered: 0, duplicates: 0, markers: 1, payloadTypes: { 0: 100 }, payloadBytes: { 160: 100 }, timestampSteps: { 160: 99 } })
  t.ok(Math.abs(s.gapMs.p50 - 20) < 2, `gap p50 ${s.gapMs.p50} ms`)
  t.ok(Math.abs(s.driftMs) < 5, `drift ${s.driftMs} ms`)
  t.match(listener.err.at(-1), /wrote .*heard\.wav: 2\.00 s of 8 kHz mono 16-bit audio \(PCMU/)
  const c = correlation(await referenceDecode(sample('welcome').path), await referenceDecode(wav), 40)
  t.ok(c > 0.95, `the WAV it wrote is the prompt (${c.toFixed(4)})`)

  const human = io()
  const listening2 = run(['listen', '--port', String(port), '--idle', '0.5', '--progress', '0.5'], human.io)
  await sleep(100)
  const p = io()
  t.equal(await run(['play', 'menu', '--to', `127.0.0.1:${port}`, '--codec', 'pcma', '--url', url], p.io), 0)
  await sleep(700)
  const id = p.out[0]!.split(':')[0]!
  const controller = io()
  t.equal(await run(['control', id, 'pause', '--url', url], controller.io), 0)
  t.match(controller.out[0], new RegExp(`^${id}: paused at \\d+\\.\\d\\d s of \\d+\\.\\d\\d s$`), 'control pause says where it paused')
  t.equal(await run(['control', id, 'seek', '1000', '--url', url], controller.io), 0)
  t.match(controller.out[1], new RegExp(`^${id}: paused at 1\\.00 s of `), 'seek moves the position')
  t.equal(await run(['control', id, 'resume', '--url', url], controller.io), 0)
  t.match(controller.out[2], new RegExp(`^${id}: playing at 1\\.\\d\\d s of `))
  const stopper = io()
  t.equal(await run(['stop', id, '--url', url], stopper.io), 0)
  t.match(stopper.out[0], new RegExp(`^${id}: stopped after \\d+ packets$`))
  t.equal(await listening2, 0)
  t.match(human.err.join('\n'), /\d+ s: \d+ packets in 1 stream\(s\), 0 lost, gap p99 [\d.]+ ms/, 'progress while listening')
  t.match(human.out[0], /stream 1: SSRC 0x[0-9a-f]{8} from 127\.0\.0\.1:\d+\n {2}payload type {4}8 \(PCMA\) x \d+\n {2}packets {9}\d+ received/)
})

t.test('listen --dtmf presses a key as the caller would: a play with stopOn stops', async t => {
  const url = await server(t)
  const range = await new Promise<number>(resolve => { const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) }) })
  const listener = io()
  const listening = run(['listen', '--port', String(range), '--idle', '0.6', '--dtmf', '#', '--after', '0.3'], listener.io)
  await sleep(100)
  const res = await fetch(`${url}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: range }, prompts: ['welcome', 'menu'], dtmf: { stopOn: '#' } }) })
  const play = await res.json() as { id: string }
  t.equal(await listening, 0)
  t.match(listener.err.join('\n'), /pressing # \(RFC 4733, \d+ packets\) towards 127\.0\.0\.1:\d+/)
  const after = await (await fetch(`${url}/v1/plays/${play.id}`)).json() as { state: string, stoppedBy: string, received: { digits: string } }
  t.match(after, { state: 'stopped', stoppedBy: 'dtmf', received: { digits: '#' } }, 'the play stopped on the key')
  const bad = io()
  t.equal(await run(['listen', '--port', '0', '--dtmf', 'X'], bad.io), 2)
  t.match(bad.err.join('\n'), /--dtmf: "X" is not a DTMF digit/)
})

t.test('listen shows the RTCP it receives and answers it: the play reports what the far end got', async t => {
  const app = await buildApp(t, { rtcpIntervalMs: 500 })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const listener = io()
  const listening = run(['listen', '--port', '0', '--idle', '0.6', '--json'], listener.io)
  for (let i = 0; i < 50 && listener.err.length === 0; i++) await sleep(20)
  const [, port, rtcpPort] = /127\.0\.0\.1:(\d+) and RTCP on (\d+)/.exec(listener.err[0]!)!.map(Number)
  t.equal(rtcpPort, port! + 1, 'the RTCP port is the one above')
  const player = io()
  t.equal(await run(['play', 'welcome', 'goodbye', '--to', `127.0.0.1:${port!}`, '--wait', '--url', url], player.io), 0)
  t.equal(await listening, 0)
  const lines = listener.err.filter(l => l.startsWith('RTCP'))
  t.ok(lines.length >= 2, `a line for each RTCP packet (${lines.length})`)
  t.match(lines.at(-1), /^RTCP BYE from 127\.0\.0\.1:\d+: SSRC 0x[0-9a-f]{8} sent \d+ packets, \d+ octets; the stream has ended$/)
  const stream = JSON.parse(listener.out[0]!).streams[0]
  t.match(stream.rtcp, { senderReports: lines.length, packets: stream.packets, octets: stream.packets * 160, bye: true }, 'the BYE counted every packet that arrived')
  t.match(player.out[2], /^p_\w+: the far end reported 0 lost \(0\.0 % lately\), jitter [\d.]+ ms, round trip [\d.]+ ms$/, 'the receiver reports reached the play')
  const id = player.out[0]!.split(':')[0]!
  const play = (await app.inject({ url: `/v1/plays/${id}` })).json()
  t.ok(play.received.reports >= 1 && play.remote.rttMs >= 0 && play.remote.rttMs < 50, `remote: ${JSON.stringify(play.remote)}`)

  const human = io()
  const again = run(['listen', '--port', String(port), '--idle', '0.5'], human.io)
  await sleep(100)
  t.equal(await run(['play', 'goodbye', '--to', `127.0.0.1:${port!}`, '--url', url], io().io), 0)
  t.equal(await again, 0)
  t.match(human.out[0], /\n {2}rtcp {12}\d+ sender report\(s\), the last counting \d+ packets sent, then BYE/)
})

t.test('wideband from the command line: play --codec G722 or opus; listen writes a 16 kHz WAV of G.722, and of Opus a 48 kHz one when told the codec', async t => {
  const url = await server(t)
  const dir = tempDir(t)
  for (const [codec, ptime, hint] of [['G722', '20', []], ['opus', '60', []], ['opus', '40', ['--codec', 'opus']]] as const) {
    const wav = path.join(dir, `${codec}-${ptime}.wav`)
    const listener = io()
    const listening = run(['listen', '--port', '0', '--idle', '1', '--json', '--wav', wav, ...hint], listener.io)
    for (let i = 0; i < 50 && listener.err.length === 0; i++) await sleep(20)
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(listener.err[0]!)![1])
    const player = io()
    t.equal(await run(['play', 'welcome', '--to', `127.0.0.1:${port}`, '--codec', codec.toLowerCase(), '--ptime', ptime, '--wait', '--url', url], player.io), 0)
    t.match(player.out[0], new RegExp(`^p_\\w+: playing welcome to 127\\.0\\.0\\.1:\\d+ from port \\d+, ${codec}/${ptime} ms, SSRC \\d+, 2\\.\\d\\d s$`))
    const exit = await listening
    const s = JSON.parse(listener.out[0]!).streams[0]
    if (codec === 'G722') {
      t.equal(exit, 0)
      t.match(s, { packets: 100, lost: 0, payloadTypes: { 9: 100 }, payloadBytes: { 160: 100 }, timestampSteps: { 160: 99 } }, 'G.722: 160 bytes and 160 timestamp units (8 kHz clock) per 20 ms packet')
      t.match(listener.err.at(-1), /wrote .*G722-20\.wav: 2\.00 s of 16 kHz mono 16-bit audio \(G722/)
      t.equal(fs.readFileSync(wav).readUInt32LE(24), 16000, 'a 16 kHz WAV')
    } else if (hint.length === 0) {
      t.equal(exit, 1, 'opus: --wav cannot say the codec of a dynamic payload type by itself')
      t.match(s, { payloadTypes: { 111: s.packets }, timestampSteps: { 2880: s.packets - 1 } }, 'opus: 2880 timestamp units (48 kHz) per 60 ms packet')
      t.match(listener.err.at(-1), /the stream's 111 is dynamic, and RTP does not say its codec: give the SDP's, --codec opus/)
      continue
    } else {
      t.equal(exit, 0)
      t.match(listener.err.at(-1), /wrote .*opus-40\.wav: 2\.\d\d s of 48 kHz mono 16-bit audio \(opus/)
      t.equal(fs.readFileSync(wav).readUInt32LE(24), 48000, 'given --codec opus: a 48 kHz WAV')
    }
    const c = correlation(await referenceDecode(sample('welcome').path), await referenceDecode(wav), 80)
    t.ok(c > 0.9, `${codec}: the WAV is the prompt (${c.toFixed(4)})`)
  }
  const bad = io()
  t.equal(await run(['play', 'welcome', '--to', '127.0.0.1:40000', '--codec', 'g729', '--url', url], bad.io), 2)
  t.match(bad.err.join('\n'), /--codec is PCMU, PCMA, G722, opus, not g729/)
})

t.test('listen with nothing arriving says what to check', async t => {
  const c = io()
  t.equal(await run(['listen', '--port', '0', '--seconds', '0.3'], c.io), 1)
  t.match(c.out[0], /^nothing arrived on 127\.0\.0\.1:\d+: check the play's target/)
})

t.test('mistakes are answered with what to do', async t => {
  const cases: Array<[string[], number, RegExp]> = [
    [[], 2, /usage: prompt-player/],
    [['dance'], 2, /unknown command "dance"/],
    [['play', 'welcome'], 2, /--to HOST:PORT/],
    [['play', '--to', '127.0.0.1:4000'], 2, /one or more prompt NAMEs/],
    [['play', 'welcome', '--to', 'pbx.example:4000'], 2, /IP address/],
    [['play', 'welcome', '--to', '127.0.0.1:4000', '--codec', 'g729'], 2, /--codec is PCMU, PCMA, G722, opus, not g729/],
    [['upload'], 2, /one FILE/],
    [['stop'], 2, /one play ID/],
    [['control', 'p_x', 'jump'], 2, /pause, resume or restart; or forward, reverse or seek and a number of milliseconds/],
    [['control', 'p_x', 'seek', 'soon'], 2, /a number of milliseconds/],
    [['listen'], 2, /--port P/],
    [['listen', '--bogus'], 2, /Unknown option/],
    [['upload', '/nonexistent/file.wav'], 1, /ENOENT/],
    [['stop', 'p_nope', '--url', 'http://127.0.0.1:9'], 1, /fetch failed|ECONNREFUSED/]
  ]
  for (const [argv, code, message] of cases) {
    const c = io()
    t.equal(await run(argv, c.io), code, `${argv.join(' ') || '(nothing)'}: exit ${code}`)
    t.match([...c.out, ...c.err].join('\n'), message)
  }
  const help = io()
  t.equal(await run(['help'], help.io), 0)
})

t.test('serve runs the service with flags for its settings', async t => {
  const range = rtpPorts(10)
  const child = spawn(process.execPath, [...process.execArgv, path.join(ROOT, 'cli', 'main.ts'), 'serve', '--port', '0', '--library', sampleLibrary(t), '--rtp-ports', `${range.min}-${range.max}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  for (let i = 0; i < 200 && !/listening on/.test(output); i++) await sleep(50)
  const line = JSON.parse(output.split('\n').find(l => /listening on/.test(l))!)
  t.match(line, { prompts: 9, rtpPorts: `${range.min}-${range.max}` })
  t.equal((await fetch(`${line.url}/readyz`)).status, 200)
  child.kill('SIGTERM')
  t.equal(await new Promise(resolve => child.on('exit', resolve)), 0)
})

t.test('SRTP from the command line: listen opens what play seals, answers with sealed reports, and a sealed # stops the play', async t => {
  const app = await buildApp(t, { rtcpIntervalMs: 500 })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const suite = 'AEAD_AES_128_GCM'
  const listener = io()
  const listening = run(['listen', '--port', '0', '--idle', '0.6', '--json', '--srtp', suite, '--dtmf', '#', '--after', '1.2'], listener.io)
  for (let i = 0; i < 50 && listener.err.length < 2; i++) await sleep(20)
  const hint = listener.err.find(l => l.startsWith('SRTP'))!
  t.match(hint, /^SRTP AEAD_AES_128_GCM: start the play with --srtp AEAD_AES_128_GCM --srtp-key \S+ --srtp-remote-key \S+$/, 'listen made both keys and says how to start the play')
  const [, key, remoteKey] = / --srtp-key (\S+) --srtp-remote-key (\S+)$/.exec(hint)!
  const port = Number(/127\.0\.0\.1:(\d+) and RTCP/.exec(listener.err.join('\n'))![1])
  const player = io()
  t.equal(await run(['play', 'welcome', 'menu', '--to', `127.0.0.1:${port}`, '--stop-on', '#', '--srtp', suite, '--srtp-key', key!, '--srtp-remote-key', remoteKey!, '--url', url], player.io), 0)
  t.equal(player.out[1], `${player.out[0]!.split(':')[0]!}: SRTP, sealed with a=crypto:1 ${suite} inline:${key!}`, 'play prints the a=crypto line of its key')
  t.equal(await listening, 0)
  const stream = JSON.parse(listener.out[0]!).streams[0]
  t.match(stream, { lost: 0, payloadBytes: { 160: stream.packets } }, 'every packet opened, 160 bytes of audio each')
  t.notMatch(listener.err.join('\n'), /did not open/, 'nothing failed to open')
  const id = player.out[0]!.split(':')[0]!
  const play = (await app.inject({ url: `/v1/plays/${id}` })).json()
  t.match(play, { state: 'stopped', stoppedBy: 'dtmf', received: { digits: '#', unauthenticated: 0 } }, 'the sealed # stopped the play')
  t.ok(play.received.reports >= 1, `listen's sealed receiver reports reached the play (${play.received.reports as number})`)

  const wrong = io()
  t.equal(await run(['listen', '--port', '0', '--srtp', 'AES_CM_128_HMAC_SHA1_80', '--srtp-key', 'short'], wrong.io), 2)
  t.match(wrong.err.join('\n'), /--srtp-key is not base64 key material|--srtp-key holds/)
  const unknown = io()
  t.equal(await run(['play', 'welcome', '--to', '127.0.0.1:40000', '--srtp', 'F8_128', '--url', url], unknown.io), 2)
  t.match(unknown.err.join('\n'), /--srtp is one of AES_CM_128_HMAC_SHA1_80/)
})
