/**
 * A small IVR application on prompt-player: it answers SIP calls, plays "welcome" then "menu"
 * to each caller, and lets the caller's "#" cut the prompts short (barge-in, done by the
 * player on the media path, within one packet).
 *
 * For each INVITE it reads the caller's SDP (where the caller wants our audio, which codec, the
 * telephone-event payload type, rtcp-mux), starts a play there with the typed client, and
 * answers 200 OK with an SDP that names the play's own source port as our media address:
 * the caller's RTP, key presses and RTCP then go straight to the player (symmetric RTP). It
 * follows the player's events on one Server-Sent Events stream and hears each key press as
 * `play.dtmf`. A BYE stops the play if it still runs.
 *
 * The SIP stack is `sip` (kirm/sip.js), plain JavaScript: RFC 3261 transactions and
 * retransmissions over UDP, with no server process beside it (drachtio-srf needs its C++
 * drachtio server; SIP.js and JsSIP are WebRTC stacks for browsers).
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import sip, { type Message, type Stack } from 'sip'
import sdp from 'sip/sdp.js'
// Outside this repository: import { PromptPlayerClient } from 'prompt-player/client'
import { PromptPlayerClient, type PlayInfo, type PlayRequest, type StreamedEvent } from '../../client/index.js'

/** The SRTP suites the player speaks; of an offer's crypto lines, the IVR answers the first it finds here. */
const SUITES = ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'] as const
type Suite = typeof SUITES[number]

/** The codecs the player sends, as an SDP names them: the a=rtpmap encoding name (any case, RFC 4855) and clock. */
const RTPMAP: Record<string, Codec> = { 'opus/48000': 'opus', 'g722/8000': 'G722', 'pcmu/8000': 'PCMU', 'pcma/8000': 'PCMA' }
/** RFC 3551's static payload types, which an offer may list without an a=rtpmap. */
const STATIC: Record<number, Codec> = { 0: 'PCMU', 8: 'PCMA', 9: 'G722' }
type Codec = NonNullable<PlayRequest['codec']>
/** The packet times each codec can be sent at. */
const PTIMES: Record<Codec, readonly number[]> = { PCMU: [10, 20, 30, 40], PCMA: [10, 20, 30, 40], G722: [10, 20, 30, 40], opus: [10, 20, 40, 60] }

export interface IvrOptions {
  /** Where the IVR takes SIP (UDP). */
  sip: { address: string, port: number }
  /** The prompt-player service. */
  player: { url: string, token?: string }
  /** The address callers reach the player's media ports on, put in our SDP (`c=`). */
  mediaAddress: string
  /**
   * Played back to back to each caller (default welcome, menu): prompt names, and anything else
   * a play's list takes (silence, tones, digits sent into the call).
   */
  prompts?: PlayRequest['prompts']
  /** Digits that cut the prompts short (default #). */
  stopOn?: string
}

export interface Call {
  callId: string
  /** Where the caller wants our audio, from its SDP. */
  target: { host: string, port: number }
  play: PlayInfo
  digits: string
  /** How the prompts ended: finished, stopped (by the caller's digit, or the hang-up), failed. */
  ended: PlayInfo | null
  hungUp: boolean
}

export interface IvrEvents {
  answered: [Call]
  dtmf: [Call, string]
  promptsEnded: [Call, PlayInfo]
  hangup: [Call]
  error: [Error]
}

/** What the caller's SDP offers, as far as the player cares. */
export interface Offer {
  host: string
  port: number
  /** The first of the offer's formats that the player sends (opus, G722, PCMU or PCMA), in the offer's order of preference. */
  codec: Codec
  payloadType: number
  ptimeMs: NonNullable<PlayRequest['ptimeMs']>
  /** The telephone-event payload type, when offered. */
  dtmf: number | null
  mux: boolean
  /**
   * RTP/SAVP: the first `a=crypto` line (RFC 4568) whose suite the player speaks and that has no
   * session parameters: its tag, suite and key (the `inline:` value). Null for RTP/AVP.
   */
  crypto: { tag: number, suite: Suite, key: string } | null
}

/**
 * Reads an SDP offer; null when it has no audio stream in a codec the player sends (opus, G.722,
 * G.711) that we can send to, or is RTP/SAVP with no crypto line we can answer (then 488, as RFC
 * 3264 §6 and RFC 4568 §7.1.2 ask). The codec is the offer's first that the player sends: the
 * offerer lists its formats in its order of preference (RFC 3264 §5.1).
 */
export function readOffer (text: string): Offer | null {
  const session = sdp.parse(text.replace(/\r?\n/g, '\r\n'))
  const audio = session.m.find(m => m.media === 'audio' && m.port > 0 && (m.proto === 'RTP/AVP' || m.proto === 'RTP/SAVP'))
  const host = audio?.c?.address ?? session.c?.address
  if (audio === undefined || host === undefined) return null
  const attributes = audio.a ?? []
  const rtpmaps = new Map(attributes.map(a => /^rtpmap:(\d+) ([^/\s]+\/\d+)/.exec(a)).filter(m => m !== null).map(m => [Number(m![1]), m![2]!.toLowerCase()]))
  const codecOf = (pt: number): Codec | undefined => {
    const named = rtpmaps.get(pt)
    return named === undefined ? STATIC[pt] : RTPMAP[named]
  }
  const pt = audio.fmt.find(f => codecOf(f) !== undefined)
  if (pt === undefined) return null
  const codec = codecOf(pt)!
  const dtmf = attributes.map(a => /^rtpmap:(\d+) telephone-event\/8000/i.exec(a)).find(m => m !== null)
  const ptime = Number(attributes.map(a => /^ptime:(\d+)/.exec(a)?.[1]).find(p => p !== undefined) ?? 20)
  let crypto: Offer['crypto'] = null
  if (audio.proto === 'RTP/SAVP') {
    // a=crypto:<tag> <suite> inline:<key>[|lifetime][|MKI:length] [session parameters]
    crypto = attributes.map(a => /^crypto:(\d+) (\S+) inline:(\S+)$/.exec(a))
      .filter(m => m !== null && (SUITES as readonly string[]).includes(m[2]!))
      .map(m => ({ tag: Number(m![1]), suite: m![2] as Suite, key: m![3]! }))[0] ?? null
    if (crypto === null) return null
  }
  return {
    host,
    port: audio.port,
    codec,
    payloadType: pt,
    ptimeMs: (PTIMES[codec].includes(ptime) ? ptime : 20) as Offer['ptimeMs'],
    dtmf: dtmf == null ? null : Number(dtmf[1]),
    mux: attributes.includes('rtcp-mux'),
    crypto
  }
}

/**
 * Our SDP answer: the player's source port as our media port, the codec chosen with the offer's
 * payload type, telephone-event when offered; for RTP/SAVP the chosen crypto line's tag and suite
 * with the play's own key (`srtp.localKey` of the 201).
 */
/** The a=rtpmap of each codec in an answer (RFC 7587 §7: opus is always named with 2 channels). */
const ANSWER_RTPMAP: Record<Codec, string> = { PCMU: 'PCMU/8000', PCMA: 'PCMA/8000', G722: 'G722/8000', opus: 'opus/48000/2' }

export function answerFor (offer: Offer, mediaAddress: string, mediaPort: number, localKey?: string): string {
  const family = mediaAddress.includes(':') ? 'IP6' : 'IP4'
  const formats = offer.dtmf === null ? [offer.payloadType] : [offer.payloadType, offer.dtmf]
  const lines = [
    'v=0',
    `o=prompt-player-ivr ${Date.now()} 1 IN ${family} ${mediaAddress}`,
    's=prompt-player IVR',
    `c=IN ${family} ${mediaAddress}`,
    't=0 0',
    `m=audio ${mediaPort} ${offer.crypto === null ? 'RTP/AVP' : 'RTP/SAVP'} ${formats.join(' ')}`,
    `a=rtpmap:${offer.payloadType} ${ANSWER_RTPMAP[offer.codec]}`,
    ...(offer.dtmf === null ? [] : [`a=rtpmap:${offer.dtmf} telephone-event/8000`, `a=fmtp:${offer.dtmf} 0-16`]),
    `a=ptime:${offer.ptimeMs}`,
    ...(offer.mux ? ['a=rtcp-mux'] : []),
    ...(offer.crypto === null || localKey === undefined ? [] : [`a=crypto:${offer.crypto.tag} ${offer.crypto.suite} inline:${localKey}`]),
    'a=sendrecv'
  ]
  return lines.join('\r\n') + '\r\n'
}

export class Ivr extends EventEmitter<IvrEvents> {
  readonly calls = new Map<string, Call>()
  private readonly options: IvrOptions
  private readonly client: PromptPlayerClient
  private readonly byPlay = new Map<string, Call>()
  private readonly stopEvents = new AbortController()
  private stack: Stack | null = null

  constructor (options: IvrOptions) {
    super()
    this.options = options
    this.client = new PromptPlayerClient({ url: options.player.url, ...(options.player.token === undefined ? {} : { token: options.player.token }) })
  }

  /** Starts following the player's events, then takes calls. */
  start (): void {
    void this.follow()
    this.stack = sip.create({ port: this.options.sip.port, address: this.options.sip.address, udp: true, tcp: false, logger: { error: err => this.emit('error', err as Error) } }, request => {
      this.onRequest(request).catch((err: Error) => this.emit('error', err))
    })
  }

  close (): void {
    this.stopEvents.abort()
    this.stack?.destroy()
    this.stack = null
  }

  private async onRequest (request: Message): Promise<void> {
    const stack = this.stack!
    switch (request.method) {
      case 'INVITE': {
        stack.send(sip.makeResponse(request, 100, 'Trying'))
        const offer = readOffer(request.content ?? '')
        if (offer === null) {
          stack.send(sip.makeResponse(request, 488, 'Not Acceptable Here'))
          return
        }
        let play: Awaited<ReturnType<PromptPlayerClient['play']>>
        try {
          play = await this.client.play(this.requestFor(offer))
        } catch (err) {
          this.emit('error', err as Error)
          stack.send(sip.makeResponse(request, 503, 'Service Unavailable'))
          return
        }
        const call: Call = { callId: request.headers['call-id'], target: { host: offer.host, port: offer.port }, play, digits: '', ended: null, hungUp: false }
        this.calls.set(call.callId, call)
        this.byPlay.set(play.id, call)
        const response = sip.makeResponse(request, 200, 'OK', {
          headers: {
            contact: [{ uri: `sip:ivr@${this.options.sip.address}:${this.options.sip.port}` }],
            'content-type': 'application/sdp'
          },
          content: answerFor(offer, this.options.mediaAddress, play.source.port, play.srtp?.localKey)
        })
        response.headers.to.params.tag = randomBytes(6).toString('hex')
        stack.send(response)
        this.emit('answered', call)
        return
      }
      case 'BYE': {
        stack.send(sip.makeResponse(request, 200, 'OK'))
        const call = this.calls.get(request.headers['call-id'])
        if (call === undefined) return
        call.hungUp = true
        this.emit('hangup', call)
        if (call.ended === null) {
          // The caller hung up during the prompts: stop them (the play may just have ended: 409).
          await this.client.stop(call.play.id).catch(() => {})
        }
        return
      }
      case 'ACK':
        return
      case 'CANCEL':
        stack.send(sip.makeResponse(request, 200, 'OK'))
        return
      default:
        stack.send(sip.makeResponse(request, 405, 'Method Not Allowed'))
    }
  }

  private requestFor (offer: Offer): PlayRequest {
    return {
      target: { host: offer.host, port: offer.port },
      prompts: this.options.prompts ?? ['welcome', 'menu'],
      codec: offer.codec,
      payloadType: offer.payloadType,
      ptimeMs: offer.ptimeMs,
      rtcp: offer.mux ? 'mux' : 'on',
      ...(offer.dtmf === null ? {} : { dtmf: { payloadType: offer.dtmf, stopOn: this.options.stopOn ?? '#' } }),
      // The caller's key opens its digits and reports; the player makes the key it sends with.
      ...(offer.crypto === null ? {} : { srtp: { suite: offer.crypto.suite, remoteKey: offer.crypto.key } })
    }
  }

  /** One event stream for every call: key presses, and how the prompts ended. */
  private async follow (): Promise<void> {
    try {
      for await (const event of this.client.events({ signal: this.stopEvents.signal })) this.onEvent(event)
    } catch (err) {
      this.emit('error', err as Error)
    }
  }

  private onEvent (event: StreamedEvent): void {
    const call = this.byPlay.get(event.play.id)
    if (call === undefined) return
    if (event.type === 'play.dtmf') {
      call.digits += event.digit
      this.emit('dtmf', call, event.digit!)
    } else if (event.type === 'play.finished' || event.type === 'play.stopped' || event.type === 'play.failed') {
      call.ended = event.play
      this.emit('promptsEnded', call, event.play)
    }
  }
}
