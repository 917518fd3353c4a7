/**
 * Opus packets (RFC 6716 §3.1) as prompt-player stores them: a rendition is its packets back to
 * back, each preceded by its length as a 16-bit big-endian number. The packet thread cuts views
 * out of that without a copy, as it cuts G.711; nothing is parsed per packet.
 */

/** A frame's duration in ms for each TOC configuration (RFC 6716 table 2): SILK, hybrid, CELT. */
function frameMs (config: number): number {
  if (config < 12) return [10, 20, 40, 60][config % 4]!
  if (config < 16) return [10, 20][config % 2]!
  return [2.5, 5, 10, 20][config % 4]!
}

/** The audio one Opus packet carries, in ms (RFC 6716 §3.1, §3.2); NaN for a malformed one. */
export function opusPacketMs (packet: Uint8Array): number {
  if (packet.length < 1) return NaN
  const toc = packet[0]!
  const code = toc & 3
  const frames = code === 0 ? 1 : code < 3 ? 2 : packet.length < 2 ? NaN : packet[1]! & 0x3f
  return frames * frameMs(toc >> 3)
}

/** Packets back to back, each after its length (16-bit big-endian). */
export function packOpus (packets: readonly Uint8Array[]): Buffer {
  const packed = Buffer.alloc(packets.reduce((n, p) => n + 2 + p.length, 0))
  let at = 0
  for (const packet of packets) {
    at = packed.writeUInt16BE(packet.length, at)
    packed.set(packet, at)
    at += packet.length
  }
  return packed
}

/** Views of each packet of a packed rendition; throws on a rendition cut short. */
export function unpackOpus (packed: Buffer): Buffer[] {
  const packets: Buffer[] = []
  for (let at = 0; at < packed.length;) {
    if (at + 2 > packed.length) throw new Error(`an Opus rendition ends inside a packet's length, at byte ${at} of ${packed.length}`)
    const length = packed.readUInt16BE(at)
    if (at + 2 + length > packed.length) throw new Error(`an Opus rendition ends inside a packet of ${length} bytes, at byte ${at} of ${packed.length}`)
    packets.push(packed.subarray(at + 2, at + 2 + length))
    at += 2 + length
  }
  return packets
}

/** How many packets a packed rendition holds, without making views. */
export function countOpus (packed: Buffer): number {
  let count = 0
  for (let at = 0; at + 2 <= packed.length; count++) at += 2 + packed.readUInt16BE(at)
  return count
}
