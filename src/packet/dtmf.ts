/**
 * The caller's key presses, as RFC 4733 telephone events arriving on a play's own socket
 * (symmetric RTP: the far end sends its media to where ours comes from). One key press is one
 * event however many packets carry it: all of an event's packets share its RTP timestamp
 * (RFC 4733 §2.5.1.3), including its retransmissions and its three end packets (§2.5.1.4).
 * Runs on the packet thread, on each packet that arrives: only a new key press allocates.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |     event     |E|R| volume    |          duration             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

/** Events 0-15 of RFC 4733 §3.2: the DTMF digits. */
const DIGITS = '0123456789*#ABCD'

export interface DtmfOptions {
  /** The payload type the call's SDP gave telephone-event (often 101). */
  payloadType: number
  /** Digits that stop the play at their first packet. */
  stopOn: string
}

export type Received =
  /** Not RTP this parser accepts: too short, wrong version, lengths past the end. */
  | { kind: 'malformed' }
  /** RTP of another payload type (the caller's audio): nothing for us. */
  | { kind: 'ignored' }
  /** A packet of a key press that is not to be reported now, or an event that is not a digit. */
  | { kind: 'repeat' }
  /**
   * A key press to report now: at its first end packet, with its whole duration, or at its
   * first packet when its digit stops the play (`stops`).
   */
  | { kind: 'press', digit: string, durationMs: number, stops: boolean }

// The answers that carry nothing are the same object every time: a packet of the caller's
// audio every ptime allocates nothing.
const MALFORMED: Received = Object.freeze({ kind: 'malformed' })
const IGNORED: Received = Object.freeze({ kind: 'ignored' })
const REPEAT: Received = Object.freeze({ kind: 'repeat' })

/** How many recent key presses are remembered, to count their late packets once. */
const REMEMBERED = 8

interface Press {
  /** The event's RTP timestamp: what makes it one key press. */
  timestamp: number
  digit: string
  /** Held so far. */
  durationMs: number
  reported: boolean
}

export class DtmfReceiver {
  private readonly options: DtmfOptions
  /** Recent key presses, oldest first. */
  private readonly presses: Press[] = []

  constructor (options: DtmfOptions) {
    this.options = options
  }

  receive (packet: Buffer): Received {
    if (packet.length < 12 || (packet[0]! >> 6) !== 2) return MALFORMED
    const csrcs = packet[0]! & 0x0f
    let offset = 12 + 4 * csrcs
    if ((packet[0]! & 0x10) !== 0) {
      if (packet.length < offset + 4) return MALFORMED
      offset += 4 + 4 * packet.readUInt16BE(offset + 2)
    }
    let end = packet.length
    if ((packet[0]! & 0x20) !== 0) end -= packet[packet.length - 1]!
    if (offset > end || end > packet.length) return MALFORMED
    if ((packet[1]! & 0x7f) !== this.options.payloadType) return IGNORED
    if (end - offset < 4) return MALFORMED
    const event = packet[offset]!
    if (event >= DIGITS.length) return REPEAT
    const isEnd = (packet[offset + 1]! & 0x80) !== 0
    const durationMs = packet.readUInt16BE(offset + 2) / 8
    const timestamp = packet.readUInt32BE(4)
    let press = this.presses.find(p => p.timestamp === timestamp)
    if (press === undefined) {
      press = { timestamp, digit: DIGITS[event]!, durationMs, reported: false }
      this.presses.push(press)
      if (this.presses.length > REMEMBERED) this.presses.shift()
    }
    press.durationMs = Math.max(press.durationMs, durationMs)
    const stops = this.options.stopOn.includes(press.digit)
    if (press.reported || !(isEnd || stops)) return REPEAT
    press.reported = true
    return { kind: 'press', digit: press.digit, durationMs: press.durationMs, stops }
  }

  /**
   * Presses whose end never came (the play ended while the key was down, or the end packets
   * were lost), with their duration so far: each reported once.
   */
  unfinished (): Array<{ digit: string, durationMs: number }> {
    const open = this.presses.filter(p => !p.reported)
    for (const p of open) p.reported = true
    return open.map(({ digit, durationMs }) => ({ digit, durationMs }))
  }
}

/**
 * The packets a phone sends for one key press (RFC 4733 §2.5): updates every 20 ms of the
 * press, then its end packet three times, all with the press's timestamp. For tools that play
 * the far end (`prompt-player listen --dtmf`) and for tests.
 */
export function keyPress (digit: string, o: { payloadType?: number, ssrc: number, sequence: number, timestamp: number, durationMs?: number }): Buffer[] {
  const event = DIGITS.indexOf(digit)
  if (event < 0 || digit.length !== 1) throw new Error(`"${digit}" is not a DTMF digit (0-9, *, #, A-D)`)
  const durationMs = o.durationMs ?? 100
  const packets: Buffer[] = []
  const packet = (durationMs: number, end: boolean, k: number): Buffer => {
    const p = Buffer.alloc(16)
    p[0] = 0x80
    p[1] = (k === 0 ? 0x80 : 0) | (o.payloadType ?? 101) // marker on the first packet of the event
    p.writeUInt16BE((o.sequence + k) & 0xffff, 2)
    p.writeUInt32BE(o.timestamp >>> 0, 4)
    p.writeUInt32BE(o.ssrc >>> 0, 8)
    p[12] = event
    p[13] = (end ? 0x80 : 0) | 10 // volume -10 dBm0
    p.writeUInt16BE(Math.min(0xffff, durationMs * 8), 14)
    return p
  }
  let k = 0
  for (let ms = 20; ms < durationMs; ms += 20) packets.push(packet(ms, false, k++))
  for (let i = 0; i < 3; i++) packets.push(packet(durationMs, true, k++))
  return packets
}
