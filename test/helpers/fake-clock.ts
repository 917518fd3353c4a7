import type { Clock } from '../../src/packet/clock.js'

/** A clock that moves only when told; its timers fire as time passes them. */
export class FakeClock implements Clock {
  time = 1000
  private timers: Array<{ at: number, callback: () => void, id: number }> = []
  private nextId = 1
  /** Every delay a timer was armed with, for asserting on how the scheduler arms. */
  readonly armed: number[] = []

  now = (): number => this.time

  setTimer = (callback: () => void, delayMs: number): unknown => {
    const id = this.nextId++
    this.armed.push(delayMs)
    this.timers.push({ at: this.time + Math.max(0, delayMs), callback, id })
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
      this.time = next.at + lateness
      next.callback()
    }
    this.time = to
  }

  advance (ms: number, lateness = 0): void { this.advanceTo(this.time + ms, lateness) }
}
