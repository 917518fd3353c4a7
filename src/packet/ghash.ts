/**
 * GHASH, GCM's authenticator (NIST SP 800-38D §6.4), for sealing SRTP with AES-GCM (RFC 7714)
 * without a cipher object per packet: Node cannot give a GCM cipher a new IV, so OpenSSL's GCM
 * costs a `createCipheriv` (and its Buffers) for every packet. The counter-mode half of GCM comes
 * from one AES-ECB cipher per play (srtp.ts, many packets at a time); this is the other half, in
 * JavaScript, with nothing allocated per packet.
 *
 * The multiplication by H is Shoup's 4-bit table method, as OpenSSL's portable `gcm_gmult_4bit`
 * does it: sixteen multiples of H made once per key, then per block 32 steps of a 4-bit shift
 * (reduced with the constants of REM) and a table XOR. Bits follow GCM's order: the first bit of
 * a block is the coefficient of x^0, so multiplying by x shifts right.
 * Checked against OpenSSL's AES-GCM (test/packet/srtp.test.ts) and, on the wire, by libsrtp.
 */

/** x^4 · r for the four bits r shifted out, reduced by x^128 + x^7 + x^2 + x + 1: the top 16 bits of the high word. */
const REM = [0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0, 0xe100, 0xfd20, 0xd940, 0xc560, 0x9180, 0x8da0, 0xa9c0, 0xb5e0]

export class Ghash {
  /** i · H for i = 0..15, four big-endian 32-bit words each. */
  private readonly table = new Int32Array(64)
  /** The running value Y, as 16 bytes. */
  private readonly y = new Uint8Array(16)

  /** `h`: the hash key, AES_K(0^128). */
  constructor (h: Uint8Array) {
    const t = this.table
    let v0 = (h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!
    let v1 = (h[4]! << 24) | (h[5]! << 16) | (h[6]! << 8) | h[7]!
    let v2 = (h[8]! << 24) | (h[9]! << 16) | (h[10]! << 8) | h[11]!
    let v3 = (h[12]! << 24) | (h[13]! << 16) | (h[14]! << 8) | h[15]!
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
  }

  /** Starts a new message. */
  reset (): void {
    this.y.fill(0)
  }

  /** Absorbs data[start, end), zero-padded to whole blocks (each part of a GCM message is padded on its own). */
  update (data: Uint8Array, start: number, end: number): void {
    const y = this.y
    for (let at = start; at < end; at += 16) {
      const n = Math.min(16, end - at)
      for (let i = 0; i < n; i++) y[i]! ^= data[at + i]!
      this.multiply()
    }
  }

  /** Absorbs the lengths block (the AAD's and the ciphertext's, in bits) and writes the 16-byte result XOR `mask` to out at `at`. */
  finish (aadBytes: number, textBytes: number, mask: Uint8Array, maskAt: number, out: Uint8Array, at: number): void {
    const y = this.y
    // 64-bit lengths in bits; the high halves are zero for anything an RTP packet holds.
    const a = aadBytes * 8
    const c = textBytes * 8
    y[4]! ^= a >>> 24; y[5]! ^= (a >>> 16) & 0xff; y[6]! ^= (a >>> 8) & 0xff; y[7]! ^= a & 0xff
    y[12]! ^= c >>> 24; y[13]! ^= (c >>> 16) & 0xff; y[14]! ^= (c >>> 8) & 0xff; y[15]! ^= c & 0xff
    this.multiply()
    for (let i = 0; i < 16; i++) out[at + i] = y[i]! ^ mask[maskAt + i]!
  }

  /** Y = Y · H (OpenSSL's gcm_gmult_4bit). */
  private multiply (): void {
    const y = this.y
    const t = this.table
    let nlo = y[15]! & 0xf
    let nhi = y[15]! >>> 4
    let z0 = t[nlo * 4]!; let z1 = t[nlo * 4 + 1]!; let z2 = t[nlo * 4 + 2]!; let z3 = t[nlo * 4 + 3]!
    for (let cnt = 15; ; cnt--) {
      let rem = z3 & 0xf
      z3 = (z3 >>> 4) | (z2 << 28); z2 = (z2 >>> 4) | (z1 << 28); z1 = (z1 >>> 4) | (z0 << 28); z0 = (z0 >>> 4) ^ (REM[rem]! << 16)
      z0 ^= t[nhi * 4]!; z1 ^= t[nhi * 4 + 1]!; z2 ^= t[nhi * 4 + 2]!; z3 ^= t[nhi * 4 + 3]!
      if (cnt === 0) break
      nlo = y[cnt - 1]! & 0xf
      nhi = y[cnt - 1]! >>> 4
      rem = z3 & 0xf
      z3 = (z3 >>> 4) | (z2 << 28); z2 = (z2 >>> 4) | (z1 << 28); z1 = (z1 >>> 4) | (z0 << 28); z0 = (z0 >>> 4) ^ (REM[rem]! << 16)
      z0 ^= t[nlo * 4]!; z1 ^= t[nlo * 4 + 1]!; z2 ^= t[nlo * 4 + 2]!; z3 ^= t[nlo * 4 + 3]!
    }
    y[0] = z0 >>> 24; y[1] = (z0 >>> 16) & 0xff; y[2] = (z0 >>> 8) & 0xff; y[3] = z0 & 0xff
    y[4] = z1 >>> 24; y[5] = (z1 >>> 16) & 0xff; y[6] = (z1 >>> 8) & 0xff; y[7] = z1 & 0xff
    y[8] = z2 >>> 24; y[9] = (z2 >>> 16) & 0xff; y[10] = (z2 >>> 8) & 0xff; y[11] = z2 & 0xff
    y[12] = z3 >>> 24; y[13] = (z3 >>> 16) & 0xff; y[14] = (z3 >>> 8) & 0xff; y[15] = z3 & 0xff
  }
}
