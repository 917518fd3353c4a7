/**
 * npm run bench [-- --quick] [-- --max 5000]
 * npm run bench -- --only 2000 [--window 10] [--uploads] [--capture /tmp/rtp.pcap]
 * npm run bench -- --in-call | --urls | --console [--consoles 5] | --srtp | --codecs | --lists [--rounds 3] (one section alone)
 * npm run bench -- --sentinel [--trials 20] [--uploads 200] [--down-after 2000] (Redis under Sentinel: WAIT's cost, failover)
 * npm run bench -- --threads [--counts 1,1000,3000,5000] [--window 10] [--srtp] (packet threads and the grid, at the kernel: bench/threads.ts; --srtp: plain against each SRTP suite on two threads)
 *
 * Starts the service as a process, uploads a 75 s MP3 prompt, starts N plays over HTTP at
 * 100 per second to a receiver in a process of its own (bench/receiver.ts, one UDP port per
 * stream, all on 127.0.0.1), and measures, side by side in one run, the per-call senders a
 * team would use instead: one ffmpeg process per call (with `asetnsamples` and `-re`, and with
 * `arealtime`) and GStreamer where gst-launch-1.0 is installed. Prints one table of medians and
 * ratios. Numbers from a shared machine: compare within a run, not across runs.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import http from 'node:http'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { PromptPlayerClient } from '../client/index.js'
import { listeningUrl, quantile, sleep } from './stats.js'
import type { Expect, ReceiverReport } from './receiver.js'
import { digitToLast, kernelGaps, type KernelGaps } from './pcap-gaps.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const args = process.argv.slice(2)
const option = (name: string): string | undefined => args.includes(name) ? args[args.indexOf(name) + 1] : undefined
const QUICK = args.includes('--quick')
const MAX = Number(option('--max') ?? 5000)
const WINDOW_S = Number(option('--window') ?? (QUICK ? 8 : 60))
/** --only N: prompt-player at N plays only. --capture FILE: tcpdump the window (kernel timestamps). */
const ONLY = option('--only') === undefined ? null : Number(option('--only'))
const CAPTURE = option('--capture')
/** Alternating rounds of the in-call section. */
const ROUNDS = Number(option('--rounds') ?? (QUICK ? 1 : 3))
const RATE = 100 // plays started per second, as an IVR platform taking 100 new calls a second
const PROMPT_S = 75
const CLK_TCK = 100

function wallMs (): number { return performance.timeOrigin + performance.now() }

interface Row {
  sender: string
  n: number
  cpuPerStreamMinute: number
  rssPerCallMb: number
  startP50: number
  startP99: number
  gapP50: number
  gapP99: number
  gapMax: number
  driftP50: number
  driftMax: number
  lossPct: number
  badSize: number
  getP99?: number
  /** POST /v1/plays sent to its answer (which comes once the first packet has left), ms. */
  postP50?: number
  postP99?: number
  /** From the engine's own histogram: bound of the bucket holding the 99th percentile of packet lateness, and the share over 10 ms. */
  lateP99?: string
  lateOver10?: number
}

const LATE_BOUNDS = ['0.0005', '0.001', '0.002', '0.005', '0.01', '0.02', '0.05', '0.1', '0.25', '+Inf']

/** Cumulative bucket counts of prompt_player_packet_lateness_seconds, summed over instances. */
async function lateness (urls: string[]): Promise<number[]> {
  const sum = LATE_BOUNDS.map(() => 0)
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text()
    LATE_BOUNDS.forEach((le, i) => { sum[i]! += Number(new RegExp(`^prompt_player_packet_lateness_seconds_bucket\\{le="${le.replace('+', '\\+')}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0) })
  }
  return sum
}

function latenessSummary (before: number[], after: number[]): { p99: string, over10: number } {
  const delta = after.map((v, i) => v - before[i]!)
  const total = delta.at(-1)!
  const i = delta.findIndex(v => v >= 0.99 * total)
  const over10 = total === 0 ? 0 : 100 * (total - delta[4]!) / total
  return { p99: i < 0 ? '-' : `<= ${LATE_BOUNDS[i] === '+Inf' ? '> 250' : Number(LATE_BOUNDS[i]) * 1000} ms`, over10 }
}

/** CPU seconds and RSS bytes of several processes (the instances of a pool), summed. */
function usageOf (pids: number[]): { cpu: number, rss: number } {
  return pids.map(usage).reduce((a, b) => ({ cpu: a.cpu + b.cpu, rss: a.rss + b.rss }), { cpu: 0, rss: 0 })
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
function usage (pid: number): { cpu: number, rss: number } {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024
    return { cpu, rss }
  } catch {
    return { cpu: 0, rss: 0 }
  }
}

export class Receiver {
  private readonly child: ChildProcess
  private nextId = 1
  private readonly pending = new Map<number, (value: any) => void>()
  constructor () {
    this.child = fork(path.join(HERE, 'receiver.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (m: { id: number }) => { this.pending.get(m.id)?.(m); this.pending.delete(m.id) })
  }

  get pid (): number { return this.child.pid! }
  private async call (cmd: string, extra: object = {}): Promise<any> {
    const id = this.nextId++
    return await new Promise(resolve => { this.pending.set(id, resolve); this.child.send({ cmd, id, ...extra }) })
  }

  /** Binds `count` RTP/RTCP pairs; `trailer`: bytes SRTP adds after each payload; `expect`: the payload size and RTP clock (G.711 20 ms by default). */
  async open (count: number, trailer = 0, expect?: Expect): Promise<number[]> { return (await this.call('open', { count, trailer, expect })).ports }
  /** Presses a key towards each stream's source (RFC 4733), `afterMs` from now; sealed with `srtp` when given. */
  async press (presses: Array<{ port: number, digit: string, afterMs: number, srtp?: { suite: string, key: string } }>): Promise<void> { await this.call('press', { presses }) }
  async report (): Promise<ReceiverReport> { return (await this.call('report')).report }
  async close (): Promise<void> { await this.call('close') }
}

function summarize (sender: string, n: number, report: ReceiverReport, starts: Map<number, number>, cpuSeconds: number, windowS: number, rssPerCall: number): Row {
  const startLatency = report.streams.filter(s => s.packets > 0 && starts.has(s.port)).map(s => s.firstArrival - starts.get(s.port)!)
  const drifts = report.streams.filter(s => s.packets > 50).map(s => Math.abs(s.driftMs))
  const expected = report.streams.reduce((a, s) => a + s.expected, 0)
  const received = report.streams.reduce((a, s) => a + s.packets, 0)
  const silent = report.streams.filter(s => s.packets === 0).length
  return {
    sender,
    n,
    cpuPerStreamMinute: cpuSeconds / (n * windowS / 60),
    rssPerCallMb: rssPerCall / 1e6,
    startP50: quantile(startLatency, 0.5),
    startP99: quantile(startLatency, 0.99),
    gapP50: report.gaps.p50,
    gapP99: report.gaps.p99,
    gapMax: report.gaps.max,
    driftP50: quantile(drifts, 0.5),
    driftMax: Math.max(0, ...drifts),
    lossPct: expected === 0 ? 100 : 100 * ((expected - received) / expected) + 100 * silent / n,
    badSize: report.streams.reduce((a, s) => a + s.badSize, 0)
  }
}

/**
 * prompt-player: N plays over HTTP, 100 new ones a second, to `url` (one instance, or a load
 * balancer in front of several: `pids` and `instances` then name them all).
 */
export interface RunOptions {
  /** Fields added to play i's request. */
  request?: (i: number) => object
  /** Runs during the measured window, beside the GETs. */
  during?: (ports: number[], windowMs: number) => Promise<void>
  /** Sees the receiver's report of the window. */
  onReport?: (report: ReceiverReport) => void
  /** A tcpdump capture of the window's RTP, to this file. */
  capture?: string
  /** Bytes SRTP adds after each payload, for the receiver's size check. */
  trailer?: number
  /** The payload size and RTP clock of the plays (G.711 at 20 ms by default). */
  expect?: Expect
}

export async function runPromptPlayer (url: string, pids: number[], receiver: Receiver, n: number, uploads: Buffer[] = [], instances: string[] = [url], label = 'prompt-player', options: RunOptions = {}): Promise<Row> {
  const ports = await receiver.open(n, options.trailer ?? 0, options.expect)
  const idle = usageOf(pids)
  const starts = new Map<number, number>()
  const ids: string[] = []
  const began = performance.now()
  const repeats = Math.ceil((n / RATE + WINDOW_S + 5) / PROMPT_S)
  const posts: Array<Promise<void>> = []
  const postLatency: number[] = []
  for (let i = 0; i < n; i++) {
    const due = began + i * 1000 / RATE
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    const port = ports[i]!
    const sent = wallMs()
    starts.set(port, sent)
    posts.push(fetch(`${url}/v1/plays`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: { host: '127.0.0.1', port }, prompts: Array(repeats).fill('bench'), ...options.request?.(i) })
    }).then(async res => {
      postLatency.push(wallMs() - sent)
      const body = await res.json() as { id?: string, message?: string }
      if (body.id === undefined) throw new Error(`play ${i} refused: ${body.message}`)
      ids.push(body.id)
    }))
  }
  await Promise.all(posts)
  await sleep(500)
  const captureTo = options.capture ?? CAPTURE
  // The plays' packets, and what comes back to their ports (key presses, reports).
  const capture = captureTo === undefined ? null : spawn('tcpdump', ['-i', 'lo', '-s', '64', '-B', '65536', '-w', captureTo, 'udp and (src portrange 20000-39999 or dst portrange 20000-39999)'], { stdio: 'ignore' })
  if (capture !== null) await sleep(1000)
  const a = usageOf(pids)
  const lateBefore = await lateness(instances)
  // The HTTP API while the plays run: GET /v1/plays/{id}, ten a second.
  const getLatency: number[] = []
  const windowEnd = performance.now() + WINDOW_S * 1000
  // Uploads at the same time, when asked: large WAV and MP3 files, several at once, all window.
  let uploaded = 0
  const uploaders = uploads.map(async (bytes, k) => {
    while (performance.now() < windowEnd) {
      const res = await fetch(`${url}/v1/prompts/upload-${k}`, { method: 'PUT', body: new Uint8Array(bytes) })
      await res.arrayBuffer()
      if (res.ok) uploaded++
    }
  })
  const during = options.during?.(ports, WINDOW_S * 1000)
  while (performance.now() < windowEnd) {
    const t0 = performance.now()
    await (await fetch(`${url}/v1/plays/${ids[Math.floor(Math.random() * ids.length)]}`)).arrayBuffer()
    getLatency.push(performance.now() - t0)
    await sleep(100)
  }
  await Promise.all(uploaders)
  await during
  capture?.kill('SIGINT')
  if (capture !== null && capture.exitCode === null) await new Promise(resolve => capture.once('exit', resolve))
  const b = usageOf(pids)
  const late = latenessSummary(lateBefore, await lateness(instances))
  const report = await receiver.report()
  options.onReport?.(report)
  await Promise.all(ids.map(async id => { await (await fetch(`${url}/v1/plays/${id}`, { method: 'DELETE' })).arrayBuffer() }))
  const row = summarize(uploads.length === 0 ? label : `${label} + ${uploaded} uploads`, n, report, starts, b.cpu - a.cpu, (b.cpu === a.cpu ? WINDOW_S : WINDOW_S), (b.rss - idle.rss) / n)
  row.getP99 = quantile(getLatency, 0.99)
  row.postP50 = quantile(postLatency, 0.5)
  row.postP99 = quantile(postLatency, 0.99)
  row.lateP99 = late.p99
  row.lateOver10 = late.over10
  return row
}

/**
 * Control to effect, at a receiver: a play of white noise (no frame is silence) paused and
 * resumed `cycles` times; from each answer to the first silent packet after a pause, and to
 * the first audio packet after a resume.
 */
async function controlToEffect (url: string, work: string, cycles: number): Promise<{ pause: number[], resume: number[] }> {
  await uploadNoise(url)
  const socket = dgram.createSocket('udp4')
  const arrivals: Array<{ at: number, silent: boolean }> = []
  socket.on('message', (packet: Buffer) => { arrivals.push({ at: performance.now(), silent: packet.subarray(12).every(b => b === 0xff) }) })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  const res = await fetch(`${url}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: socket.address().port }, prompts: ['noise'], rtcp: 'off' }) })
  const play = await res.json() as { id: string }
  const result = { pause: [] as number[], resume: [] as number[] }
  const control = async (operation: string): Promise<number> => {
    const r = await fetch(`${url}/v1/plays/${play.id}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operation }) })
    await r.arrayBuffer()
    return performance.now()
  }
  await sleep(200)
  for (let i = 0; i < cycles; i++) {
    await sleep(40 + Math.random() * 40)
    const paused = await control('pause')
    await sleep(100)
    const silence = arrivals.find(a => a.at >= paused && a.silent)
    if (silence !== undefined) result.pause.push(silence.at - paused)
    await sleep(Math.random() * 20)
    const resumed = await control('resume')
    await sleep(100)
    const audio = arrivals.find(a => a.at >= resumed && !a.silent)
    if (audio !== undefined) result.resume.push(audio.at - resumed)
  }
  await fetch(`${url}/v1/plays/${play.id}`, { method: 'DELETE' })
  socket.close()
  return result
}

/**
 * In-call features under load, side by side in one run: N plays with RTCP off and no DTMF,
 * then N plays with RTCP on (each SR answered by an RR) and DTMF on every play: a key that does
 * not stop (5) pressed on 90 % of them, one that does (#) on 10 %, at random times in the
 * window, with pause/resume cycles on another play all the while. The two alternate for
 * `rounds` rounds; each window is also captured with tcpdump, so that pacing is read at the
 * kernel's timestamps as well as at the Node receiver (which does more work in the second:
 * answering reports, pressing keys). Reports medians over the rounds.
 */
interface InCall { plain: Row[], full: Row[], kernel: { plain: KernelGaps[], full: KernelGaps[] }, dtmfToLast: number[], stopped: number, pressed: number, senderReports: number, byes: number, effect: { pause: number[], resume: number[] } }

async function inCallUnderLoad (url: string, pid: number, receiver: Receiver, work: string, n: number, rounds: number): Promise<InCall> {
  const result: InCall = { plain: [], full: [], kernel: { plain: [], full: [] }, dtmfToLast: [], stopped: 0, pressed: 0, senderReports: 0, byes: 0, effect: { pause: [], resume: [] } }
  const capture = path.join(work, 'in-call.pcap')
  await uploadNoise(url)
  for (let round = 1; round <= rounds; round++) {
    result.plain.push(await runPromptPlayer(url, [pid], receiver, n, [], [url], 'prompt-player, RTCP off, no DTMF', { request: () => ({ rtcp: 'off' }), capture }))
    result.kernel.plain.push(kernelGaps(capture))
    await sleep(1000)
    const stopping = new Set<number>()
    let report: ReceiverReport | null = null
    result.full.push(await runPromptPlayer(url, [pid], receiver, n, [], [url], 'prompt-player + RTCP + DTMF', {
      request: () => ({ rtcp: 'on', dtmf: { payloadType: 101, stopOn: '#' } }),
      during: async (ports, windowMs) => {
        const presses = ports.map((port, i) => {
          if (i % 10 === 0) stopping.add(port)
          return { port, digit: i % 10 === 0 ? '#' : '5', afterMs: 1000 + Math.random() * (windowMs - 3000) }
        })
        await receiver.press(presses)
        const effect = await controlToEffect(url, work, Math.max(10, Math.floor(windowMs / 400)))
        result.effect.pause.push(...effect.pause)
        result.effect.resume.push(...effect.resume)
      },
      onReport: r => { report = r },
      capture
    }))
    result.kernel.full.push(kernelGaps(capture))
    const streams = (report as ReceiverReport | null)?.streams ?? []
    const pressed = streams.filter(s => stopping.has(s.port) && s.pressAt > 0)
    // From the digit's first packet leaving the far end to the play's last packet arriving there
    // (negative when that packet was already on its way).
    result.dtmfToLast.push(...pressed.map(s => s.lastArrival - s.pressAt))
    result.pressed += pressed.length
    result.stopped += pressed.filter(s => s.lastArrival - s.pressAt < 1000).length
    result.senderReports += streams.reduce((a, s) => a + s.senderReports, 0)
    result.byes += streams.filter(s => s.bye).length
    console.error(`in-call round ${round} of ${rounds}, N=${n}: gap p99 ${result.plain.at(-1)!.gapP99.toFixed(2)} / ${result.full.at(-1)!.gapP99.toFixed(2)} ms at the receiver, ${result.kernel.plain.at(-1)!.p99.toFixed(2)} / ${result.kernel.full.at(-1)!.p99.toFixed(2)} ms at the kernel (without / with)`)
    await sleep(1000)
  }
  fs.rmSync(capture, { force: true })
  return result
}

interface ConsoleLoad {
  plain: Row[]
  watched: Row[]
  kernel: { plain: KernelGaps[], watched: KernelGaps[] }
  /** GET /v1/plays as the consoles polled it: ms, and bytes of each answer. */
  listMs: number[]
  listBytes: number[]
  events: number
  consoles: number
}

/**
 * What leaving the web console open costs a busy instance. N plays without a console, then N
 * with `consoles` of them open, alternating rounds, each window captured with tcpdump. A
 * console here makes exactly the page's requests (console/plays.tsx, console/health.tsx): one
 * /v1/events stream read to the end, GET /v1/plays?limit=100 every second while plays run, /readyz and
 * /metrics every five seconds; a browser's own rendering is not on this machine's cores.
 */
async function consoleUnderLoad (url: string, pid: number, receiver: Receiver, work: string, n: number, rounds: number, consoles: number): Promise<ConsoleLoad> {
  const result: ConsoleLoad = { plain: [], watched: [], kernel: { plain: [], watched: [] }, listMs: [], listBytes: [], events: 0, consoles }
  const capture = path.join(work, 'console.pcap')
  const watch = async (windowMs: number): Promise<void> => {
    const end = performance.now() + windowMs
    const stop = new AbortController()
    const one = async (k: number): Promise<void> => {
      // Each console's own phase, as tabs opened at different moments.
      await sleep(k * 1000 / consoles)
      const stream = (async () => {
        const events = new PromptPlayerClient({ url }).events({ signal: stop.signal })
        while (!(await events.next()).done) result.events++
      })().catch(() => {})
      let tick = 0
      while (performance.now() < end) {
        const t0 = performance.now()
        const body = await (await fetch(`${url}/v1/plays?limit=${CONSOLE_ROWS}`)).arrayBuffer()
        result.listMs.push(performance.now() - t0)
        result.listBytes.push(body.byteLength)
        if (tick++ % 5 === 0) await Promise.all([fetch(`${url}/readyz`).then(async r => await r.arrayBuffer()), fetch(`${url}/metrics`).then(async r => await r.arrayBuffer())])
        await sleep(Math.max(0, 1000 - (performance.now() - t0)))
      }
      stop.abort()
      await stream
    }
    await Promise.all(Array.from({ length: consoles }, async (_, k) => { await one(k) }))
  }
  for (let round = 1; round <= rounds; round++) {
    result.plain.push(await runPromptPlayer(url, [pid], receiver, n, [], [url], 'prompt-player, no console', { capture }))
    result.kernel.plain.push(kernelGaps(capture))
    await sleep(1000)
    result.watched.push(await runPromptPlayer(url, [pid], receiver, n, [], [url], `prompt-player + ${consoles} consoles`, { during: async (_ports, windowMs) => { await watch(windowMs) }, capture }))
    result.kernel.watched.push(kernelGaps(capture))
    console.error(`console round ${round} of ${rounds}, N=${n}: kernel gap p99 ${result.kernel.plain.at(-1)!.p99.toFixed(2)} / ${result.kernel.watched.at(-1)!.p99.toFixed(2)} ms, GET /v1/plays/{id} p99 ${result.plain.at(-1)!.getP99!.toFixed(1)} / ${result.watched.at(-1)!.getP99!.toFixed(1)} ms (without / with)`)
    await sleep(1000)
  }
  fs.rmSync(capture, { force: true })
  return result
}

/** What the console's plays table asks for (console/plays.tsx MAX_ROWS). */
const CONSOLE_ROWS = 100

function reportConsole (r: ConsoleLoad): void {
  const med = (values: number[]): number => quantile(values, 0.5)
  const side = (label: string, rows: Row[], kernel: KernelGaps[]): string =>
    `${label}: kernel gap p99 ${med(kernel.map(k => k.p99)).toFixed(2)}, max ${med(kernel.map(k => k.max)).toFixed(2)} ms, loss ${med(rows.map(x => x.lossPct)).toFixed(3)} %; GET /v1/plays/{id} p99 ${med(rows.map(x => x.getP99!)).toFixed(1)} ms; POST /v1/plays p50 / p99 ${med(rows.map(x => x.postP50!)).toFixed(1)} / ${med(rows.map(x => x.postP99!)).toFixed(1)} ms; CPU per stream-minute ${med(rows.map(x => x.cpuPerStreamMinute)).toFixed(4)} s; sender lateness p99 by round ${rows.map(x => x.lateP99).join(', ')}`
  console.log(`The web console left open, N=${r.plain[0]!.n}, medians of ${r.plain.length} alternating rounds:`)
  console.log(`- ${side('no console', r.plain, r.kernel.plain)}`)
  console.log(`- ${side(`${r.consoles} consoles`, r.watched, r.kernel.watched)}`)
  console.log(`- ratio with / without: kernel gap p99 ${(med(r.kernel.watched.map(k => k.p99)) / med(r.kernel.plain.map(k => k.p99))).toFixed(4)}, GET p99 ${(med(r.watched.map(x => x.getP99!)) / med(r.plain.map(x => x.getP99!))).toFixed(3)}, POST p99 ${(med(r.watched.map(x => x.postP99!)) / med(r.plain.map(x => x.postP99!))).toFixed(3)}, CPU ${(med(r.watched.map(x => x.cpuPerStreamMinute)) / med(r.plain.map(x => x.cpuPerStreamMinute))).toFixed(3)}`)
  console.log(`- the consoles' GET /v1/plays: ${r.listMs.length} polls, p50 ${quantile(r.listMs, 0.5).toFixed(1)} / p99 ${quantile(r.listMs, 0.99).toFixed(1)} ms, ${(med(r.listBytes) / 1024).toFixed(0)} KiB each; ${r.events} events streamed`)
}

function reportUrls (r: Record<string, number[]>): void {
  const q = (k: string): string => `${quantile(r[k]!, 0.5).toFixed(1)} / ${quantile(r[k]!, 0.99).toFixed(1)}`
  console.log(`Prompts from URLs (a 10 s MP3 from an origin on 127.0.0.1, ${r.cold!.length} trials each), POST to the first packet p50 / p99 ms: named prompt ${q('named')}; URL warm (cache hit) ${q('warm')}; revalidated (304) ${q('revalidated')}; cold (fetched and transcoded) ${q('cold')}. For comparison: the transcode alone (PUT of the same MP3) ${q('transcode')}, the fetch alone ${q('fetch')}, the origin's own answer ${q('originAnswer')}.`)
}

interface SecureLoad {
  /** dtmfToLast at the receiver; kernelDtmfToLast from the capture (bench/pcap-gaps.ts digitToLast). */
  suites: Record<string, { rows: Row[], kernel: KernelGaps[], dtmfToLast: number[], kernelDtmfToLast: number[], pressed: number, stopped: number }>
  /** µs of the packet thread's work per packet, measured in this process: the header alone, and header plus sealing. */
  sealUs: Record<string, number>
}

/** Bytes SRTP adds after the payload, per suite (no MKI). */
const SRTP_TRAILER: Record<string, number> = { plain: 0, AES_CM_128_HMAC_SHA1_80: 10, AEAD_AES_128_GCM: 16 }

/**
 * What SRTP costs a busy instance: N plays in the clear, then N with AES_CM_128_HMAC_SHA1_80,
 * then N with AEAD_AES_128_GCM, in alternating rounds, each window captured with tcpdump. Every
 * play has barge-in on; a tenth of them get a # (sealed with the play's remote key under SRTP)
 * and the time from the digit to the play's last packet is taken at the receiver. Then the
 * sealing alone, in this process, per packet.
 */
async function secureUnderLoad (url: string, pid: number, receiver: Receiver, work: string, n: number, rounds: number): Promise<SecureLoad> {
  const { makeSdesKey } = await import('../src/index.js')
  const { packetWorkUs } = await import('./threads.js')
  const result: SecureLoad = { suites: {}, sealUs: {} }
  const capture = path.join(work, 'srtp.pcap')
  await uploadNoise(url)
  for (let round = 1; round <= rounds; round++) {
    for (const suite of ['plain', 'AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_128_GCM'] as const) {
      const entry = result.suites[suite] ??= { rows: [], kernel: [], dtmfToLast: [], kernelDtmfToLast: [], pressed: 0, stopped: 0 }
      const keys = new Map<number, string>()
      const stopping = new Set<number>()
      let report: ReceiverReport | null = null
      entry.rows.push(await runPromptPlayer(url, [pid], receiver, n, [], [url], suite === 'plain' ? 'RTP' : `SRTP ${suite}`, {
        trailer: SRTP_TRAILER[suite],
        request: i => {
          const remoteKey = makeSdesKey(suite === 'plain' ? 'AES_CM_128_HMAC_SHA1_80' : suite)
          keys.set(i, remoteKey)
          return { rtcp: 'off', dtmf: { payloadType: 101, stopOn: '#' }, ...(suite === 'plain' ? {} : { srtp: { suite, remoteKey } }) }
        },
        during: async (ports, windowMs) => {
          const presses = ports.filter((_, i) => i % 10 === 0).map(port => {
            stopping.add(port)
            const i = ports.indexOf(port)
            return { port, digit: '#', afterMs: 1000 + Math.random() * (windowMs - 3000), ...(suite === 'plain' ? {} : { srtp: { suite, key: keys.get(i)! } }) }
          })
          await receiver.press(presses)
        },
        onReport: r => { report = r },
        capture
      }))
      entry.kernel.push(kernelGaps(capture))
      entry.kernelDtmfToLast.push(...digitToLast(capture))
      const streams = (report as ReceiverReport | null)?.streams ?? []
      const pressed = streams.filter(s => stopping.has(s.port) && s.pressAt > 0)
      entry.dtmfToLast.push(...pressed.map(s => s.lastArrival - s.pressAt))
      entry.pressed += pressed.length
      entry.stopped += pressed.filter(s => s.lastArrival - s.pressAt < 1000).length
      console.error(`srtp round ${round} of ${rounds}, ${suite}, N=${n}: gap p99 ${entry.rows.at(-1)!.gapP99.toFixed(2)} ms at the receiver, ${entry.kernel.at(-1)!.p99.toFixed(2)} ms at the kernel, CPU ${entry.rows.at(-1)!.cpuPerStreamMinute.toFixed(3)} s per stream-minute`)
      await sleep(1000)
    }
  }
  fs.rmSync(capture, { force: true })
  // The packet thread's per-packet work without the socket: a header written and a payload
  // copied (plain), then also sealed. Medians of five runs of 200,000 packets.
  for (const suite of ['plain', 'AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_128_GCM'] as const) result.sealUs[suite] = packetWorkUs(suite, 1)
  return result
}

interface CodecLoad {
  codecs: Record<string, { rows: Row[], kernel: KernelGaps[] }>
  /** Seconds of ffmpeg for one 60 s prompt, medians: G.711 alone, what an upload makes, and every rendition. */
  transcodeS: Record<string, number>
  /** The whole upload of that prompt over HTTP (PUT to 201), median seconds. */
  uploadS: number
  /** Bytes of each rendition of the 60 s prompt. */
  renditionBytes: Record<string, number>
}

const CODEC_EXPECT: Record<string, Expect> = { PCMU: { payloadBytes: 160, clockPerMs: 8 }, G722: { payloadBytes: 160, clockPerMs: 8 }, opus: { payloadBytes: null, clockPerMs: 48 } }

/**
 * What wideband costs: N plays of the same prompt in PCMU, then in G722, then in opus (20 ms, RTCP
 * off), in alternating rounds, each window captured with tcpdump for the kernel's gaps. Then the
 * transcode of a 60 s prompt: G.711 alone, the renditions an upload makes, all seven.
 */
async function codecsUnderLoad (url: string, pid: number, receiver: Receiver, work: string, prompt: string, n: number, rounds: number): Promise<CodecLoad> {
  const { Ffmpeg, RENDITIONS, UPLOAD_RENDITIONS } = await import('../src/index.js')
  const result: CodecLoad = { codecs: {}, transcodeS: {}, uploadS: 0, renditionBytes: {} }
  const capture = path.join(work, 'codecs.pcap')
  for (let round = 1; round <= rounds; round++) {
    for (const codec of ['PCMU', 'G722', 'opus'] as const) {
      const entry = result.codecs[codec] ??= { rows: [], kernel: [] }
      entry.rows.push(await runPromptPlayer(url, [pid], receiver, n, [], [url], codec, { request: () => ({ codec, rtcp: 'off' }), expect: CODEC_EXPECT[codec]!, capture }))
      entry.kernel.push(kernelGaps(capture))
      console.error(`codecs round ${round} of ${rounds}, ${codec}, N=${n}: gap p99 ${entry.rows.at(-1)!.gapP99.toFixed(2)} ms at the receiver, ${entry.kernel.at(-1)!.p99.toFixed(2)} ms at the kernel, CPU ${entry.rows.at(-1)!.cpuPerStreamMinute.toFixed(3)} s per stream-minute, ${entry.rows.at(-1)!.rssPerCallMb.toFixed(3)} MB per play`)
      await sleep(1000)
    }
  }
  fs.rmSync(capture, { force: true })
  // A 60 s prompt (the sample speech, looped, as a 44.1 kHz stereo WAV: a usual upload).
  const source = path.join(work, 'sixty.wav')
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-stream_loop', '-1', '-i', prompt, '-t', '60', '-ar', '44100', '-ac', '2', '-c:a', 'pcm_s16le', '-y', source])
  const ffmpeg = new Ffmpeg({ maxConcurrent: 1, niceness: 0 })
  const sets: Record<string, readonly string[]> = { 'G.711 alone': ['PCMU', 'PCMA'], 'at upload (G.711, G.722, Opus 20 ms)': UPLOAD_RENDITIONS, 'all seven (and Opus 10, 40, 60 ms)': RENDITIONS }
  for (const [label, renditions] of Object.entries(sets)) {
    const runs: number[] = []
    for (let r = 0; r < 5; r++) {
      const dir = fs.mkdtempSync(path.join(work, 'renditions-'))
      const t0 = performance.now()
      await ffmpeg.transcode(source, 'wav', Object.fromEntries(renditions.map(x => [x, path.join(dir, x.toLowerCase())])))
      runs.push((performance.now() - t0) / 1000)
      if (label.startsWith('all')) for (const x of renditions) result.renditionBytes[x] = fs.statSync(path.join(dir, x.toLowerCase())).size
      fs.rmSync(dir, { recursive: true, force: true })
    }
    result.transcodeS[label] = quantile(runs, 0.5)
  }
  const uploads: number[] = []
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    const res = await fetch(`${url}/v1/prompts/sixty-${r}`, { method: 'PUT', body: fs.readFileSync(source) })
    await res.arrayBuffer()
    if (res.status !== 201) throw new Error(`the 60 s upload failed: ${res.status}`)
    uploads.push((performance.now() - t0) / 1000)
  }
  result.uploadS = quantile(uploads, 0.5)
  return result
}

/** The mixed list: tones, silence and digits before the prompt, so that the window is spent in them. */
const MIXED_LIST = [{ tone: 'ringback', country: 'us', durationMs: 12000 }, { silence: 1000 }, { dtmf: '1234567890*#' }, { tone: 'busy', country: 'gb', durationMs: 12000 }, { silence: 1000 }, 'bench']

/**
 * What generated entries cost: N plays of the bench prompt alone, then N plays of a list of
 * tones, silence and digits before it (20 ms PCMU, RTCP off), in alternating rounds, each window
 * captured with tcpdump for the kernel's gaps.
 */
async function listsUnderLoad (url: string, pid: number, receiver: Receiver, work: string, n: number, rounds: number): Promise<Record<string, { rows: Row[], kernel: KernelGaps[] }>> {
  const result: Record<string, { rows: Row[], kernel: KernelGaps[] }> = {}
  const capture = path.join(work, 'lists.pcap')
  const configs: Record<string, { request: () => Record<string, unknown>, expect: Expect }> = {
    'prompts alone': { request: () => ({ rtcp: 'off' }), expect: CODEC_EXPECT.PCMU! },
    // Digits' packets are 4 bytes: sizes are not checked in this one.
    'tones, silence, digits': { request: () => ({ rtcp: 'off', prompts: MIXED_LIST }), expect: { payloadBytes: null, clockPerMs: 8 } }
  }
  for (let round = 1; round <= rounds; round++) {
    for (const [label, config] of Object.entries(configs)) {
      const entry = result[label] ??= { rows: [], kernel: [] }
      entry.rows.push(await runPromptPlayer(url, [pid], receiver, n, [], [url], label, { ...config, capture }))
      entry.kernel.push(kernelGaps(capture))
      console.error(`lists round ${round} of ${rounds}, ${label}, N=${n}: kernel gap p99 ${entry.kernel.at(-1)!.p99.toFixed(2)} ms, CPU ${entry.rows.at(-1)!.cpuPerStreamMinute.toFixed(3)} s per stream-minute, ${entry.rows.at(-1)!.rssPerCallMb.toFixed(3)} MB per play`)
      await sleep(1000)
    }
  }
  fs.rmSync(capture, { force: true })
  return result
}

function reportLists (r: Record<string, { rows: Row[], kernel: KernelGaps[] }>): void {
  const med = (values: number[]): number => quantile(values, 0.5)
  const base = r['prompts alone']!
  const baseCpu = med(base.rows.map(x => x.cpuPerStreamMinute))
  console.log(`Lists under load, N=${base.rows[0]!.n} plays, 20 ms PCMU, RTCP off, medians of ${base.rows.length} alternating rounds (the mixed list: ${JSON.stringify(MIXED_LIST)}):`)
  for (const [label, e] of Object.entries(r)) {
    const cpu = med(e.rows.map(x => x.cpuPerStreamMinute))
    console.log(`- ${label}: CPU ${cpu.toFixed(3)} s per stream-minute (${(cpu / baseCpu).toFixed(3)} x prompts alone); memory ${med(e.rows.map(x => x.rssPerCallMb)).toFixed(3)} MB per play; loss ${med(e.rows.map(x => x.lossPct)).toFixed(3)} %; kernel gap p99 ${med(e.kernel.map(k => k.p99)).toFixed(2)} ms, max ${med(e.kernel.map(k => k.max)).toFixed(2)} ms; sender lateness p99 by round ${e.rows.map(x => x.lateP99).join(', ')}`)
  }
}

function reportCodecs (r: CodecLoad): void {
  const med = (values: number[]): number => quantile(values, 0.5)
  const base = r.codecs.PCMU!
  const baseCpu = med(base.rows.map(x => x.cpuPerStreamMinute))
  console.log(`Codecs under load, N=${base.rows[0]!.n} plays of one 75 s prompt, 20 ms, RTCP off, medians of ${base.rows.length} alternating rounds:`)
  for (const [codec, e] of Object.entries(r.codecs)) {
    const cpu = med(e.rows.map(x => x.cpuPerStreamMinute))
    console.log(`- ${codec}: CPU ${cpu.toFixed(3)} s per stream-minute (${(cpu / baseCpu).toFixed(3)} x PCMU); memory ${med(e.rows.map(x => x.rssPerCallMb)).toFixed(3)} MB per play; receiver gap p99 ${med(e.rows.map(x => x.gapP99)).toFixed(2)}, max ${med(e.rows.map(x => x.gapMax)).toFixed(1)} ms, loss ${med(e.rows.map(x => x.lossPct)).toFixed(3)} %, bad sizes ${e.rows.reduce((a, x) => a + x.badSize, 0)}; kernel gap p99 ${med(e.kernel.map(k => k.p99)).toFixed(2)} ms, max ${med(e.kernel.map(k => k.max)).toFixed(2)} ms, drift max ${med(e.kernel.map(k => k.driftMax)).toFixed(2)} ms; sender lateness p99 by round ${e.rows.map(x => x.lateP99).join(', ')}`)
  }
  const alone = r.transcodeS['G.711 alone']!
  console.log(`- ffmpeg for a 60 s prompt (44.1 kHz stereo WAV), median of 5: ${Object.entries(r.transcodeS).map(([label, s]) => `${label} ${s.toFixed(2)} s (${(s / alone).toFixed(1)} x)`).join('; ')}; the whole upload over HTTP (PUT to 201) ${r.uploadS.toFixed(2)} s`)
  console.log(`- its renditions: ${Object.entries(r.renditionBytes).map(([x, bytes]) => `${x} ${(bytes / 1000).toFixed(0)} kB`).join(', ')}`)
}

function reportSecure (r: SecureLoad): void {
  const med = (values: number[]): number => quantile(values, 0.5)
  const plain = r.suites.plain!
  console.log(`SRTP under load, N=${plain.rows[0]!.n}, medians of ${plain.rows.length} alternating rounds (RTCP off, barge-in on every play, # on a tenth):`)
  for (const [suite, e] of Object.entries(r.suites)) {
    const cpu = med(e.rows.map(x => x.cpuPerStreamMinute))
    console.log(`- ${suite}: CPU ${cpu.toFixed(3)} s per stream-minute (${(cpu / med(plain.rows.map(x => x.cpuPerStreamMinute))).toFixed(3)} x plain); receiver gap p99 ${med(e.rows.map(x => x.gapP99)).toFixed(2)}, max ${med(e.rows.map(x => x.gapMax)).toFixed(1)} ms, loss ${med(e.rows.map(x => x.lossPct)).toFixed(3)} %, bad sizes ${e.rows.reduce((a, x) => a + x.badSize, 0)}; kernel gap p99 ${med(e.kernel.map(k => k.p99)).toFixed(2)} ms (${(med(e.kernel.map(k => k.p99)) - med(plain.kernel.map(k => k.p99))).toFixed(2)} ms from plain), max ${med(e.kernel.map(k => k.max)).toFixed(2)} ms, sequence numbers missing in the capture ${e.kernel.map(k => k.lost).join(', ')} of ${e.kernel.map(k => k.packets + k.lost).join(', ')}; # on ${e.pressed} plays, ${e.stopped} stopped, digit to last packet p50 ${quantile(e.dtmfToLast, 0.5).toFixed(1)} / p99 ${quantile(e.dtmfToLast, 0.99).toFixed(1)} ms at the receiver, ${quantile(e.kernelDtmfToLast, 0.5).toFixed(1)} / ${quantile(e.kernelDtmfToLast, 0.99).toFixed(1)} / max ${Math.max(...e.kernelDtmfToLast).toFixed(1)} ms at the kernel (${e.kernelDtmfToLast.length} digits in the captures)`)
  }
  const base = r.sealUs.plain!
  console.log(`- the packet thread's work per packet without the socket (median of 5 x 200,000): plain ${base.toFixed(2)} µs; ${Object.entries(r.sealUs).filter(([s]) => s !== 'plain').map(([s, us]) => `${s} ${us.toFixed(2)} µs (sealing adds ${(us - base).toFixed(2)})`).join('; ')}`)
}

function reportInCall (inCall: InCall): void {
  const med = (values: number[]): number => quantile(values, 0.5)
  const q = (v: number[], p: number): string => quantile(v, p).toFixed(1)
  const rows = inCall.plain.length
  const side = (label: string, receiverRows: Row[], kernel: KernelGaps[]): string =>
    `${label}: at the receiver gap p99 ${med(receiverRows.map(r => r.gapP99)).toFixed(2)}, max ${med(receiverRows.map(r => r.gapMax)).toFixed(1)} ms, loss ${med(receiverRows.map(r => r.lossPct)).toFixed(3)} %; at the kernel gap p99 ${med(kernel.map(k => k.p99)).toFixed(2)}, p99.9 ${med(kernel.map(k => k.p999)).toFixed(2)}, max ${med(kernel.map(k => k.max)).toFixed(2)} ms, drift max ${med(kernel.map(k => k.driftMax)).toFixed(2)} ms; sender lateness p99 by round ${receiverRows.map(r => r.lateP99).join(', ')}`
  console.log(`In-call features under load, N=${inCall.plain[0]!.n}, medians of ${rows} alternating rounds:`)
  console.log(`- ${side('RTCP off, no DTMF', inCall.plain, inCall.kernel.plain)}`)
  console.log(`- ${side('RTCP on and DTMF', inCall.full, inCall.kernel.full)}`)
  console.log(`- ratio with / without, gap p99: receiver ${(med(inCall.full.map(r => r.gapP99)) / med(inCall.plain.map(r => r.gapP99))).toFixed(4)}, kernel ${(med(inCall.kernel.full.map(k => k.p99)) / med(inCall.kernel.plain.map(k => k.p99))).toFixed(4)}; CPU per stream-minute ${(med(inCall.full.map(r => r.cpuPerStreamMinute)) / med(inCall.plain.map(r => r.cpuPerStreamMinute))).toFixed(4)}`)
  console.log(`- RTCP: ${inCall.senderReports} sender reports arrived and were answered with receiver reports, ${inCall.byes} BYEs (from the plays # stopped)`)
  console.log(`- DTMF to stop: # pressed on ${inCall.pressed} plays, ${inCall.stopped} stopped; from the digit's first packet to the play's last packet at the receiver p50 ${q(inCall.dtmfToLast, 0.5)} / p99 ${q(inCall.dtmfToLast, 0.99)} / max ${Math.max(...inCall.dtmfToLast).toFixed(1)} ms (target p99 <= ptime + 5 = 25 ms; negative: the last packet had left before the digit did); ${inCall.dtmfToLast.filter(d => d > 0).length} plays had a packet arrive after the digit left`)
  console.log(`- Control to effect under that load (${inCall.effect.pause.length} pauses): to the first silent packet p50 ${q(inCall.effect.pause, 0.5)} / p99 ${q(inCall.effect.pause, 0.99)} ms; to the first audio packet p50 ${q(inCall.effect.resume, 0.5)} / p99 ${q(inCall.effect.resume, 0.99)} ms`)
}

/**
 * Prompts from URLs: from POST to the first packet at a receiver, for a 10 s MP3 served by an
 * origin in this process: a cold URL (fetched, detected, transcoded), a warm one (a cache hit),
 * a revalidated one (stale: a 304 from the origin), and a named prompt of the same audio. With
 * the transcode alone (a PUT of the same bytes) and the fetch alone, to compare the cold time with.
 */
async function urlPlays (url: string, work: string, source: string, trials: number): Promise<Record<string, number[]>> {
  const mp3 = path.join(work, 'ten.mp3')
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', source, '-t', '10', '-c', 'copy', mp3])
  const bytes = fs.readFileSync(mp3)
  const originAnswer: number[] = []
  const server = http.createServer((req, res) => {
    const t0 = performance.now()
    const headers = req.url!.startsWith('/reval') ? { etag: '"ten"', 'cache-control': 'max-age=0' } : { 'cache-control': 'max-age=3600' }
    if (req.headers['if-none-match'] === '"ten"') res.writeHead(304, headers).end()
    else res.writeHead(200, { ...headers, 'content-length': bytes.length }).end(bytes)
    originAnswer.push(performance.now() - t0)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const socket = dgram.createSocket('udp4')
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  let arrived: (() => void) | null = null
  socket.on('message', () => { arrived?.(); arrived = null })
  const firstPacket = async (prompts: unknown[]): Promise<number> => {
    const got = new Promise<number>(resolve => { arrived = () => resolve(performance.now()) })
    const t0 = performance.now()
    const res = await fetch(`${url}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: socket.address().port }, prompts, rtcp: 'off' }) })
    const body = await res.json() as { id?: string, message?: string }
    if (body.id === undefined) throw new Error(`URL play refused: ${body.message}`)
    const at = await got
    await (await fetch(`${url}/v1/plays/${body.id}`, { method: 'DELETE' })).arrayBuffer()
    await sleep(50)
    return at - t0
  }
  const put = await fetch(`${url}/v1/prompts/ten`, { method: 'PUT', body: new Uint8Array(bytes) })
  await put.arrayBuffer()
  const result: Record<string, number[]> = { named: [], warm: [], revalidated: [], cold: [], transcode: [], fetch: [] }
  await firstPacket([{ url: `${origin}/warm` }])
  await firstPacket([{ url: `${origin}/reval` }])
  for (let i = 0; i < trials; i++) {
    result.named!.push(await firstPacket(['ten']))
    result.warm!.push(await firstPacket([{ url: `${origin}/warm` }]))
    result.revalidated!.push(await firstPacket([{ url: `${origin}/reval` }]))
    result.cold!.push(await firstPacket([{ url: `${origin}/cold/${i}` }]))
    const t0 = performance.now()
    await (await fetch(`${url}/v1/prompts/ten`, { method: 'PUT', body: new Uint8Array(bytes) })).arrayBuffer()
    result.transcode!.push(performance.now() - t0)
    const t1 = performance.now()
    await (await fetch(`${origin}/cold/x`)).arrayBuffer()
    result.fetch!.push(performance.now() - t1)
  }
  result.originAnswer = originAnswer
  socket.close()
  server.close()
  return result
}

/** A prompt of white noise (no frame of it is silence), uploaded once. */
async function uploadNoise (url: string): Promise<void> {
  if ((await fetch(`${url}/v1/prompts/noise`)).status !== 404) return
  const noise = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'anoisesrc=d=60:c=white:a=0.5', '-ar', '8000', '-ac', '1', '-f', 'wav', '-'], { maxBuffer: 1 << 26 })
  await (await fetch(`${url}/v1/prompts/noise`, { method: 'PUT', body: new Uint8Array(noise) })).arrayBuffer()
}

interface Peer { name: string, command: (file: string, port: number) => [string, string[]] }

const FILTER = 'aresample=8000,aformat=sample_fmts=s16:channel_layouts=mono,asetnsamples=n=160:p=0'
const PEERS: Peer[] = [
  { name: 'ffmpeg asetnsamples -re', command: (file, port) => ['ffmpeg', ['-nostdin', '-v', 'error', '-re', '-i', file, '-af', FILTER, '-c:a', 'pcm_mulaw', '-f', 'rtp', `rtp://127.0.0.1:${port}`]] },
  { name: 'ffmpeg arealtime', command: (file, port) => ['ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-af', `${FILTER},arealtime`, '-c:a', 'pcm_mulaw', '-f', 'rtp', `rtp://127.0.0.1:${port}`]] },
  {
    name: 'GStreamer rtppcmupay',
    command: (file, port) => ['gst-launch-1.0', ['-q', 'filesrc', `location=${file}`, '!', 'decodebin', '!', 'audioconvert', '!', 'audioresample', '!', 'audio/x-raw,rate=8000,channels=1', '!', 'mulawenc', '!', 'rtppcmupay', 'min-ptime=20000000', 'max-ptime=20000000', '!', 'udpsink', 'host=127.0.0.1', `port=${port}`, 'sync=true']]
  }
]

async function runPeer (peer: Peer, file: string, receiver: Receiver, n: number): Promise<Row> {
  const ports = await receiver.open(n)
  const starts = new Map<number, number>()
  const children: ChildProcess[] = []
  const began = performance.now()
  for (let i = 0; i < n; i++) {
    const wait = began + i * 1000 / RATE - performance.now()
    if (wait > 1) await sleep(wait)
    const [bin, argv] = peer.command(file, ports[i]!)
    starts.set(ports[i]!, wallMs())
    children.push(spawn(bin, argv, { stdio: 'ignore' }))
  }
  // Per-call senders take seconds to start under load: measure once (nearly) all are sending.
  for (let waited = 0; waited < 30_000; waited += 250) {
    const streaming = (await receiver.report()).streams.filter(st => st.packets > 0).length
    if (streaming >= 0.95 * n) break
    await sleep(250)
  }
  await sleep(500)
  const before = children.map(c => usage(c.pid!))
  await sleep(WINDOW_S * 1000)
  const after = children.map(c => usage(c.pid!))
  // CPU of the processes alive at both ends of the window (a dead one reads as zero).
  const alive = after.map((u, i) => u.cpu > 0 && before[i]!.cpu >= 0 && u.rss > 0)
  const survivors = alive.filter(Boolean).length
  const cpu = after.reduce((sum, u, i) => sum + (alive[i] ? u.cpu - before[i]!.cpu : 0), 0)
  const rss = after.reduce((sum, u, i) => sum + (alive[i] ? u.rss : 0), 0)
  const report = await receiver.report()
  for (const c of children) c.kill('SIGKILL')
  await sleep(300)
  const name = survivors === n ? peer.name : `${peer.name} (${n - survivors} of ${n} exited)`
  const row = summarize(name, n, report, starts, cpu, WINDOW_S, rss / Math.max(1, survivors))
  row.cpuPerStreamMinute = cpu / (Math.max(1, survivors) * WINDOW_S / 60)
  return row
}

function has (bin: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); return true } catch { return false }
}

export function table (rows: Row[]): string {
  const f = (x: number | undefined, d = 1): string => x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d)
  const out = [
    '| sender | N | CPU s per stream-minute | RSS per call (MB) | first packet at the receiver p50 / p99 (ms) | POST answered p50 / p99 (ms) | gap p50 / p99 / max (ms) | drift p50 / max (ms) | loss % | payload != 160 | GET p99 (ms) | sender lateness p99 (% > 10 ms) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  ]
  for (const r of rows) {
    out.push(`| ${r.sender} | ${r.n} | ${f(r.cpuPerStreamMinute, 4)} | ${f(r.rssPerCallMb, 3)} | ${f(r.startP50)} / ${f(r.startP99)} | ${f(r.postP50)} / ${f(r.postP99)} | ${f(r.gapP50, 2)} / ${f(r.gapP99, 2)} / ${f(r.gapMax, 1)} | ${f(r.driftP50, 2)} / ${f(r.driftMax, 2)} | ${f(r.lossPct, 3)} | ${r.badSize} | ${f(r.getP99)} | ${r.lateP99 === undefined ? '-' : `${r.lateP99} (${f(r.lateOver10, 3)})`} |`)
  }
  return out.join('\n')
}

function withinBounds (r: Row): boolean {
  return r.lossPct === 0 && r.badSize === 0 && Math.abs(r.gapP99 - 20) <= 2 && Math.abs(r.gapMax - 20) <= 10 && r.driftMax <= 2
}

/** A 75 s MP3 from the sample speech, looped: long enough that no sender runs out in a window. */
export function benchPrompt (work: string): string {
  const file = path.join(work, 'bench.mp3')
  const sample = fs.readdirSync(path.join(ROOT, 'prompts', 'media')).map(d => path.join(ROOT, 'prompts', 'media', d, 'source'))[0]!
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-stream_loop', '-1', '-i', sample, '-t', String(PROMPT_S), '-ar', '22050', '-ac', '1', '-c:a', 'libmp3lame', '-b:a', '32k', '-f', 'mp3', file])
  return file
}

async function main (): Promise<void> {
  if (args.includes('--sentinel')) {
    const { sentinelBench } = await import('./sentinel.js')
    await sentinelBench({ trials: Number(option('--trials') ?? (QUICK ? 3 : 20)), uploads: Number(option('--uploads') ?? (QUICK ? 30 : 200)), downAfterMs: Number(option('--down-after') ?? 2000) })
    return
  }
  if (args.includes('--pool')) {
    const { poolBench } = await import('./pool.js')
    await poolBench({ quick: QUICK, window: WINDOW_S, runPromptPlayer, Receiver, table, benchPrompt })
    return
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prompt-player-bench-'))
  const file = benchPrompt(work)
  if (args.includes('--threads')) {
    const { threadsBench } = await import('./threads.js')
    const counts = (option('--counts') ?? (QUICK ? '1,300' : '1,1000,3000,5000')).split(',').map(Number)
    await threadsBench({ work, file, counts, windowS: Number(option('--window') ?? (QUICK ? 5 : 10)), rounds: Number(option('--rounds') ?? 1), srtp: args.includes('--srtp') })
    fs.rmSync(work, { recursive: true, force: true })
    return
  }

  const server = spawn(process.execPath, [path.join(ROOT, 'dist', 'service', 'server.js')], {
    env: { ...process.env, PROMPT_PLAYER_PORT: '0', PROMPT_PLAYER_LIBRARY: path.join(work, 'library'), PROMPT_PLAYER_MAX_PLAYS: '6000', PROMPT_PLAYER_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let log = ''
  server.stdout!.on('data', (c: Buffer) => { log += c.toString() })
  const url = await listeningUrl(server.pid!)
  if (url === '') throw new Error(`the service did not start:\n${log}`)
  const put = await fetch(`${url}/v1/prompts/bench`, { method: 'PUT', body: fs.readFileSync(file) })
  if (put.status !== 201) throw new Error(`upload failed: ${await put.text()}`)
  const receiver = new Receiver()

  const rows: Row[] = []
  // Large uploads to run beside the plays: 13 MB WAVs and 300 KB MP3s, four at once.
  const wav = path.join(work, 'big.wav')
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-ar', '44100', '-ac', '2', '-c:a', 'pcm_s16le', wav])
  const big = [fs.readFileSync(wav), fs.readFileSync(file), fs.readFileSync(wav), fs.readFileSync(file)]
  // One section alone: it runs, the service and the receiver stop, then it prints. N from
  // --only (default 1000; 100 with --quick).
  const n = ONLY ?? (QUICK ? 100 : 1000)
  const sections: Record<string, () => Promise<() => void>> = {
    '--urls': async () => { const r = await urlPlays(url, work, file, QUICK ? 10 : 50); return () => { reportUrls(r) } },
    '--console': async () => {
      const load = await consoleUnderLoad(url, server.pid!, receiver, work, n, ROUNDS, Number(option('--consoles') ?? 5))
      return () => { console.log(table([...load.plain, ...load.watched])); reportConsole(load) }
    },
    '--srtp': async () => {
      const secure = await secureUnderLoad(url, server.pid!, receiver, work, n, ROUNDS)
      return () => { console.log(table(Object.values(secure.suites).flatMap(e => e.rows))); reportSecure(secure) }
    },
    '--codecs': async () => {
      const codecs = await codecsUnderLoad(url, server.pid!, receiver, work, file, n, ROUNDS)
      return () => { console.log(table(Object.values(codecs.codecs).flatMap(e => e.rows))); reportCodecs(codecs) }
    },
    '--lists': async () => {
      const lists = await listsUnderLoad(url, server.pid!, receiver, work, n, ROUNDS)
      return () => { console.log(table(Object.values(lists).flatMap(e => e.rows))); reportLists(lists) }
    },
    '--in-call': async () => {
      const inCall = await inCallUnderLoad(url, server.pid!, receiver, work, n, ROUNDS)
      return () => { console.log(table([...inCall.plain, ...inCall.full])); reportInCall(inCall) }
    }
  }
  const section = Object.keys(sections).find(flag => args.includes(flag))
  if (section !== undefined) {
    const print = await sections[section]!()
    await receiver.close()
    server.kill('SIGTERM')
    print()
    return
  }
  if (ONLY !== null) {
    rows.push(await runPromptPlayer(url, [server.pid!], receiver, ONLY, args.includes('--uploads') ? big : []))
    await receiver.close()
    server.kill('SIGTERM')
    console.log(table(rows))
    if (CAPTURE !== undefined) console.log(`capture: ${CAPTURE} (node dist/bench/pcap-gaps.js ${CAPTURE})`)
    return
  }
  const counts = QUICK ? [1, 100] : [1, 100, 300, 1000, 2000]
  console.error(`prompt-player benchmark (${QUICK ? 'quick' : 'full'}): ${WINDOW_S} s windows, plays started at ${RATE}/s, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}`)
  for (const n of counts) {
    const row = await runPromptPlayer(url, [server.pid!], receiver, n)
    rows.push(row)
    console.error(`prompt-player N=${n} done: gap p99 ${row.gapP99.toFixed(2)} ms, max ${row.gapMax.toFixed(1)} ms, loss ${row.lossPct.toFixed(3)} %`)
    await sleep(1000)
  }
  // The same with uploads and transcodes running all the while.
  const loaded = QUICK ? 100 : 1000
  const withUploads = await runPromptPlayer(url, [server.pid!], receiver, loaded, big)
  rows.push(withUploads)
  console.error(`${withUploads.sender} N=${loaded} done: gap p99 ${withUploads.gapP99.toFixed(2)} ms, max ${withUploads.gapMax.toFixed(1)} ms`)
  // The knee: the first N where the receiver's bounds break, and the first where the sender's
  // own lateness does (p99 past 2 ms), searched up to --max.
  let knee = 'not searched (--quick)'
  let senderKnee = 'not searched (--quick)'
  if (!QUICK) {
    const ours = (): Row[] => rows.filter(r => r.sender === 'prompt-player').sort((a, b) => a.n - b.n)
    const senderBroken = (r: Row): boolean => r.lossPct > 0 || (r.lateP99 !== undefined && !/^<= [0-2](\.\d+)? ms$/.test(r.lateP99))
    for (let n = 3000; n <= MAX && !ours().some(senderBroken); n += 1000) {
      const row = await runPromptPlayer(url, [server.pid!], receiver, n)
      rows.push(row)
      console.error(`prompt-player N=${n} done: gap p99 ${row.gapP99.toFixed(2)} ms, max ${row.gapMax.toFixed(1)} ms, lateness p99 ${row.lateP99 ?? '-'}`)
      await sleep(1000)
    }
    const firstOut = ours().find(r => !withinBounds(r))
    knee = firstOut === undefined ? `none up to ${ours().at(-1)!.n}` : `${firstOut.n} plays`
    const firstLate = ours().find(senderBroken)
    senderKnee = firstLate === undefined ? `none up to ${ours().at(-1)!.n}` : `${firstLate.n} plays`
  }
  const effect = await controlToEffect(url, work, QUICK ? 20 : 100)
  console.error('control to effect done')
  const inCall = await inCallUnderLoad(url, server.pid!, receiver, work, QUICK ? 100 : 1000, ROUNDS)
  rows.push(...inCall.plain, ...inCall.full)
  console.error('in-call features under load done')
  const consoleLoad = await consoleUnderLoad(url, server.pid!, receiver, work, QUICK ? 100 : 1000, ROUNDS, 5)
  rows.push(...consoleLoad.plain, ...consoleLoad.watched)
  console.error('console under load done')
  for (const peer of PEERS) {
    const bin = peer.command(file, 0)[0]
    if (!has(bin)) { console.error(`${peer.name}: ${bin} not installed, skipped`); continue }
    for (const n of QUICK ? [1, 100] : [1, 100, 300]) {
      const row = await runPeer(peer, file, receiver, n)
      rows.push(row)
      console.error(`${peer.name} N=${n} done`)
    }
  }
  await receiver.close()
  server.kill('SIGTERM')

  console.log(table(rows))
  console.log()
  console.log(`Knee at the receiver (first N where gap p99 leaves 20 ± 2 ms, max 20 ± 10 ms, drift 2 ms, or a packet is lost): ${knee}.`)
  console.log(`Knee at the sender (first N where the engine's own packet lateness p99 passes 2 ms, or a packet is lost): ${senderKnee}.`)
  for (const peer of rows.filter(r => r.sender !== 'prompt-player')) {
    const ours = rows.find(r => r.sender === 'prompt-player' && r.n === peer.n)
    if (ours !== undefined && peer.n > 1) {
      console.log(`N=${peer.n}: prompt-player / ${peer.sender}: CPU ${(ours.cpuPerStreamMinute / peer.cpuPerStreamMinute).toFixed(4)} (1/${(peer.cpuPerStreamMinute / ours.cpuPerStreamMinute).toFixed(0)}), RSS per call ${(ours.rssPerCallMb / peer.rssPerCallMb).toFixed(4)}, start p99 ${(ours.startP99 / peer.startP99).toFixed(4)}`)
    }
  }
  console.log(`Control to effect at a receiver (${effect.pause.length} pauses, ${effect.resume.length} resumes of a play of noise): answer to the first silent packet p50 ${quantile(effect.pause, 0.5).toFixed(1)} / p99 ${quantile(effect.pause, 0.99).toFixed(1)} ms; answer to the first audio packet p50 ${quantile(effect.resume, 0.5).toFixed(1)} / p99 ${quantile(effect.resume, 0.99).toFixed(1)} ms (one ptime: 20 ms).`)
  reportInCall(inCall)
  reportConsole(consoleLoad)
  reportUrls(await urlPlays(url, work, file, QUICK ? 10 : 50))
  console.log('Receiver: one Node process (bench/receiver.ts), one UDP socket per stream on 127.0.0.1; its own timing error is in every gap figure.')
  fs.rmSync(work, { recursive: true, force: true })
}

main().catch(err => { console.error(err); process.exit(1) })
