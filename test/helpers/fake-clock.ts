import type { Clock } from '../../src/packet/clock.js'

export interface FakeClockOptions {
  /**
   * Timers as Node's fire: the delay counted in whole milliseconds of the loop's time (its
   * floor), at least 1, and the loop woken `phase` ms into the millisecond it fires in. A
   * timer then fires up to a millisecond after its delay, and can fire before it (armed late
   * in a millisecond). Off: each timer fires exactly `delay` after it was armed.
   */
  wholeMs?: { phase: number }
  /** A precise wait (Clock.waitUntil), as the packet thread's futex sleep: time moves to `at`. */
  precise?: boolean
}

/** A clock that moves only when told; its timers fire as time passes them. */
export class FakeClock implements Clock {
  time = 1000
  private timers: Array<{ at: number, callback: () => void, id: number }> = []
  private nextId = 1
  private readonly options: FakeClockOptions
  /** Every delay a timer was armed with, for asserting on how the scheduler arms. */
  readonly armed: number[] = []
  /** Every precise wait, in ms. */
  readonly waited: number[] = []
  waitUntil?: (at: number) => void

  constructor (options: FakeClockOptions = {}) {
    this.options = options
    if (options.precise === true) {
      this.waitUntil = at => {
        this.waited.push(Math.max(0, at - this.time))
        if (at > this.time) this.time = at
      }
    }
  }

  now = (): number => this.time

  setTimer = (callback: () => void, delayMs: number): unknown => {
    const id = this.nextId++
    this.armed.push(delayMs)
    const whole = this.options.wholeMs
    const at = whole === undefined
      ? this.time + Math.max(0, delayMs)
      : Math.floor(this.time) + Math.max(1, Math.ceil(delayMs)) + whole.phase
    this.timers.push({ at, callback, id })
    return id
  }

  soon = (callback: () => void): unknown => {
    const id = this.nextId++
    this.timers.push({ at: this.time, callback, id })
    return id
  }

  clearTimer = (handle: unknown): void => {
    this.timers = this.timers.filter(t => t.id !== handle)
  }

  get pending (): number { return this.timers.length }

  /** Moves time forward to `to`, firing due timers in order (each at its own time, late by `lateness`). */
  advanceTo (to: number, lateness = 0): void {
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at)
      const next = this.timers[0]
      if (next === undefined || next.at + lateness > to) break
      this.timers.shift()
      this.time = Math.max(this.time, next.at + lateness)
      next.callback()
    }
    this.time = Math.max(this.time, to)
  }

  advance (ms: number, lateness = 0): void { this.advanceTo(this.time + ms, lateness) }
}
