/**
 * A real softphone calls the example IVR with SRTP mandatory: Debian's baresip (its own SRTP,
 * libre's, not libsrtp), `mediaenc=srtp-mand`, dialling the IVR over SIP on loopback. It hears
 * the welcome prompt (its sndfile module dumps what it decoded), its RTCP reaches the play
 * sealed as SRTCP, and its # (RFC 4733, sealed) stops the prompts.
 */
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { Ivr, type Call } from '../../examples/ivr/ivr.js'
import { bandRms, buildApp, correlation, decodeAt, freePortPair, referenceDecode, sample, tempDir, waitUntil } from '../helpers/index.js'

const MODULES = '/usr/lib/baresip/modules'

async function sendUdp (text: string, port: number): Promise<void> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve, reject) => socket.send(text, port, '127.0.0.1', err => err ? reject(err) : resolve()))
  socket.close()
}

t.test('baresip calls the IVR with SRTP mandatory: it hears welcome, its RTCP arrives sealed, its # stops the prompts', async t => {
  if (!fs.existsSync(path.join(MODULES, 'srtp.so'))) throw new Error(`baresip's srtp module (${MODULES}/srtp.so) is missing: run scripts/setup, which installs baresip`)
  const app = await buildApp(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const [ivrPort, phonePort, consPort, rtpPort] = [await freePortPair(), await freePortPair(), await freePortPair(), await freePortPair()]
  const ivr = new Ivr({ sip: { address: '127.0.0.1', port: ivrPort }, player: { url }, mediaAddress: '127.0.0.1' })
  const answered: Call[] = []
  const digits: string[] = []
  const ended: any[] = []
  const hangups: Call[] = []
  ivr.on('answered', call => answered.push(call))
  ivr.on('dtmf', (_call, digit) => digits.push(digit))
  ivr.on('promptsEnded', (_call, play) => ended.push(play))
  ivr.on('hangup', call => hangups.push(call))
  ivr.start()
  t.teardown(() => ivr.close())

  const dir = tempDir(t, 'baresip-')
  const { log, exited, kill } = startPhone(t, dir, { ivrPort, phonePort, consPort, rtpPort, codecs: ['PCMU/8000'], srtp: true })

  await waitUntil(() => answered.length === 1, 'the IVR to answer the call', 15_000)
  const play = answered[0]!.play
  // baresip prints its SRTP line once it has read the 200 OK, which can be after the IVR has answered.
  await waitUntil(() => /SRTP is Enabled/.test(log()), 'baresip to report its SRTP session', 10_000)
  t.match(log(), /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_\d\d\)/, 'baresip negotiated SRTP with the IVR\'s SDP answer')
  t.match(play.srtp, { suite: /^AES_CM_128_HMAC_SHA1_(80|32)$|^AEAD_AES_(128|256)_GCM$/ }, 'the play sends SRTP')
  const current = async (): Promise<any> => (await app.inject({ url: `/v1/plays/${play.id}` })).json()
  // Past the welcome prompt (100 packets), and the phone's first RTCP report read.
  await waitUntil(async () => { const p = await current(); return p.packetsSent >= 120 && p.remote !== null }, 'welcome played and the phone\'s SRTCP report read', 20_000, 50)
  await sendUdp('#', consPort)
  await waitUntil(() => ended.length === 1, 'the prompts to end', 10_000)
  t.match(ended[0], { state: 'stopped', stoppedBy: 'dtmf', received: { digits: '#' } }, 'the # stopped the prompts')
  // libre opens its RTCP with a plaintext APP packet ("PINGPONG", to open NAT bindings) before
  // SRTCP starts: the one packet dropped. Everything else it sent was authentic.
  t.ok(ended[0].received.unauthenticated <= 1, `at most libre's plaintext RTCP APP was dropped (${ended[0].received.unauthenticated as number})`)
  t.ok(ended[0].received.ignored > 50, `baresip's own audio arrived, authenticated and set aside (${ended[0].received.ignored as number} packets)`)
  t.match(ended[0].remote, { packetsLost: 0 }, 'its SRTCP receiver report: nothing lost')
  t.same(digits, ['#'], 'the IVR heard the digit as play.dtmf')
  await sendUdp('b', consPort)
  await waitUntil(() => hangups.length === 1, 'the hang-up', 10_000)
  kill()
  await exited

  const dump = fs.readdirSync(dir).find(f => f.endsWith('-dec.wav'))
  t.ok(dump, 'baresip dumped what it decoded')
  const heard = await referenceDecode(path.join(dir, dump!))
  const welcome = await referenceDecode(sample('welcome').path)
  t.ok(heard.length >= welcome.length, `it decoded ${(heard.length / 8000).toFixed(2)} s, welcome lasts ${(welcome.length / 8000).toFixed(2)} s`)
  const c = correlation(heard.subarray(0, welcome.length + 1600), welcome, 1600)
  t.ok(c > 0.9, `what baresip decoded is the welcome prompt: correlation ${c.toFixed(3)}`)
})

t.test('baresip offering opus or G.722 first: the IVR answers in that codec, and the phone hears welcome wideband', async t => {
  const app = await buildApp(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const welcome16k = await decodeAt(sample('welcome').path, 16000)
  const sourceHigh = await bandRms(welcome16k)
  for (const [codec, offer, srtp] of [['opus', ['opus/48000/2', 'G722/16000/1', 'PCMU/8000/1'], true], ['G722', ['G722/16000/1', 'opus/48000/2', 'PCMU/8000/1'], false]] as const) {
    const [ivrPort, phonePort, consPort, rtpPort] = [await freePortPair(), await freePortPair(), await freePortPair(), await freePortPair()]
    const ivr = new Ivr({ sip: { address: '127.0.0.1', port: ivrPort }, player: { url }, mediaAddress: '127.0.0.1', prompts: ['welcome'] })
    const answered: Call[] = []
    const ended: any[] = []
    const hangups: Call[] = []
    ivr.on('answered', call => answered.push(call))
    ivr.on('promptsEnded', (_call, play) => ended.push(play))
    ivr.on('hangup', call => hangups.push(call))
    ivr.start()
    t.teardown(() => ivr.close())
    const dir = tempDir(t, `baresip-${codec}-`)
    const phone = startPhone(t, dir, { ivrPort, phonePort, consPort, rtpPort, codecs: [...offer], srtp })
    await waitUntil(() => answered.length === 1, 'the IVR to answer the call', 15_000)
    t.match(answered[0]!.play, { codec, srtp: srtp ? { suite: /AES|GCM/ } : null }, `offered ${offer.join(', ')}${srtp ? ' with SRTP' : ''}: the play is ${codec}`)
    await waitUntil(() => ended.length === 1, 'welcome to play to its end', 15_000)
    t.match(ended[0], { state: 'finished' }, `${codec}: welcome played to its end`)
    await sendUdp('b', consPort)
    await waitUntil(() => hangups.length === 1, 'the hang-up', 10_000)
    phone.kill()
    await phone.exited
    const dump = fs.readdirSync(dir).find(f => f.endsWith('-dec.wav'))
    t.ok(dump, `${codec}: baresip dumped what it decoded`)
    const file = path.join(dir, dump!)
    const rate = fs.readFileSync(file).readUInt32LE(24)
    t.ok(rate >= 16000, `${codec}: baresip decoded it at ${rate} Hz`)
    const heard = await decodeAt(file, 16000)
    const c = correlation(heard.subarray(0, welcome16k.length + 3200), welcome16k, 3200)
    t.ok(c > 0.8, `${codec}: what baresip decoded is welcome at 16 kHz: correlation ${c.toFixed(3)}`)
    const high = await bandRms(heard)
    t.ok(high > 0.3 * sourceHigh, `${codec}: with its 5-7 kHz band (RMS ${high.toFixed(0)}, the source's ${sourceHigh.toFixed(0)}), which G.711 cannot carry`)
  }
})

/**
 * The phone: SIP and media on loopback only, its microphone a file of silence, its speaker a
 * bridge nobody listens to, what it decodes dumped to a WAV by the sndfile filter, and its
 * console on UDP (`#` sends the digit, `b` hangs up). It dials the IVR at once, offering
 * `codecs` in that order (an account's audio_codecs), with SRTP mandatory or none. Its
 * microphone is a file of 8 kHz silence (baresip's aufile plays a file only at the codec's own
 * rate, so a wideband call takes a bridge nobody speaks into).
 */
function startPhone (t: Test, dir: string, o: { ivrPort: number, phonePort: number, consPort: number, rtpPort: number, codecs: string[], srtp: boolean }): { log: () => string, exited: Promise<void>, kill: () => void } {
  const silence = path.join(dir, 'silence.wav')
  fs.writeFileSync(silence, wav(Buffer.alloc(8000 * 2 * 30)))
  const narrowband = o.codecs.every(c => c.endsWith('/8000/1') || c.endsWith('/8000'))
  fs.writeFileSync(path.join(dir, 'config'), [
    `module_path ${MODULES}`, 'poll_method epoll', 'net_interface 127.0.0.1', `sip_listen 127.0.0.1:${o.phonePort}`,
    `rtp_ports ${o.rtpPort}-${o.rtpPort + 1}`, 'audio_player aubridge,speaker', narrowband ? `audio_source aufile,${silence}` : 'audio_source aubridge,mic', 'audio_alert aubridge,alert',
    'module g711.so', 'module g722.so', 'module opus.so', 'module srtp.so', 'module aufile.so', 'module aubridge.so', 'module sndfile.so', 'module cons.so',
    'module_tmp account.so', 'module_app menu.so', `cons_listen 127.0.0.1:${o.consPort}`, `snd_path ${dir}`, ''
  ].join('\n'))
  fs.writeFileSync(path.join(dir, 'accounts'), `<sip:caller@127.0.0.1:${o.phonePort}>;regint=0;answermode=manual;audio_codecs=${o.codecs.join(',')}${o.srtp ? ';mediaenc=srtp-mand' : ''}\n`)
  const phone = spawn('baresip', ['-f', dir, '-e', `/dial sip:ivr@127.0.0.1:${o.ivrPort}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  phone.stdout.on('data', (c: Buffer) => { log += c.toString().replace(/\0/g, '') })
  phone.stderr.on('data', (c: Buffer) => { log += c.toString() })
  const exited = new Promise<void>(resolve => phone.on('exit', () => resolve()))
  t.teardown(() => { phone.kill('SIGKILL') })
  return { log: () => log, exited, kill: () => { phone.kill('SIGTERM') } }
}

/** A 16-bit mono 8 kHz WAV of `pcm`. */
function wav (pcm: Buffer): Buffer {
  const h = Buffer.alloc(44)
  h.write('RIFF', 0); h.writeUInt32LE(36 + pcm.length, 4); h.write('WAVEfmt ', 8)
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(8000, 24)
  h.writeUInt32LE(16000, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(pcm.length, 40)
  return Buffer.concat([h, pcm])
}
