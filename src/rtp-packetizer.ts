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
 * so the marker bit goes on its first packet only (RFC 3551 §4.1).
 */
import { randomInt } from 'node:crypto'

export const RTP_HEADER_BYTES = 12

/**
 * How many headers a stream keeps: a header is rewritten only after this many later packets
 * have been handed to the socket, and only once its own send has completed.
 */
export const HEADER_RING = 8

export interface RtpStreamOptions {
  payloadType: number
  /** Timestamp units per packet: ptime in ms times 8 for 8 kHz audio. */
  samplesPerPacket: number
  ssrc?: number
  /** Initial values; random when absent (RFC 3550 §5.1). */
  sequence?: number
  timestamp?: number
}

export class RtpStream {
  readonly payloadType: number
  readonly ssrc: number
  readonly samplesPerPacket: number
  readonly firstSequence: number
  readonly firstTimestamp: number
  /** Packets written so far; packet k has sequence first+k and timestamp first+k*samples. */
  count = 0
  private readonly headers: Buffer[]

  constructor (options: RtpStreamOptions) {
    this.payloadType = options.payloadType
    this.samplesPerPacket = options.samplesPerPacket
    this.ssrc = options.ssrc ?? randomInt(0, 2 ** 32)
    this.firstSequence = options.sequence ?? randomInt(0, 2 ** 16)
    this.firstTimestamp = options.timestamp ?? randomInt(0, 2 ** 32)
    // One allocation for the ring; each header is a view into it.
    const slab = Buffer.alloc(RTP_HEADER_BYTES * HEADER_RING)
    this.headers = []
    for (let i = 0; i < HEADER_RING; i++) {
      const header = slab.subarray(i * RTP_HEADER_BYTES, (i + 1) * RTP_HEADER_BYTES)
      header[0] = 0x80 // V=2, P=0, X=0, CC=0
      header.writeUInt32BE(this.ssrc, 8)
      this.headers.push(header)
    }
  }

  /** Writes the next packet's header into its ring slot and returns that slot. */
  next (): Buffer {
    const k = this.count++
    const header = this.headers[k % HEADER_RING]!
    header[1] = (k === 0 ? 0x80 : 0) | this.payloadType
    header.writeUInt16BE((this.firstSequence + k) & 0xffff, 2)
    // The timestamp wraps at 2^32 (RFC 3550 §5.1); k * samples stays exact far past any call.
    header.writeUInt32BE((this.firstTimestamp + k * this.samplesPerPacket) % 2 ** 32, 4)
    return header
  }
}
