/**
 * The UDP datagrams of a capture file (tcpdump -w, Wireshark's "pcap" format), with the
 * kernel's timestamps: what `prompt-player listen --pcap` and the benchmark's gap check read.
 * Classic pcap with microsecond or nanosecond timestamps, either byte order; frames of
 * Ethernet (tcpdump -i lo, -i eth0), Linux cooked v1 and v2 (tcpdump -i any) or raw IP; IPv4
 * and IPv6. Fragments and other protocols are skipped.
 */

export interface Datagram {
  /** Capture time, ms since the Unix epoch. */
  at: number
  from: { address: string, port: number }
  to: { address: string, port: number }
  payload: Buffer
}

/** Bytes before the IP header, by link type (LINKTYPE_*). */
const LINK_HEADER: Record<number, number> = { 1: 14, 101: 0, 113: 16, 276: 20, 228: 0, 229: 0 }

export function readPcap (file: Buffer): Datagram[] {
  if (file.length < 24) throw new Error('not a pcap file: shorter than its header')
  const magic = file.readUInt32LE(0)
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  const be = !le && (file.readUInt32BE(0) === 0xa1b2c3d4 || file.readUInt32BE(0) === 0xa1b23c4d)
  if (!le && !be) throw new Error('not a pcap file (pcapng is not read: save as pcap, or capture with tcpdump -w)')
  const nano = (le ? magic : file.readUInt32BE(0)) === 0xa1b23c4d
  const u32 = (at: number): number => le ? file.readUInt32LE(at) : file.readUInt32BE(at)
  const link = u32(20) & 0xffff
  const skip = LINK_HEADER[link]
  if (skip === undefined) throw new Error(`link type ${link} is not read (Ethernet, Linux cooked or raw IP are)`)
  const out: Datagram[] = []
  for (let offset = 24; offset + 16 <= file.length;) {
    const at = u32(offset) * 1000 + u32(offset + 4) / (nano ? 1e6 : 1e3)
    const length = u32(offset + 8)
    const frame = file.subarray(offset + 16, Math.min(file.length, offset + 16 + length))
    offset += 16 + length
    const datagram = udpOf(frame.subarray(skip), at)
    if (datagram !== null) out.push(datagram)
  }
  return out
}

function udpOf (ip: Buffer, at: number): Datagram | null {
  let udp: Buffer
  let from: string
  let to: string
  if (ip.length >= 20 && ip[0]! >> 4 === 4) {
    // Not UDP, or a fragment (offset or more-fragments set): skipped.
    if (ip[9] !== 17 || (ip.readUInt16BE(6) & 0x3fff) !== 0) return null
    udp = ip.subarray((ip[0]! & 0x0f) * 4)
    from = [...ip.subarray(12, 16)].join('.')
    to = [...ip.subarray(16, 20)].join('.')
  } else if (ip.length >= 40 && ip[0]! >> 4 === 6) {
    if (ip[6] !== 17) return null
    udp = ip.subarray(40)
    from = ipv6(ip.subarray(8, 24))
    to = ipv6(ip.subarray(24, 40))
  } else {
    return null
  }
  if (udp.length < 8) return null
  const end = Math.min(udp.length, udp.readUInt16BE(4))
  return { at, from: { address: from, port: udp.readUInt16BE(0) }, to: { address: to, port: udp.readUInt16BE(2) }, payload: udp.subarray(8, end) }
}

function ipv6 (bytes: Buffer): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')
}
