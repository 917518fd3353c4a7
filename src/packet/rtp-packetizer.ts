/**
 * RTP headers (RFC 3550 §5.1) written in place into preallocated buffers:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                           timestamp                           |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |           synchronization source (SSRC) identifier            |
 *   +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *
 * No padding, extension or CSRC: the header is always 12 bytes. One play is one talkspurt,
 * so the marker bit goes on its first packet only (RFC 3551 §4.1), and on the first packet
 * after a hold (a pause that sends nothing), which starts a new one.
 */
import { randomInt } from 'node:crypto'

export const RTP_HEADER_BYTES = 12

/**
 * How many packets a stream keeps: a packet buffer is rewritten only after this many later
 * packets, and only when the socket has fewer sends than this still queued (see Play).
 */
export const PACKET_RING = 8

export interface RtpStreamOptions {
  payloadType: number
  /** Timestamp units per packet: ptime in ms times the codec's clock per ms (8, or 48 for Opus). */
  samplesPerPacket: number
  /**
   * Bytes of the largest payload. Byte codecs' payloads all have this size; Opus packets vary,
   * and a shorter one is sent as a view of the first bytes of its slot.
   */
  payloadBytes: number
  ssrc?: number
  /** Initial values; random when absent (RFC 3550 §5.1). */
  sequence?: number
  timestamp?: number
  /** SRTP: seals each packet in place, in room left after its payload (see RtpSeal). */
  seal?: RtpSeal
}

/**
 * What protects a stream's packets (SRTP): `trailerBytes` more bytes after the payload, written
 * in place by `sealRtp` for the packet's 48-bit index (RFC 3711 §3.3.1: ROC * 65536 + SEQ).
 */
export interface RtpSeal {
  readonly rtpTrailerBytes: number
  sealRtp: (packet: Buffer, length: number, index: number) => void
}

export class RtpStream {
  readonly payloadType: number
  readonly ssrc: number
  readonly samplesPerPacket: number
  readonly firstSequence: number
  readonly firstTimestamp: number
  /** Packets written so far (sent or dropped); packet k has sequence first+k. */
  count = 0
  /** Packet times that passed with nothing sent (a hold): the timestamp counts them, the sequence does not. */
  held = 0
  private markNext = true
  private readonly packets: Buffer[]
  private readonly seal: RtpSeal | null
  private readonly trailerBytes: number
  private readonly fullBytes: number

  constructor (options: RtpStreamOptions) {
    this.payloadType = options.payloadType
    this.samplesPerPacket = options.samplesPerPacket
    this.ssrc = options.ssrc ?? randomInt(0, 2 ** 32)
    this.firstSequence = options.sequence ?? randomInt(0, 2 ** 16)
    this.firstTimestamp = options.timestamp ?? randomInt(0, 2 ** 32)
    this.seal = options.seal ?? null
    this.trailerBytes = this.seal?.rtpTrailerBytes ?? 0
    // One allocation for the ring; each packet is a view into it, its header preset, with room
    // for the largest payload and SRTP's trailer.
    const size = RTP_HEADER_BYTES + options.payloadBytes + this.trailerBytes
    this.fullBytes = size
    // Each slot starts on a multiple of 8 bytes of its own ArrayBuffer, so a payload (after the
    // 12-byte header) is 4-aligned: SRTP reads and writes it a 32-bit word at a time.
    const stride = Math.ceil(size / 8) * 8
    const slab = Buffer.alloc(stride * PACKET_RING)
    this.packets = []
    for (let i = 0; i < PACKET_RING; i++) {
      const packet = slab.subarray(i * stride, i * stride + size)
      packet[0] = 0x80 // V=2, P=0, X=0, CC=0
      packet.writeUInt32BE(this.ssrc, 8)
      this.packets.push(packet)
    }
  }

  /**
   * Writes the next packet (header, then a copy of `payload`, sealed with SRTP if the stream has
   * it) into its ring slot and returns it: the slot itself when the payload is the largest size
   * (every byte codec's packet), else a view of its first bytes.
   */
  next (payload: Buffer): Buffer {
    const marker = this.markNext
    this.markNext = false
    return this.write(payload, this.payloadType, marker, this.timestampNow())
  }

  /** The media clock's timestamp of the next packet: it follows the clock, sent or not (RFC 3550 §5.1), and wraps at 2^32. */
  timestampNow (): number {
    // (k + held) * samples stays exact far past any call.
    return (this.firstTimestamp + (this.count + this.held) * this.samplesPerPacket) % 2 ** 32
  }

  /**
   * Writes the next packet of a telephone event (RFC 4733) in the same stream: its own payload
   * type, the marker on an event's first packet, and the event's start timestamp on all of its
   * packets; the sequence number goes on as for audio.
   */
  nextEvent (payload: Buffer, payloadType: number, marker: boolean, timestamp: number): Buffer {
    return this.write(payload, payloadType, marker, timestamp)
  }

  private write (payload: Buffer, payloadType: number, marker: boolean, timestamp: number): Buffer {
    const k = this.count++
    const packet = this.packets[k % PACKET_RING]!
    packet[1] = (marker ? 0x80 : 0) | payloadType
    packet.writeUInt16BE((this.firstSequence + k) & 0xffff, 2)
    packet.writeUInt32BE(timestamp, 4)
    payload.copy(packet, RTP_HEADER_BYTES)
    const plain = RTP_HEADER_BYTES + payload.length
    // The packet index counts from the first sequence number: its ROC is the number of wraps.
    this.seal?.sealRtp(packet, plain, this.firstSequence + k)
    const length = plain + this.trailerBytes
    return length === this.fullBytes ? packet : packet.subarray(0, length)
  }

  /** Counts a packet that was not sent: its sequence number and timestamp are used up. */
  drop (): void {
    this.count++
  }

  /**
   * A packet time with nothing sent, on purpose (pauseMode "hold"): the timestamp moves on with
   * the media clock, the sequence number does not (nothing is lost), and the next packet has
   * the marker bit: a new talkspurt (RFC 3551 §4.1).
   */
  hold (): void {
    this.held++
    this.markNext = true
  }
}
