/**
 * npm run bench -- --threads [--counts 1,1000,3000,5000] [--window 10] [--rounds 1] [--srtp]
 *
 * The packet threads and the pacing grid, judged by the kernel: N plays to sinks that never
 * read (UDP sockets of a Python process that only binds them: a Node receiver at this scale
 * costs more than the sender), captured by tcpdump on lo, the gaps taken from the capture's
 * timestamps. Side by side in one run, at each N:
 * - one packet thread on Node's timer alone (`pacing: timer`, the former scheduler's timing),
 * - one packet thread on the grid (`pacing: sleep`),
 * - two packet threads on the grid,
 * - at N = 1, two threads with `pacing: spin`;
 * and the Node floor: a tight loop of dgram sends to the same sinks, the least CPU a packet
 * can cost from Node. Beside them, at each N, the reference sender (bench/pacer.c, built with
 * `cc` when there is one): the same streams from C, on one and on two threads, each sleeping to
 * the whole millisecond with clock_nanosleep and sending with send(2): the pacing and the cost a
 * packet this machine allows at all, judged by the same capture.
 *
 * With --srtp: two threads on the grid in the clear, with AES_CM_128_HMAC_SHA1_80 and with
 * AEAD_AES_128_GCM, alternating: what SRTP costs in pacing and CPU with nothing but the capture
 * beside the sender (the in-process benchmark's Node receiver takes a core of its own). Then the
 * sealing alone, 1 and 1,000 senders, beside libsrtp's (bench/srtp-cost.c, when libsrtp2-dev
 * is installed).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { listeningUrl, quantile, sleep } from './stats.js'
import { kernelGaps, type KernelGaps } from './pcap-gaps.js'
import { makeSdesKey, parseSdesKey, RtpStream, SrtpSender, type SrtpSuiteName } from '../src/index.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const CLK_TCK = 100
/** Where the plays send: even ports from here (RTP), each odd one above (RTCP). */
const SINK_BASE = 40000
/** Plays started a second: the 5,000 start in 10 s. */
const START_RATE = 500

interface Config { name: string, threads: number, pacing: 'sleep' | 'spin' | 'timer', srtp?: SrtpSuiteName }

export interface ThreadsRow {
  config: string
  n: number
  kernel: KernelGaps
  /** Packets the capture itself dropped (tcpdump's count): not the sender's loss. */
  captureDropped: number
  skipped: number
  sendErrors: number
  cpuPerStreamMinute: number
  /** Process CPU per packet sent, µs. */
  cpuPerPacketUs: number
  /** Each packet thread's share of a core in the window. */
  threadCpu: number[]
  /** POST /v1/plays to its answer (sent once the first packet has left), ms. */
  startP99: number
}

const SINKS = `
import resource, socket, sys, time
base, count = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
held = []
for port in range(base, base + 2 * count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind(('127.0.0.1', port))
    held.append(s)
print('ready', flush=True)
sys.stdin.read()
`

/** Sockets that bind RTP and RTCP ports for `count` plays and never read. */
async function openSinks (count: number): Promise<ChildProcess> {
  const sinks = spawn('python3', ['-c', SINKS, String(SINK_BASE), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    sinks.stdout!.once('data', () => { resolve() })
    sinks.once('exit', code => { reject(new Error(`the sinks exited (${code})`)) })
  })
  return sinks
}

/** The service as a process with `env`, its open-file limit raised for 5,000 plays' sockets. */
async function startService (work: string, env: Record<string, string>): Promise<{ server: ChildProcess, url: string }> {
  const server = spawn('sh', ['-c', `ulimit -n $(ulimit -Hn); exec "${process.execPath}" "${path.join(ROOT, 'dist', 'service', 'server.js')}"`], {
    env: { ...process.env, PROMPT_PLAYER_PORT: '0', PROMPT_PLAYER_LIBRARY: path.join(work, 'library'), PROMPT_PLAYER_MAX_PLAYS: '6000', PROMPT_PLAYER_LOG_LEVEL: 'warn', PROMPT_PLAYER_RATE_LIMIT: '0', ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const url = await listeningUrl(server.pid!)
  if (url !== '') return { server, url }
  server.kill('SIGKILL')
  throw new Error('the service did not start')
}

function ticksOf (stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/** CPU ticks of the process and of each of its packet threads (named pp-packets-N). */
function cpu (pid: number): { process: number, threads: number[] } {
  const threads: Array<[string, number]> = []
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      if (comm.startsWith('pp-packets-')) threads.push([comm, ticksOf(fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))])
    } catch {}
  }
  return { process: ticksOf(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), threads: threads.sort().map(([, ticks]) => ticks) }
}

async function metric (url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN)
}

class NotReached extends Error {}

async function measure (work: string, file: string, config: Config, n: number, windowS: number): Promise<ThreadsRow> {
  const { server, url } = await startService(work, { PROMPT_PLAYER_PACKET_THREADS: String(config.threads), PROMPT_PLAYER_PACING: config.pacing })
  try {
    const put = await fetch(`${url}/v1/prompts/bench`, { method: 'PUT', body: fs.readFileSync(file) })
    if (put.status !== 201 && put.status !== 200) throw new Error(`upload failed: ${await put.text()}`)
    const starts: number[] = []
    const posts: Array<Promise<void>> = []
    const began = performance.now()
    // A sender that cannot keep up cannot start them all: each start may take until the rest
    // have had their time, then the size is reported as not reached.
    // Each start has its own signal to that one deadline (a signal shared by thousands of
    // requests gathers a listener from each, and Node warns past its limit).
    const deadline = began + n * 1000 / START_RATE + 30_000
    let refused = 0
    for (let i = 0; i < n; i++) {
      const wait = began + i * 1000 / START_RATE - performance.now()
      if (wait > 1) await sleep(wait)
      const sent = performance.now()
      posts.push(fetch(`${url}/v1/plays`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ target: { host: '127.0.0.1', port: SINK_BASE + 2 * i }, prompts: ['bench'], loop: 0, ...(config.srtp === undefined ? {} : { srtp: { suite: config.srtp, remoteKey: makeSdesKey(config.srtp) } }) }),
        signal: AbortSignal.timeout(Math.max(1, Math.round(deadline - performance.now())))
      }).then(async res => {
        const body = await res.json() as { id?: string, message?: string }
        if (body.id === undefined) refused++
        else starts.push(performance.now() - sent)
      }, () => { refused++ }))
    }
    await Promise.all(posts)
    if (refused > 0) throw new NotReached(`${config.name}: ${refused} of ${n} plays were refused or had not started ${(n / START_RATE + 30).toFixed(0)} s after the first was asked for`)
    await sleep(2000)
    const pcap = path.join(work, `capture-${config.name.replace(/\W+/g, '-')}-${n}.pcap`)
    const capture = await startCapture(pcap, n)
    const packetsBefore = await metric(url, 'prompt_player_packets_sent_total')
    const a = cpu(server.pid!)
    await sleep(windowS * 1000)
    const b = cpu(server.pid!)
    const packetsAfter = await metric(url, 'prompt_player_packets_sent_total')
    const captureDropped = await capture.stop()
    const skipped = await metric(url, 'prompt_player_packets_skipped_total')
    const sendErrors = await metric(url, 'prompt_player_send_errors_total')
    const kernel = kernelGaps(pcap)
    fs.rmSync(pcap, { force: true })
    const cpuSeconds = (b.process - a.process) / CLK_TCK
    return {
      config: config.name,
      n,
      kernel,
      captureDropped,
      skipped,
      sendErrors,
      cpuPerStreamMinute: cpuSeconds / (n * windowS / 60),
      cpuPerPacketUs: 1e6 * cpuSeconds / (packetsAfter - packetsBefore),
      threadCpu: b.threads.map((ticks, i) => (ticks - (a.threads[i] ?? 0)) / CLK_TCK / windowS),
      startP99: quantile(starts, 0.99)
    }
  } finally {
    server.kill('SIGKILL')
    await new Promise(resolve => server.once('exit', resolve))
  }
}

/** Starts tcpdump on the streams to the sinks; stop() ends it and says what it dropped. */
async function startCapture (pcap: string, n: number): Promise<{ stop: () => Promise<number> }> {
  let tcpdumpOut = ''
  const capture = spawn('tcpdump', ['-i', 'lo', '-s', '64', '-B', String(64 * 1024), '-w', pcap, `udp and src portrange 20000-39999 and dst portrange ${SINK_BASE}-${SINK_BASE + 2 * n}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  capture.stderr!.on('data', (c: Buffer) => { tcpdumpOut += c.toString() })
  await sleep(1000)
  return {
    stop: async () => {
      capture.kill('SIGINT')
      if (capture.exitCode === null) await new Promise(resolve => capture.once('exit', resolve))
      return Number(/(\d+) packets? dropped by kernel/.exec(tcpdumpOut)?.[1] ?? NaN)
    }
  }
}

/** bench/pacer.c built into `work`, or why not. */
function buildPacer (work: string): { binary: string } | { missing: string } {
  const binary = path.join(work, 'pacer')
  try {
    execFileSync('cc', ['-O2', '-pthread', '-o', binary, path.join(ROOT, 'bench', 'pacer.c')], { stdio: ['ignore', 'ignore', 'pipe'] })
    return { binary }
  } catch (err) {
    return { missing: `the C reference sender was not built (cc -O2 -pthread bench/pacer.c: ${(err as Error).message.split('\n')[0]!}); install gcc to see it` }
  }
}

/** The reference sender's streams, measured as the service's are: the same sinks, the same capture. */
async function measureReference (work: string, binary: string, threads: number, n: number, windowS: number): Promise<ThreadsRow> {
  const config = `C reference, ${threads} thread${threads > 1 ? 's' : ''}`
  // A second to open its sockets, a second of sending before the capture starts, the window, a second more.
  const pacer = spawn(binary, [String(SINK_BASE), String(n), String(windowS + 4), String(threads), '20000'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>(resolve => pacer.once('exit', resolve))
  try {
    await sleep(2000)
    const pcap = path.join(work, `capture-c-${threads}-${n}.pcap`)
    const capture = await startCapture(pcap, n)
    const a = cpu(pacer.pid!)
    await sleep(windowS * 1000)
    const b = cpu(pacer.pid!)
    const captureDropped = await capture.stop()
    const kernel = kernelGaps(pcap)
    fs.rmSync(pcap, { force: true })
    const cpuSeconds = (b.process - a.process) / CLK_TCK
    return { config, n, kernel, captureDropped, skipped: 0, sendErrors: 0, cpuPerStreamMinute: cpuSeconds / (n * windowS / 60), cpuPerPacketUs: 1e6 * cpuSeconds / (n * windowS * 1000 / 20), threadCpu: [], startP99: NaN }
  } finally {
    pacer.kill('SIGKILL')
    await exited
  }
}

const FLOOR = `
import dgram from 'node:dgram'
const [base, count, total] = process.argv.slice(1).map(Number)
const sockets = []
for (let i = 0; i < count; i++) {
  const s = dgram.createSocket('udp4')
  await new Promise(r => s.bind(0, '127.0.0.1', r))
  await new Promise(r => s.connect(base + 2 * i, '127.0.0.1', r))
  sockets.push(s)
}
const packet = Buffer.alloc(172, 0xff)
const before = process.cpuUsage()
let sent = 0
while (sent < total) {
  for (let i = 0; i < count && sent < total; i++, sent++) sockets[i].send(packet)
  // Let libuv flush what the kernel could not take at once, as a paced sender does between wakeups.
  if (sent % 1000 === 0) await new Promise(r => setImmediate(r))
}
const used = process.cpuUsage(before)
console.log(JSON.stringify({ usPerPacket: (used.user + used.system) / sent, systemShare: used.system / (used.user + used.system) }))
process.exit(0)
`

/** Node's floor: connected dgram sockets to the same sinks, sent to in a tight loop; CPU per packet. */
async function nodeFloor (count: number, total: number): Promise<{ usPerPacket: number, systemShare: number }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', FLOOR, String(SINK_BASE), String(count), String(total)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  await new Promise(resolve => child.once('exit', resolve))
  return JSON.parse(out.trim())
}

export async function threadsBench (options: { work: string, file: string, counts: number[], windowS: number, rounds: number, srtp?: boolean }): Promise<void> {
  // --srtp: SRTP's cost in pacing and CPU with nothing else on the cores (no Node receiver):
  // two threads on the grid, in the clear and under each suite, alternating.
  const configs: Config[] = options.srtp === true
    ? [
        { name: '2 threads, plain', threads: 2, pacing: 'sleep' },
        { name: '2 threads, AES_CM_128_HMAC_SHA1_80', threads: 2, pacing: 'sleep', srtp: 'AES_CM_128_HMAC_SHA1_80' },
        { name: '2 threads, AEAD_AES_128_GCM', threads: 2, pacing: 'sleep', srtp: 'AEAD_AES_128_GCM' }
      ]
    : [
        { name: '1 thread, timer', threads: 1, pacing: 'timer' },
        { name: '1 thread, grid', threads: 1, pacing: 'sleep' },
        { name: '2 threads, grid', threads: 2, pacing: 'sleep' }
      ]
  const pacer = options.srtp === true ? null : buildPacer(options.work)
  const sinks = await openSinks(Math.max(...options.counts))
  const rows: ThreadsRow[] = []
  const unreached: string[] = []
  try {
    console.error(`packet threads and the grid: ${options.windowS} s windows, ${os.cpus().length} cores, node ${process.version}, sinks that never read, tcpdump on lo`)
    for (const n of options.counts) {
      const here = n === 1 && options.srtp !== true ? [...configs, { name: '2 threads, spin', threads: 2, pacing: 'spin' } as Config] : configs
      for (let round = 0; round < options.rounds; round++) {
        for (const config of here) {
          try {
            const row = await measure(options.work, options.file, config, n, options.windowS)
            rows.push(row)
            console.error(`${config.name} N=${n}: |gap - ptime| p99 ${row.kernel.devP99.toFixed(3)} ms, max ${row.kernel.devMax.toFixed(3)} ms, lost ${row.kernel.lost}, skipped ${row.skipped}`)
          } catch (err) {
            if (!(err instanceof NotReached)) throw err
            unreached.push(err.message)
            console.error(err.message)
          }
        }
        if (pacer !== null && 'binary' in pacer) {
          for (const threads of [1, 2]) {
            const row = await measureReference(options.work, pacer.binary, threads, n, options.windowS)
            rows.push(row)
            console.error(`${row.config} N=${n}: |gap - ptime| p99 ${row.kernel.devP99.toFixed(3)} ms, max ${row.kernel.devMax.toFixed(3)} ms, lost ${row.kernel.lost}`)
          }
        }
      }
    }
    if (pacer !== null && 'missing' in pacer) unreached.push(pacer.missing)
    const floor = await nodeFloor(Math.min(1000, Math.max(...options.counts)), 500_000)
    printThreads(rows, floor)
    if (options.srtp === true) printSealing(sealingAlone(options.work), unreached)
    for (const line of unreached) console.log(`Not reached: ${line}.`)
  } finally {
    sinks.kill('SIGKILL')
  }
}

/**
 * µs of a packet thread's work a packet without the socket: `senders` RTP streams write 172-byte
 * PCMU packets round robin (a header written and a payload copied), sealed under `suite` unless
 * plain. The median of five runs of 200,000 packets, after one that warms the compiler.
 */
export function packetWorkUs (suite: SrtpSuiteName | 'plain', senders: number): number {
  const payload = Buffer.alloc(160, 0x55)
  const streams = Array.from({ length: senders }, () => new RtpStream({ payloadType: 0, samplesPerPacket: 160, payloadBytes: 160, ...(suite === 'plain' ? {} : { seal: new SrtpSender(suite, parseSdesKey(makeSdesKey(suite), suite)) }) }))
  const runs: number[] = []
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now()
    for (let i = 0; i < 200_000; i++) streams[i % senders]!.next(payload)
    if (r > 0) runs.push((performance.now() - t0) * 1000 / 200_000)
  }
  return quantile(runs, 0.5)
}

/** Suites of the sealing comparison, with their name for bench/srtp-cost.c. */
const SEALED: Array<[SrtpSuiteName, string]> = [['AES_CM_128_HMAC_SHA1_80', 'cm'], ['AEAD_AES_128_GCM', 'gcm']]

interface Sealing {
  /** µs a packet (payload written, then sealed), by suite and number of senders: the project's, and libsrtp's when built. */
  own: Record<string, number>
  libsrtp: Record<string, number> | { missing: string }
}

/**
 * The sealing alone, with no socket: 1 and 1,000 senders sealing 172-byte PCMU packets round
 * robin, as a packet thread does (the 1,000 senders' state no longer fits the caches): the
 * project's SrtpSender through RtpStream, in this process (medians of five runs of 200,000
 * packets), and libsrtp, the reference implementation, from bench/srtp-cost.c when it builds.
 */
function sealingAlone (work: string): Sealing {
  const own: Record<string, number> = {}
  for (const [suite] of SEALED) for (const n of [1, 1000]) own[`${suite}/${n}`] = packetWorkUs(suite, n)
  const binary = path.join(work, 'srtp-cost')
  try {
    execFileSync('cc', ['-O2', '-o', binary, path.join(ROOT, 'bench', 'srtp-cost.c'), '-lsrtp2'], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    return { own, libsrtp: { missing: `libsrtp's cost was not measured (cc bench/srtp-cost.c -lsrtp2: ${(err as Error).message.split('\n')[0]!}); apt-get install libsrtp2-dev to see it` } }
  }
  const libsrtp: Record<string, number> = {}
  for (const [suite, short] of SEALED) {
    for (const n of [1, 1000]) {
      const runs: number[] = []
      for (let r = 0; r < 5; r++) runs.push(Number(execFileSync(binary, [short, String(n), '200000'], { encoding: 'utf8' }).trim()))
      libsrtp[`${suite}/${n}`] = quantile(runs, 0.5)
    }
  }
  return { own, libsrtp }
}

function printSealing (sealing: Sealing, unreached: string[]): void {
  console.log()
  console.log('Sealing alone, µs a packet (the payload written, then sealed; no socket), medians of five runs of 200,000 packets:')
  console.log()
  console.log('| suite | senders | this project (node:crypto) | libsrtp (Debian\'s libsrtp2) |')
  console.log('| --- | --- | --- | --- |')
  for (const [suite] of SEALED) {
    for (const n of [1, 1000]) {
      const key = `${suite}/${n}`
      const reference = 'missing' in sealing.libsrtp ? '-' : sealing.libsrtp[key]!.toFixed(2)
      console.log(`| ${suite} | ${n} | ${sealing.own[key]!.toFixed(2)} | ${reference} |`)
    }
  }
  if ('missing' in sealing.libsrtp) unreached.push(sealing.libsrtp.missing as string)
}

function printThreads (rows: ThreadsRow[], floor: { usPerPacket: number, systemShare: number }): void {
  const f = (v: number, d = 3): string => Number.isFinite(v) ? v.toFixed(d) : '-'
  console.log('| sender | N | \\|gap − ptime\\| p50 ms | p99 | p99.9 | max | gap p99 ms | lost (seq) | capture dropped | skipped | CPU s / stream-min | CPU µs / packet | packet threads (share of a core) | start p99 ms |')
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  // Rounds of one config and N: the median row by p99.
  const groups = new Map<string, ThreadsRow[]>()
  for (const r of rows) groups.set(`${r.config}/${r.n}`, [...(groups.get(`${r.config}/${r.n}`) ?? []), r])
  for (const group of groups.values()) {
    const r = [...group].sort((a, b) => a.kernel.devP99 - b.kernel.devP99)[group.length >> 1]!
    const k = r.kernel
    console.log(`| ${r.config}${group.length > 1 ? ` (median of ${group.length})` : ''} | ${r.n} | ${f(k.devP50)} | ${f(k.devP99)} | ${f(k.devP999)} | ${f(k.devMax)} | ${f(k.p99, 2)} | ${k.lost} of ${k.packets + k.lost} | ${f(r.captureDropped, 0)} | ${f(r.skipped, 0)} | ${f(r.cpuPerStreamMinute, 4)} | ${f(r.cpuPerPacketUs, 2)} | ${r.threadCpu.map(c => `${(100 * c).toFixed(0)} %`).join(', ')} | ${f(r.startP99, 1)} |`)
  }
  console.log()
  console.log(`Node floor: a tight loop of dgram sends on 1,000 connected sockets to the same sinks costs ${floor.usPerPacket.toFixed(2)} µs of CPU a packet (${(100 * floor.systemShare).toFixed(0)} % of it in the kernel).`)
  for (const n of new Set(rows.map(r => r.n))) {
    const two = rows.find(r => r.n === n && r.config === '2 threads, grid')
    const reference = rows.find(r => r.n === n && r.config === 'C reference, 2 threads')
    if (two !== undefined && n > 1) console.log(`N=${n}: two threads on the grid cost ${(two.cpuPerPacketUs / floor.usPerPacket).toFixed(1)} × the floor per packet${reference === undefined ? '' : `, ${(two.cpuPerPacketUs / reference.cpuPerPacketUs).toFixed(1)} × the C reference's`}.`)
  }
}
