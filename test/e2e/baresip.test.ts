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
import t from 'tap'
import { Ivr, type Call } from '../../examples/ivr/ivr.js'
import { buildApp, correlation, freePortPair, referenceDecode, sample, tempDir, waitUntil } from '../helpers/index.js'

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

  // The phone: SIP and media on loopback only, its microphone a file of silence, its speaker a
  // bridge nobody listens to, and what it decodes dumped to a WAV by the sndfile filter.
  const dir = tempDir(t, 'baresip-')
  const silence = path.join(dir, 'silence.wav')
  fs.writeFileSync(silence, wav(Buffer.alloc(8000 * 2 * 30)))
  fs.writeFileSync(path.join(dir, 'config'), [
    `module_path ${MODULES}`, 'poll_method epoll', 'net_interface 127.0.0.1', `sip_listen 127.0.0.1:${phonePort}`,
    `rtp_ports ${rtpPort}-${rtpPort + 1}`, 'audio_player aubridge,speaker', `audio_source aufile,${silence}`, 'audio_alert aubridge,alert',
    'module g711.so', 'module srtp.so', 'module aufile.so', 'module aubridge.so', 'module sndfile.so', 'module cons.so',
    'module_tmp account.so', 'module_app menu.so', `cons_listen 127.0.0.1:${consPort}`, `snd_path ${dir}`, ''
  ].join('\n'))
  fs.writeFileSync(path.join(dir, 'accounts'), `<sip:caller@127.0.0.1:${phonePort}>;regint=0;mediaenc=srtp-mand;answermode=manual\n`)
  const phone = spawn('baresip', ['-f', dir, '-e', `/dial sip:ivr@127.0.0.1:${ivrPort}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  phone.stdout.on('data', (c: Buffer) => { log += c.toString().replace(/\0/g, '') })
  phone.stderr.on('data', (c: Buffer) => { log += c.toString() })
  const exited = new Promise<void>(resolve => phone.on('exit', () => resolve()))
  t.teardown(() => { phone.kill('SIGKILL') })

  await waitUntil(() => answered.length === 1, 'the IVR to answer the call', 15_000)
  const play = answered[0]!.play
  t.match(log, /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_\d\d\)/, 'baresip negotiated SRTP with the IVR\'s SDP answer')
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
  phone.kill('SIGTERM')
  await exited

  const dump = fs.readdirSync(dir).find(f => f.endsWith('-dec.wav'))
  t.ok(dump, 'baresip dumped what it decoded')
  const heard = await referenceDecode(path.join(dir, dump!))
  const welcome = await referenceDecode(sample('welcome').path)
  t.ok(heard.length >= welcome.length, `it decoded ${(heard.length / 8000).toFixed(2)} s, welcome lasts ${(welcome.length / 8000).toFixed(2)} s`)
  const c = correlation(heard.subarray(0, welcome.length + 1600), welcome, 1600)
  t.ok(c > 0.9, `what baresip decoded is the welcome prompt: correlation ${c.toFixed(3)}`)
})

/** A 16-bit mono 8 kHz WAV of `pcm`. */
function wav (pcm: Buffer): Buffer {
  const h = Buffer.alloc(44)
  h.write('RIFF', 0); h.writeUInt32LE(36 + pcm.length, 4); h.write('WAVEfmt ', 8)
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(8000, 24)
  h.writeUInt32LE(16000, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(pcm.length, 40)
  return Buffer.concat([h, pcm])
}
