/**
 * The packet thread: the scheduler, the plays and their sockets. Nothing else runs here, so
 * request handling, JSON, multipart parsing, hashing, metadata scans and ffmpeg's output on the
 * HTTP thread cannot delay a packet.
 */
import { spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { readlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { isIP } from 'node:net'
import { parentPort, workerData } from 'node:worker_threads'
import { silencePayload } from '../common/codecs.js'
import { dtmfFrames } from '../common/telephone-events.js'
import { EngineError } from '../common/errors.js'
import { countersOf, firstRtpPort, portSlots, type FromWorker, type StartPlay, type Started, type ToWorker, type WorkerSetup } from '../common/protocol.js'
import { Play } from './play.js'
import type { Endpoint } from '../common/schemas.js'
import { PromptAudio } from './prompt-audio.js'
import type { Rendition, Renditions } from '../common/codecs.js'
import { LatenessStats } from '../common/lateness.js'
import { Scheduler } from './scheduler.js'
import { systemClock } from './clock.js'

const setup = workerData as WorkerSetup

/**
 * Asks for a higher priority for this thread than the rest of the process, so that the packets
 * win the cores under contention: niceness -10, and then the real-time policy SCHED_FIFO at
 * `realtimePriority` (as Asterisk's -p and FreeSWITCH's -rp do), set by util-linux's chrt on
 * this thread alone: a thread woken by its timer then runs at once instead of waiting for its
 * share of a busy core. Both are allowed to root and to a process with CAP_SYS_NICE (the systemd
 * unit grants it); refused quietly otherwise, when the HTTP thread's lower priority (set by the
 * service) and ffmpeg's (option ffmpegNiceness) still apply. The thread sleeps between packets,
 * and Linux keeps 5 % of each second for other threads whatever a real-time one does.
 */
function raisePriority (realtimePriority: number): { niceness: number | null, realtime: number | null, tid: number | null } {
  let tid: number
  try {
    // On Linux, priorities are per thread; /proc/thread-self names this thread's id.
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
  } catch {
    return { niceness: null, realtime: null, tid: null }
  }
  try {
    // Its name in top -H, ps -L and /proc/<pid>/task/<tid>/comm (15 characters at most).
    writeFileSync('/proc/thread-self/comm', `pp-packets-${setup.thread + 1}`)
  } catch {}
  let niceness: number | null = null
  try {
    os.setPriority(tid, -10)
    niceness = os.getPriority(tid)
  } catch {}
  let realtime: number | null = null
  if (realtimePriority > 0) {
    const chrt = spawnSync('chrt', ['--fifo', '--pid', String(realtimePriority), String(tid)], { stdio: 'ignore', timeout: 5000 })
    if (chrt.status === 0) realtime = realtimePriority
  }
  return { niceness, realtime, tid }
}
const { niceness, realtime, tid } = raisePriority(setup.realtimePriority)
const port = parentPort!
const counters = new Float64Array(setup.counters)
const scheduler = new Scheduler(systemClock(setup.pacing), new LatenessStats(setup.lateness))
const prompts = new Map<number, PromptAudio>()
const plays = new Map<string, Play>()
const { min, max } = setup.rtpPorts
const firstPort = firstRtpPort(setup.rtpPorts)
const slots = portSlots(setup.rtpPorts)
/** Index 0: the cursor; 1 + i: the claim on port firstPort + 2i (0 free, else a thread's index + 1). */
const claims = new Int32Array(setup.ports)
const mine = setup.thread + 1

function post (message: FromWorker): void {
  port.postMessage(message)
}

post({ type: 'ready', niceness, realtime, tid })

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'prompt': {
      const audio: Partial<Renditions> = {}
      for (const [rendition, bytes] of Object.entries(message.audio)) audio[rendition as Rendition] = shared(bytes)
      prompts.set(message.id, new PromptAudio(audio as Renditions))
      break
    }
    case 'rendition':
      prompts.get(message.id)?.add(message.rendition, shared(message.bytes))
      break
    case 'release':
      // Running plays keep the frames they hold; the audio is freed when the last one ends.
      prompts.delete(message.id)
      break
    case 'start':
      start(message.play).then(
        result => post({ type: 'reply', call: message.call, result }),
        (err: unknown) => post({ type: 'reply', call: message.call, error: errorOf(err) })
      )
      break
    case 'stop':
      plays.get(message.id)?.stop(message.by)
      post({ type: 'reply', call: message.call })
      break
    case 'control': {
      const play = plays.get(message.id)
      if (play === undefined) {
        post({ type: 'reply', call: message.call, error: { code: 'PLAY_ENDED', message: `play ${message.id} has ended; only a running play can be controlled`, options: [] } })
      } else {
        post({ type: 'reply', call: message.call, changed: play.control(message.control) })
      }
      break
    }
    case 'stopAll':
      for (const play of [...plays.values()]) play.stop(message.by)
      scheduler.close()
      post({ type: 'reply', call: message.call })
      break
  }
})

function shared (view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

function errorOf (err: unknown): { code: EngineError['code'], message: string, options: readonly string[] } {
  if (err instanceof EngineError) return { code: err.code, message: err.message, options: err.options }
  // Not an error the engine meant to raise: a fault, reported as one (with what it said).
  return { code: 'INTERNAL_ERROR', message: `the packet thread could not start the play: ${(err as Error).message}`, options: [] }
}

async function start (request: StartPlay): Promise<Started> {
  const frames = request.prompts.map(id => {
    // Silence: one payload, referred to once per packet; no audio is stored for it.
    if (typeof id !== 'number' && 'dtmf' in id) {
      const { payloads, since } = dtmfFrames(id.dtmf, request.codec, request.ptimeMs)
      return Object.assign(payloads, { events: { payloadType: id.dtmf.payloadType, since } })
    }
    if (typeof id !== 'number' && 'silencePackets' in id) return new Array<Buffer>(id.silencePackets).fill(silencePayload(request.codec, request.ptimeMs))
    // A tone: its block's packets, repeated; references again, no copy.
    if (typeof id !== 'number') {
      const block = prompts.get(id.prompt)?.frames(request.codec, request.ptimeMs)
      if (block === undefined || block.length === 0) throw new EngineError('INTERNAL_ERROR', 'a tone of this play was let go while it started; try again')
      const cycle = Math.min(id.cycle, block.length)
      return Array.from({ length: id.packets }, (_, i) => block[i % cycle]!)
    }
    const prompt = prompts.get(id)
    if (prompt === undefined) throw new EngineError('PROMPT_NOT_FOUND', 'a prompt of this play was deleted while it started; try again')
    return prompt.frames(request.codec, request.ptimeMs)
  })
  const { socket, rtcpSocket, source } = await openSockets(request.target, request.rtcp === 'on')
  const play = new Play({
    id: request.id,
    target: request.target,
    frames,
    payloadType: request.payloadType,
    ptimeMs: request.ptimeMs,
    codec: request.codec,
    loop: request.loop,
    offsetPackets: request.offsetPackets,
    pauseMode: request.pauseMode,
    ...(request.dtmf === null ? {} : { dtmf: { ...request.dtmf, onDigit: (digit: string, durationMs: number) => post({ type: 'dtmf', id: request.id, digit, durationMs }) } }),
    ...(request.ssrc === undefined ? {} : { ssrc: request.ssrc }),
    ...(request.firstSequence === undefined ? {} : { firstSequence: request.firstSequence }),
    ...(request.srtp === null ? {} : { srtp: request.srtp }),
    ...(request.rtcp === 'off' ? {} : { rtcp: { ...(rtcpSocket === null ? {} : { socket: rtcpSocket }), cname: `${request.id}@prompt-player`, intervalMs: setup.rtcpIntervalMs } }),
    socket,
    scheduler,
    lateLimitPtimes: setup.lateLimitPtimes,
    counters: countersOf(counters, request.slot),
    onEnd: ended => {
      plays.delete(ended.id)
      release(source.port)
      post({ type: 'ended', id: ended.id, state: ended.state as 'finished' | 'stopped' | 'failed', error: ended.error, stoppedBy: ended.stoppedBy })
    }
  })
  plays.set(play.id, play)
  play.begin()
  return { source, ssrc: play.rtp.ssrc }
}

/**
 * Binds a socket on the next free even port of the range (RFC 3550 §11: RTP on an even port,
 * RTCP on the next one, bound too when `rtcp`) and connects each to the target's matching
 * port, so each send needs no address lookup and the kernel reports ICMP unreachable back to
 * us. Packets leave from the port a symmetric-RTP peer would answer to (RFC 4961), and only
 * the far end's own packets are delivered.
 */
async function openSockets (target: Endpoint, rtcp: boolean): Promise<{ socket: dgram.Socket, rtcpSocket: dgram.Socket | null, source: Endpoint }> {
  const family = isIP(target.host) === 6 ? 'udp6' : 'udp4'
  const address = family === 'udp6' ? '::' : '0.0.0.0'
  let lastError: unknown = null
  for (let tried = 0; tried < slots; tried++) {
    // Every thread takes the next slot from the shared cursor, and claims it before binding:
    // no two threads bind the same port, and a port just freed is the last to be taken again.
    const slot = (Atomics.add(claims, 0, 1) >>> 0) % slots
    const candidate = firstPort + 2 * slot
    if (rtcp && candidate + 1 > max) continue
    if (Atomics.compareExchange(claims, 1 + slot, 0, mine) !== 0) continue
    const opened: dgram.Socket[] = []
    try {
      for (const port of rtcp ? [candidate, candidate + 1] : [candidate]) {
        const socket = dgram.createSocket({ type: family })
        opened.push(socket)
        await bind(socket, port, address)
      }
    } catch (err) {
      release(candidate)
      for (const socket of opened) socket.close()
      lastError = err
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue
      throw new EngineError('NO_RTP_PORT', `cannot bind a UDP socket on ${address} port ${candidate}: ${(err as Error).message}`, { cause: err })
    }
    try {
      for (const [i, socket] of opened.entries()) await connect(socket, target.port + i, target.host)
    } catch (err) {
      release(candidate)
      for (const socket of opened) socket.close()
      throw new EngineError('TARGET_NOT_ALLOWED', `cannot send to ${target.host}:${target.port}: ${(err as Error).message}`, { cause: err })
    }
    return { socket: opened[0]!, rtcpSocket: opened[1] ?? null, source: { host: address, port: candidate } }
  }
  throw new EngineError('NO_RTP_PORT', `every ${rtcp ? 'pair of UDP ports (even for RTP, odd for RTCP)' : 'even UDP port'} in ${min}-${max} is in use (rtpPorts); widen the range or stop some plays`, { cause: lastError, options: ['rtpPorts'] })
}

/** Gives back the claim on an RTP port (its sockets are closed). */
function release (port: number): void {
  Atomics.store(claims, 1 + (port - firstPort) / 2, 0)
}

async function bind (socket: dgram.Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', reject)
      resolve()
    })
  })
}

async function connect (socket: dgram.Socket, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.connect(port, host, () => {
      socket.off('error', reject)
      resolve()
    })
  })
}
