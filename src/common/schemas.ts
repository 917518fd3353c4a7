/**
 * The engine's resources as TypeBox schemas: the one source of their TypeScript types (here,
 * in the service, the client and the command line), of the service's request validation and
 * response serialisation, and of the OpenAPI document. A field added to `Play` here reaches
 * all of them; `PlayHandle.toJSON` is typed by it, so the compiler asks for its value.
 */
import { Type, type Static, type TLiteral, type TUnion } from 'typebox'
import { CODEC_NAMES, PTIMES } from './codecs.js'
import { SRTP_SUITE_NAMES } from './srtp-suites.js'

export const PROMPT_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'

/** Containers detected from the bytes. */
export const CONTAINERS = ['wav', 'mp3', 'wma', 'flac', 'ogg', 'm4a'] as const

/** A prompt name, as every `:name` route and every play request takes it. */
export const PromptName = Type.String({
  pattern: PROMPT_NAME_PATTERN,
  description: '1 to 64 letters, digits, "_" or "-", starting with a letter or digit'
})

export const Endpoint = Type.Object({
  host: Type.Union([Type.String({ format: 'ipv4' }), Type.String({ format: 'ipv6' })], { description: 'an IPv4 or IPv6 literal' }),
  port: Type.Integer({ minimum: 1, maximum: 65535 })
}, { additionalProperties: false })
export type Endpoint = Static<typeof Endpoint>

/** A union of literals from a constant list, typed as that list's members. */
function oneOf<const T extends ReadonlyArray<string | number>> (values: T): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(values.map(value => Type.Literal(value))) as unknown as TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }>
}

export const CodecName = oneOf(CODEC_NAMES)
export const ContainerName = oneOf(CONTAINERS)
export const PtimeMs = oneOf(PTIMES)

export const PAUSE_MODES = ['silence', 'hold'] as const
export const PauseModeName = oneOf(PAUSE_MODES)
export const STOPPED_BY = ['api', 'dtmf', 'shutdown'] as const
/** RTCP of a play: from source.port + 1 to target.port + 1, on the RTP ports (RFC 5761), or none. */
export const RTCP_MODES = ['on', 'mux', 'off'] as const
export const RtcpModeName = oneOf(RTCP_MODES)
export type RtcpMode = typeof RTCP_MODES[number]

export const PlayState = Type.Union([Type.Literal('playing'), Type.Literal('finished'), Type.Literal('stopped'), Type.Literal('failed')])
export type PlayState = Static<typeof PlayState>

/** The largest number of prompts one play may ever name; the configured limit is at most this. */
export const MAX_PROMPTS_PER_PLAY_LIMIT = 1000

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer> | ReturnType<typeof Type.Number>>(schema: T) =>
  Type.Union([schema, Type.Null()])

/** The longest silence one entry of a play's list may ask for, in ms. */
export const MAX_SILENCE_MS = 60_000

/** An entry of a play's list: a prompt's name in the library, a URL fetched and cached, or silence. */
export const PromptRef = Type.Union([PromptName, Type.Object({
  url: Type.String({ format: 'uri', pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', maxLength: 2048, description: 'an http or https URL; its bytes are detected, transcoded and cached as an upload is' })
}, { additionalProperties: false }), Type.Object({
  silence: Type.Integer({ minimum: 1, maximum: MAX_SILENCE_MS, description: `ms of the codec's silence (1-${MAX_SILENCE_MS}), rounded up to whole packets; listed in the Play as "silence:<ms>"` })
}, { additionalProperties: false }), Type.Object({
  tone: Type.Union([
    Type.String({ maxLength: 32, description: 'a call-progress tone: dial, ringback, busy, congestion, waiting or beep, with the frequencies and cadence of `country`' }),
    Type.Object({
      frequencies: Type.Array(Type.Integer({ minimum: 50, maximum: 4000 }), { minItems: 1, maxItems: 2, description: 'one or two frequencies (Hz), summed' }),
      onMs: Type.Integer({ minimum: 10, maximum: 60000, multipleOf: 10, description: 'ms sounding' }),
      offMs: Type.Integer({ minimum: 0, maximum: 60000, multipleOf: 10, description: 'ms quiet after it (0: steady)' })
    }, { additionalProperties: false })
  ]),
  country: Type.Optional(Type.String({ maxLength: 8, description: 'whose tone (ITU-T E.180): us (default), gb, de, fr, jp, au, cn, in' })),
  durationMs: Type.Integer({ minimum: 1, maximum: 600000, description: 'how long it plays, rounded up to whole packets' })
}, { additionalProperties: false }), Type.Object({
  dtmf: Type.String({ minLength: 1, maxLength: 32, pattern: '^[0-9*#A-Da-d]+$', description: 'digits sent into the call as RFC 4733 events (telephone-event, the payload type of the request\'s dtmf.payloadType, default 101), in the play\'s stream' }),
  durationMs: Type.Optional(Type.Integer({ minimum: 40, maximum: 1000, description: 'each digit\'s length (default 100), rounded up to whole packets' })),
  gapMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000, description: 'from the end of one digit to the start of the next (default 70; at least the two packet times in which the end is sent again)' }))
}, { additionalProperties: false })])
export type PromptRef = Static<typeof PromptRef>

/** How a list entry is named in a Play's `prompts`: the name, the URL, "silence:<ms>", "tone:<name>:<country>", "tone:<f1+f2>:<on>/<off>" or "dtmf:<digits>". */
export function entryName (entry: PromptRef): string {
  if (typeof entry === 'string') return entry
  if ('url' in entry) return entry.url
  if ('silence' in entry) return `silence:${entry.silence}`
  if ('dtmf' in entry) return `dtmf:${entry.dtmf}`
  return typeof entry.tone === 'string' ? `tone:${entry.tone}:${entry.country ?? 'us'}` : `tone:${entry.tone.frequencies.join('+')}:${entry.tone.onMs}/${entry.tone.offMs}`
}

export const PlayRequest = Type.Object({
  target: Endpoint,
  prompts: Type.Array(PromptRef, { minItems: 1, maxItems: MAX_PROMPTS_PER_PLAY_LIMIT, description: 'names, {"url": ...} and {"silence": ms} entries, played back to back as one stream; at most the configured prompts per play (default 100)' }),
  codec: Type.Optional(Type.Union(CodecName.anyOf, { description: 'PCMU (default) or PCMA: G.711 at 8 kHz; G722: 16 kHz audio on an 8000 RTP clock (RFC 3551 §4.5.2); opus: Opus at 48 kHz (RFC 7587)' })),
  payloadType: Type.Optional(Type.Integer({ minimum: 0, maximum: 127, description: 'default 0 for PCMU, 8 for PCMA, 9 for G722, 111 for opus (which takes only dynamic ones, 96-127)' })),
  ptimeMs: Type.Optional(Type.Union(PtimeMs.anyOf, { description: 'packet time (default 20): 10, 20, 30 or 40 for G.711 and G.722; 10, 20, 40 or 60 for opus' })),
  ssrc: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'random when absent' })),
  callbackUrl: Type.Optional(Nullable(Type.String({ format: 'uri' }))),
  loop: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'times the whole list plays, back to back in one stream (default 1); 0 plays it until stopped' })),
  offsetMs: Type.Optional(Type.Integer({ minimum: 0, description: 'where in the prompt list the play starts (default 0)' })),
  pauseMode: Type.Optional(PauseModeName),
  rtcp: Type.Optional(Type.Union(RtcpModeName.anyOf, { description: 'RTCP (RFC 3550 §6): "on" (default) sends a sender report about every 5 s and a BYE at the end from source.port + 1 to target.port + 1, and reads the far end\'s receiver reports there; "mux" does the same on the RTP ports (RFC 5761); "off" sends none' })),
  dtmf: Type.Optional(Type.Object({
    payloadType: Type.Optional(Type.Integer({ minimum: 96, maximum: 127, description: 'the telephone-event payload type of the call\'s SDP (default 101)' })),
    stopOn: Type.Optional(Type.String({ pattern: '^[0-9*#A-D]{0,16}$', description: 'digits that stop the play at their first packet (stoppedBy "dtmf")' }))
  }, { additionalProperties: false, description: 'the caller\'s RFC 4733 key presses on the play\'s source port: play.dtmf events, and stopOn' })),
  srtp: Type.Optional(Type.Object({
    suite: Type.String({ maxLength: 64, description: `the a=crypto line's suite: ${SRTP_SUITE_NAMES.join(', ')}` }),
    remoteKey: Type.Optional(Type.String({ maxLength: 1024, description: 'the caller\'s key: the inline: value of its a=crypto line (base64, then optionally |lifetime and |MKI:length); opens its digits and RTCP. Without it, everything arriving is dropped as unauthenticated' })),
    localKey: Type.Optional(Type.String({ maxLength: 1024, description: 'the key this play sends with, in the same form; made from a secure random source when absent (with the lifetime and MKI length of remoteKey), and answered only in the 201' }))
  }, { additionalProperties: false, description: 'SRTP (RFC 3711) with SDES keys (RFC 4568): RTP sent as SRTP, RTCP as SRTCP, and only authenticated packets of the far end read' })),
  firstSequence: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'the first packet\'s RTP sequence number; random when absent (RFC 3550 §5.1). For tests of the wrap at 65536 (and SRTP\'s rollover counter)' }))
}, { additionalProperties: false })
export type PlayRequest = Static<typeof PlayRequest>

export const Play = Type.Object({
  id: Type.String(),
  state: PlayState,
  target: Endpoint,
  source: Endpoint,
  prompts: Type.Array(Type.String()),
  codec: CodecName,
  payloadType: Type.Integer(),
  ptimeMs: PtimeMs,
  ssrc: Type.Integer(),
  durationMs: Type.Integer(),
  packetsSent: Type.Integer(),
  octetsSent: Type.Integer(),
  sendErrors: Type.Integer({ description: 'sends the kernel refused (ICMP unreachable from the target included)' }),
  startedAt: Type.String({ format: 'date-time' }),
  endedAt: Nullable(Type.String({ format: 'date-time' })),
  error: Nullable(Type.String()),
  callbackUrl: Nullable(Type.String()),
  instance: Type.String({ description: 'the instance that sends the play (in a pool, any instance answers for it)' }),
  loop: Type.Integer({ description: 'times the list plays; 0: until stopped' }),
  pauseMode: PauseModeName,
  paused: Type.Boolean(),
  positionMs: Type.Integer({ description: 'where in the prompt list the play is now (in the current loop)' }),
  loopsDone: Type.Integer({ description: 'loops of the list played to their end' }),
  stoppedBy: Type.Union([...oneOf(STOPPED_BY).anyOf, Type.Null()], { description: 'who stopped it: api (DELETE), dtmf (a digit of stopOn), shutdown; null unless stopped' }),
  received: Type.Object({
    digits: Type.String({ description: 'the caller\'s key presses so far (with dtmf)' }),
    ignored: Type.Integer({ description: 'packets of other payload types that arrived on the source port (the caller\'s audio)' }),
    malformed: Type.Integer({ description: 'packets that arrived and were neither RTP nor RTCP this player reads' }),
    reports: Type.Integer({ description: 'RTCP reports about this stream from the far end' }),
    unauthenticated: Type.Integer({ description: 'with srtp: packets dropped because they failed authentication, were replays, or came in the clear' })
  }),
  srtp: Type.Union([Type.Object({ suite: oneOf(SRTP_SUITE_NAMES) }), Type.Null()], { description: 'the SRTP suite of the play, or null for plain RTP; never a key' }),
  rtcp: RtcpModeName,
  reportsSent: Type.Integer({ description: 'RTCP sender reports sent, the BYE\'s included' }),
  maxLateMs: Type.Number({ description: 'the most any packet of this play left after its due time (start + k * ptime), ms' }),
  packetsSkipped: Type.Integer({ description: 'packets due longer ago than the late limit (PROMPT_PLAYER_LATE_LIMIT_PTIMES) when their time came: skipped, not sent in a burst; each is one lost packet to the far end' }),
  remote: Type.Union([Type.Object({
    fractionLost: Type.Number({ description: 'fraction of packets lost since its previous report, 0 to 1' }),
    packetsLost: Type.Integer({ description: 'packets lost since the start, as the far end counts them' }),
    jitterMs: Type.Number({ description: 'interarrival jitter (RFC 3550 §6.4.1)' }),
    rttMs: Nullable(Type.Number({ description: 'round trip from LSR and DLSR; null before the far end had one of our sender reports' })),
    at: Type.String({ format: 'date-time' })
  }), Type.Null()], { description: 'the far end\'s latest RTCP receiver report about this stream: what the caller actually received; null until one arrived' })
})

/**
 * The answer to POST /v1/plays: the Play, with the SRTP key it sends with. The only schema with
 * a key: every other answer is serialised with Play, which has no field for one.
 */
export const PlayCreated = Type.Object({
  ...Play.properties,
  srtp: Type.Union([Type.Object({
    suite: oneOf(SRTP_SUITE_NAMES),
    localKey: Type.Optional(Type.String({ description: 'the key this play sends with, for the a=crypto line of the SDP answer: a=crypto:<tag> <suite> inline:<localKey>' }))
  }), Type.Null()], { description: 'SRTP: the suite, and the key the play sends with; null for plain RTP' })
})
/** The answer to a play's start. */
export type PlayCreatedInfo = Static<typeof PlayCreated>

/** POST /v1/plays/{id}/control. */
export const PlayControl = Type.Union([
  Type.Object({ operation: Type.Union([Type.Literal('pause'), Type.Literal('resume'), Type.Literal('restart')]) }, { additionalProperties: false }),
  Type.Object({ operation: Type.Union([Type.Literal('forward'), Type.Literal('reverse')]), ms: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
  Type.Object({ operation: Type.Literal('seek'), positionMs: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })
])
export type PlayControl = Static<typeof PlayControl>
/** The Play resource. */
export type PlayInfo = Static<typeof Play>

export const Prompt = Type.Object({
  name: PromptName,
  source: Type.Object({
    filename: Nullable(Type.String()),
    container: Type.Union(oneOf(CONTAINERS).anyOf, { description: 'detected from the bytes, never from the name' }),
    codec: Nullable(Type.String()),
    sampleRate: Nullable(Type.Integer()),
    channels: Nullable(Type.Integer()),
    durationMs: Nullable(Type.Integer()),
    bytes: Type.Integer(),
    sha256: Type.String(),
    extensionMismatch: Type.Boolean({ description: "true when the file name's extension names another container than the one detected" })
  }),
  telephony: Type.Object({
    sampleRate: Type.Integer(),
    durationMs: Type.Integer(),
    packets: Type.Integer({ description: '20 ms packets' })
  }),
  createdAt: Type.String({ format: 'date-time' })
})
/** A prompt's description as stored (the Prompt resource without its renditions). */
export type PromptInfo = Static<typeof Prompt>

/** One codec's audio of a prompt, made from its source. */
export const Rendition = Type.Object({
  codec: CodecName,
  frameMs: Type.Union([Type.Integer(), Type.Null()], { description: 'Opus: the frame duration (the ptime it serves); null for the byte codecs, which serve every ptime' }),
  bytes: Type.Integer({ description: 'bytes stored (Opus: its packets, each with a 2-byte length)' })
})
export type RenditionInfo = Static<typeof Rendition>

/** The Prompt resource: the description, and the renditions made so far. */
export const PromptResource = Type.Object({
  ...Prompt.properties,
  renditions: Type.Array(Rendition, { description: 'the codecs\' audio made so far: PCMU, PCMA, G722 and opus at 20 ms at upload; opus at 10, 40 or 60 ms at its first play' })
})
export type PromptResourceInfo = Static<typeof PromptResource>
