/**
 * `npm run cluster -- --sentinel` (scripts/cluster), as a person runs it: it builds, starts a
 * master, two replicas, three Sentinels, three instances and HAProxy, loads the sample prompts
 * and prints where each part is. Killing the master by the pid it prints, uploads through the
 * load balancer succeed again once Sentinel has promoted a replica; SIGTERM (as Ctrl-C) stops
 * every process it started.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { ROOT, sample } from '../helpers/index.js'
import { json, until } from '../helpers/sse.js'

t.setTimeout(300_000)

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('scripts/cluster --sentinel: up, the master killed, uploads again, all stopped', async t => {
  const child = spawn('bash', [path.join(ROOT, 'scripts', 'cluster'), '--sentinel'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} })
  await until('the cluster is up', async () => output.includes('Ctrl-C stops everything.') || (child.exitCode !== null ? Promise.reject(new Error(output)) : false), 180_000)

  const lb = /load balancer {2}(http:\/\/127\.0\.0\.1:\d+)/.exec(output)![1]!
  const masterPid = Number(/\(try: kill -9 (\d+)\)/.exec(output)![1])
  t.match(output, /sentinels {6}127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ \(master name pp/, 'it names the Sentinels and the master\'s name')
  const work = /logs {11}(\S+)\/\*\.log/.exec(output)![1]!
  const names = (await json(await fetch(`${lb}/v1/prompts`))).prompts.map((p: any) => p.name)
  t.same(names, fs.readdirSync(path.join(ROOT, 'prompts')).filter(f => f.endsWith('.json')).map(f => f.slice(0, -5)).sort(), `the sample prompts are in the pool's library${output.includes('cluster: ') ? ` (the script said: ${output.split('\n').filter(l => l.startsWith('cluster: ')).join('; ')})` : ''}`)
  // The processes it started: its process group (background jobs of a script stay in it).
  const group = (): number[] => fs.readdirSync('/proc').filter(p => /^\d+$/.test(p)).map(Number).filter(pid => {
    try {
      // pid (comm) state ppid pgrp ...: the fields after the command's closing parenthesis.
      return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]) === child.pid
    } catch {
      return false
    }
  })
  const started = group()
  t.ok(started.length >= 1 + 3 + 3 + 3 + 1, `its processes found (${started.length}: Redis, Sentinels, instances, HAProxy, the script)`)

  process.kill(masterPid, 'SIGKILL')
  const killedAt = performance.now()
  await until('an upload through the load balancer after the kill', async () => (await fetch(`${lb}/v1/prompts/after-kill`, { method: 'PUT', body: new Uint8Array(sample('goodbye').bytes) })).status === 201, 30_000)
  t.ok(performance.now() - killedAt < 15_000, `uploads work again ${((performance.now() - killedAt) / 1000).toFixed(1)} s after the kill`)
  t.equal(child.exitCode, null, 'the script runs on without its first master')

  process.kill(-child.pid!, 'SIGTERM')
  t.equal(await exited, 0, 'SIGTERM stops it')
  await until('every process it started is gone', async () => started.every(pid => !alive(pid)), 10_000)
  t.pass('every process it started is gone')
  t.notOk(fs.existsSync(work), 'and its directory removed')
})
