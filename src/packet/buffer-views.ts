/**
 * Views of the ArrayBuffer a Buffer lives in, made once and kept while it is the same one: a
 * sender's packets all live in one ring, so sealing reads and writes its 4-aligned payloads a
 * 32-bit word at a time (or as big-endian words) with no view made per packet. Byte `i` of a
 * Buffer is byte `byteOffset + i` of the views.
 */
export class BufferViews {
  private wordsOf: ArrayBufferLike | null = null
  private wordView: Int32Array<ArrayBufferLike> = new Int32Array(0)
  private dataOf: ArrayBufferLike | null = null
  private dataView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0))

  /** data's ArrayBuffer as native-endian 32-bit words (for XOR and copies, where the order does not matter). */
  words (data: Uint8Array): Int32Array<ArrayBufferLike> {
    if (data.buffer !== this.wordsOf) {
      this.wordsOf = data.buffer
      this.wordView = new Int32Array(data.buffer, 0, data.buffer.byteLength >>> 2)
    }
    return this.wordView
  }

  /** data's ArrayBuffer as a DataView (for big-endian words). */
  view (data: Uint8Array): DataView<ArrayBufferLike> {
    if (data.buffer !== this.dataOf) {
      this.dataOf = data.buffer
      this.dataView = new DataView(data.buffer)
    }
    return this.dataView
  }
}
