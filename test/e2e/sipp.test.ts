/**
 * A real SIP call into the example IVR (examples/ivr): sipp, Debian's sip-tester, is the caller.
 * It sends INVITE with its SDP, receives the prompts, presses # with its own RFC 4733 pcap, and
 * hangs up. tcpdump captures the call's media port, and `prompt-player listen --pcap` reads what
 * the caller received, at the kernel's timestamps.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { run } from '../../cli/index.js'
import { readPcap } from '../../cli/pcap.js'
import { Ivr, answerFor, readOffer, type Call } from '../../examples/ivr/ivr.js'
import { LIBRARY, ROOT, buildApp, capture, freePortPair, run as runProgram, sleep, tempDir } from '../helpers/index.js'

const SCENARIO = path.join(ROOT, 'examples', 'ivr', 'caller.xml')
const POUND = '/usr/share/sip-tester/dtmf_2833_pound.pcap'

async function exited (child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  return await new Promise(resolve => child.once('exit', code => resolve(code)))
}

t.test('the IVR reads an SDP offer and answers with the play\'s port', async t => {
  const offer = readOffer('v=0\no=- 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=audio 7078 RTP/AVP 8 0 96\na=rtpmap:96 telephone-event/8000\na=ptime:30\na=rtcp-mux\n')
  t.same(offer, { host: '10.0.0.9', port: 7078, codec: 'PCMA', payloadType: 8, ptimeMs: 30, dtmf: 96, mux: true, crypto: null }, 'the first codec offered, telephone-event, ptime, rtcp-mux')
  t.equal(readOffer('v=0\r\nc=IN IP4 10.0.0.9\r\nm=audio 7078 RTP/AVP 18 97\r\na=rtpmap:97 iLBC/8000\r\n'), null, 'no codec the player sends: nothing to play (488)')
  t.match(readOffer('v=0\nc=IN IP4 10.0.0.9\nm=audio 7078 RTP/AVP 18 107 9 0 101\na=rtpmap:107 OPUS/48000/2\na=rtpmap:101 telephone-event/8000\na=ptime:40\n'), { codec: 'opus', payloadType: 107, ptimeMs: 40, dtmf: 101 }, 'the offer\'s first codec the player sends, with its payload type from a=rtpmap (any case)')
  t.match(readOffer('v=0\nc=IN IP4 10.0.0.9\nm=audio 7078 RTP/AVP 9 111 0\na=rtpmap:111 opus/48000/2\na=ptime:60\n'), { codec: 'G722', payloadType: 9, ptimeMs: 20 }, 'G.722 by its static type when offered first; a ptime it cannot send: 20')
  t.match(readOffer('v=0\nc=IN IP4 10.0.0.9\nm=audio 7078 RTP/AVP 96 0\na=rtpmap:96 opus/48000/2\na=ptime:60\n'), { codec: 'opus', payloadType: 96, ptimeMs: 60 }, 'opus at 60 ms')
  t.match(answerFor(readOffer('v=0\nc=IN IP4 10.0.0.9\nm=audio 7078 RTP/AVP 96 0\na=rtpmap:96 opus/48000/2\n')!, '10.0.0.5', 20000), /\r\nm=audio 20000 RTP\/AVP 96\r\na=rtpmap:96 opus\/48000\/2\r\n/, 'the answer names opus as RFC 7587 does')
  t.equal(readOffer('v=0\r\nm=audio 7078 RTP/AVP 0\r\n'), null, 'no address')
  t.match(readOffer('v=0\r\nc=IN IP4 10.0.0.9\r\nm=audio 7078 RTP/AVP 0\r\na=ptime:25\r\n'), { codec: 'PCMU', dtmf: null, ptimeMs: 20, mux: false }, 'a ptime the player does not send: 20')
  const key = Buffer.alloc(30, 7).toString('base64')
  const secure = readOffer(`v=0\nc=IN IP4 10.0.0.9\nm=audio 7078 RTP/SAVP 0 101\na=rtpmap:101 telephone-event/8000\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:${Buffer.alloc(46).toString('base64')}\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^20|1:4 KDR=1\na=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:${key}|2^31|1:1\na=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:${key}\n`)
  t.same(secure?.crypto, { tag: 3, suite: 'AES_CM_128_HMAC_SHA1_32', key: `${key}|2^31|1:1` }, 'RTP/SAVP: the first crypto line of a suite the player speaks, without session parameters')
  t.match(answerFor(secure!, '10.0.0.5', 20000, 'LOCAL|2^31|1:1'), /\r\nm=audio 20000 RTP\/SAVP 0 101\r\n[^]*a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:LOCAL\|2\^31\|1:1\r\n/, 'the answer: RTP/SAVP, the same tag and suite, the play\'s key')
  t.equal(readOffer('v=0\nc=IN IP4 10.0.0.9\nm=audio 7078 RTP/SAVP 0\na=crypto:1 F8_128_HMAC_SHA1_80 inline:AAAA\n'), null, 'RTP/SAVP with no suite the player speaks: nothing to answer (488)')
  const answer = answerFor(offer!, '10.0.0.5', 20000)
  t.match(answer, /\r\nc=IN IP4 10\.0\.0\.5\r\n/)
  t.match(answer, /\r\nm=audio 20000 RTP\/AVP 8 96\r\na=rtpmap:8 PCMA\/8000\r\na=rtpmap:96 telephone-event\/8000\r\na=fmtp:96 0-16\r\na=ptime:30\r\na=rtcp-mux\r\n/)
})

t.test('sipp calls the IVR: it hears welcome, presses #, the play stops within a ptime, and the IVR hears the digit', async t => {
  for (const [what, file] of [['sipp', '/usr/bin/sipp'], ['its DTMF pcap', POUND], ['tcpdump', '/usr/bin/tcpdump']]) {
    if (!fs.existsSync(file!)) throw new Error(`${what} (${file}) is missing: run scripts/setup, which installs sip-tester and tcpdump`)
  }
  const app = await buildApp(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const [ivrPort, callerPort, mediaPort] = [await freePortPair(), await freePortPair(), await freePortPair()]
  const ivr = new Ivr({ sip: { address: '127.0.0.1', port: ivrPort! }, player: { url }, mediaAddress: '127.0.0.1' })
  const answered: Call[] = []
  const digits: string[] = []
  const ended: string[] = []
  const errors: Error[] = []
  ivr.on('answered', call => answered.push(call))
  ivr.on('dtmf', (_call, digit) => digits.push(digit))
  ivr.on('promptsEnded', (_call, play) => ended.push(`${play.state} by ${play.stoppedBy}`))
  ivr.on('error', err => errors.push(err))
  ivr.start()
  t.teardown(() => ivr.close())

  const dir = tempDir(t)
  const capture = path.join(dir, 'call.pcap')
  const tcpdump = spawn('tcpdump', ['-i', 'lo', '-n', '-U', '-w', capture, `udp and portrange ${mediaPort!}-${mediaPort! + 1}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => { tcpdump.kill('SIGKILL') })
  let tcpdumpSaid = ''
  tcpdump.stderr!.on('data', (chunk: Buffer) => { tcpdumpSaid += chunk.toString() })
  for (let i = 0; i < 100 && !tcpdumpSaid.includes('listening on'); i++) await sleep(50)
  t.match(tcpdumpSaid, /listening on lo/, 'tcpdump captures the caller\'s media port')

  const sipp = spawn('sipp', ['-sf', SCENARIO, '-m', '1', '-i', '127.0.0.1', '-p', String(callerPort), '-mi', '127.0.0.1', '-mp', String(mediaPort), '-nostdin', '-timeout', '30s', '-timeout_error', `127.0.0.1:${ivrPort!}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { sipp.kill('SIGKILL') })
  let sippSaid = ''
  sipp.stdout!.on('data', (chunk: Buffer) => { sippSaid += chunk.toString() })
  sipp.stderr!.on('data', (chunk: Buffer) => { sippSaid += chunk.toString() })
  t.equal(await exited(sipp), 0, 'sipp: the call succeeded (INVITE answered 200 with SDP, BYE answered 200)')
  await sleep(300)
  tcpdump.kill('SIGINT')
  await exited(tcpdump)
  if (t.passing() === false) t.comment(sippSaid.slice(-2000))

  t.equal(errors.length, 0, `the IVR had no error${errors.length > 0 ? `: ${errors[0]!.message}` : ''}`)
  t.equal(answered.length, 1, 'the IVR answered one call')
  const call = answered[0]!
  t.same(call.target, { host: '127.0.0.1', port: mediaPort }, 'and played to the media address of the caller\'s SDP')
  t.same(call.play.prompts, ['welcome', 'menu'])
  t.same(digits, ['#'], 'the IVR heard the caller\'s # once (play.dtmf)')
  t.same(ended, ['stopped by dtmf'], 'the prompts stopped on it')
  t.ok(call.hungUp, 'and the BYE reached the IVR')

  // What the caller received, as listen reads the capture.
  const listener = { out: [] as string[], err: [] as string[] }
  t.equal(await run(['listen', '--pcap', capture, '--port', String(mediaPort), '--json', '--wav', path.join(dir, 'heard.wav')], { out: s => listener.out.push(s), err: s => listener.err.push(s), env: {} }), 0)
  const { streams } = JSON.parse(listener.out[0]!)
  t.equal(streams.length, 1, 'one RTP stream reached the caller')
  const s = streams[0]
  t.equal(s.from, `127.0.0.1:${call.play.source.port as number}`, 'from the port the IVR\'s answer named')
  t.match(s, { lost: 0, reordered: 0, duplicates: 0, markers: 1, payloadTypes: { 0: s.packets }, payloadBytes: { 160: s.packets } }, 'no loss, no wrong sequence number, one talkspurt of PCMU')
  t.same(Object.keys(s.timestampSteps), ['160'], 'timestamps step by 160')
  t.ok(s.packets >= 100 && s.packets < 150, `welcome whole (100 packets) and the start of menu: ${s.packets as number} packets in the 2 s before #`)
  t.ok(s.gapMs.max <= 25, `max delta ${(s.gapMs.max as number).toFixed(2)} ms (at most 25)`)

  // The audio is welcome, byte for byte (its PCMU rendition in the library).
  const welcome = JSON.parse(fs.readFileSync(path.join(LIBRARY, 'welcome.json'), 'utf8'))
  const pcmu = fs.readFileSync(path.join(LIBRARY, 'media', welcome.source.sha256, 'pcmu'))
  const datagrams = readPcap(fs.readFileSync(capture))
  const media = datagrams.filter(d => d.to.port === mediaPort && d.payload[1] !== undefined && (d.payload[1] & 0x7f) === 0)
  const heard = Buffer.concat(media.map(d => d.payload.subarray(12)))
  t.ok(heard.subarray(0, pcmu.length).equals(pcmu), 'the caller heard welcome exactly as transcoded')

  // Barge-in on the wire: from sipp's first # packet to the play's last packet.
  const press = datagrams.find(d => d.from.port === mediaPort && d.to.port === call.play.source.port && d.payload.length >= 16 && (d.payload[1]! & 0x7f) === 101)
  t.ok(press !== undefined, 'sipp\'s # went to the play\'s own port (symmetric RTP)')
  t.equal(press!.payload[12], 11, 'event 11: #')
  const afterPress = (media.at(-1)!.at - press!.at)
  t.ok(afterPress <= 20, `the last packet left ${afterPress.toFixed(2)} ms after the digit's first packet (at most one ptime)`)
  t.match(s.rtcp, { bye: true, packets: s.packets }, 'the play\'s RTCP reached the caller\'s RTCP port: its BYE counts every packet')
})

t.test('the IVR sends digits into the call: sipp\'s media port receives them, and tshark reads RFC 4733 events 2, 0, 4, 1 from the IVR\'s port', async t => {
  const app = await buildApp(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const [ivrPort, callerPort, mediaPort] = [await freePortPair(), await freePortPair(), await freePortPair()]
  // An extension dialled to a far-end system, after a beep: then welcome, which sipp's # stops.
  const ivr = new Ivr({ sip: { address: '127.0.0.1', port: ivrPort! }, player: { url }, mediaAddress: '127.0.0.1', prompts: [{ tone: 'beep', durationMs: 200 }, { dtmf: '2041', durationMs: 80, gapMs: 60 }, 'welcome'] })
  const answered: Call[] = []
  ivr.on('answered', call => answered.push(call))
  ivr.start()
  t.teardown(() => ivr.close())
  const dir = tempDir(t)
  const pcap = await capture(t, mediaPort!)
  const sipp = spawn('sipp', ['-sf', SCENARIO, '-m', '1', '-i', '127.0.0.1', '-p', String(callerPort), '-mi', '127.0.0.1', '-mp', String(mediaPort), '-nostdin', '-timeout', '30s', '-timeout_error', `127.0.0.1:${ivrPort!}`], { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] })
  t.teardown(() => { sipp.kill('SIGKILL') })
  t.equal(await exited(sipp), 0, 'sipp: the call succeeded')
  // At least the beep's 10 packets and the digits' 24 were written before tcpdump stops.
  await pcap.stop(34)
  t.equal(answered.length, 1)
  const source = answered[0]!.play.source.port as number
  t.same(answered[0]!.play.prompts, ['tone:beep:us', 'dtmf:2041', 'welcome'])
  const out = (await runProgram('tshark', ['-r', pcap.file, '-d', `udp.port==${mediaPort!},rtp`, '-Y', `rtpevent && udp.srcport == ${source}`, '-T', 'fields', '-e', 'rtpevent.event_id', '-e', 'rtpevent.end_of_event', '-e', 'rtp.marker'])).toString()
  const events = out.split('\n').filter(Boolean).map(line => line.split('\t'))
  const yes = (v: string | undefined): boolean => v === '1' || v === 'True'
  t.same(events.filter(e => yes(e[2])).map(e => Number(e[0])), [2, 0, 4, 1], 'four events, each begun with the marker: 2, 0, 4, 1')
  t.equal(events.filter(e => yes(e[1])).length, 12, 'each ended by three packets with the end bit')
  t.equal(events.length, 4 * (4 + 2), 'each 80 ms digit in 4 packets and its end twice more')
})
