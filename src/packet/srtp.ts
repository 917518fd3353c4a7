/**
 * SRTP and SRTCP (RFC 3711) with AES-CM and HMAC-SHA1, and AES-GCM (RFC 7714), on Node's crypto
 * (OpenSSL). One SrtpSender seals what a play sends; one SrtpReceiver opens what the far end
 * sends to the play's ports. Runs on the packet thread; session keys are derived once per play.
 *
 * SRTP, AES-CM (RFC 3711 §3.1):            SRTP, AES-GCM (RFC 7714 §8):
 *   | RTP header | payload, encrypted |      | RTP header (AAD) | payload, encrypted | tag 16 |
 *   | MKI (opt.) | tag (10 or 4) |           | MKI (opt.) |
 *   tag = HMAC-SHA1(header | encrypted | ROC)
 *
 * SRTCP, AES-CM (§3.4):                    SRTCP, AES-GCM (§9):
 *   | 8 bytes of header | rest, encrypted |  | 8 bytes of header (AAD) | rest, encrypted | tag 16 |
 *   | E | index (31) | MKI | tag (10) |       | E | index (31) (AAD) | MKI |
 *
 * What it costs per packet on the send path: AES-CM's keystream comes from one AES-ECB cipher
 * kept for the play (the counter blocks are encrypted in one `update`, one Buffer back), and
 * HMAC-SHA1 from two one-shot `crypto.hash` calls over buffers that hold the key's inner and
 * outer pads already (two 20-byte Buffers back): no cipher, Hmac or key object per packet. GCM
 * has no such shortcut in Node: a cipher object per packet (`createCipheriv` with a KeyObject
 * made once). bench/ measures both against plain RTP.
 */
import { createCipheriv, createDecipheriv, createSecretKey, hash, timingSafeEqual, type Cipher, type CipherGCMTypes, type KeyObject } from 'node:crypto'
import { SRTP_SUITES, type SrtpKey, type SrtpSuite, type SrtpSuiteName } from '../common/srtp-suites.js'

/** Labels of the key derivation (RFC 3711 §4.3.2). */
const LABEL = { rtpKey: 0, rtpAuth: 1, rtpSalt: 2, rtcpKey: 3, rtcpAuth: 4, rtcpSalt: 5 } as const
/** HMAC-SHA1's key: 160 bits (RFC 3711 §4.2.1, n_a). */
const AUTH_KEY_BYTES = 20
const GCM_TAG = 16
/** SRTCP's index is 31 bits; the E flag is the top bit of its word. */
const E_FLAG = 0x80000000
/** Packets behind the highest seen that are still checked against replay (RFC 3711 §3.3.2: at least 64). */
const REPLAY_WINDOW = 128
/** The far end's streams remembered at once (its audio and its events share one SSRC; a restart makes another). */
const MAX_STREAMS = 8

function ecbName (keyBytes: number): string {
  return `aes-${keyBytes * 8}-ecb`
}

function gcmName (keyBytes: number): CipherGCMTypes {
  return keyBytes === 32 ? 'aes-256-gcm' : 'aes-128-gcm'
}

/**
 * The AES-CM PRF (RFC 3711 §4.3.1, key derivation rate 0): the keystream of AES in counter mode
 * under the master key, from x = (label << 48) XOR master salt. A 12-byte GCM salt is padded
 * with two zero bytes (RFC 7714 §11 uses this PRF; libsrtp pads the same way).
 */
export function deriveSessionKey (suite: SrtpSuite, key: SrtpKey, label: number, bytes: number): Buffer {
  const x = Buffer.alloc(16)
  x.set(key.masterSalt, 0)
  x[7]! ^= label
  const blocks = Buffer.alloc(Math.ceil(bytes / 16) * 16)
  for (let j = 0; j * 16 < blocks.length; j++) {
    x.copy(blocks, j * 16)
    blocks.writeUInt16BE(j, j * 16 + 14)
  }
  const prf = createCipheriv(ecbName(suite.keyBytes), key.masterKey, null).setAutoPadding(false)
  return prf.update(blocks).subarray(0, bytes)
}

/**
 * AES in counter mode as SRTP uses it (RFC 3711 §4.1.1): block j of a packet's keystream is
 * AES(k_e, IV + j), IV = (k_s << 16) XOR (SSRC << 64) XOR (index << 16). One ECB cipher serves
 * every packet: only the counter blocks change.
 */
class AesCounter {
  private readonly ecb: Cipher
  private readonly salt: Buffer
  private blocks: Buffer

  constructor (suite: SrtpSuite, key: Buffer, salt: Buffer) {
    this.ecb = createCipheriv(ecbName(suite.keyBytes), key, null).setAutoPadding(false)
    this.salt = Buffer.alloc(16)
    salt.copy(this.salt, 0)
    this.blocks = Buffer.alloc(16 * 16)
  }

  /** XORs the keystream of (ssrc, index) into data[start, end). */
  apply (data: Buffer, start: number, end: number, ssrc: number, index: number): void {
    const length = end - start
    if (length <= 0) return
    const count = Math.ceil(length / 16)
    if (count * 16 > this.blocks.length) this.blocks = Buffer.alloc(count * 16)
    const b = this.blocks
    // The IV: the salt with the SSRC XORed into bytes 4-7 and the 48-bit index into 8-13.
    this.salt.copy(b, 0)
    b.writeUInt32BE((b.readUInt32BE(4) ^ ssrc) >>> 0, 4)
    const high = Math.floor(index / 2 ** 32)
    b.writeUInt16BE(b.readUInt16BE(8) ^ (high & 0xffff), 8)
    b.writeUInt32BE((b.readUInt32BE(10) ^ (index >>> 0)) >>> 0, 10)
    for (let j = 1; j < count; j++) {
      b.copy(b, j * 16, 0, 14)
      b.writeUInt16BE(j, j * 16 + 14)
    }
    const keystream = this.ecb.update(b.subarray(0, count * 16))
    for (let i = 0; i < length; i++) data[start + i]! ^= keystream[i]!
  }
}

/**
 * HMAC-SHA1 (RFC 2104) with the pads computed once: H(opad | H(ipad | message)), each hash one
 * `crypto.hash` call over a buffer that already starts with its pad.
 */
class HmacSha1 {
  private inner: Buffer
  private readonly outer: Buffer
  private readonly ipad: Buffer

  constructor (key: Buffer) {
    this.ipad = Buffer.alloc(64, 0x36)
    this.outer = Buffer.alloc(64 + 20, 0x5c)
    for (let i = 0; i < key.length; i++) {
      this.ipad[i]! ^= key[i]!
      this.outer[i]! ^= key[i]!
    }
    this.inner = Buffer.alloc(64 + 1500)
    this.ipad.copy(this.inner)
  }

  /**
   * The tag of data[start, end), then `roc` as 4 bytes when it is not null (SRTP authenticates
   * the rollover counter it does not send), its first `tagBytes` bytes written to out at `at`.
   */
  sign (data: Buffer, start: number, end: number, roc: number | null, out: Buffer, at: number, tagBytes: number): void {
    const length = end - start + (roc === null ? 0 : 4)
    if (64 + length > this.inner.length) {
      this.inner = Buffer.alloc(64 + length)
      this.ipad.copy(this.inner)
    }
    data.copy(this.inner, 64, start, end)
    if (roc !== null) this.inner.writeUInt32BE(roc >>> 0, 64 + end - start)
    hash('sha1', this.inner.subarray(0, 64 + length), 'buffer').copy(this.outer, 64)
    hash('sha1', this.outer, 'buffer').copy(out, at, 0, tagBytes)
  }
}

/** The session keys of one direction (RFC 3711 §4.3): SRTP's and SRTCP's, from one master key. */
class SessionKeys {
  readonly suite: SrtpSuite
  readonly rtpSalt: Buffer
  readonly rtcpSalt: Buffer
  /** AES-CM suites. */
  readonly rtpCounter: AesCounter | null = null
  readonly rtcpCounter: AesCounter | null = null
  readonly rtpMac: HmacSha1 | null = null
  readonly rtcpMac: HmacSha1 | null = null
  /** GCM suites: the session keys as KeyObjects, so each packet's cipher skips the import. */
  readonly rtpKey: KeyObject | null = null
  readonly rtcpKey: KeyObject | null = null

  constructor (suite: SrtpSuite, key: SrtpKey) {
    this.suite = suite
    const derive = (label: number, bytes: number): Buffer => deriveSessionKey(suite, key, label, bytes)
    this.rtpSalt = derive(LABEL.rtpSalt, suite.saltBytes)
    this.rtcpSalt = derive(LABEL.rtcpSalt, suite.saltBytes)
    if (suite.aead) {
      this.rtpKey = createSecretKey(derive(LABEL.rtpKey, suite.keyBytes))
      this.rtcpKey = createSecretKey(derive(LABEL.rtcpKey, suite.keyBytes))
    } else {
      this.rtpCounter = new AesCounter(suite, derive(LABEL.rtpKey, suite.keyBytes), this.rtpSalt)
      this.rtcpCounter = new AesCounter(suite, derive(LABEL.rtcpKey, suite.keyBytes), this.rtcpSalt)
      this.rtpMac = new HmacSha1(derive(LABEL.rtpAuth, AUTH_KEY_BYTES))
      this.rtcpMac = new HmacSha1(derive(LABEL.rtcpAuth, AUTH_KEY_BYTES))
    }
  }
}

/**
 * GCM's 12-byte IV (RFC 7714 §8.1, §9.1): 00 00 | SSRC | ROC | SEQ for SRTP (ROC | SEQ is the
 * 48-bit index), 00 00 | SSRC | 00 00 | 0 | index (31) for SRTCP, XORed with the session salt.
 */
function gcmIv (iv: Buffer, salt: Buffer, ssrc: number, index: number): Buffer {
  iv.writeUInt16BE(0, 0)
  iv.writeUInt32BE(ssrc >>> 0, 2)
  iv.writeUInt16BE(Math.floor(index / 2 ** 32) & 0xffff, 6)
  iv.writeUInt32BE(index >>> 0, 8)
  for (let i = 0; i < 12; i++) iv[i]! ^= salt[i]!
  return iv
}

/**
 * Seals what one play sends with its local key. The RTP packet buffers have room for the
 * trailer (`rtpTrailerBytes`); sealing writes in place.
 */
export class SrtpSender {
  readonly suite: SrtpSuite
  /** Bytes SRTP adds after the payload: the tag and the MKI. */
  readonly rtpTrailerBytes: number
  /** Bytes SRTCP adds after the compound packet: E and index, the tag and the MKI. */
  readonly rtcpTrailerBytes: number
  /** Packets the key may still protect: at 0 the play must stop (RFC 3711 §9.2), and the sender seals nothing more. */
  rtpLeft: number
  private readonly keys: SessionKeys
  private readonly mki: Buffer | null
  private readonly iv = Buffer.alloc(12)
  private rtcpIndex = 0

  constructor (suiteName: SrtpSuiteName, key: SrtpKey) {
    this.suite = SRTP_SUITES[suiteName]
    this.keys = new SessionKeys(this.suite, key)
    this.mki = key.mki === null ? null : Buffer.from(key.mki)
    const mkiBytes = this.mki?.length ?? 0
    this.rtpTrailerBytes = this.suite.rtpTagBytes + mkiBytes
    this.rtcpTrailerBytes = 4 + this.suite.rtcpTagBytes + mkiBytes
    this.rtpLeft = key.lifetime
  }

  /**
   * Seals the RTP packet in packet[0, length) (a 12-byte header, then the payload) whose 48-bit
   * index is `index` (RFC 3711 §3.3.1: ROC * 65536 + SEQ); its trailer goes at packet[length].
   * Once the key's lifetime is used up (rtpLeft 0) the packet is not sealed: zeroed instead, so
   * that nothing in the clear can leave even if it is sent.
   */
  sealRtp (packet: Buffer, length: number, index: number): void {
    if (this.rtpLeft <= 0) {
      packet.fill(0)
      return
    }
    this.rtpLeft--
    const ssrc = packet.readUInt32BE(8)
    const k = this.keys
    let end = length
    if (k.rtpCounter !== null) {
      k.rtpCounter.apply(packet, 12, length, ssrc, index)
      if (this.mki !== null) end += this.mki.copy(packet, end)
      // The tag covers header and encrypted payload, then the ROC (§4.2); not the MKI.
      k.rtpMac!.sign(packet, 0, length, Math.floor(index / 65536), packet, end, this.suite.rtpTagBytes)
    } else {
      const cipher = createCipheriv(gcmName(this.suite.keyBytes), k.rtpKey!, gcmIv(this.iv, k.rtpSalt, ssrc, index), { authTagLength: GCM_TAG })
      cipher.setAAD(packet.subarray(0, 12))
      cipher.update(packet.subarray(12, length)).copy(packet, 12)
      cipher.final()
      end += cipher.getAuthTag().copy(packet, end)
      if (this.mki !== null) this.mki.copy(packet, end)
    }
  }

  /**
   * Seals the compound RTCP packet in packet[0, length) as SRTCP, encrypted (E set) with the next
   * SRTCP index; the buffer has room for rtcpTrailerBytes more. Answers the sealed length.
   */
  sealRtcp (packet: Buffer, length: number): number {
    const index = this.rtcpIndex
    this.rtcpIndex = (this.rtcpIndex + 1) % E_FLAG
    const ssrc = packet.readUInt32BE(4)
    const k = this.keys
    let end = length
    if (k.rtcpCounter !== null) {
      k.rtcpCounter.apply(packet, 8, length, ssrc, index)
      end = packet.writeUInt32BE((E_FLAG | index) >>> 0, end)
      // The tag covers the packet and E | index (§3.4); the MKI sits between them and the tag.
      const signed = end
      if (this.mki !== null) end += this.mki.copy(packet, end)
      this.keys.rtcpMac!.sign(packet, 0, signed, null, packet, end, this.suite.rtcpTagBytes)
      return end + this.suite.rtcpTagBytes
    }
    const word = Buffer.alloc(4)
    word.writeUInt32BE((E_FLAG | index) >>> 0)
    const cipher = createCipheriv(gcmName(this.suite.keyBytes), k.rtcpKey!, gcmIv(this.iv, k.rtcpSalt, ssrc, index & 0x7fffffff), { authTagLength: GCM_TAG })
    cipher.setAAD(Buffer.concat([packet.subarray(0, 8), word]))
    cipher.update(packet.subarray(8, length)).copy(packet, 8)
    cipher.final()
    end += cipher.getAuthTag().copy(packet, end)
    end += word.copy(packet, end)
    if (this.mki !== null) end += this.mki.copy(packet, end)
    return end
  }
}

/** Replay protection (RFC 3711 §3.3.2): the highest index seen and a window of those behind it. */
class ReplayWindow {
  private highest = -1
  private readonly seen = new Uint8Array(REPLAY_WINDOW)

  /** False for an index already accepted, or too far behind the highest to tell. */
  fresh (index: number): boolean {
    if (index > this.highest) return true
    if (this.highest - index >= REPLAY_WINDOW) return false
    return this.seen[index % REPLAY_WINDOW] === 0
  }

  accept (index: number): void {
    if (index > this.highest) {
      const from = Math.max(this.highest + 1, index - REPLAY_WINDOW + 1)
      for (let i = from; i < index; i++) this.seen[i % REPLAY_WINDOW] = 0
      this.highest = index
    }
    this.seen[index % REPLAY_WINDOW] = 1
  }
}

/** What the receiver knows of one of the far end's SRTP streams: its ROC, highest sequence, and replay window. */
interface RtpStreamState { roc: number, highestSeq: number, window: ReplayWindow }

/**
 * Opens what the far end sends to a play's ports with its (the remote) key: SRTP (its key
 * presses, its audio) and SRTCP (its reports). A packet that fails authentication, is a replay,
 * carries the wrong MKI or is cut short answers null, and is never decrypted.
 */
export class SrtpReceiver {
  readonly suite: SrtpSuite
  private readonly keys: SessionKeys
  private readonly mki: Buffer | null
  private left: number
  private readonly rtpStreams = new Map<number, RtpStreamState>()
  private readonly rtcpStreams = new Map<number, ReplayWindow>()
  private readonly iv = Buffer.alloc(12)
  private readonly tag = Buffer.alloc(GCM_TAG)

  constructor (suiteName: SrtpSuiteName, key: SrtpKey) {
    this.suite = SRTP_SUITES[suiteName]
    this.keys = new SessionKeys(this.suite, key)
    this.mki = key.mki === null ? null : Buffer.from(key.mki)
    this.left = key.lifetime
  }

  /**
   * The RTP packet in the clear (header and payload, a view on `packet`, decrypted in place), or
   * null. With `decrypt` false an AES-CM packet is authenticated only, and its payload left
   * encrypted (for packets whose payload nobody reads); GCM decrypts to authenticate.
   */
  openRtp (packet: Buffer, decrypt = true): Buffer | null {
    const mkiBytes = this.mki?.length ?? 0
    const tagBytes = this.suite.rtpTagBytes
    if (packet.length < 12 || (packet[0]! >> 6) !== 2 || this.left <= 0) return null
    let header = 12 + 4 * (packet[0]! & 0x0f)
    if ((packet[0]! & 0x10) !== 0) {
      if (packet.length < header + 4) return null
      header += 4 + 4 * packet.readUInt16BE(header + 2)
    }
    // AES-CM: | header | encrypted | MKI | tag |; GCM: | header | encrypted | tag | MKI |.
    const end = packet.length - mkiBytes - tagBytes
    if (end < header) return null
    const mkiAt = this.suite.aead ? end + tagBytes : end
    if (this.mki !== null && !this.mki.equals(packet.subarray(mkiAt, mkiAt + mkiBytes))) return null
    const ssrc = packet.readUInt32BE(8)
    const seq = packet.readUInt16BE(2)
    const stream = this.rtpStreams.get(ssrc)
    const roc = stream === undefined ? 0 : estimateRoc(stream, seq)
    const index = roc * 65536 + seq
    if (stream !== undefined && !stream.window.fresh(index)) return null
    const k = this.keys
    if (k.rtpMac !== null) {
      k.rtpMac.sign(packet, 0, end, roc, this.tag, 0, tagBytes)
      if (!timingSafeEqual(this.tag.subarray(0, tagBytes), packet.subarray(end + mkiBytes, end + mkiBytes + tagBytes))) return null
      if (decrypt) k.rtpCounter!.apply(packet, header, end, ssrc, index)
    } else {
      const decipher = createDecipheriv(gcmName(this.suite.keyBytes), k.rtpKey!, gcmIv(this.iv, k.rtpSalt, ssrc, index), { authTagLength: GCM_TAG })
      decipher.setAAD(packet.subarray(0, header))
      decipher.setAuthTag(packet.subarray(end, end + GCM_TAG))
      const clear = decipher.update(packet.subarray(header, end))
      try {
        decipher.final()
      } catch {
        return null
      }
      clear.copy(packet, header)
    }
    this.left--
    this.remember(ssrc, seq, roc, index, stream)
    return packet.subarray(0, end)
  }

  /** The compound RTCP packet in the clear (a view on `packet`, decrypted in place), or null. */
  openRtcp (packet: Buffer): Buffer | null {
    const mkiBytes = this.mki?.length ?? 0
    const tagBytes = this.suite.rtcpTagBytes
    const aead = this.suite.aead
    // AES-CM: | RTCP | E index | MKI | tag |; GCM: | RTCP (rest encrypted) | tag | E index | MKI |.
    const wordAt = aead ? packet.length - mkiBytes - 4 : packet.length - tagBytes - mkiBytes - 4
    const end = aead ? wordAt - tagBytes : wordAt
    if (end < 8 || (packet[0]! >> 6) !== 2) return null
    const mkiAt = aead ? wordAt + 4 : wordAt + 4
    if (this.mki !== null && !this.mki.equals(packet.subarray(mkiAt, mkiAt + mkiBytes))) return null
    const word = packet.readUInt32BE(wordAt)
    const encrypted = (word & E_FLAG) !== 0
    const index = word & 0x7fffffff
    const ssrc = packet.readUInt32BE(4)
    const window = this.rtcpStreams.get(ssrc)
    if (window !== undefined && !window.fresh(index)) return null
    const k = this.keys
    if (k.rtcpMac !== null) {
      k.rtcpMac.sign(packet, 0, wordAt + 4, null, this.tag, 0, tagBytes)
      if (!timingSafeEqual(this.tag.subarray(0, tagBytes), packet.subarray(mkiAt + mkiBytes, mkiAt + mkiBytes + tagBytes))) return null
      if (encrypted) k.rtcpCounter!.apply(packet, 8, end, ssrc, index)
    } else {
      const decipher = createDecipheriv(gcmName(this.suite.keyBytes), k.rtcpKey!, gcmIv(this.iv, k.rtcpSalt, ssrc, index), { authTagLength: GCM_TAG })
      const aad = encrypted ? packet.subarray(0, 8) : packet.subarray(0, end)
      decipher.setAAD(Buffer.concat([aad, packet.subarray(wordAt, wordAt + 4)]))
      decipher.setAuthTag(packet.subarray(end, end + GCM_TAG))
      const clear = encrypted ? decipher.update(packet.subarray(8, end)) : null
      try {
        decipher.final()
      } catch {
        return null
      }
      clear?.copy(packet, 8)
    }
    this.left--
    const known = window ?? new ReplayWindow()
    known.accept(index)
    if (window === undefined) remember(this.rtcpStreams, ssrc, known)
    return packet.subarray(0, end)
  }

  /** After a packet proved authentic (RFC 3711 §3.3.1): the ROC and highest sequence move on, the index is used. */
  private remember (ssrc: number, seq: number, roc: number, index: number, stream: RtpStreamState | undefined): void {
    if (stream === undefined) {
      const state = { roc, highestSeq: seq, window: new ReplayWindow() }
      state.window.accept(index)
      remember(this.rtpStreams, ssrc, state)
      return
    }
    if (roc > stream.roc || (roc === stream.roc && seq > stream.highestSeq)) {
      stream.roc = roc
      stream.highestSeq = seq
    }
    stream.window.accept(index)
  }
}

/** RFC 3711 Appendix A: the ROC a sequence number belongs to, from the highest seen (s_l). */
function estimateRoc (stream: RtpStreamState, seq: number): number {
  const { roc, highestSeq } = stream
  if (highestSeq < 32768) return seq - highestSeq > 32768 && roc > 0 ? roc - 1 : roc
  return highestSeq - 32768 > seq ? roc + 1 : roc
}

/** Keeps at most MAX_STREAMS entries, forgetting the oldest: a far end cannot make us grow. */
function remember<T> (map: Map<number, T>, ssrc: number, value: T): void {
  map.set(ssrc, value)
  if (map.size > MAX_STREAMS) map.delete(map.keys().next().value!)
}
