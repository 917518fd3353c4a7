/**
 * Runs the example IVR: node dist/examples/ivr/main.js (after npm run build), beside a
 * prompt-player service. Settings from the environment:
 *   IVR_SIP_ADDRESS    where it takes SIP over UDP (default 127.0.0.1)
 *   IVR_SIP_PORT       (default 5070)
 *   IVR_MEDIA_ADDRESS  the address callers reach the player's media ports on (default IVR_SIP_ADDRESS)
 *   PROMPT_PLAYER_URL  the service (default http://127.0.0.1:8080), PROMPT_PLAYER_TOKEN when it needs one
 */
import { Ivr } from './ivr.js'

const address = process.env.IVR_SIP_ADDRESS ?? '127.0.0.1'
const ivr = new Ivr({
  sip: { address, port: Number(process.env.IVR_SIP_PORT ?? 5070) },
  player: { url: process.env.PROMPT_PLAYER_URL ?? 'http://127.0.0.1:8080', ...(process.env.PROMPT_PLAYER_TOKEN === undefined ? {} : { token: process.env.PROMPT_PLAYER_TOKEN }) },
  mediaAddress: process.env.IVR_MEDIA_ADDRESS ?? address
})
const log = (message: string): void => console.log(`${new Date().toISOString()} ${message}`)
ivr.on('answered', call => log(`call ${call.callId}: answered; playing ${call.play.prompts.join(', ')} to ${call.target.host}:${call.target.port} (play ${call.play.id}, media port ${call.play.source.port})`))
ivr.on('dtmf', (call, digit) => log(`call ${call.callId}: the caller pressed ${digit}`))
ivr.on('promptsEnded', (call, play) => log(`call ${call.callId}: prompts ${play.state}${play.stoppedBy === null ? '' : ` by ${play.stoppedBy}`} after ${play.packetsSent} packets${play.remote === null ? '' : `; the caller's RTCP: ${play.remote.packetsLost} lost, jitter ${play.remote.jitterMs} ms`}`))
ivr.on('hangup', call => log(`call ${call.callId}: hung up`))
ivr.on('error', err => log(`error: ${err.message}`))
ivr.start()
log(`IVR taking SIP calls on udp:${address}:${process.env.IVR_SIP_PORT ?? 5070}, prompts from ${process.env.PROMPT_PLAYER_URL ?? 'http://127.0.0.1:8080'}`)
process.once('SIGINT', () => { ivr.close(); process.exit(0) })
process.once('SIGTERM', () => { ivr.close(); process.exit(0) })
