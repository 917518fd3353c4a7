/**
 * Independent SRTP implementations as judges, so that the project's own code never judges what
 * it sends: ffmpeg (its own SRTP, AES-CM suites) as a live SDP receiver, and GStreamer's srtpdec
 * and srtpenc (libsrtp 2) opening and sealing packets offline, packet by packet.
 */
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { freePortPair, sleep, tempDir } from './index.js'
import type { Test as TapTest } from 'tap'

type Test = Pick<TapTest, 'teardown'>

export type Suite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32' | 'AEAD_AES_128_GCM' | 'AEAD_AES_256_GCM'

/** libsrtp's names, as GStreamer's srtp elements take them: [rtp cipher, rtp auth, rtcp cipher, rtcp auth]. */
const GST_POLICY: Record<Suite, [string, string, string, string]> = {
  AES_CM_128_HMAC_SHA1_80: ['aes-128-icm', 'hmac-sha1-80', 'aes-128-icm', 'hmac-sha1-80'],
  AES_CM_128_HMAC_SHA1_32: ['aes-128-icm', 'hmac-sha1-32', 'aes-128-icm', 'hmac-sha1-80'],
  AEAD_AES_128_GCM: ['aes-128-gcm', 'null', 'aes-128-gcm', 'null'],
  AEAD_AES_256_GCM: ['aes-256-gcm', 'null', 'aes-256-gcm', 'null']
}

/** An SDES inline: value taken apart for GStreamer: the key as hex, the MKI as hex (or none). */
function gstKey (inline: string): { key: string, mki: string | null } {
  const [base64, ...rest] = inline.replace(/^inline:/, '').split('|')
  const mki = rest.find(p => p.includes(':'))
  let mkiHex: string | null = null
  if (mki !== undefined) {
    const [value, length] = mki.split(':').map(Number) as [number, number]
    mkiHex = value.toString(16).padStart(length * 2, '0')
  }
  return { key: Buffer.from(base64!, 'base64').toString('hex'), mki: mkiHex }
}

function caps (kind: 'srtp' | 'srtcp', suite: Suite, inline: string, ssrc: number): string {
  const [rtpCipher, rtpAuth, rtcpCipher, rtcpAuth] = GST_POLICY[suite]
  const { key, mki } = gstKey(inline)
  return [`application/x-${kind}`, `ssrc=(uint)${ssrc}`, `srtp-key=(buffer)${key}`, `srtp-cipher=(string)${rtpCipher}`, `srtp-auth=(string)${rtpAuth}`,
    `srtcp-cipher=(string)${rtcpCipher}`, `srtcp-auth=(string)${rtcpAuth}`, ...(mki === null ? [] : [`mki=(buffer)${mki}`]),
    ...(kind === 'srtp' ? ['media=(string)audio', 'clock-rate=(int)8000'] : [])].join(',')
}

async function gstLaunch (args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('gst-launch-1.0', ['-q', ...args], { timeout: 60_000 }, (err, stdout, stderr) => err ? reject(new Error(`gst-launch-1.0 failed: ${err.message}\n${stderr}`)) : resolve(stdout))
  })
}

function writePackets (dir: string, packets: Buffer[]): string {
  fs.mkdirSync(dir, { recursive: true })
  for (const [i, p] of packets.entries()) fs.writeFileSync(path.join(dir, `${String(i).padStart(6, '0')}.bin`), p)
  return path.join(dir, '%06d.bin')
}

function readPackets (dir: string): Buffer[] {
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).sort().map(f => fs.readFileSync(path.join(dir, f)))
}

/**
 * libsrtp (GStreamer's srtpdec) opens SRTP (or SRTCP) packets as a receiver with `inline` would:
 * what it could authenticate and decrypt comes back in the clear, in order; what it refused is
 * missing.
 */
export async function libsrtpOpen (t: Test, o: { suite: Suite, key: string, ssrc: number, packets: Buffer[], rtcp?: boolean }): Promise<Buffer[]> {
  const dir = tempDir(t, 'srtpdec-')
  const input = writePackets(path.join(dir, 'in'), o.packets)
  const out = path.join(dir, 'out')
  fs.mkdirSync(out)
  const kind = o.rtcp === true ? 'srtcp' : 'srtp'
  const pad = o.rtcp === true ? 'rtcp' : 'rtp'
  await gstLaunch([
    'multifilesrc', `location=${input}`, 'index=0', `stop-index=${o.packets.length - 1}`, `caps=${caps(kind, o.suite, o.key, o.ssrc)}`,
    '!', `d.${pad}_sink`, 'srtpdec', 'name=d', `d.${pad}_src`, '!', 'multifilesink', `location=${path.join(out, '%06d.bin')}`
  ])
  return readPackets(out)
}

/** libsrtp (GStreamer's srtpenc) seals plain RTP (or RTCP) packets with `inline`, as an independent far end would send them. */
export async function libsrtpSeal (t: Test, o: { suite: Suite, key: string, packets: Buffer[], rtcp?: boolean }): Promise<Buffer[]> {
  const dir = tempDir(t, 'srtpenc-')
  const input = writePackets(path.join(dir, 'in'), o.packets)
  const out = path.join(dir, 'out')
  fs.mkdirSync(out)
  const [rtpCipher, rtpAuth, rtcpCipher, rtcpAuth] = GST_POLICY[o.suite]
  const { key, mki } = gstKey(o.key)
  const pad = o.rtcp === true ? 'rtcp' : 'rtp'
  await gstLaunch([
    'multifilesrc', `location=${input}`, 'index=0', `stop-index=${o.packets.length - 1}`, `caps=application/x-${pad}${pad === 'rtp' ? ',media=(string)audio,clock-rate=(int)8000' : ''}`,
    '!', `e.${pad}_sink_0`, 'srtpenc', 'name=e', `key=${key}`, `rtp-cipher=${rtpCipher}`, `rtp-auth=${rtpAuth}`, `rtcp-cipher=${rtcpCipher}`, `rtcp-auth=${rtcpAuth}`,
    ...(mki === null ? [] : [`mki=${mki}`]), `e.${pad}_src_0`, '!', 'multifilesink', `location=${path.join(out, '%06d.bin')}`
  ])
  return readPackets(out)
}

/** Whether something has bound UDP `port` on this machine (from /proc/net/udp). */
function udpBound (port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `
  return ['/proc/net/udp', '/proc/net/udp6'].some(file => {
    try { return fs.readFileSync(file, 'utf8').includes(hex) } catch { return false }
  })
}

export interface FfmpegReceiver {
  port: number
  /** The decoded audio (mono 16-bit, at `sampleRate`, 8 kHz by default) once ffmpeg has ended: at the stream's RTCP BYE, or at `stop()`. */
  done: Promise<Int16Array>
  /** Whether ffmpeg ended by itself (it read the BYE), rather than at `stop()`. */
  endedByItself: () => boolean
  /** Ends ffmpeg as a person would (SIGINT: it flushes what it decoded). */
  stop: () => Promise<Int16Array>
  stderr: () => string
}

/** The a=rtpmap of each codec, as a call's SDP names it (RFC 3551, RFC 7587), and its usual payload type. */
const RTPMAP = { PCMU: [0, 'PCMU/8000'], PCMA: [8, 'PCMA/8000'], G722: [9, 'G722/8000'], opus: [111, 'opus/48000/2'] } as const

/**
 * ffmpeg as the call's far end: it reads an SDP (with an `a=crypto` line, RFC 4568, for SRTP),
 * listens on its m= port (RTP) and the port above (RTCP), decrypts with its own SRTP code,
 * decodes the codec with its own decoder, and ends at the stream's BYE (which, with SRTP, it can
 * only see if it could open the SRTCP). Resolves once ffmpeg's sockets are bound.
 */
export async function ffmpegReceiver (t: Test, o: { suite?: Suite, key?: string, codec?: keyof typeof RTPMAP, payloadType?: number, sampleRate?: number }): Promise<FfmpegReceiver> {
  const dir = tempDir(t, 'ffmpeg-receiver-')
  const port = await freePortPair()
  const [defaultPt, rtpmap] = RTPMAP[o.codec ?? 'PCMU']
  const pt = o.payloadType ?? defaultPt
  const sdp = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=prompt-player test', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${port} ${o.suite === undefined ? 'RTP/AVP' : 'RTP/SAVP'} ${pt}`, `a=rtpmap:${pt} ${rtpmap}`,
    ...(o.suite === undefined ? [] : [`a=crypto:1 ${o.suite} inline:${o.key!}`]), ''].join('\n')
  fs.writeFileSync(path.join(dir, 'call.sdp'), sdp)
  const rate = String(o.sampleRate ?? 8000)
  const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-protocol_whitelist', 'file,udp,rtp', '-i', path.join(dir, 'call.sdp'), '-ac', '1', '-ar', rate, '-f', 's16le', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const chunks: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => chunks.push(c))
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  t.teardown(() => { child.kill('SIGKILL') })
  let stopped = false
  let exited = false
  const done = new Promise<Int16Array>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`ffmpeg did not end (no BYE it could read?): ${stderr}`)) }, 60_000)
    child.on('exit', code => {
      exited = true
      clearTimeout(timer)
      const out = Buffer.concat(chunks)
      if (code !== 0 && !stopped) reject(new Error(`ffmpeg exited with ${code}: ${stderr}`))
      else resolve(new Int16Array(out.buffer, out.byteOffset, out.length >> 1))
    })
  })
  for (let waited = 0; !udpBound(port) || !udpBound(port + 1); waited += 20) {
    if (waited > 10_000) throw new Error(`ffmpeg did not bind ${port}: ${stderr}`)
    await sleep(20)
  }
  return {
    port,
    done,
    endedByItself: () => exited && !stopped,
    stop: async () => {
      if (!exited) {
        stopped = true
        child.kill('SIGINT')
      }
      return await done
    },
    stderr: () => stderr
  }
}
