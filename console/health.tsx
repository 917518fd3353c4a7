/**
 * Health: /readyz (its status and problems, plays running against capacity) and the packets'
 * lateness histogram from /metrics, read every five seconds while the tab is visible. Both
 * routes are open: no token.
 */
import { useEffect, useState } from 'preact/hooks'
import { getOpen, whileVisible } from './api.js'
import { count } from './format.js'
import { quantileBound, readHistogram, type Histogram } from './metrics.js'

interface Ready {
  status: 'ready' | 'degraded' | 'not ready'
  problems: string[]
  instance: string
  prompts: number
  playsRunning: number
  capacityLeft: number
}

const LATENESS = 'prompt_player_packet_lateness_seconds'
const REFRESH_MS = 5000

export function Health (): preact.JSX.Element {
  const [ready, setReady] = useState<Ready | null>(null)
  const [lateness, setLateness] = useState<Histogram | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    let live = true
    const read = async (): Promise<void> => {
      try {
        const [readyz, metrics] = await Promise.all([getOpen('/readyz'), getOpen('/metrics')])
        if (!live) return
        setReady(JSON.parse(readyz.text) as Ready)
        setLateness(readHistogram(metrics.text, LATENESS))
        setError(null)
      } catch (err) {
        if (live) setError(`the service could not be reached: ${(err as Error).message}`)
      }
    }
    void read()
    const stop = whileVisible(REFRESH_MS, () => { void read() })
    return () => { live = false; stop() }
  }, [])

  const capacity = ready === null ? 0 : ready.playsRunning + ready.capacityLeft
  return (
    <section aria-labelledby='health-heading' class='health'>
      <h2 id='health-heading'>Health</h2>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {ready !== null && (
        <div class='cards'>
          <div class='card'>
            <h3>Readiness</h3>
            <p class={`status ${ready.status.replace(' ', '-')}`}>{ready.status}</p>
            {ready.problems.length === 0
              ? <p class='muted'>No problems: {ready.instance} takes plays and uploads.</p>
              : <ul class='problems' aria-label='Problems'>{ready.problems.map(p => <li key={p}>{p}</li>)}</ul>}
          </div>
          <div class='card'>
            <h3 id='capacity-heading'>Plays running</h3>
            <p class='big'>{count(ready.playsRunning)} <span class='muted'>of {count(capacity)}</span></p>
            <meter min={0} max={Math.max(1, capacity)} value={ready.playsRunning} high={capacity * 0.8} optimum={0} aria-labelledby='capacity-heading' />
            <p class='muted'>{count(ready.prompts)} prompts in the library</p>
          </div>
          <div class='card wide'>
            <h3 id='lateness-heading'>Packet lateness</h3>
            {lateness === null ? <p class='muted'>No histogram in /metrics.</p> : <LatenessChart histogram={lateness} />}
          </div>
        </div>
      )}
    </section>
  )
}

function bound (le: number): string {
  if (le === Infinity) return 'more'
  const ms = le * 1000
  return `≤${ms < 1 ? ms.toFixed(1) : ms.toFixed(0)}`
}

/**
 * One bar per bucket, heights on a log scale (nearly every packet is in the first buckets, and
 * the few late ones are what matters); the same figures as a table for screen readers.
 */
function LatenessChart ({ histogram }: { histogram: Histogram }): preact.JSX.Element {
  const most = Math.max(1, ...histogram.buckets.map(b => b.count))
  const p99 = quantileBound(histogram, 0.99)
  const width = 28
  const height = 90
  const scale = (n: number): number => n === 0 ? 0 : Math.max(2, (Math.log10(1 + n) / Math.log10(1 + most)) * height)
  return (
    <figure aria-labelledby='lateness-caption'>
      <svg viewBox={`0 0 ${histogram.buckets.length * width} ${height + 30}`} class='chart' aria-hidden='true' focusable='false'>
        {histogram.buckets.map((b, i) => (
          <g key={b.le}>
            <rect x={i * width + 3} y={height - scale(b.count)} width={width - 6} height={scale(b.count)} class={b.le > 0.02 ? 'bar late' : 'bar'} />
            <text x={i * width + width / 2} y={height + 14} class='axis'>{bound(b.le)}</text>
          </g>
        ))}
        <text x={0} y={height + 28} class='axis start'>ms after the due time (log scale)</text>
      </svg>
      <figcaption id='lateness-caption'>
        {histogram.count === 0
          ? 'No packet sent yet.'
          : `${count(histogram.count)} packets; 99 % left within ${p99 === null ? '—' : p99 === Infinity ? 'more than 250' : (p99 * 1000).toString()} ms of their due time; mean ${(histogram.sum / histogram.count * 1000).toFixed(2)} ms.`}
      </figcaption>
      <table class='visually-hidden'>
        <caption>Packets by lateness</caption>
        <thead><tr><th scope='col'>Late by (ms)</th><th scope='col'>Packets</th></tr></thead>
        <tbody>{histogram.buckets.map(b => <tr key={b.le}><td>{bound(b.le)}</td><td>{b.count}</td></tr>)}</tbody>
      </table>
    </figure>
  )
}
