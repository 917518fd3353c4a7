/**
 * Reads one histogram out of Prometheus' text format (what /metrics serves): its buckets as
 * counts per bucket rather than cumulative, and a quantile's bucket bound.
 */
export interface Bucket {
  /** The bucket's upper bound (Infinity for the last). */
  le: number
  count: number
}

export interface Histogram {
  buckets: Bucket[]
  count: number
  sum: number
}

export function readHistogram (text: string, name: string): Histogram | null {
  const cumulative: Bucket[] = []
  let count = 0
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_bucket{`)) {
      const match = /le="([^"]+)"[^}]*\}\s+(\S+)/.exec(line)
      if (match === null) continue
      cumulative.push({ le: match[1] === '+Inf' ? Infinity : Number(match[1]), count: Number(match[2]) })
    } else if (line.startsWith(`${name}_count `)) {
      count = Number(line.slice(name.length + 7))
    } else if (line.startsWith(`${name}_sum `)) {
      sum = Number(line.slice(name.length + 5))
    }
  }
  if (cumulative.length === 0) return null
  cumulative.sort((a, b) => a.le - b.le)
  const buckets = cumulative.map((b, i) => ({ le: b.le, count: b.count - (i === 0 ? 0 : cumulative[i - 1]!.count) }))
  return { buckets, count, sum }
}

/** The upper bound of the bucket that holds quantile q (0-1), or null with no observations. */
export function quantileBound (histogram: Histogram, q: number): number | null {
  if (histogram.count === 0) return null
  let seen = 0
  for (const bucket of histogram.buckets) {
    seen += bucket.count
    if (seen >= q * histogram.count) return bucket.le
  }
  return Infinity
}
