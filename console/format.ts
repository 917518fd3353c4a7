/** How figures read on the page. */
export function seconds (ms: number | null): string {
  if (ms === null) return '—'
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
}

export function hertz (rate: number | null): string {
  if (rate === null) return '—'
  return `${Number((rate / 1000).toFixed(2))} kHz`
}

export function channels (n: number | null): string {
  if (n === null) return '—'
  return n === 1 ? 'mono' : n === 2 ? 'stereo' : `${n} channels`
}

export function millis (ms: number | null, digits = 1): string {
  return ms === null ? '—' : `${ms.toFixed(digits)} ms`
}

export function percent (fraction: number): string {
  return `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)} %`
}

/** A size in bytes, for a person: 812 B, 15.6 kB, 1.2 MB. */
export function size (bytes: number): string {
  if (bytes < 1000) return `${bytes} B`
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`
  return `${(bytes / 1_000_000).toFixed(1)} MB`
}

export function count (n: number): string {
  return n.toLocaleString('en-US')
}

/** A play id's distinguishing end (the ULID's random part); the whole id is in the title. */
export function shortId (id: string): string {
  return `…${id.slice(-8)}`
}

export function time (iso: string): string {
  return new Date(iso).toLocaleTimeString('en-GB', { hour12: false })
}
