/**
 * HMAC-SHA1 (RFC 2104) for SRTP's authentication tags, made for the packet thread's budget:
 * H(opad | H(ipad | message)) as two one-shot `crypto.hash` calls (OpenSSL's SHA-1) over
 * buffers that hold the key's pads already, so no Hmac object is made and keyed per packet.
 * Each digest comes back as a 20-character binary (latin1) string: a small string on V8's own heap, which
 * the young generation collects for nearly nothing, where a Buffer's memory lives outside the heap
 * and its allocation counts against the collector's external-memory budget. At 50,000 packets a
 * second the Buffers of `createHmac` or of `crypto.hash` to a Buffer kept the collector busy
 * enough to delay packets; a SHA-1 written in JavaScript, with nothing allocated at all, cost
 * 1.9 µs a tag against these 1.3 (docs/benchmark.md, "SRTP under load").
 */
import { hash } from 'node:crypto'
import { BufferViews } from './buffer-views.js'

export class HmacSha1 {
  /** The inner hash's input: the key XOR ipad, then the message (grown when a longer one comes). */
  private inner: Buffer
  /** The outer hash's input: the key XOR opad, then the inner digest. */
  private readonly outer: Buffer
  /** The inner hash's input as a view, made again only when the length changes (every packet of a play has one length). */
  private message: Buffer = Buffer.alloc(0)
  /** `inner` as 32-bit words, and the words of the buffer last signed from. */
  private innerWords: Int32Array
  private readonly views = new BufferViews()

  constructor (key: Uint8Array) {
    if (key.length > 64) throw new RangeError('an HMAC-SHA1 key of more than 64 bytes is hashed first; SRTP\'s are 20')
    this.inner = Buffer.alloc(64 + 256, 0)
    this.outer = Buffer.alloc(64 + 20)
    this.innerWords = new Int32Array(this.inner.buffer, this.inner.byteOffset, this.inner.length >>> 2)
    for (let i = 0; i < 64; i++) {
      this.inner[i] = (key[i] ?? 0) ^ 0x36
      this.outer[i] = (key[i] ?? 0) ^ 0x5c
    }
  }

  /**
   * The tag of data[start, end), then `roc` as 4 big-endian bytes when it is not null (SRTP
   * authenticates the rollover counter it does not send): its first `tagBytes` bytes (at most
   * 20) written to `out` at `at`.
   */
  sign (data: Uint8Array, start: number, end: number, roc: number | null, out: Uint8Array, at: number, tagBytes: number): void {
    const length = end - start + (roc === null ? 0 : 4)
    if (64 + length > this.inner.length) {
      const grown = Buffer.alloc(64 + length)
      this.inner.copy(grown, 0, 0, 64)
      this.inner = grown
      this.innerWords = new Int32Array(grown.buffer, grown.byteOffset, grown.length >>> 2)
      this.message = Buffer.alloc(0)
    }
    const inner = this.inner
    const from = data.byteOffset + start
    let copied = 0
    if ((from & 3) === 0) {
      // A packet in a ring (4-aligned payloads and headers): a 32-bit word at a time.
      const words = this.views.words(data)
      const to = this.innerWords
      const d = from >>> 2
      const n = (end - start) >>> 2
      for (let i = 0; i < n; i++) to[16 + i] = words[d + i]!
      copied = n << 2
    }
    for (let i = start + copied; i < end; i++) inner[64 + i - start] = data[i]!
    if (roc !== null) inner.writeUInt32BE(roc >>> 0, 64 + end - start)
    if (this.message.length !== 64 + length) this.message = inner.subarray(0, 64 + length)
    const digest = hash('sha1', this.message, 'binary')
    const outer = this.outer
    for (let i = 0; i < 20; i++) outer[64 + i] = digest.charCodeAt(i)
    const tag = hash('sha1', outer, 'binary')
    for (let i = 0; i < tagBytes; i++) out[at + i] = tag.charCodeAt(i)
  }
}
