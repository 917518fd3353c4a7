/**
 * One timer for every play. Each task has an absolute due time; when the timer fires, every
 * task that is due runs, and the timer is armed again for the earliest due time left.
 *
 * Due times are absolute (packet k of a play is due at start + k * ptime), never "20 ms after
 * the last send": re-arming a relative timer adds the timer's lateness on every packet, and
 * that drift is what other Node media senders measured (openclaw#146078, nodejs/node#21822).
 * A task that is late runs once per packet it owes, at once: the packets actually late go
 * out late, the rest on time, and the clock never shifts.
 */
import { systemClock, type Clock } from './clock.js'
import { LatenessStats } from './lateness.js'

export interface Task {
  /** Absolute due time on the scheduler's clock; the scheduler reads it, the task sets it. */
  due: number
  /**
   * Runs the task once. Return true to run again at the (updated) `due`, false when done.
   * `lateMs` is how far past `due` the task runs.
   */
  run: (now: number, lateMs: number) => boolean
  /** Position in the heap while scheduled, -1 otherwise. Owned by the scheduler. */
  slot: number
  /**
   * Told that `run` threw: the task has been dropped and will not run again. A play fails
   * itself here, so that its socket, port and slot are freed and its end is reported.
   */
  failed?: (err: unknown) => void
}

export class Scheduler {
  readonly clock: Clock
  readonly lateness: LatenessStats
  private readonly heap: Task[] = []
  private timer: unknown = null
  private timerDue = Infinity
  private running = false

  constructor (clock: Clock = systemClock, lateness = new LatenessStats()) {
    this.clock = clock
    this.lateness = lateness
  }

  get size (): number { return this.heap.length }

  /** Schedules a task at its `due` time. */
  add (task: Task): void {
    task.slot = this.heap.length
    this.heap.push(task)
    this.up(task.slot)
    this.arm()
  }

  /** Unschedules a task; it will not run again. Safe to call from inside a task's `run`. */
  remove (task: Task): void {
    const i = task.slot
    if (i < 0 || this.heap[i] !== task) return
    task.slot = -1
    const last = this.heap.pop()!
    if (i < this.heap.length) {
      this.heap[i] = last
      last.slot = i
      this.down(i)
      this.up(last.slot)
    }
    if (this.heap.length === 0) this.disarm()
  }

  /** Stops the timer; tasks stay registered but do not run until `add` or `tick`. */
  close (): void {
    this.disarm()
    for (const task of this.heap) task.slot = -1
    this.heap.length = 0
  }

  /** Runs every due task. Called by the timer; tests call it after moving a fake clock. */
  tick (): void {
    if (this.running) return
    this.disarm()
    this.running = true
    try {
      const now = this.clock.now()
      let top = this.heap[0]
      while (top !== undefined && top.due <= now) {
        const late = now - top.due
        this.lateness.record(late)
        let again: boolean
        try {
          again = top.run(now, late)
        } catch (err) {
          // A task that throws must not stop the others: it is dropped and told why.
          again = false
          try {
            top.failed?.(err)
          } catch {}
        }
        // The task may have removed itself, or `run` may have added an earlier task above it.
        if (top.slot >= 0) {
          if (again) {
            this.down(top.slot)
            this.up(top.slot)
          } else {
            this.remove(top)
          }
        }
        top = this.heap[0]
      }
    } finally {
      this.running = false
      this.arm()
    }
  }

  private arm (): void {
    if (this.running) return
    const top = this.heap[0]
    if (top === undefined) return
    if (this.timer !== null && this.timerDue <= top.due) return
    this.disarm()
    this.timerDue = top.due
    // Timers fire on whole milliseconds and never early; a due time a fraction away is run
    // by the next tick that finds it due.
    this.timer = this.clock.setTimer(() => this.tick(), Math.max(0, top.due - this.clock.now()))
  }

  private disarm (): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer)
    this.timer = null
    this.timerDue = Infinity
  }

  private up (i: number): void {
    const heap = this.heap
    const task = heap[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent]!
      if (p.due <= task.due) break
      heap[i] = p
      p.slot = i
      i = parent
    }
    heap[i] = task
    task.slot = i
  }

  private down (i: number): void {
    const heap = this.heap
    const n = heap.length
    const task = heap[i]!
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && heap[right]!.due < heap[left]!.due ? right : left
      const c = heap[child]!
      if (c.due >= task.due) break
      heap[i] = c
      c.slot = i
      i = child
    }
    heap[i] = task
    task.slot = i
  }
}
