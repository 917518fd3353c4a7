import { performance } from 'node:perf_hooks'
import type { Pacing } from '../common/protocol.js'

/**
 * The time source of the scheduler: a monotonic clock (never the wall clock, which jumps), a
 * one-shot timer, and a short precise wait. Tests pass a fake one and move time by hand.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock; fractional. */
  now: () => number
  /**
   * Calls back after about `delayMs`. Node's timers are whole milliseconds of the event loop's
   * time, which is read once per loop turn: a timer fires up to about a millisecond after its
   * delay, never before it, and a fractional delay counts as the next whole one.
   */
  setTimer: (callback: () => void, delayMs: number) => unknown
  /** Calls back on the event loop's next turn, once pending I/O has been read (setImmediate). Cleared by clearTimer. */
  soon: (callback: () => void) => unknown
  clearTimer: (handle: unknown) => void
  /**
   * Returns at `at` (or at once when it has passed), blocking the thread until then: the last
   * fraction of a millisecond before a due time, which no timer can wait precisely. Absent: the
   * scheduler sends when its timer fires.
   */
  waitUntil?: (at: number) => void
}

const parked = new Int32Array(new SharedArrayBuffer(4))

/**
 * The system clock for each pacing mode:
 * - `sleep`: the timer wakes the thread a little early, and `Atomics.wait` (a futex with a
 *   nanosecond timeout) sleeps the rest; the kernel's timer slack (50 µs for a normal thread,
 *   none under SCHED_FIFO) is the error, and no CPU is spent waiting;
 * - `spin`: the same, but the rest is a busy loop reading the clock: the most precise, and the
 *   rest of each wait is a core's time;
 * - `timer`: no wait; packets leave when the timer fires, up to a millisecond late.
 */
export function systemClock (pacing: Pacing = 'sleep'): Clock {
  const clock: Clock = {
    now: () => performance.now(),
    setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
    soon: callback => ({ immediate: setImmediate(callback) }),
    clearTimer: handle => {
      if (typeof handle === 'object' && handle !== null && 'immediate' in handle) clearImmediate(handle.immediate as NodeJS.Immediate)
      else clearTimeout(handle as NodeJS.Timeout)
    }
  }
  if (pacing === 'sleep') {
    clock.waitUntil = at => {
      const left = at - performance.now()
      if (left > 0) Atomics.wait(parked, 0, 0, left)
    }
  } else if (pacing === 'spin') {
    clock.waitUntil = at => {
      // eslint-disable-next-line no-empty
      while (performance.now() < at) {}
    }
  }
  return clock
}
