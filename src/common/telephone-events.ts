/**
 * DTMF sent into a call as RFC 4733 telephone events, in the play's own stream: which packets a
 * `{"dtmf": ...}` entry of a play's list makes. The HTTP thread counts them (a play's length);
 * the packet thread builds them once per play, as frames with their event marks.
 *
 * Each digit is one event: `ceil(durationMs / ptime)` packets with the same timestamp (the
 * event's start), the marker on the first, the duration growing by one ptime each, the end bit
 * on the last; then that last packet twice more (RFC 4733 §2.5.1.4), in the next two packet
 * times. Between digits, the codec's silence fills the rest of `gapMs`.
 */
import { CODECS, silencePayload, type Codec, type Ptime } from './codecs.js'

/** RFC 4733 §3.2: the DTMF named events. */
export const DTMF_EVENTS: Readonly<Record<string, number>> = {
  0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, '*': 10, '#': 11, A: 12, B: 13, C: 14, D: 15
}

/** The volume sent with each event: -10 dBm0 (RFC 4733 §2.3.4 leaves it to the sender). */
const VOLUME = 10

export const DTMF_DEFAULTS = { durationMs: 100, gapMs: 70 } as const

export interface DtmfEntry {
  digits: string
  durationMs: number
  gapMs: number
  payloadType: number
}

/** Packets the end of an event is sent again after its last (RFC 4733 §2.5.1.4: three in all). */
const RETRANSMITS = 2

/** How many packets an entry makes at a ptime: its share of the play's length. */
export function dtmfPackets (entry: Omit<DtmfEntry, 'payloadType'>, ptimeMs: number): number {
  const digits = entry.digits.length
  const each = Math.ceil(entry.durationMs / ptimeMs) + RETRANSMITS
  const gap = Math.max(0, Math.ceil(entry.gapMs / ptimeMs) - RETRANSMITS)
  return digits * each + (digits - 1) * gap
}

/**
 * An entry's packets as frames: each payload (4 bytes per event packet, the codec's silence
 * between digits) and, per frame, packets since its event's first (-1: audio).
 */
export function dtmfFrames (entry: DtmfEntry, codec: Codec, ptimeMs: Ptime): { payloads: Buffer[], since: Int32Array } {
  const step = ptimeMs * CODECS[codec].clockPerMs
  const silence = silencePayload(codec, ptimeMs)
  const n = Math.ceil(entry.durationMs / ptimeMs)
  const gap = Math.max(0, Math.ceil(entry.gapMs / ptimeMs) - RETRANSMITS)
  const payloads: Buffer[] = []
  const since: number[] = []
  const digits = entry.digits.toUpperCase()
  // Every event packet's 4 bytes in one allocation.
  const slab = Buffer.alloc(4 * digits.length * (n + RETRANSMITS))
  for (let d = 0, k = 0; d < digits.length; d++) {
    const code = DTMF_EVENTS[digits[d]!]!
    for (let j = 0; j < n + RETRANSMITS; j++, k++) {
      const payload = slab.subarray(4 * k, 4 * k + 4)
      payload[0] = code
      payload[1] = (j >= n - 1 ? 0x80 : 0) | VOLUME
      payload.writeUInt16BE(Math.min(0xffff, Math.min(j + 1, n) * step), 2)
      payloads.push(payload)
      since.push(j)
    }
    if (d < digits.length - 1) {
      for (let j = 0; j < gap; j++) {
        payloads.push(silence)
        since.push(-1)
      }
    }
  }
  return { payloads, since: Int32Array.from(since) }
}
