import t from 'tap'
import { LatenessStats } from '../../src/common/lateness.js'
import { Scheduler, type Task } from '../../src/packet/scheduler.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** A periodic task like a play: job k is due at start + k * period. */
function periodic (start: number, period: number, count: number, log: Array<[string, number, number]>, name: string): Task & { k: number } {
  const task = {
    due: start,
    slot: -1,
    k: 0,
    run (now: number): boolean {
      log.push([name, task.k, now])
      task.k++
      if (task.k >= count) return false
      task.due = start + task.k * period
      return true
    }
  }
  return task
}

t.test('runs each job at start + k * period: late timers do not accumulate drift', async t => {
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  scheduler.add(periodic(clock.time, 20, 500, log, 'a'))
  // Every timer fires 1.5 ms late, as a busy event loop would; re-arming "20 ms after the
  // last send" would drift 1.5 ms a packet, 750 ms over 500 packets.
  clock.advance(500 * 20, 1.5)
  t.equal(log.length, 500, 'all 500 jobs ran')
  const lateness = log.map(([, k, at]) => at - (1000 + k * 20))
  t.ok(Math.max(...lateness) <= 1.5 + 1e-9, `no job later than the timer lateness (max ${Math.max(...lateness)} ms)`)
  t.ok(Math.min(...lateness) >= 0, 'no job early')
  t.equal(log.at(-1)![2] - log[0]![2], 499 * 20, 'the last job is exactly 499 periods after the first')
  t.equal(scheduler.size, 0, 'a finished task leaves the scheduler')
  t.equal(clock.pending, 0, 'no timer stays armed with nothing to do')
})

t.test('a stall is caught up by sending what is late, once, then back on the grid', async t => {
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  scheduler.add(periodic(clock.time, 20, 10, log, 'a'))
  clock.advance(0)
  t.equal(log.length, 1, 'job 0 runs at once')
  // The event loop stalls for 65 ms: jobs 1, 2 and 3 are late and run together.
  clock.time += 65
  scheduler.tick()
  t.same(log.slice(1).map(([, k]) => k), [1, 2, 3], 'the three late jobs run in the stalled tick')
  clock.advance(200)
  const after = log.slice(4).map(([, k, at]) => at - (1000 + k * 20))
  t.same(after, after.map(() => 0), 'after the stall every job runs exactly on its due time')
  t.equal(log.length, 10)
})

t.test('one timer serves many tasks in due order', async t => {
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  for (let i = 0; i < 50; i++) scheduler.add(periodic(clock.time + (i * 7) % 20, 20, 5, log, `t${i}`))
  t.equal(clock.pending, 1, 'one timer for 50 tasks')
  clock.advance(200)
  t.equal(log.length, 250, 'every job ran')
  const times = log.map(([, , at]) => at)
  t.same(times, [...times].sort((a, b) => a - b), 'jobs ran in time order')
  for (const [name, k, at] of log) {
    const i = Number(name.slice(1))
    if (at !== 1000 + (i * 7) % 20 + k * 20) t.fail(`${name} job ${k} ran at ${at}`)
  }
  t.equal(scheduler.lateness.total, 250, 'lateness recorded per job')
  t.equal(scheduler.lateness.max, 0, 'none late on a punctual clock')
})

t.test('remove: a task removed (even from inside another task) never runs again', async t => {
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  const a = periodic(clock.time, 20, 100, log, 'a')
  const b = periodic(clock.time + 5, 20, 100, log, 'b')
  const c = periodic(clock.time + 10, 20, 100, log, 'c')
  const killer: Task = { due: clock.time + 30, slot: -1, run: () => { scheduler.remove(b); scheduler.remove(killer); return true } }
  scheduler.add(a); scheduler.add(b); scheduler.add(c); scheduler.add(killer)
  clock.advance(100)
  const bRuns = log.filter(([n]) => n === 'b').map(([, k]) => k)
  t.same(bRuns, [0, 1], 'b ran before the removal only')
  t.ok(log.filter(([n]) => n === 'a').length >= 5, 'a kept running')
  scheduler.remove(b)
  t.equal(b.slot, -1, 'removing twice is harmless')
  scheduler.remove(a); scheduler.remove(c)
  t.equal(scheduler.size, 0)
  t.equal(clock.pending, 0, 'the timer is disarmed when nothing is left')
})

t.test('a task that throws is dropped, told why, and the others go on', async t => {
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  const failures: unknown[] = []
  scheduler.add({ due: clock.time, slot: -1, run: () => { throw new Error('boom') }, failed: err => failures.push(err) })
  // One whose failure hook throws too: still dropped, still nothing stops.
  scheduler.add({ due: clock.time, slot: -1, run: () => { throw new Error('bang') }, failed: () => { throw new Error('worse') } })
  scheduler.add(periodic(clock.time, 20, 3, log, 'ok'))
  clock.advance(100)
  t.equal(log.length, 3, 'the healthy task ran all its jobs')
  t.match(failures, [{ message: 'boom' }], 'the throwing task was told, once')
  t.equal(scheduler.size, 0)
})

t.test('a task added during a tick with an earlier due time runs in order', async t => {
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  const adder: Task = {
    due: clock.time,
    slot: -1,
    run: () => { scheduler.add(periodic(clock.time, 20, 2, log, 'late')); return false }
  }
  scheduler.add(adder)
  scheduler.add(periodic(clock.time + 50, 20, 1, log, 'x'))
  clock.advance(100)
  t.same(log.map(([n, k]) => `${n}${k}`), ['late0', 'late1', 'x0'])
})

t.test('close disarms the timer and forgets every task', async t => {
  const clock = new FakeClock()
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  scheduler.add(periodic(clock.time + 10, 20, 5, log, 'a'))
  scheduler.close()
  clock.advance(200)
  t.equal(log.length, 0, 'nothing ran after close')
  t.equal(clock.pending, 0)
})

/** Plays asked to start at odd fractions of a millisecond, each starting where the scheduler puts it. */
function startMany (scheduler: Scheduler, clock: FakeClock, count: number, log: Array<[string, number, number]>): Array<Task & { k: number }> {
  const tasks: Array<Task & { k: number }> = []
  for (let i = 0; i < count; i++) {
    clock.advance(0.37 + (i % 7) * 0.11)
    const task = periodic(scheduler.startTime(), 20, 50, log, `p${i}`)
    tasks.push(task)
    scheduler.add(task)
  }
  return tasks
}

t.test('the grid: with Node\'s whole-millisecond timers, every packet runs at its due time, and one wakeup serves every play due in it', async t => {
  const clock = new FakeClock({ wholeMs: { phase: 0.83 }, precise: true })
  const scheduler = new Scheduler(clock)
  t.ok(scheduler.grid, 'a clock that waits precisely puts plays on the grid')
  const log: Array<[string, number, number]> = []
  const tasks = startMany(scheduler, clock, 40, log)
  t.ok(tasks.every(task => Number.isInteger(task.due)), 'plays start on whole milliseconds')
  const dues = new Set<number>()
  for (const task of tasks) for (let k = 0; k < 50; k++) dues.add(task.due + k * 20)
  clock.advance(1100)
  t.equal(log.length, 40 * 50, 'every packet ran')
  const late = log.map(([name, k, at]) => at - (startOf(tasks, name) + k * 20))
  t.ok(late.every(ms => ms === 0), `each at its due time exactly (latest ${Math.max(...late)} ms)`)
  t.ok(scheduler.wakeups <= dues.size + tasks.length, `${scheduler.wakeups} wakeups for ${dues.size} distinct due milliseconds and ${log.length} packets (one per due millisecond, and a few where a start re-armed the timer)`)
  t.ok(clock.waited.every(ms => ms <= 3), `each precise wait is at most the timer's lead (longest ${Math.max(...clock.waited).toFixed(2)} ms)`)
  t.equal(scheduler.lateness.max, 0)
})

t.test('without a precise wait (pacing "timer"), the same timers leave packets up to a millisecond late', async t => {
  const clock = new FakeClock({ wholeMs: { phase: 0.83 } })
  const scheduler = new Scheduler(clock)
  t.notOk(scheduler.grid)
  const log: Array<[string, number, number]> = []
  const tasks = startMany(scheduler, clock, 40, log)
  t.notOk(tasks.every(task => Number.isInteger(task.due)), 'plays start when asked')
  clock.advance(1100)
  t.equal(log.length, 40 * 50, 'every packet ran')
  t.ok(scheduler.lateness.max > 0.5 && scheduler.lateness.max <= 2, `packets late by up to ${scheduler.lateness.max.toFixed(2)} ms`)
})

t.test('the grid: a task removed while its bucket waits never runs; the rest of the bucket keeps its order', async t => {
  const clock = new FakeClock({ precise: true })
  const scheduler = new Scheduler(clock)
  const log: Array<[string, number, number]> = []
  const start = scheduler.startTime()
  const tasks = ['a', 'b', 'c', 'd'].map(name => periodic(start, 20, 3, log, name))
  for (const task of tasks) scheduler.add(task)
  clock.advance(10)
  scheduler.remove(tasks[1]!)
  clock.advance(100)
  t.same(log.map(([n, k]) => `${n}${k}`), ['a0', 'b0', 'c0', 'd0', 'a1', 'c1', 'd1', 'a2', 'c2', 'd2'], 'in the order filed, b gone')
  t.equal(scheduler.size, 0)
})

t.test('lateness buckets', async t => {
  const stats = new LatenessStats()
  for (const late of [0, 0.4, 0.9, 3, 30, 1000]) stats.record(late)
  t.equal(stats.total, 6)
  t.equal(stats.max, 1000)
  t.equal(stats.counts[0], 2, '<= 0.5 ms')
  t.equal(stats.counts[1], 1, '<= 1 ms')
  t.equal(stats.counts[3], 1, '<= 5 ms')
  t.equal(stats.counts[6], 1, '<= 50 ms')
  t.equal(stats.counts[LatenessStats.BOUNDS.length], 1, 'over the last bound')
})

function startOf (tasks: Array<Task & { k: number }>, name: string): number {
  const task = tasks[Number(name.slice(1))]!
  // A finished task's due stays at its last job's: its start is that less its jobs.
  return task.due - (task.k - 1) * 20
}
