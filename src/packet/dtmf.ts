/**
 * The caller's key presses, as RFC 4733 telephone events arriving on a play's own socket
 * (symmetric RTP: the far end sends its media to where ours comes from). One key press is one
 * event however many packets carry it: all of an event's packets share its RTP timestamp
 * (RFC 4733 §2.5.1.3), including its retransmissions and its three end packets (§2.5.1.4).
 * Runs on the packet thread, on a packet that arrived: it allocates nothing per packet.
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
  /** A packet of a key press already seen, or an event that is not a digit. */
  | { kind: 'repeat' }
  /** The first packet of a key press. */
  | { kind: 'press', digit: string, durationMs: number, stops: boolean }
  /** The first end packet of a key press: its whole duration. */
  | { kind: 'end', digit: string, durationMs: number }

/** How many recent key presses are remembered, to count their late packets once. */
const REMEMBERED = 8

export class DtmfReceiver {
  private readonly options: DtmfOptions
  /** RTP timestamps of recent key presses, whether they were reported, their digit and duration so far. */
  private readonly seen: number[] = []
  private readonly ended: boolean[] = []
  private readonly digits: string[] = []
  private readonly durations: number[] = []

  constructor (options: DtmfOptions) {
    this.options = options
  }

  receive (packet: Buffer): Received {
    if (packet.length < 12 || (packet[0]! >> 6) !== 2) return { kind: 'malformed' }
    const csrcs = packet[0]! & 0x0f
    let offset = 12 + 4 * csrcs
    if ((packet[0]! & 0x10) !== 0) {
      if (packet.length < offset + 4) return { kind: 'malformed' }
      offset += 4 + 4 * packet.readUInt16BE(offset + 2)
    }
    let end = packet.length
    if ((packet[0]! & 0x20) !== 0) end -= packet[packet.length - 1]!
    if (offset > end || end > packet.length) return { kind: 'malformed' }
    if ((packet[1]! & 0x7f) !== this.options.payloadType) return { kind: 'ignored' }
    if (end - offset < 4) return { kind: 'malformed' }
    const event = packet[offset]!
    const isEnd = (packet[offset + 1]! & 0x80) !== 0
    const durationMs = packet.readUInt16BE(offset + 2) / 8
    if (event >= DIGITS.length) return { kind: 'repeat' }
    const digit = DIGITS[event]!
    const timestamp = packet.readUInt32BE(4)
    const i = this.seen.indexOf(timestamp)
    if (i < 0) {
      const stops = this.options.stopOn.includes(digit)
      this.seen.push(timestamp)
      // A press that stops the play is reported at once: it counts as reported.
      this.ended.push(isEnd || stops)
      this.digits.push(digit)
      this.durations.push(durationMs)
      if (this.seen.length > REMEMBERED) {
        this.seen.shift()
        this.ended.shift()
        this.digits.shift()
        this.durations.shift()
      }
      // A press whose first packet to arrive is already an end one (the others were lost).
      if (isEnd) return { kind: 'end', digit, durationMs }
      return { kind: 'press', digit, durationMs, stops }
    }
    this.durations[i] = Math.max(this.durations[i]!, durationMs)
    if (isEnd && !this.ended[i]!) {
      this.ended[i] = true
      return { kind: 'end', digit, durationMs }
    }
    return { kind: 'repeat' }
  }

  /**
   * Presses whose end never came (the play ended while the key was down, or the end packets
   * were lost), with their duration so far: each reported once.
   */
  unfinished (): Array<{ digit: string, durationMs: number }> {
    const open: Array<{ digit: string, durationMs: number }> = []
    for (let i = 0; i < this.seen.length; i++) {
      if (this.ended[i]!) continue
      this.ended[i] = true
      open.push({ digit: this.digits[i]!, durationMs: this.durations[i]! })
    }
    return open
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
