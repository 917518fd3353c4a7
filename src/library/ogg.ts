/**
 * Reads the Opus packets out of the Ogg Opus file ffmpeg writes (RFC 7845): pages (RFC 3533)
 * with their lacing values joined into packets, the two header packets (OpusHead, OpusTags)
 * checked and left out. The packets are stored as they are, for RTP (RFC 7587: one Opus packet
 * per RTP packet).
 */
import { opusPacketMs } from '../common/opus-packets.js'

const CAPTURE = Buffer.from('OggS')

/** The packets of the first logical stream of an Ogg file. */
export function oggPackets (file: Buffer): Buffer[] {
  const packets: Buffer[] = []
  let pending: Buffer[] = []
  let serial: number | null = null
  for (let at = 0; at < file.length;) {
    if (!file.subarray(at, at + 4).equals(CAPTURE.subarray(0, Math.min(4, file.length - at)))) throw new Error(`not an Ogg page at byte ${at}`)
    if (at + 27 > file.length || at + 27 + file[at + 26]! > file.length) throw new Error('an Ogg page is cut short')
    const segments = file[at + 26]!
    const table = file.subarray(at + 27, at + 27 + segments)
    let body = at + 27 + segments
    const pageSerial = file.readUInt32LE(at + 14)
    serial ??= pageSerial
    const ours = pageSerial === serial
    for (const lacing of table) {
      if (body + lacing > file.length) throw new Error('an Ogg page is cut short')
      if (ours) pending.push(file.subarray(body, body + lacing))
      body += lacing
      // A lacing value below 255 ends a packet; 255 continues it (into the next page, too).
      if (lacing < 255 && ours) {
        packets.push(Buffer.concat(pending))
        pending = []
      }
    }
    at = body
  }
  return packets
}

/**
 * The audio packets of an Ogg Opus file, each checked to last `frameMs`: the headers are
 * dropped, and a mono stream is required (prompts are mono).
 */
export function opusPacketsOf (file: Buffer, frameMs: number): Buffer[] {
  const [head, tags, ...audio] = oggPackets(file)
  if (head === undefined || head.subarray(0, 8).toString('latin1') !== 'OpusHead') throw new Error('the Ogg file does not start with an OpusHead packet')
  if (head[9] !== 1) throw new Error(`the Opus stream has ${head[9]} channels; prompts are encoded mono`)
  if (tags === undefined || tags.subarray(0, 8).toString('latin1') !== 'OpusTags') throw new Error('the Ogg Opus file has no OpusTags packet')
  for (const [i, packet] of audio.entries()) {
    const ms = opusPacketMs(packet)
    if (ms !== frameMs) throw new Error(`Opus packet ${i} lasts ${ms} ms, not the ${frameMs} ms asked for`)
  }
  return audio
}

/** Ogg's page checksum (RFC 3533 §6): CRC-32 with the polynomial 0x04c11db7, MSB first, no reflection or final XOR. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, i) => {
  let r = i << 24
  for (let k = 0; k < 8; k++) r = (r & 0x80000000) !== 0 ? (r << 1) ^ 0x04c11db7 : r << 1
  return r >>> 0
})

function crc (bytes: Uint8Array): number {
  let c = 0
  for (const b of bytes) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ b) & 0xff]!) >>> 0
  return c
}

/** One Ogg page holding one whole packet (its lacing values: 255s, then the rest). */
function page (packet: Uint8Array, o: { serial: number, sequence: number, granule: number, first: boolean, last: boolean }): Buffer {
  const lacing = [...Array<number>(Math.floor(packet.length / 255)).fill(255), packet.length % 255]
  if (lacing.length > 255) throw new Error(`an Opus packet of ${packet.length} bytes does not fit one Ogg page`)
  const header = Buffer.alloc(27 + lacing.length)
  header.write('OggS', 0, 'latin1')
  header[5] = (o.first ? 0x02 : 0) | (o.last ? 0x04 : 0)
  header.writeBigUInt64LE(BigInt(o.granule), 6)
  header.writeUInt32LE(o.serial, 14)
  header.writeUInt32LE(o.sequence, 18)
  header[26] = lacing.length
  header.set(lacing, 27)
  const whole = Buffer.concat([header, packet])
  whole.writeUInt32LE(crc(whole), 22)
  return whole
}

/**
 * An Ogg Opus file (RFC 7845) of mono Opus packets, as a decoder reads it: OpusHead (no pre-skip:
 * the packets are played as they arrived), OpusTags, then a page per packet with the granule
 * position at its end (48 kHz samples). For decoding what arrived over RTP.
 */
export function oggOpusFile (packets: readonly Uint8Array[]): Buffer {
  const head = Buffer.alloc(19)
  head.write('OpusHead', 0, 'latin1')
  head[8] = 1 // version
  head[9] = 1 // channels
  head.writeUInt16LE(0, 10) // pre-skip
  head.writeUInt32LE(48000, 12) // the input's rate, for information
  const vendor = Buffer.from('prompt-player', 'latin1')
  const tags = Buffer.alloc(8 + 4 + vendor.length + 4)
  tags.write('OpusTags', 0, 'latin1')
  tags.writeUInt32LE(vendor.length, 8)
  vendor.copy(tags, 12)
  const serial = 0x5eed
  const pages = [page(head, { serial, sequence: 0, granule: 0, first: true, last: false }), page(tags, { serial, sequence: 1, granule: 0, first: false, last: false })]
  let granule = 0
  for (const [i, packet] of packets.entries()) {
    const ms = opusPacketMs(packet)
    granule += Number.isNaN(ms) ? 0 : ms * 48
    pages.push(page(packet, { serial, sequence: i + 2, granule, first: false, last: i === packets.length - 1 }))
  }
  return Buffer.concat(pages)
}
