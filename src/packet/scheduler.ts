/**
 * One timer for every play on the thread, and every packet due at one instant sent in one
 * wakeup. Each task has an absolute due time; tasks due at the same time share a bucket, and
 * when the timer fires, every bucket that is due runs, its tasks in the order they were filed,
 * and the timer is armed again for the earliest bucket left.
 *
 * Due times are absolute (packet k of a play is due at start + k * ptime), never "20 ms after
 * the last send": re-arming a relative timer adds the timer's lateness on every packet, and
 * that drift is what other Node media senders measured (openclaw#146078, nodejs/node#21822).
 * A task that is late runs once per packet it owes, at once: the packets actually late go
 * out late (or are skipped by the play when too late to matter), the rest on time, and the
 * clock never shifts.
 *
 * The grid: with a clock that can wait precisely (`Clock.waitUntil`), plays start on a whole
 * millisecond (`startTime`), so with whole-millisecond packet times every due time is a whole
 * millisecond and every play due in it shares its wakeup. Node's timers cannot hit a due time:
 * they count whole milliseconds of the loop's time and fire up to a millisecond after it. So
 * the timer is armed to fire up to `LEAD_MS` early, and the clock waits out the rest precisely.
 * A play keeps its place in its bucket from one packet to the next (filed in the order they
 * ran), so its packets leave at the same offset in each burst, and the burst does not add to
 * its jitter. Without `waitUntil`, plays start when asked, and each packet leaves when the
 * timer finds it due.
 */
import { systemClock, type Clock } from './clock.js'
import { LatenessStats } from '../common/lateness.js'

export interface Task {
  /** Absolute due time on the scheduler's clock; the scheduler reads it, the task sets it. */
  due: number
  /**
   * Runs the task once. Return true to run again at the (updated) `due`, false when done.
   * `lateMs` is how far past `due` the task runs.
   */
  run: (now: number, lateMs: number) => boolean
  /** The due time the task is filed under while scheduled, -1 otherwise (-2 while it runs). Owned by the scheduler. */
  slot: number
  /**
   * Told that `run` threw: the task has been dropped and will not run again. A play fails
   * itself here, so that its socket, port and slot are freed and its end is reported.
   */
  failed?: (err: unknown) => void
}

/**
 * How close a due time must be for the thread to wait for it in place, when the clock can wait
 * precisely. Further away, a timer is armed to fire this close: Node fires a timer from about a
 * millisecond before its whole-millisecond delay (the loop's time is read at the start of its
 * turn) to about a millisecond after it, so a timer of `floor(left) - 2` ms fires 1-3 ms early
 * on an idle loop. Closer, the next turn of the loop (after reading what arrived) waits for it.
 * So the thread blocks at most this long before a due time, and only when that due time is the
 * next thing it has to do.
 */
export const LEAD_MS = 3

/** A task's slot while its `run` runs. */
const RUNNING = -2

export class Scheduler {
  readonly clock: Clock
  readonly lateness: LatenessStats
  /** Tasks by the due time they are filed under; a removed task stays until its bucket runs, skipped. */
  private readonly buckets = new Map<number, Task[]>()
  /** The buckets' due times, a binary min-heap. */
  private readonly keys: number[] = []
  /** Emptied bucket arrays, for the next due times: no array allocated per packet time. */
  private readonly spare: Task[][] = []
  private count = 0
  private timer: unknown = null
  private timerDue = Infinity
  private running = false
  /** Wakeups of the timer, and of them those that found nothing due (fired too early). */
  wakeups = 0

  constructor (clock: Clock = systemClock(), lateness = new LatenessStats()) {
    this.clock = clock
    this.lateness = lateness
  }

  get size (): number { return this.count }

  /** Whether plays start on the millisecond grid (the clock can wait precisely). */
  get grid (): boolean { return this.clock.waitUntil !== undefined }

  /**
   * When a play starting now sends its first packet: the next whole millisecond on the grid,
   * now without one.
   */
  startTime (): number {
    const now = this.clock.now()
    return this.grid ? Math.ceil(now) : now
  }

  /** Schedules a task at its `due` time. */
  add (task: Task): void {
    this.file(task)
    this.count++
    this.arm()
  }

  /** Unschedules a task; it will not run again. Safe to call from inside a task's `run`. */
  remove (task: Task): void {
    if (task.slot === -1) return
    task.slot = -1
    this.count--
    if (this.count === 0) {
      this.disarm()
      this.clear()
    }
  }

  /** Stops the timer; tasks stay registered but do not run until `add` or `tick`. */
  close (): void {
    this.disarm()
    for (const bucket of this.buckets.values()) for (const task of bucket) task.slot = -1
    this.clear()
    this.count = 0
  }

  /**
   * Runs every due task, waiting first for the earliest when it is less than LEAD_MS away and
   * the clock can wait. Called by the timer; tests call it after moving a fake clock.
   */
  tick (): void {
    if (this.running) return
    this.disarm()
    this.running = true
    this.wakeups++
    try {
      let now = this.clock.now()
      let key = this.keys[0]
      if (key !== undefined && key > now && key - now <= LEAD_MS && this.clock.waitUntil !== undefined) {
        this.clock.waitUntil(key)
        now = this.clock.now()
      }
      while (key !== undefined && key <= now) {
        this.runBucket(key, now)
        now = this.clock.now()
        key = this.keys[0]
      }
    } finally {
      this.running = false
      this.arm()
    }
  }

  private runBucket (key: number, now: number): void {
    const bucket = this.buckets.get(key)!
    this.buckets.delete(key)
    this.popKey()
    const late = now - key
    for (let i = 0; i < bucket.length; i++) {
      const task = bucket[i]!
      // Removed since it was filed (or filed again elsewhere): skipped.
      if (task.slot !== key) continue
      task.slot = RUNNING
      this.lateness.record(late)
      let again: boolean
      try {
        again = task.run(now, late)
      } catch (err) {
        // A task that throws must not stop the others: it is dropped and told why.
        again = false
        try {
          task.failed?.(err)
        } catch {}
      }
      // Removed in its own `run` (the slot is -1 then, and counted out): not filed again.
      if (task.slot === RUNNING) {
        if (again) {
          this.file(task)
        } else {
          task.slot = -1
          this.count--
        }
      }
    }
    bucket.length = 0
    this.spare.push(bucket)
  }

  private file (task: Task): void {
    const key = task.due
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      bucket = this.spare.pop() ?? []
      this.buckets.set(key, bucket)
      this.pushKey(key)
    }
    bucket.push(task)
    task.slot = key
  }

  private clear (): void {
    for (const bucket of this.buckets.values()) {
      bucket.length = 0
      this.spare.push(bucket)
    }
    this.buckets.clear()
    this.keys.length = 0
  }

  private arm (): void {
    if (this.running) return
    const key = this.keys[0]
    if (key === undefined) return
    if (this.timer !== null && this.timerDue <= key) return
    this.disarm()
    this.timerDue = key
    const left = key - this.clock.now()
    if (this.clock.waitUntil === undefined) {
      // The timer's own rounding: a due time a fraction away is run by the tick that finds it due.
      this.timer = this.clock.setTimer(() => this.tick(), Math.max(0, left))
    } else if (left > LEAD_MS) {
      this.timer = this.clock.setTimer(() => this.tick(), Math.floor(left) - 2)
    } else {
      this.timer = this.clock.soon(() => this.tick())
    }
  }

  private disarm (): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer)
    this.timer = null
    this.timerDue = Infinity
  }

  private pushKey (key: number): void {
    const keys = this.keys
    let i = keys.length
    keys.push(key)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (keys[parent]! <= key) break
      keys[i] = keys[parent]!
      i = parent
    }
    keys[i] = key
  }

  private popKey (): void {
    const keys = this.keys
    const last = keys.pop()!
    const n = keys.length
    if (n === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && keys[right]! < keys[left]! ? right : left
      if (keys[child]! >= last) break
      keys[i] = keys[child]!
      i = child
    }
    keys[i] = last
  }
}
