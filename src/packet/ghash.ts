/**
 * GHASH, GCM's authenticator (NIST SP 800-38D §6.4), for sealing SRTP with AES-GCM (RFC 7714)
 * without a cipher object per packet: Node cannot give a GCM cipher a new IV, so OpenSSL's GCM
 * costs a `createCipheriv` (and its Buffers) for every packet. The counter-mode half of GCM comes
 * from one AES-ECB cipher per play (srtp.ts, many packets at a time); this is the other half, in
 * JavaScript, with nothing allocated per packet.
 *
 * The multiplication by H is Shoup's table method with 4-bit tables, as OpenSSL's portable
 * `gcm_gmult_4bit`, taken a byte at a time: per key, the sixteen multiples of H (T) and the same
 * times x^4 (T4); per block, 16 steps of an 8-bit shift (reduced with the constants of R8,
 * shared by every key) and two table XORs, since a byte (lo, hi) is absorbed as
 * Z · x^8 + T4[lo] + T[hi]. Two tables of 256 bytes per key, where one of every byte's 256
 * multiples would be 4 kB a play and miss the caches at 1,000 plays. Bits follow GCM's order:
 * the first bit of a block is the coefficient of x^0, so multiplying by x shifts right.
 * Checked against OpenSSL's AES-GCM (test/packet/srtp.test.ts) and, on the wire, by libsrtp.
 */

import { BufferViews } from './buffer-views.js'

/** x^4 · r for the four bits r shifted out, reduced by x^128 + x^7 + x^2 + x + 1: the top 16 bits of the high word. */
const REM = [0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0, 0xe100, 0xfd20, 0xd940, 0xc560, 0x9180, 0x8da0, 0xa9c0, 0xb5e0]

/** x^8 · r for the eight bits r shifted out, reduced: two 4-bit shifts' REM, XORed into the high word. */
const R8 = new Int32Array(256)
for (let r = 0; r < 256; r++) R8[r] = (REM[r & 0xf]! << 12) ^ (REM[r >>> 4]! << 16)

/** The four words of the block being multiplied (shared: the packet thread runs one GHASH at a time). */
const X = new Int32Array(4)

/** A partial block, zero-padded (shared: the packet thread runs one GHASH at a time). */
const PARTIAL = new Uint8Array(16)

export class Ghash {
  /** T: i · H for i = 0..15, four big-endian 32-bit words each; then T4: i · H · x^4. */
  private readonly table = new Int32Array(128)
  /** The running value Y, as four big-endian 32-bit words. */
  private y0 = 0
  private y1 = 0
  private y2 = 0
  private y3 = 0
  /** The buffer last absorbed from, as big-endian words. */
  private readonly views = new BufferViews()

  /** `h`: the hash key, AES_K(0^128). */
  constructor (h: Uint8Array) {
    const t = this.table
    let v0 = word(h, 0); let v1 = word(h, 4); let v2 = word(h, 8); let v3 = word(h, 12)
    for (let i = 8; i >= 1; i >>= 1) {
      t[i * 4] = v0; t[i * 4 + 1] = v1; t[i * 4 + 2] = v2; t[i * 4 + 3] = v3
      // V · x: one bit right, reduced when a bit falls off.
      const carry = v3 & 1
      v3 = (v3 >>> 1) | (v2 << 31)
      v2 = (v2 >>> 1) | (v1 << 31)
      v1 = (v1 >>> 1) | (v0 << 31)
      v0 = (v0 >>> 1) ^ (carry === 0 ? 0 : 0xe1000000)
    }
    for (let i = 2; i < 16; i <<= 1) {
      for (let j = 1; j < i; j++) for (let w = 0; w < 4; w++) t[(i + j) * 4 + w] = t[i * 4 + w]! ^ t[j * 4 + w]!
    }
    for (let i = 0; i < 16; i++) {
      // T4[i] = T[i] · x^4: four bits right, reduced.
      const v0 = t[i * 4]!; const v1 = t[i * 4 + 1]!; const v2 = t[i * 4 + 2]!; const v3 = t[i * 4 + 3]!
      t[64 + i * 4 + 3] = (v3 >>> 4) | (v2 << 28)
      t[64 + i * 4 + 2] = (v2 >>> 4) | (v1 << 28)
      t[64 + i * 4 + 1] = (v1 >>> 4) | (v0 << 28)
      t[64 + i * 4] = (v0 >>> 4) ^ (REM[v3 & 0xf]! << 16)
    }
  }

  /** Starts a new message. */
  reset (): void {
    this.y0 = 0; this.y1 = 0; this.y2 = 0; this.y3 = 0
  }

  /** Absorbs data[start, end), zero-padded to whole blocks (each part of a GCM message is padded on its own). */
  update (data: Uint8Array, start: number, end: number): void {
    // Whole blocks are read as big-endian words through a view of data's ArrayBuffer.
    const view = this.views.view(data)
    const base = data.byteOffset
    for (let at = start; at < end; at += 16) {
      if (end - at >= 16) {
        const o = base + at
        this.multiply(this.y0 ^ view.getInt32(o), this.y1 ^ view.getInt32(o + 4), this.y2 ^ view.getInt32(o + 8), this.y3 ^ view.getInt32(o + 12))
      } else {
        // The last, partial block of a part (the 12-byte header, say): zero-padded.
        const b = PARTIAL
        b.fill(0)
        for (let i = 0; at + i < end; i++) b[i] = data[at + i]!
        this.multiply(this.y0 ^ word(b, 0), this.y1 ^ word(b, 4), this.y2 ^ word(b, 8), this.y3 ^ word(b, 12))
      }
    }
  }

  /** Absorbs the lengths block (the AAD's and the ciphertext's, in bits) and writes the 16-byte result XOR `mask` to out at `at`. */
  finish (aadBytes: number, textBytes: number, mask: Uint8Array, maskAt: number, out: Uint8Array, at: number): void {
    // 64-bit lengths in bits; the high halves are zero for anything an RTP packet holds.
    this.multiply(this.y0, this.y1 ^ (aadBytes * 8), this.y2, this.y3 ^ (textBytes * 8))
    for (let i = 0; i < 4; i++) {
      const y = i === 0 ? this.y0 : i === 1 ? this.y1 : i === 2 ? this.y2 : this.y3
      const o = at + i * 4
      const m = maskAt + i * 4
      out[o] = (y >>> 24) ^ mask[m]!; out[o + 1] = ((y >>> 16) & 0xff) ^ mask[m + 1]!
      out[o + 2] = ((y >>> 8) & 0xff) ^ mask[m + 2]!; out[o + 3] = (y & 0xff) ^ mask[m + 3]!
    }
  }

  /** Y = X · H for X = (x0, x1, x2, x3): a byte at a time from the last to the first. */
  private multiply (x0: number, x1: number, x2: number, x3: number): void {
    const t = this.table
    const x = X
    x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3
    let z0 = 0; let z1 = 0; let z2 = 0; let z3 = 0
    for (let w = 3; w >= 0; w--) {
      const word = x[w]!
      for (let shift = 0; shift < 32; shift += 8) {
        const b = (word >>> shift) & 0xff
        const r = z3 & 0xff
        z3 = (z3 >>> 8) | (z2 << 24); z2 = (z2 >>> 8) | (z1 << 24); z1 = (z1 >>> 8) | (z0 << 24); z0 = (z0 >>> 8) ^ R8[r]!
        const lo = 64 + (b & 0xf) * 4
        const hi = (b >>> 4) * 4
        z0 ^= t[lo]! ^ t[hi]!; z1 ^= t[lo + 1]! ^ t[hi + 1]!; z2 ^= t[lo + 2]! ^ t[hi + 2]!; z3 ^= t[lo + 3]! ^ t[hi + 3]!
      }
    }
    this.y0 = z0; this.y1 = z1; this.y2 = z2; this.y3 = z3
  }
}

function word (b: Uint8Array, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!
}
