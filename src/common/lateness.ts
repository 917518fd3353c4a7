/**
 * Counts of packet lateness, for the benchmark and /metrics. The counts live in one
 * Float64Array, which may be on shared memory: the packet thread records, the HTTP thread
 * reads, with no message between them.
 */
export class LatenessStats {
  /** Upper bounds in ms of each bucket; the last bucket takes the rest. */
  static readonly BOUNDS = [0.5, 1, 2, 5, 10, 20, 50, 100, 250] as const
  /** Bytes of memory the stats need, for a SharedArrayBuffer. */
  static readonly BYTES = (LatenessStats.BOUNDS.length + 4) * 8
  /** Bucket counts, then sum, max and total. */
  private readonly data: Float64Array

  constructor (memory: ArrayBufferLike = new ArrayBuffer(LatenessStats.BYTES)) {
    this.data = new Float64Array(memory, 0, LatenessStats.BOUNDS.length + 4)
  }

  get counts (): Float64Array { return this.data.subarray(0, LatenessStats.BOUNDS.length + 1) }
  get sum (): number { return this.data[LatenessStats.BOUNDS.length + 1]! }
  get max (): number { return this.data[LatenessStats.BOUNDS.length + 2]! }
  get total (): number { return this.data[LatenessStats.BOUNDS.length + 3]! }

  /** The counts of several (each thread's), summed into new stats of their own. */
  static sum (all: readonly LatenessStats[]): LatenessStats {
    const total = new LatenessStats()
    const n = LatenessStats.BOUNDS.length
    for (const stats of all) {
      for (let i = 0; i <= n; i++) total.data[i]! += stats.data[i]!
      total.data[n + 1]! += stats.data[n + 1]!
      total.data[n + 2] = Math.max(total.data[n + 2]!, stats.data[n + 2]!)
      total.data[n + 3]! += stats.data[n + 3]!
    }
    return total
  }

  record (lateMs: number): void {
    const data = this.data
    const n = LatenessStats.BOUNDS.length
    let i = 0
    while (i < n && lateMs > LatenessStats.BOUNDS[i]!) i++
    data[i]!++
    data[n + 1] = data[n + 1]! + lateMs
    if (lateMs > data[n + 2]!) data[n + 2] = lateMs
    data[n + 3]!++
  }
}
