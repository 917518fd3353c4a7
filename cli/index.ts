/**
 * prompt-player on the command line: run the service, drive it, and listen to what it sends.
 *
 *   prompt-player serve [--host H] [--port P] [--library DIR] [--rtp-ports MIN-MAX] [--max-plays N] [--tokens T]
 *   prompt-player upload FILE [--name NAME] [--replace]
 *   prompt-player play NAME... --to HOST:PORT [--codec PCMU|PCMA|G722|opus] [--ptime MS] [--wait] [--stop-on DIGITS] [--srtp SUITE [--srtp-key K] [--srtp-remote-key K]]
 *   prompt-player stop ID
 *   prompt-player listen --port P [--host ADDR] [--wav FILE [--codec opus]] [--seconds S] [--idle S] [--json] [--srtp SUITE [--srtp-key K] [--srtp-send-key K]]
 *   prompt-player listen --pcap FILE [--port P] [--json] [--wav FILE]
 *
 * Commands that call the service take --url (PROMPT_PLAYER_URL, default http://127.0.0.1:8080)
 * and --token (PROMPT_PLAYER_TOKEN).
 */
import { randomInt } from 'node:crypto'
import dgram from 'node:dgram'
import fs from 'node:fs/promises'
import { isIP } from 'node:net'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { PromptPlayerClient, PromptPlayerError, type PlayControl } from '../client/index.js'
import { CODEC_NAMES, CODECS, G711, Ffmpeg, SAMPLE_RATE, SRTP_SUITE_NAMES, SrtpReceiver, SrtpSender, isRtcp, keyPress, makeSdesKey, parseSdesKey, wavFile, type Law, type Ptime, type SrtpSuiteName } from '../src/index.js'
import { readPcap } from './pcap.js'
import { bindPair } from './udp-pair.js'
import { RtpMonitor, type StreamReport } from './rtp-monitor.js'

const USAGE = `usage: prompt-player <command> [options]

  serve    run the service         [--host H] [--port P] [--library DIR] [--rtp-ports MIN-MAX] [--max-plays N] [--tokens T]
  upload   upload a prompt         FILE [--name NAME] [--replace]
  play     play prompts into RTP   NAME... --to HOST:PORT [--codec PCMU|PCMA|G722|opus] [--ptime 10|20|30|40|60] [--wait]
                                   [--stop-on DIGITS]: the caller's key presses (RFC 4733, PT 101) that stop it
                                   [--srtp SUITE [--srtp-key K] [--srtp-remote-key K]]: as SRTP, sealed with K (made when absent)
  stop     stop a play             ID
  control  control a running play  ID pause|resume|restart | ID forward|reverse MS | ID seek MS
  listen   receive RTP, report it  --port P [--host 127.0.0.1] [--wav out.wav [--codec opus]] [--seconds S] [--idle 3] [--json]
                                   [--dtmf DIGIT --after S [--dtmf-pt 101]]: press a key, as the caller would
                                   --pcap FILE [--port P]: report the RTP (and RTCP) of a capture instead
                                   [--srtp SUITE [--srtp-key K] [--srtp-send-key K]]: open SRTP sealed with K (the play's key),
                                   seal reports and key presses with the send key (both made and printed when absent)

  upload, play, stop and control call the service at --url (or PROMPT_PLAYER_URL, default
  http://127.0.0.1:8080) with --token (or PROMPT_PLAYER_TOKEN) when it needs one.`

export class UsageError extends Error {}

interface Io {
  out: (text: string) => void
  err: (text: string) => void
  env: NodeJS.ProcessEnv
}

export async function run (argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'serve': return await serve(rest, io)
      case 'upload': return await upload(rest, io)
      case 'play': return await play(rest, io)
      case 'stop': return await stop(rest, io)
      case 'control': return await control(rest, io)
      case 'listen': return await listen(rest, io)
      case undefined: case 'help': case '--help': case '-h':
        io.out(USAGE)
        return command === undefined ? 2 : 0
      default: throw new UsageError(`unknown command "${command}"`)
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      io.err(`prompt-player: ${(err as Error).message}\n\n${USAGE}`)
      return 2
    }
    if (err instanceof PromptPlayerError) {
      io.err(`prompt-player: ${err.statusCode} ${err.code}: ${err.message}`)
      return 1
    }
    io.err(`prompt-player: ${(err as Error).message}`)
    return 1
  }
}

const CLIENT_OPTIONS = { url: { type: 'string' }, token: { type: 'string' } } as const

function client (values: { url?: string | undefined, token?: string | undefined }, env: NodeJS.ProcessEnv): PromptPlayerClient {
  const token = values.token ?? env.PROMPT_PLAYER_TOKEN
  return new PromptPlayerClient({ url: values.url ?? env.PROMPT_PLAYER_URL ?? 'http://127.0.0.1:8080', ...(token ? { token } : {}) })
}

async function serve (argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { host: { type: 'string' }, port: { type: 'string' }, library: { type: 'string' }, 'rtp-ports': { type: 'string' }, 'max-plays': { type: 'string' }, tokens: { type: 'string' } }
  })
  // Flags are the environment variables by another name, validated by the same schema.
  const env = { ...io.env }
  const names: Record<string, string> = { host: 'HOST', port: 'PORT', library: 'LIBRARY', 'rtp-ports': 'RTP_PORTS', 'max-plays': 'MAX_PLAYS', tokens: 'TOKENS' }
  for (const [flag, value] of Object.entries(values)) env[`PROMPT_PLAYER_${names[flag]!}`] = value
  const { main } = await import('../service/server.js')
  main(env)
  return await new Promise<number>(() => {}) // the server exits the process itself
}

async function upload (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CLIENT_OPTIONS, name: { type: 'string' }, replace: { type: 'boolean' } } })
  if (positionals.length !== 1) throw new UsageError('upload takes one FILE')
  const file = positionals[0]!
  const bytes = await fs.readFile(file)
  const name = values.name ?? path.parse(file).name
  const prompt = await client(values, io.env).uploadPrompt(name, bytes, { filename: path.basename(file), replace: values.replace ?? false })
  const s = prompt.source
  io.out(`${prompt.name}: ${s.container} (${s.codec ?? 'unknown codec'}, ${s.sampleRate ?? '?'} Hz, ${s.channels ?? '?'} ch, ${s.durationMs ?? '?'} ms)` +
    `${s.extensionMismatch ? ` - the name ${s.filename} says otherwise` : ''}; plays as ${prompt.telephony.packets} packets, ${prompt.telephony.durationMs} ms`)
  return 0
}

async function play (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CLIENT_OPTIONS, to: { type: 'string' }, codec: { type: 'string' }, ptime: { type: 'string' }, wait: { type: 'boolean' }, 'stop-on': { type: 'string' }, srtp: { type: 'string' }, 'srtp-key': { type: 'string' }, 'srtp-remote-key': { type: 'string' } } })
  if (positionals.length === 0) throw new UsageError('play takes one or more prompt NAMEs')
  if (values.to === undefined) throw new UsageError('play needs --to HOST:PORT (the address and port from the call\'s SDP)')
  const target = parseTarget(values.to)
  const codec = CODEC_NAMES.find(c => c.toLowerCase() === (values.codec ?? 'PCMU').toLowerCase())
  if (codec === undefined) throw new UsageError(`--codec is ${CODEC_NAMES.join(', ')}, not ${values.codec}`)
  const suite = values.srtp === undefined ? null : srtpSuite(values.srtp)
  if (suite === null && (values['srtp-key'] !== undefined || values['srtp-remote-key'] !== undefined)) throw new UsageError('--srtp-key and --srtp-remote-key go with --srtp SUITE')
  const api = client(values, io.env)
  const started = await api.play({
    target,
    prompts: positionals,
    codec,
    ...(values.ptime === undefined ? {} : { ptimeMs: Number(values.ptime) as Ptime }),
    ...(values['stop-on'] === undefined ? {} : { dtmf: { stopOn: values['stop-on'] } }),
    ...(suite === null ? {} : { srtp: { suite, ...(values['srtp-key'] === undefined ? {} : { localKey: values['srtp-key'] }), ...(values['srtp-remote-key'] === undefined ? {} : { remoteKey: values['srtp-remote-key'] }) } })
  })
  io.out(`${started.id}: playing ${started.prompts.join(', ')} to ${target.host}:${target.port} from port ${started.source.port}, ${started.codec}/${started.ptimeMs} ms, SSRC ${started.ssrc}, ${(started.durationMs / 1000).toFixed(2)} s`)
  if (started.srtp?.localKey !== undefined) io.out(`${started.id}: SRTP, sealed with a=crypto:1 ${started.srtp.suite} inline:${started.srtp.localKey}`)
  if (!values.wait) return 0
  for await (const event of api.events({ play: started.id })) {
    if (event.type === 'play.started') continue
    const remote = event.play.remote
    io.out(`${started.id}: ${event.play.state} after ${event.play.packetsSent} packets${event.play.error ? `: ${event.play.error}` : ''}`)
    if (remote !== null) io.out(`${started.id}: the far end reported ${remote.packetsLost} lost (${(remote.fractionLost * 100).toFixed(1)} % lately), jitter ${remote.jitterMs.toFixed(2)} ms${remote.rttMs === null ? '' : `, round trip ${remote.rttMs.toFixed(2)} ms`}`)
    return event.type === 'play.failed' ? 1 : 0
  }
  return 1
}

async function stop (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: CLIENT_OPTIONS })
  if (positionals.length !== 1) throw new UsageError('stop takes one play ID')
  const stopped = await client(values, io.env).stop(positionals[0]!)
  io.out(`${stopped.id}: ${stopped.state} after ${stopped.packetsSent} packets`)
  return 0
}

async function control (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: CLIENT_OPTIONS })
  const [id, operation, amount] = positionals
  const ms = amount === undefined ? NaN : Number(amount)
  let body: PlayControl
  if (id !== undefined && (operation === 'pause' || operation === 'resume' || operation === 'restart') && amount === undefined) {
    body = { operation }
  } else if (id !== undefined && (operation === 'forward' || operation === 'reverse') && Number.isInteger(ms) && ms >= 0) {
    body = { operation, ms }
  } else if (id !== undefined && operation === 'seek' && Number.isInteger(ms) && ms >= 0) {
    body = { operation, positionMs: ms }
  } else {
    throw new UsageError('control takes a play ID and pause, resume or restart; or forward, reverse or seek and a number of milliseconds')
  }
  const play = await client(values, io.env).control(id, body)
  io.out(`${play.id}: ${play.paused ? 'paused' : play.state} at ${(play.positionMs / 1000).toFixed(2)} s of ${(play.durationMs / 1000).toFixed(2)} s${play.loopsDone > 0 ? `, ${play.loopsDone} loops done` : ''}`)
  return 0
}

function parseTarget (text: string): { host: string, port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text)
  if (match === null || isIP(match[1]!) === 0) throw new UsageError(`--to is HOST:PORT with an IP address (e.g. 127.0.0.1:40000 or [::1]:40000), not ${text}`)
  return { host: match[1]!, port: Number(match[2]) }
}

async function listen (argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, host: { type: 'string' }, wav: { type: 'string' }, seconds: { type: 'string' }, idle: { type: 'string' }, json: { type: 'boolean' }, progress: { type: 'string' }, dtmf: { type: 'string' }, after: { type: 'string' }, 'dtmf-pt': { type: 'string' }, pcap: { type: 'string' }, srtp: { type: 'string' }, 'srtp-key': { type: 'string' }, 'srtp-send-key': { type: 'string' }, codec: { type: 'string' } }
  })
  if (values.codec !== undefined && values.codec.toLowerCase() !== 'opus') throw new UsageError(`--codec names the codec of a dynamic payload type: opus (G.711 and G.722 are known by theirs), not ${values.codec}`)
  const srtp = values.srtp === undefined ? null : srtpEnds(values.srtp, values['srtp-key'], values['srtp-send-key'], io)
  if (srtp === null && (values['srtp-key'] !== undefined || values['srtp-send-key'] !== undefined)) throw new UsageError('--srtp-key and --srtp-send-key go with --srtp SUITE')
  // A key press sent back to where the stream comes from, as the caller's phone would.
  let press: Buffer[] | null = null
  if (values.dtmf !== undefined) {
    const pt = Number(values['dtmf-pt'] ?? 101)
    if (!Number.isInteger(pt) || pt < 96 || pt > 127) throw new UsageError('--dtmf-pt is the telephone-event payload type, 96 to 127')
    try {
      const sequence = randomInt(2 ** 16)
      press = keyPress(values.dtmf, { payloadType: pt, ssrc: randomInt(2 ** 32), sequence, timestamp: randomInt(2 ** 32) })
      if (srtp !== null) press = press.map((packet, k) => srtp.send.sealedRtp(packet, sequence + k))
    } catch (err) {
      throw new UsageError(`--dtmf: ${(err as Error).message}`)
    }
  }
  const pressAfterMs = Number(values.after ?? 1) * 1000
  const monitor = new RtpMonitor({ keepAudio: values.wav !== undefined })
  if (values.pcap !== undefined) {
    // A capture instead of a socket: the datagrams to --port (RTP) and the port above (RTCP),
    // or every UDP datagram without --port, at the kernel's timestamps.
    const rtpPort = values.port === undefined ? null : Number(values.port)
    for (const d of readPcap(await fs.readFile(values.pcap))) {
      if (rtpPort !== null && d.to.port !== rtpPort && d.to.port !== rtpPort + 1) continue
      const rtcp = isRtcp(d.payload) || (rtpPort !== null && d.to.port === rtpPort + 1)
      const payload = srtp === null ? d.payload : rtcp ? srtp.open.openRtcp(d.payload) : srtp.open.openRtp(d.payload)
      if (payload === null) srtp!.unauthenticated++
      else if (rtcp) monitor.addRtcp(payload, d.at)
      else monitor.add(payload, d.at, `${d.from.address}:${d.from.port}`)
    }
    if (srtp !== null && srtp.unauthenticated > 0) io.err(`${srtp.unauthenticated} packet(s) did not open with --srtp-key: another key, or not SRTP`)
    return await finish(monitor, values, io, `${values.pcap}${rtpPort === null ? '' : ` to port ${rtpPort}`}`, rtpPort ?? 0)
  }
  if (values.port === undefined) throw new UsageError('listen needs --port P (the RTP port you gave the play as its target), or --pcap FILE')
  const host = values.host ?? '127.0.0.1'
  const { socket, rtcpSocket } = await bindPair(host, Number(values.port))
  const port = socket.address().port
  io.err(`listening for RTP on ${host}:${port}${rtcpSocket === null ? ` (port ${port + 1} is taken: RTCP only if the sender muxes it)` : ` and RTCP on ${port + 1}`}${values.seconds ? ` for ${values.seconds} s` : ''}; Ctrl-C to stop`)
  const started = performance.now()
  let last = 0
  const ourSsrc = randomInt(2 ** 32)
  const replies = new Set<NodeJS.Timeout>()
  // The sender's RTCP, shown as it comes; each SR answered with a receiver report about what
  // arrived, as a phone would, so that the play's `remote` shows loss, jitter and round trip.
  const onRtcp = (arrived: Buffer, rinfo: dgram.RemoteInfo, via: dgram.Socket): void => {
    const msg = srtp === null ? arrived : srtp.open.openRtcp(arrived)
    if (msg === null) {
      srtp!.unauthenticated++
      return
    }
    const sr = monitor.addRtcp(msg, performance.now())
    if (sr === null) return
    io.err(`RTCP ${sr.bye ? 'BYE' : 'SR'} from ${rinfo.address}:${rinfo.port}: SSRC ${hex(sr.ssrc)} sent ${sr.packets} packets, ${sr.octets} octets${sr.bye ? '; the stream has ended' : ''}`)
    if (sr.bye) return
    const reply = setTimeout(() => {
      replies.delete(reply)
      const rr = monitor.receiverReport(sr.ssrc, ourSsrc, performance.now())
      if (rr !== null) via.send(srtp === null ? rr : srtp.send.sealedRtcp(rr), rinfo.port, rinfo.address, () => {})
    }, 100 + randomInt(200))
    replies.add(reply)
  }
  rtcpSocket?.on('message', (msg, rinfo) => onRtcp(msg, rinfo, rtcpSocket))
  socket.on('message', (arrived, rinfo) => {
    if (isRtcp(arrived)) {
      onRtcp(arrived, rinfo, socket)
      return
    }
    const msg = srtp === null ? arrived : srtp.open.openRtp(arrived)
    if (msg === null) {
      srtp!.unauthenticated++
      return
    }
    last = performance.now()
    monitor.add(msg, last, `${rinfo.address}:${rinfo.port}`)
    if (press !== null) {
      const packets = press
      press = null
      setTimeout(() => {
        io.err(`pressing ${values.dtmf} (RFC 4733, ${packets.length} packets) towards ${rinfo.address}:${rinfo.port}`)
        packets.forEach((packet, i) => setTimeout(() => {
          try {
            socket.send(packet, rinfo.port, rinfo.address)
          } catch {} // listening ended meanwhile
        }, i * 20))
      }, pressAfterMs)
    }
  })
  const idleMs = Number(values.idle ?? 3) * 1000
  const untilMs = values.seconds === undefined ? Infinity : Number(values.seconds) * 1000
  const progressMs = Number(values.progress ?? 5) * 1000
  await new Promise<void>(resolve => {
    let nextProgress = progressMs
    const timer = setInterval(() => {
      const now = performance.now()
      if (now - started >= nextProgress) {
        nextProgress += progressMs
        io.err(progress(now - started, monitor))
      }
      if (now - started >= untilMs || (last > 0 && idleMs > 0 && now - last >= idleMs)) done()
    }, 100)
    const done = (): void => { clearInterval(timer); process.off('SIGINT', done); resolve() }
    process.once('SIGINT', done)
  })
  for (const reply of replies) clearTimeout(reply)
  socket.close()
  rtcpSocket?.close()
  if (srtp !== null && srtp.unauthenticated > 0) io.err(`${srtp.unauthenticated} packet(s) did not open with --srtp-key: another key, a replay, or not SRTP; dropped`)
  return await finish(monitor, values, io, `${host}:${port}`, port)
}

function srtpSuite (name: string): SrtpSuiteName {
  if (!(SRTP_SUITE_NAMES as readonly string[]).includes(name)) throw new UsageError(`--srtp is one of ${SRTP_SUITE_NAMES.join(', ')}, not ${name}`)
  return name as SrtpSuiteName
}

/**
 * `listen`'s two SRTP ends: what opens the stream (the play's key, its srtp.localKey) and what
 * seals the reports and key presses sent back (the play's srtp.remoteKey). A key not given is
 * made and printed, with the play command that matches.
 */
function srtpEnds (suiteName: string, key: string | undefined, sendKey: string | undefined, io: Io): { open: SrtpReceiver, send: SrtpSender, unauthenticated: number } {
  const suite = srtpSuite(suiteName)
  const openKey = key ?? makeSdesKey(suite)
  const closeKey = sendKey ?? makeSdesKey(suite)
  let open: SrtpReceiver
  let sender: SrtpSender
  try {
    open = new SrtpReceiver(suite, parseSdesKey(openKey, suite, '--srtp-key'))
    sender = new SrtpSender(suite, parseSdesKey(closeKey, suite, '--srtp-send-key'))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (key === undefined || sendKey === undefined) io.err(`SRTP ${suite}: start the play with --srtp ${suite} --srtp-key ${openKey} --srtp-remote-key ${closeKey}`)
  return { open, send: sender, unauthenticated: 0 }
}

/** What `listen` heard, for a person or as JSON, and the audio as a WAV file when asked. */
async function finish (monitor: RtpMonitor, values: { json?: boolean | undefined, wav?: string | undefined, codec?: string | undefined }, io: Io, where: string, port: number): Promise<number> {
  const reports = monitor.reports()
  if (values.json) io.out(JSON.stringify({ port, malformed: monitor.malformed, streams: reports }, null, 2))
  else io.out(reports.length === 0 ? `nothing arrived on ${where}: check the play's target and that no firewall drops UDP` : reports.map((r, i) => describe(r, i + 1)).join('\n'))
  if (values.wav !== undefined && reports.length > 0) {
    const main = reports.reduce((a, b) => (b.packets > a.packets ? b : a))
    // The static payload types say the codec; a dynamic one (opus) needs the SDP, which RTP does not carry.
    if (values.codec !== undefined) {
      // --codec opus: the SDP said so; RTP cannot.
      const pcm = await new Ffmpeg().decodeOpus(monitor.payloads(main.ssrc))
      const rate = CODECS.opus.sampleRate
      await fs.writeFile(values.wav, wavFile(pcm, rate))
      io.err(`wrote ${values.wav}: ${(pcm.length / 2 / rate).toFixed(2)} s of 48 kHz mono 16-bit audio (opus, SSRC ${hex(main.ssrc)})`)
    } else if (main.payloadTypes['9'] !== undefined) {
      const pcm = await new Ffmpeg().decodeG722(monitor.audio(main.ssrc, 0xff))
      const rate = CODECS.G722.sampleRate
      await fs.writeFile(values.wav, wavFile(pcm, rate))
      io.err(`wrote ${values.wav}: ${(pcm.length / 2 / rate).toFixed(2)} s of 16 kHz mono 16-bit audio (G722, SSRC ${hex(main.ssrc)})`)
    } else if (main.payloadTypes['0'] === undefined && main.payloadTypes['8'] === undefined) {
      io.err(`--wav decodes G.711 (payload type 0 or 8) and G.722 (9) by their payload type; the stream's ${Object.keys(main.payloadTypes).join(', ')} is dynamic, and RTP does not say its codec: give the SDP's, --codec opus`)
      return 1
    } else {
      const codec: Law = main.payloadTypes['8'] !== undefined ? 'PCMA' : 'PCMU'
      const pcm = await new Ffmpeg().decodeG711(monitor.audio(main.ssrc, G711[codec].silence), codec)
      await fs.writeFile(values.wav, wavFile(pcm, SAMPLE_RATE))
      io.err(`wrote ${values.wav}: ${(pcm.length / 2 / SAMPLE_RATE).toFixed(2)} s of 8 kHz mono 16-bit audio (${codec}, SSRC ${hex(main.ssrc)})`)
    }
  }
  return reports.length === 0 ? 1 : 0
}

function progress (elapsedMs: number, monitor: RtpMonitor): string {
  const streams = monitor.reports()
  const lost = streams.reduce((n, s) => n + s.lost, 0)
  const p99 = Math.max(0, ...streams.map(s => s.gapMs.p99))
  return `${(elapsedMs / 1000).toFixed(0)} s: ${monitor.packetCount} packets in ${streams.length} stream(s), ${lost} lost, gap p99 ${p99.toFixed(2)} ms`
}

function hex (ssrc: number): string {
  return `0x${ssrc.toString(16).padStart(8, '0')}`
}

function counts (record: Record<string, number>, name?: (key: string) => string): string {
  return Object.entries(record).map(([k, v]) => `${name ? name(k) : k} x ${v}`).join(', ') || '-'
}

/** A stream's report for a person; the lines name what is wrong when something is. */
function describe (r: StreamReport, n: number): string {
  const ptName = (pt: string): string => pt === '0' ? '0 (PCMU)' : pt === '8' ? '8 (PCMA)' : pt === '9' ? '9 (G722)' : pt
  const lines = [
    `stream ${n}: SSRC ${hex(r.ssrc)} from ${r.from}`,
    `  payload type    ${counts(r.payloadTypes, ptName)}`,
    `  packets         ${r.packets} received, ${r.expected} expected, ${r.lost} lost, ${r.reordered} reordered, ${r.duplicates} duplicates, ${r.markers} with marker`,
    `  payload bytes   ${counts(r.payloadBytes)}`,
    `  timestamp step  ${counts(r.timestampSteps)}`,
    `  gap ms          p50 ${r.gapMs.p50.toFixed(2)}  p99 ${r.gapMs.p99.toFixed(2)}  max ${r.gapMs.max.toFixed(2)}  mean ${r.gapMs.mean.toFixed(3)}`,
    `  jitter          ${r.jitterMs.toFixed(2)} ms (RFC 3550 interarrival jitter)`,
    `  drift           ${r.driftMs.toFixed(1)} ms of arrival time against media time over ${(r.durationMs / 1000).toFixed(2)} s`
  ]
  if (r.rtcp !== null) lines.push(`  rtcp            ${r.rtcp.senderReports} sender report(s), the last counting ${r.rtcp.packets} packets sent${r.rtcp.bye ? ', then BYE' : ''}`)
  if (Object.keys(r.payloadBytes).length > 1) lines.push('  note            payload sizes vary: the sender does not packetize by ptime (robotic audio at the far end)')
  if (r.lost > 0) lines.push(`  note            ${(100 * r.lost / r.expected).toFixed(1)} % lost`)
  if (r.markers > 1) lines.push('  note            more than one marker: the stream restarted talkspurts')
  return lines.join('\n')
}
