/** What the benchmarks share: quantiles, a pause, and where a service they started listens. */
import { execFileSync } from 'node:child_process'

/** The q-quantile, nearest rank: of 200 values, p99 is the 198th (not the largest). NaN when empty. */
export function quantile (values: number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * The HTTP address a service process listens on, asked of the kernel (its warn-level log has
 * no startup line); '' when it has not listened within 10 s.
 */
export async function listeningUrl (pid: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    await sleep(50)
    const ss = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' }).split('\n').find(l => l.includes(`pid=${pid},`))
    const port = ss === undefined ? null : /127\.0\.0\.1:(\d+)/.exec(ss)?.[1]
    if (port) return `http://127.0.0.1:${port}`
  }
  return ''
}
