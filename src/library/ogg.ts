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
