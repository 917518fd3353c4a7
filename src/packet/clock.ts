import { performance } from 'node:perf_hooks'

/**
 * The time source of the scheduler: a monotonic clock (never the wall clock, which jumps) and
 * a one-shot timer. Tests pass a fake one and move time by hand.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock; fractional. */
  now: () => number
  setTimer: (callback: () => void, delayMs: number) => unknown
  clearTimer: (handle: unknown) => void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: handle => clearTimeout(handle as NodeJS.Timeout)
}
