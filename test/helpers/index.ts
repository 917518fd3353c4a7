/**
 * Shared test parts, all real: sample prompts from the committed library, temporary libraries,
 * engines and Fastify apps, UDP receivers on 127.0.0.1, and ffmpeg as the reference decoder.
 */
import { execFile, spawn } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import Fastify, { type FastifyInstance } from 'fastify'
import { parseRtpPacket, type RtpPacket } from 'rtp-parser'
import type { Test as TapTest } from 'tap'
import app, { serverOptions } from '../../service/app.js'
import { CallbackPolicy } from '../../service/callbacks.js'
import { bindPair } from '../../cli/udp-pair.js'
import { createEngine, isRtcp, type Container, type Engine, type EngineOptions } from '../../src/index.js'
import { PromptAudio } from '../../src/packet/prompt-audio.js'
import type { Codec, Ptime } from '../../src/common/codecs.js'
import type { Prompt } from '../../src/library/prompt.js'

type Test = Pick<TapTest, 'teardown'>

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const LIBRARY = path.join(ROOT, 'prompts')

export interface Sample {
  /** Prompt name in the committed library. */
  name: string
  /** The file name it was made under (two of them lie about their container). */
  filename: string
  container: Container
  path: string
  bytes: Buffer
}

/** The committed sample prompts, read from the default library's descriptions. */
export function samples (): Sample[] {
  return fs.readdirSync(LIBRARY).filter(f => f.endsWith('.json')).sort().map(f => {
    const info = JSON.parse(fs.readFileSync(path.join(LIBRARY, f), 'utf8'))
    const file = path.join(LIBRARY, 'media', info.source.sha256, 'source')
    return { name: info.name, filename: info.source.filename, container: info.source.container, path: file, bytes: fs.readFileSync(file) }
  })
}

export function sample (name: string): Sample {
  const found = samples().find(s => s.name === name)
  if (found === undefined) throw new Error(`no sample prompt ${name}`)
  return found
}

export function tempDir (t: Test, prefix = 'prompt-player-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A temporary library holding a copy of the committed sample prompts. */
export function sampleLibrary (t: Test): string {
  const dir = tempDir(t)
  fs.cpSync(LIBRARY, dir, { recursive: true, filter: src => !src.endsWith('.sh') })
  return dir
}

let portBase = 20000 + (process.pid % 200) * 90

/** Distinct RTP port ranges per engine, so test files running in parallel do not collide. */
export function rtpPorts (size = 40): { min: number, max: number } {
  const min = portBase
  portBase += size
  return { min, max: min + size - 1 }
}

/**
 * The late limit of the tests' engines and servers: none. A shared CI machine stalls a thread
 * for tens of milliseconds now and then, and a test that checks every packet byte for byte
 * must see each one, late or not; skipping has its own tests (a stopped process, a fake clock).
 */
export const TEST_LATE_LIMIT = 0

/**
 * Packet threads of the tests' engines and servers: one. Each thread compiles the packet code
 * from TypeScript as it starts, and with one a thread the suite took 25 % less time; the
 * threads themselves are tested where they are the subject (test/plays/threads.test.ts, and an
 * engine on its defaults in test/plays/packet-engine.test.ts).
 */
export const TEST_PACKET_THREADS = 1

export async function engine (t: Test, options: Partial<EngineOptions> = {}): Promise<Engine> {
  const e = await createEngine({ libraryDir: options.libraryDir ?? sampleLibrary(t), rtpPorts: rtpPorts(), lateLimitPtimes: TEST_LATE_LIMIT, packetThreads: TEST_PACKET_THREADS, ...options })
  t.teardown(() => e.close())
  return e
}

/** A real Fastify app on the sample library. `listen` it for real sockets, or `inject`. */
export async function buildApp (t: Test, options: Partial<EngineOptions> & { maxUploadBytes?: number, tokens?: string[], rateLimit?: number, requestTimeout?: number, overload?: { maxEventLoopDelayMs: number, sampleIntervalMs?: number }, callbacks?: string[], maxPromptsPerPlay?: number, consoleDir?: string } = {}): Promise<FastifyInstance> {
  const { maxUploadBytes, tokens, rateLimit, requestTimeout, overload, callbacks, maxPromptsPerPlay, consoleDir, ...engineOptions } = options
  const e = await createEngine({ libraryDir: engineOptions.libraryDir ?? sampleLibrary(t), rtpPorts: rtpPorts(), lateLimitPtimes: TEST_LATE_LIMIT, packetThreads: TEST_PACKET_THREADS, ...engineOptions })
  const fastify = Fastify(serverOptions)
  // Load shedding is off unless a test is about it: on a shared CI machine the test process is
  // starved for seconds now and then, and the HTTP thread would then answer 503 OVERLOADED to a
  // request whose test is about something else (test/service/limits.test.ts tests the shedding).
  await fastify.register(app, { engine: e, ...(maxUploadBytes === undefined ? {} : { maxUploadBytes }), ...(tokens === undefined ? {} : { tokens }), ...(rateLimit === undefined ? {} : { rateLimit }), ...(requestTimeout === undefined ? {} : { bodyTimeoutMs: requestTimeout }), overload: overload ?? { maxEventLoopDelayMs: 0 }, ...(callbacks === undefined ? {} : { webhooks: { policy: new CallbackPolicy(callbacks) } }), ...(maxPromptsPerPlay === undefined ? {} : { maxPromptsPerPlay }), ...(consoleDir === undefined ? {} : { consoleDir }) })
  t.teardown(() => fastify.close())
  await fastify.ready()
  engines.set(fastify, e)
  return fastify
}

const engines = new WeakMap<FastifyInstance, Engine>()

/** The engine behind an app from buildApp (the app plugin encapsulates its decoration). */
export function engineOf (app: FastifyInstance): Engine {
  return engines.get(app)!
}

export interface Received {
  at: number
  raw: Buffer
  rtp: RtpPacket
  from: { address: string, port: number }
}

export interface ReceivedRtcp {
  at: number
  raw: Buffer
  /** Where it arrived: the RTCP port (port + 1), or the RTP port (rtcp "mux"). */
  on: 'rtcp' | 'rtp'
  from: { address: string, port: number }
}

/**
 * A far end on loopback: a UDP socket for RTP on a free port and one for RTCP on the port
 * above (RFC 3550 §11), so that a play's RTCP reaches this receiver and never another test's
 * socket. Keeps every packet with its arrival time; RTCP arriving on the RTP port (RFC 5761)
 * is kept with the RTCP.
 */
export class Receiver {
  readonly packets: Received[] = []
  readonly rtcp: ReceivedRtcp[] = []
  private readonly socket: dgram.Socket
  private readonly rtcpSocket: dgram.Socket
  private waiters: Array<() => void> = []

  private constructor (socket: dgram.Socket, rtcpSocket: dgram.Socket) {
    this.socket = socket
    this.rtcpSocket = rtcpSocket
    socket.on('message', (raw, rinfo) => {
      const from = { address: rinfo.address, port: rinfo.port }
      if (isRtcp(raw)) this.rtcp.push({ at: performance.now(), raw, on: 'rtp', from })
      else this.packets.push({ at: performance.now(), raw, rtp: parseRtpPacket(raw), from })
      for (const w of this.waiters) w()
    })
    rtcpSocket.on('message', (raw, rinfo) => {
      this.rtcp.push({ at: performance.now(), raw, on: 'rtcp', from: { address: rinfo.address, port: rinfo.port } })
      for (const w of this.waiters) w()
    })
  }

  static async open (t: Test, host = '127.0.0.1'): Promise<Receiver> {
    const { socket, rtcpSocket } = await bindPair(host, 0)
    const receiver = new Receiver(socket, rtcpSocket!)
    t.teardown(() => receiver.close())
    return receiver
  }

  get port (): number { return this.socket.address().port }

  /** Sends a datagram from this receiver's port, as a far end sends its media back (symmetric RTP). */
  async send (packet: Buffer, port: number, host = '127.0.0.1'): Promise<void> {
    await new Promise<void>((resolve, reject) => this.socket.send(packet, port, host, err => err ? reject(err) : resolve()))
  }

  /** Sends a datagram from this receiver's RTCP port, as a far end sends its reports. */
  async sendRtcp (packet: Buffer, port: number, host = '127.0.0.1'): Promise<void> {
    await new Promise<void>((resolve, reject) => this.rtcpSocket.send(packet, port, host, err => err ? reject(err) : resolve()))
  }

  close (): void {
    try { this.socket.close() } catch {}
    try { this.rtcpSocket.close() } catch {}
  }

  /** Resolves when `count` packets have arrived, rejects after `timeoutMs`. */
  async waitFor (count: number, timeoutMs = 10_000): Promise<Received[]> {
    if (this.packets.length >= count) return this.packets
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.packets.length} of ${count} packets arrived in ${timeoutMs} ms`)), timeoutMs)
      const check = (): void => {
        if (this.packets.length >= count) {
          clearTimeout(timer)
          this.waiters = this.waiters.filter(w => w !== check)
          resolve(this.packets)
        }
      }
      this.waiters.push(check)
    })
  }

  /** Waits until no packet has arrived for `quietMs`. */
  async waitQuiet (quietMs: number, timeoutMs = 20_000): Promise<Received[]> {
    const start = performance.now()
    for (;;) {
      const last = this.packets.at(-1)?.at ?? start
      const now = performance.now()
      if (now - last >= quietMs) return this.packets
      if (now - start > timeoutMs) throw new Error('packets kept arriving')
      await sleep(quietMs / 4)
    }
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * ffmpeg as the reference: decodes a file (or raw G.711 with `inputFormat`) to 8 kHz mono
 * 16-bit samples. Called directly, not through the engine, so that it checks the engine.
 */
export async function referenceDecode (input: string | Buffer, inputFormat?: 'mulaw' | 'alaw'): Promise<Int16Array> {
  const args = ['-nostdin', '-v', 'error']
  if (inputFormat) args.push('-f', inputFormat, '-ar', '8000', '-ac', '1')
  args.push('-i', typeof input === 'string' ? input : 'pipe:0', '-ac', '1', '-ar', '8000', '-f', 's16le', 'pipe:1')
  return await ffmpegSamples(args, typeof input === 'string' ? undefined : input)
}

/** ffmpeg decodes a file to mono 16-bit samples at `rate` (16 or 48 kHz for wideband). */
export async function decodeAt (file: string, rate: number): Promise<Int16Array> {
  return await ffmpegSamples(['-nostdin', '-v', 'error', '-i', file, '-ac', '1', '-ar', String(rate), '-f', 's16le', 'pipe:1'])
}

/**
 * The RMS of what ffmpeg's filters leave of 16 kHz samples between 5 and 7 kHz (high-pass three
 * times, low-pass once): a band G.722 and Opus carry and G.711 cannot.
 */
export async function bandRms (pcm: Int16Array): Promise<number> {
  const out = await ffmpegSamples(['-nostdin', '-v', 'error', '-f', 's16le', '-ar', '16000', '-ac', '1', '-i', 'pipe:0', '-af', 'highpass=f=5000,highpass=f=5000,highpass=f=5000,lowpass=f=7000', '-f', 's16le', 'pipe:1'], Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength))
  let sum = 0
  for (const x of out) sum += x * x
  return Math.sqrt(sum / Math.max(1, out.length))
}

/** ffmpeg run with `args` (stdin fed `input` when given), its s16le output as samples. */
async function ffmpegSamples (args: string[], input?: Buffer): Promise<Int16Array> {
  const out = await new Promise<Buffer>((resolve, reject) => {
    const child = execFile('ffmpeg', args, { encoding: 'buffer', maxBuffer: 1 << 28 }, (err, stdout) => err ? reject(err) : resolve(stdout))
    if (input !== undefined) child.stdin!.end(input)
  })
  return new Int16Array(out.buffer, out.byteOffset, out.length >> 1)
}

/**
 * Normalised cross-correlation of two signals, the best over lags up to `maxLag` samples:
 * 1 for the same waveform, near 0 for unrelated ones.
 */
export function correlation (a: Int16Array, b: Int16Array, maxLag = 400): number {
  let best = -1
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    let sab = 0; let saa = 0; let sbb = 0
    for (let i = Math.max(0, -lag); i < a.length && i + lag < b.length; i++) {
      const x = a[i]!; const y = b[i + lag]!
      sab += x * y; saa += x * x; sbb += y * y
    }
    if (saa > 0 && sbb > 0) best = Math.max(best, sab / Math.sqrt(saa * sbb))
  }
  return best
}

/** The longest run of samples quieter than `level`, in ms. */
export function longestQuiet (pcm: Int16Array, rate: number, level = 200): number {
  let best = 0
  let run = 0
  for (const x of pcm) {
    run = Math.abs(x) < level ? run + 1 : 0
    if (run > best) best = run
  }
  return best / rate * 1000
}

export function median (values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[sorted.length >> 1] ?? NaN
}

/** A free UDP port on loopback whose neighbour above is free too (for a far end that binds its RTP and RTCP ports itself). */
export async function freePortPair (): Promise<number> {
  const { socket, rtcpSocket } = await bindPair('127.0.0.1', 0)
  const port = socket.address().port
  socket.close()
  rtcpSocket?.close()
  return port
}

/** Where a run of RTP sequence numbers breaks: each number that is not the one before plus one (mod 2^16). */
export function sequenceBreaks (seqs: readonly number[]): number[] {
  return seqs.slice(1).filter((s, i) => s !== ((seqs[i]! + 1) & 0xffff))
}

/** Resolves once `check` holds (polled every `everyMs`), rejects with `what` after `timeoutMs`. */
export async function waitUntil (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 10): Promise<void> {
  const start = performance.now()
  while (!(await check())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** A prompt's payloads at a codec and ptime, sliced as the packet thread slices them. */
export function framesOf (prompt: Prompt, codec: Codec, ptimeMs: Ptime): readonly Buffer[] {
  return new PromptAudio(prompt.audio).frames(codec, ptimeMs)
}

/**
 * Node with the test runner's own flags (so it runs TypeScript) on `args`, under `wrapper` when
 * given (`unshare -n`), killed after `timeoutMs`: its exit code, and what it printed on each
 * stream.
 */
export async function runNode (args: string[], options: { wrapper?: string[], timeoutMs?: number } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const command = [...options.wrapper ?? [], process.execPath, ...process.execArgv, ...args]
  const child = spawn(command[0]!, command.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Runs a program to its end; its stdout. */
export async function run (file: string, args: string[]): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'buffer', maxBuffer: 1 << 28, timeout: 60_000 }, (err, stdout, stderr) => err ? reject(new Error(`${file} failed: ${err.message}\n${String(stderr)}`)) : resolve(stdout))
  })
}

/** tcpdump on loopback, capturing one UDP port pair, until `stop(count)` has seen `count` packets written. */
export async function capture (t: TapTest, port: number): Promise<{ file: string, stop: (count: number) => Promise<void> }> {
  const file = path.join(tempDir(t, 'capture-'), 'call.pcap')
  const tcpdump = spawn('tcpdump', ['-i', 'lo', '-n', '-U', '-w', file, `udp and portrange ${port}-${port + 1}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  tcpdump.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  t.teardown(() => { tcpdump.kill('SIGKILL') })
  await waitUntil(() => stderr.includes('listening on'), 'tcpdump listening')
  const exited = new Promise<void>(resolve => tcpdump.once('exit', () => resolve()))
  const written = async (): Promise<number> => (await run('tcpdump', ['-r', file, '-n'])).toString().split('\n').filter(Boolean).length
  return {
    file,
    stop: async (count: number) => {
      await waitUntil(async () => await written() >= count, `tcpdump writing ${count} packets`, 10_000, 100)
      tcpdump.kill('SIGINT')
      await exited
    }
  }
}
