/**
 * Every default of the engine's options, in one place. The service's configuration takes its
 * defaults from here too, so that `createEngine({ libraryDir })` and a service started with no
 * variables behave the same.
 */
export const ENGINE_DEFAULTS = {
  /** Local UDP ports plays send from (RTP on the even ones). */
  rtpPorts: { min: 20000, max: 39999 },
  /** Plays at once before AT_CAPACITY. */
  maxPlays: 2000,
  ffmpegPath: 'ffmpeg',
  /** Wall-clock limit of one ffmpeg run. */
  ffmpegTimeoutMs: 60_000,
  /** Niceness of ffmpeg runs: transcodes yield the cores to the packets. */
  ffmpegNiceness: 10,
  /** Longest prompt, in seconds of decoded audio. */
  maxPromptSeconds: 600,
  /** The Opus encoder's bitrate for Opus renditions, bits per second. */
  opusBitrate: 32000,
  /** Transcodes at once, and uploads waiting beyond them. */
  maxTranscodes: 2,
  transcodeQueue: 32,
  /** How long, and how many, ended plays stay visible. */
  keepEndedMs: 5 * 60_000,
  keepEndedMax: 10_000,
  /** Where plays may send: loopback and the private ranges, and ports from 1024. */
  allowedTargets: [
    '127.0.0.0/8', '::1/128', // loopback
    '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', // RFC 1918
    'fc00::/7' // IPv6 unique local (RFC 4193)
  ] as readonly string[],
  minTargetPort: 1024,
  /** RTCP's report interval before randomisation to 0.5-1.5 times (RFC 3550 §6.2). */
  rtcpIntervalMs: 5000,
  /** Prompts from URLs: one fetch's time limit, the largest body, redirects followed, the cache's bound (audio bytes). */
  fetch: { timeoutMs: 10_000, maxBytes: 50 * 1024 * 1024, maxRedirects: 5, cacheBytes: 256 * 1024 * 1024 },
  /** SCHED_FIFO priority of the packet thread where allowed (root, CAP_SYS_NICE); 0: niceness only. */
  realtimePriority: 10,
  /** How the packet threads wait for a due time: the timer, then a futex sleep to the due time. */
  pacing: 'sleep',
  /** A packet due longer ago than this many ptimes is skipped, not sent late; 0: never skipped. */
  lateLimitPtimes: 3
} as const
