/**
 * SRTP crypto suites and SDES keys (RFC 4568): what the SDP's `a=crypto` lines carry when the
 * media line says RTP/SAVP, as a PlayRequest's `srtp` takes them. Read by both threads: the HTTP
 * thread parses and checks a key (a wrong one is a 400 naming the field), the packet thread
 * gets the raw bytes and never a string.
 *
 *   a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4
 *              ^ suite                  ^ base64(master key || master salt) |lifetime |MKI:length
 */
import { randomBytes } from 'node:crypto'

export const SRTP_SUITE_NAMES = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM', 'AEAD_AES_256_GCM'] as const
export type SrtpSuiteName = typeof SRTP_SUITE_NAMES[number]

export interface SrtpSuite {
  readonly name: SrtpSuiteName
  /** AES-CM with HMAC-SHA1 (RFC 3711), or AES-GCM (RFC 7714). */
  readonly aead: boolean
  /** Master (and session) key bytes: 16 for AES-128, 32 for AES-256. */
  readonly keyBytes: number
  /** Master (and session) salt bytes: 14 for AES-CM (RFC 3711 §8.2), 12 for GCM (RFC 7714 §12). */
  readonly saltBytes: number
  /** SRTP's authentication tag: 10 or 4 bytes of HMAC-SHA1, or GCM's 16-byte tag. */
  readonly rtpTagBytes: number
  /** SRTCP's: 10 bytes of HMAC-SHA1 for both AES-CM suites (RFC 4568 §6.2.1-6.2.2), GCM's 16. */
  readonly rtcpTagBytes: number
  /**
   * The most packets one master key may protect (RFC 4568 §6.2: 2^48 for SRTP with AES-CM, 2^31
   * for SRTCP; RFC 7714 §14.2 keeps GCM's within 2^48): a lifetime above it is refused.
   */
  readonly maxLifetime: number
}

export const SRTP_SUITES: Readonly<Record<SrtpSuiteName, SrtpSuite>> = {
  AES_CM_128_HMAC_SHA1_80: { name: 'AES_CM_128_HMAC_SHA1_80', aead: false, keyBytes: 16, saltBytes: 14, rtpTagBytes: 10, rtcpTagBytes: 10, maxLifetime: 2 ** 48 },
  AES_CM_128_HMAC_SHA1_32: { name: 'AES_CM_128_HMAC_SHA1_32', aead: false, keyBytes: 16, saltBytes: 14, rtpTagBytes: 4, rtcpTagBytes: 10, maxLifetime: 2 ** 48 },
  AEAD_AES_128_GCM: { name: 'AEAD_AES_128_GCM', aead: true, keyBytes: 16, saltBytes: 12, rtpTagBytes: 16, rtcpTagBytes: 16, maxLifetime: 2 ** 48 },
  AEAD_AES_256_GCM: { name: 'AEAD_AES_256_GCM', aead: true, keyBytes: 32, saltBytes: 12, rtpTagBytes: 16, rtcpTagBytes: 16, maxLifetime: 2 ** 48 }
}

export function isSrtpSuiteName (name: string): name is SrtpSuiteName {
  return Object.hasOwn(SRTP_SUITES, name)
}

/** One direction's master key, as the packet thread takes it: raw bytes, never the string. */
export interface SrtpKey {
  masterKey: Uint8Array
  masterSalt: Uint8Array
  /** The MKI sent in (or expected on) every packet, of its declared length; null without one. */
  mki: Uint8Array | null
  /** Packets the key may protect (SRTP; SRTCP is held to 2^31 as well). */
  lifetime: number
}

/** A play's SRTP as the packet thread takes it: what it sends is sealed with `local`, what arrives opened with `remote` (none: all of it dropped). */
export interface SrtpKeys { suite: SrtpSuiteName, local: SrtpKey, remote: SrtpKey | null }

/** Why a key was refused, and in which part: the service turns it into a 400 naming the field. */
export class SrtpKeyError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'SrtpKeyError'
  }
}

// RFC 4568 §9.2: key-salt is base64, then optionally |lifetime and |MKI:length.
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
const LIFETIME = /^(?:2\^(\d{1,2})|(\d{1,15}))$/
const MKI = /^(\d{1,20}):(\d{1,3})$/

/**
 * Parses the `inline:` value of an `a=crypto` line for `suite` into raw key material. Also takes
 * the value with its `inline:` prefix, as SDP parsers hand out the key-params. Throws
 * SrtpKeyError with a message a person can act on; the message never repeats the key.
 */
export function parseSdesKey (value: string, suiteName: SrtpSuiteName, field = 'key'): SrtpKey {
  const suite = SRTP_SUITES[suiteName]
  const [keyParams, ...sessionParams] = value.trim().split(/\s+/)
  if (sessionParams.length > 0) {
    // RFC 4568 §6.3: KDR, UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP, FEC_ORDER,
    // FEC_KEY, WSH. None is supported: each changes what the far end expects on the wire.
    const names = sessionParams.map(p => p.split('=')[0]!.slice(0, 32))
    throw new SrtpKeyError(`${field} has the session parameter${names.length > 1 ? 's' : ''} ${names.join(', ')}; prompt-player supports none (RFC 4568 §6.3): answer with an a=crypto line without them, or pick another of the offer's lines`)
  }
  let params = keyParams ?? ''
  if (params.toLowerCase().startsWith('inline:')) params = params.slice('inline:'.length)
  if (params.includes(';')) throw new SrtpKeyError(`${field} holds several keys (separated by ";"); give one key, with its MKI if it has one`)
  const [base64 = '', ...rest] = params.split('|')
  if (!BASE64.test(base64) || base64.length % 4 === 1) {
    throw new SrtpKeyError(`${field} is not base64 key material: expected the inline: value of an a=crypto line, base64 then optionally |lifetime and |MKI:length`)
  }
  const bytes = Buffer.from(base64, 'base64')
  const need = suite.keyBytes + suite.saltBytes
  if (bytes.length !== need) {
    throw new SrtpKeyError(`${field} holds ${bytes.length} bytes of key and salt; ${suite.name} needs ${need} (a ${suite.keyBytes}-byte key and a ${suite.saltBytes}-byte salt)`)
  }
  let lifetime = suite.maxLifetime
  let mki: Uint8Array | null = null
  if (rest.length > 2) throw new SrtpKeyError(`${field} has ${rest.length} parts after the key; at most two are allowed: |lifetime and |MKI:length`)
  for (const [i, part] of rest.entries()) {
    const m = MKI.exec(part)
    if (m !== null && (i === rest.length - 1)) {
      mki = mkiBytes(BigInt(m[1]!), Number(m[2]), field)
      continue
    }
    const l = LIFETIME.exec(part)
    if (l === null || i !== 0) {
      throw new SrtpKeyError(`${field} has "${part.slice(0, 24)}" after the key, which is neither a lifetime (2^31, or a number) nor an MKI (value:length, as 1:4)`)
    }
    lifetime = l[1] !== undefined ? 2 ** Number(l[1]) : Number(l[2])
    if (lifetime < 1 || lifetime > suite.maxLifetime) {
      throw new SrtpKeyError(`${field} has a lifetime of ${part} packets; ${suite.name} allows 1 to 2^${Math.log2(suite.maxLifetime)}`)
    }
  }
  return { masterKey: bytes.subarray(0, suite.keyBytes), masterSalt: bytes.subarray(suite.keyBytes), mki, lifetime }
}

/** RFC 4568 §6.1: the MKI value, big-endian, in exactly `length` bytes (1-128). */
function mkiBytes (value: bigint, length: number, field: string): Uint8Array {
  if (length < 1 || length > 128) throw new SrtpKeyError(`${field} has an MKI length of ${length} bytes; RFC 4568 allows 1 to 128`)
  if (length < 8 && value >= 1n << BigInt(8 * length)) {
    throw new SrtpKeyError(`${field} has the MKI ${value}, which does not fit in its declared ${length} byte${length > 1 ? 's' : ''}`)
  }
  const bytes = new Uint8Array(length)
  for (let i = length - 1, v = value; i >= 0 && v > 0n; i--, v >>= 8n) bytes[i] = Number(v & 0xffn)
  return bytes
}

/**
 * A new key for `suite` from a secure random source, as an `inline:` value: lifetime and MKI
 * copied from the far end's key when it has them, so that an answer looks like the offer (Teams
 * sends |2^31|1:1 and expects the same form back).
 */
export function makeSdesKey (suiteName: SrtpSuiteName, like?: string): string {
  const suite = SRTP_SUITES[suiteName]
  const key = randomBytes(suite.keyBytes + suite.saltBytes).toString('base64')
  if (like === undefined) return key
  const parts = like.trim().split(/\s+/)[0]!.replace(/^inline:/i, '').split('|').slice(1)
  const lifetime = parts.find(p => LIFETIME.test(p))
  const mki = parts.map(p => MKI.exec(p)).find(m => m !== null)
  return [key, ...(lifetime === undefined ? [] : [lifetime]), ...(mki == null ? [] : [`1:${mki[2]}`])].join('|')
}
