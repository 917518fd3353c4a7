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
 * What it costs per packet on the send path, with no object made per packet: the keystream
 * (AES-CM's, and GCM's counter blocks) comes from one AES-ECB cipher kept for the play, made 16
 * packets at a time (one call into OpenSSL and one Buffer per 16 packets) and XORed a 32-bit word
 * at a time into the packet ring's 4-aligned payloads; AES-CM's tag is
 * HMAC-SHA1 from two one-shot hashes over precomputed pads (hmac-sha1.ts), GCM's tag GHASH in
 * JavaScript (ghash.ts), since Node's GCM cipher cannot take a new IV. What arrives is opened
 * one packet at a time, GCM with OpenSSL's decipher. `npm run bench -- --srtp` measures it
 * against plain RTP (docs/design.md, SRTP, has the designs that measured worse).
 */
import { createCipheriv, createDecipheriv, createSecretKey, timingSafeEqual, type Cipher, type CipherGCMTypes, type KeyObject } from 'node:crypto'
import { SRTP_SUITES, type SrtpKey, type SrtpSuite, type SrtpSuiteName } from '../common/srtp-suites.js'
import { HmacSha1 } from './hmac-sha1.js'
import { Ghash } from './ghash.js'
import { BufferViews } from './buffer-views.js'

/** Labels of the key derivation (RFC 3711 §4.3.2). */
const LABEL = { rtpKey: 0, rtpAuth: 1, rtpSalt: 2, rtcpKey: 3, rtcpAuth: 4, rtcpSalt: 5 } as const
/** HMAC-SHA1's key: 160 bits (RFC 3711 §4.2.1, n_a). */
const AUTH_KEY_BYTES = 20
const GCM_TAG = 16
/** SRTCP's index is 31 bits; the E flag is the top bit of its word. */
const E_FLAG = 0x80000000
/** Packets behind the highest seen that are still checked against replay (RFC 3711 §3.3.2: at least 64). */
const REPLAY_WINDOW = 128
/** Packets of keystream a sender makes at once. */
const SENDER_BATCH = 16
/** The counter blocks being encrypted, shared by every counter on the thread (only the keystream is kept per play). */
let counterBlocks = Buffer.alloc(0)
let counterWords = new DataView(counterBlocks.buffer)
function blocksOf (size: number): Buffer {
  if (counterBlocks.length < size) {
    counterBlocks = Buffer.alloc(size)
    counterWords = new DataView(counterBlocks.buffer, counterBlocks.byteOffset, counterBlocks.length)
  }
  return counterBlocks.subarray(0, size)
}
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
  return ecbOf(suite, Buffer.from(key.masterKey)).update(blocks).subarray(0, bytes)
}

/**
 * A keystream of counter blocks under one AES-ECB cipher, the part AES-CM (RFC 3711 §4.1.1) and
 * GCM (NIST SP 800-38D §7.1) share: per packet an IV (`ivOf`: 16 bytes, the last `counterBytes`
 * left for the block counter), then block j is AES(k, IV with counter first + j). One ECB
 * cipher serves every packet: only the counter blocks change. A sender's packets come in index
 * order, so `batch` packets' keystream is made in one `update`: one call into OpenSSL, and one
 * Buffer, per `batch` packets.
 */
class CounterKeystream {
  private readonly ecb: Cipher
  private readonly batch: number
  private readonly ivOf: (iv: Buffer, ssrc: number, index: number) => void
  private readonly counterBytes: 2 | 4
  private readonly firstCounter: number
  /** Keystream of packets [first, first + batch) of stream `ssrc`, `stride` bytes each. */
  private keystream: Buffer = Buffer.alloc(0)
  /** The keystream as 32-bit words, when OpenSSL's Buffer is 4-aligned (it starts its own ArrayBuffer). */
  private words: Int32Array<ArrayBufferLike> | null = null
  /** The words of the buffer last XORed into. */
  private readonly views = new BufferViews()
  private first = -1
  private ssrc = -1
  private stride = 0
  private readonly iv = Buffer.alloc(16)
  private readonly ivWords = new DataView(this.iv.buffer, this.iv.byteOffset, 16)

  constructor (ecb: Cipher, batch: number, o: { ivOf: (iv: Buffer, ssrc: number, index: number) => void, counterBytes: 2 | 4, firstCounter: number }) {
    this.ecb = ecb
    this.batch = batch
    this.ivOf = o.ivOf
    this.counterBytes = o.counterBytes
    this.firstCounter = o.firstCounter
  }

  get bytes (): Buffer { return this.keystream }

  /** Where packet `index` of `ssrc` starts in `bytes`, with at least `length` bytes of keystream. */
  at (ssrc: number, index: number, length: number): number {
    if (ssrc !== this.ssrc || index < this.first || index >= this.first + this.batch || length > this.stride) this.refill(ssrc, index, length)
    return (index - this.first) * this.stride
  }

  /** XORs the keystream of (ssrc, index) into data[start, end). */
  apply (data: Buffer, start: number, end: number, ssrc: number, index: number): void {
    if (end <= start) return
    this.xor(data, start, end, this.at(ssrc, index, end - start))
  }

  /**
   * XORs bytes[from, ...) into data[start, end): a 32-bit word at a time where both are
   * 4-aligned in their ArrayBuffers (a packet ring's payloads are, and so is the keystream), a
   * byte at a time otherwise. The view of data's ArrayBuffer is kept while it is the same one
   * (a sender's packets all live in one ring).
   */
  xor (data: Buffer, start: number, end: number, from: number): void {
    const ks = this.keystream
    const length = end - start
    const at = data.byteOffset + start
    const words = this.words
    let done = 0
    if (words !== null && (at & 3) === 0 && (from & 3) === 0) {
      const dw = this.views.words(data)
      const d = at >>> 2
      const k = from >>> 2
      const n = length >>> 2
      for (let i = 0; i < n; i++) dw[d + i]! ^= words[k + i]!
      done = n << 2
    }
    for (let i = done; i < length; i++) data[start + i]! ^= ks[from + i]!
  }

  private refill (ssrc: number, index: number, length: number): void {
    const perPacket = Math.ceil(Math.max(length, this.stride) / 16)
    const b = blocksOf(perPacket * 16 * this.batch)
    const words = counterWords
    const iv = this.ivWords
    const first = this.firstCounter
    // Block j of a packet is its IV with the counter first + j in the last 2 (AES-CM) or 4
    // (GCM) bytes: four big-endian words, the first three the IV's.
    const counterMask = this.counterBytes === 4 ? 0 : 0xffff0000
    for (let k = 0; k < this.batch; k++) {
      this.ivOf(this.iv, ssrc, index + k)
      const w0 = iv.getUint32(0); const w1 = iv.getUint32(4); const w2 = iv.getUint32(8)
      const w3 = iv.getUint32(12) & counterMask
      for (let j = 0; j < perPacket; j++) {
        const at = (k * perPacket + j) * 16
        words.setUint32(at, w0); words.setUint32(at + 4, w1); words.setUint32(at + 8, w2)
        words.setUint32(at + 12, (w3 | (first + j)) >>> 0)
      }
    }
    const keystream = this.ecb.update(b)
    this.keystream = keystream
    this.words = (keystream.byteOffset & 3) === 0 ? new Int32Array(keystream.buffer, keystream.byteOffset, keystream.length >>> 2) : null
    this.first = index
    this.ssrc = ssrc
    this.stride = perPacket * 16
  }
}

/** AES-CM's IV (RFC 3711 §4.1.1), its first 14 bytes: the session salt, the SSRC XORed into bytes 4-7 and the 48-bit index into 8-13. */
function cmIv (iv: Buffer, salt: Buffer, ssrc: number, index: number): void {
  const high = Math.floor(index / 2 ** 32)
  const low = index >>> 0
  for (let i = 0; i < 14; i++) iv[i] = salt[i]!
  iv[4]! ^= ssrc >>> 24; iv[5]! ^= (ssrc >>> 16) & 0xff; iv[6]! ^= (ssrc >>> 8) & 0xff; iv[7]! ^= ssrc & 0xff
  iv[8]! ^= (high >>> 8) & 0xff; iv[9]! ^= high & 0xff
  iv[10]! ^= low >>> 24; iv[11]! ^= (low >>> 16) & 0xff; iv[12]! ^= (low >>> 8) & 0xff; iv[13]! ^= low & 0xff
}

/** AES-CM's keystream for one session key and salt. */
function aesCounter (suite: SrtpSuite, key: Buffer, salt: Buffer, batch: number): CounterKeystream {
  return new CounterKeystream(ecbOf(suite, key), batch, { ivOf: (iv, ssrc, index) => cmIv(iv, salt, ssrc, index), counterBytes: 2, firstCounter: 0 })
}

function ecbOf (suite: SrtpSuite, key: Buffer): Cipher {
  return createCipheriv(ecbName(suite.keyBytes), key, null).setAutoPadding(false)
}

/** The session keys of one direction (RFC 3711 §4.3): SRTP's and SRTCP's, from one master key. */
class SessionKeys {
  readonly suite: SrtpSuite
  readonly rtpSalt: Buffer
  readonly rtcpSalt: Buffer
  /** AES-CM suites. */
  readonly rtpCounter: CounterKeystream | null = null
  readonly rtcpCounter: CounterKeystream | null = null
  readonly rtpMac: HmacSha1 | null = null
  readonly rtcpMac: HmacSha1 | null = null
  /** GCM suites: the session keys as KeyObjects, so each packet's cipher skips the import (SRTCP, and what arrives). */
  readonly rtpKey: KeyObject | null = null
  readonly rtcpKey: KeyObject | null = null
  /**
   * GCM suites, sending: the counter blocks (J0 = IV | 1 masks the tag, IV | 2... the payload)
   * and GHASH, with no cipher object per packet.
   */
  readonly rtpGcm: { counter: CounterKeystream, ghash: Ghash } | null = null

  /** `batch`: packets of keystream made at once (a sender's come in order; a receiver's need not). */
  constructor (suite: SrtpSuite, key: SrtpKey, batch: number) {
    this.suite = suite
    const derive = (label: number, bytes: number): Buffer => deriveSessionKey(suite, key, label, bytes)
    this.rtpSalt = derive(LABEL.rtpSalt, suite.saltBytes)
    this.rtcpSalt = derive(LABEL.rtcpSalt, suite.saltBytes)
    if (suite.aead) {
      const rtpKey = derive(LABEL.rtpKey, suite.keyBytes)
      this.rtpKey = createSecretKey(rtpKey)
      if (batch > 1) {
        const ecb = ecbOf(suite, rtpKey)
        const h = ecb.update(Buffer.alloc(16)) // the hash key, AES_K(0^128)
        const salt = this.rtpSalt
        const counter = new CounterKeystream(ecb, batch, { ivOf: (iv, ssrc, index) => gcmIv(iv, salt, ssrc, index), counterBytes: 4, firstCounter: 1 })
        this.rtpGcm = { counter, ghash: new Ghash(h) }
      }
      this.rtcpKey = createSecretKey(derive(LABEL.rtcpKey, suite.keyBytes))
    } else {
      this.rtpCounter = aesCounter(suite, derive(LABEL.rtpKey, suite.keyBytes), this.rtpSalt, batch)
      this.rtcpCounter = aesCounter(suite, derive(LABEL.rtcpKey, suite.keyBytes), this.rtcpSalt, 1)
      this.rtpMac = new HmacSha1(derive(LABEL.rtpAuth, AUTH_KEY_BYTES))
      this.rtcpMac = new HmacSha1(derive(LABEL.rtcpAuth, AUTH_KEY_BYTES))
    }
  }
}

/**
 * GCM's 12-byte IV (RFC 7714 §8.1, §9.1): 00 00 | SSRC | ROC | SEQ for SRTP (ROC | SEQ is the
 * 48-bit index), 00 00 | SSRC | 00 00 | 0 | index (31) for SRTCP, XORed with the session salt.
 */
function gcmIv (iv: Uint8Array, salt: Buffer, ssrc: number, index: number): Uint8Array {
  const high = Math.floor(index / 2 ** 32)
  const low = index >>> 0
  iv[0] = 0; iv[1] = 0
  iv[2] = ssrc >>> 24; iv[3] = (ssrc >>> 16) & 0xff; iv[4] = (ssrc >>> 8) & 0xff; iv[5] = ssrc & 0xff
  iv[6] = (high >>> 8) & 0xff; iv[7] = high & 0xff
  iv[8] = low >>> 24; iv[9] = (low >>> 16) & 0xff; iv[10] = (low >>> 8) & 0xff; iv[11] = low & 0xff
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
    this.keys = new SessionKeys(this.suite, key, SENDER_BATCH)
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
      // AES-GCM (RFC 7714 §8): the header is the AAD, the tag follows the ciphertext, then the MKI.
      const { counter, ghash } = k.rtpGcm!
      const at = counter.at(ssrc, index, 16 + length - 12)
      const ks = counter.bytes
      counter.xor(packet, 12, length, at + 16)
      ghash.reset()
      ghash.update(packet, 0, 12)
      ghash.update(packet, 12, length)
      ghash.finish(12, length - 12, ks, at, packet, end)
      end += GCM_TAG
      if (this.mki !== null) this.mki.copy(packet, end)
    }
  }

  /** A sealed copy of a whole RTP packet whose index is `index`: for tools that play the far end, not the packet path. */
  sealedRtp (packet: Buffer, index: number): Buffer {
    const sealed = Buffer.alloc(packet.length + this.rtpTrailerBytes)
    packet.copy(sealed)
    this.sealRtp(sealed, packet.length, index)
    return sealed
  }

  /** A sealed copy of a whole compound RTCP packet, as SRTCP: for tools that play the far end. */
  sealedRtcp (packet: Buffer): Buffer {
    const sealed = Buffer.alloc(packet.length + this.rtcpTrailerBytes)
    packet.copy(sealed)
    return sealed.subarray(0, this.sealRtcp(sealed, packet.length))
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
      k.rtcpMac!.sign(packet, 0, signed, null, packet, end, this.suite.rtcpTagBytes)
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
    this.keys = new SessionKeys(this.suite, key, 1)
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
    const mkiAt = wordAt + 4
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
