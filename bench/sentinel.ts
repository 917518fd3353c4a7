/**
 * npm run bench -- --sentinel [--trials 20] [--uploads 200] [--down-after 2000]
 *
 * The pool on Redis under Sentinel (a master, two replicas, three Sentinels, Debian's
 * redis-server and redis-sentinel on this machine):
 * - the cost of "201 means kept": uploads of a short prompt to an instance that waits for one
 *   replica (WAIT, the default under Sentinel) and to one that does not
 *   (PROMPT_PLAYER_REDIS_WAIT_REPLICAS=0), alternating, on the same Redis; and WAIT's own round
 *   trip from a plain client, against the same write without it;
 * - failover: kill -9 of the master while an upload is sent every 50 ms, until the first upload
 *   answered 201, over `--trials` kills. After each, the killed server is started again as a
 *   replica of the new master, and the next kill waits until both replicas are in sync.
 * Medians and p99; numbers from a shared machine: compare within a run, not across runs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { freePort, instance } from './pool.js'
import { quantile, sleep } from './stats.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const NAME = 'pp'

export interface SentinelBenchOptions {
  trials: number
  uploads: number
  downAfterMs: number
}

interface Server { port: number, dir: string, child: ChildProcess }

async function waitPort (port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'ignore' })
      return
    } catch {
      await sleep(25)
    }
  }
  throw new Error(`nothing answers on ${port}`)
}

async function redisServer (port: number, dir: string, replicaOf: number | null): Promise<Server> {
  fs.mkdirSync(dir, { recursive: true })
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', ...(replicaOf === null ? [] : ['--replicaof', '127.0.0.1', String(replicaOf)])], { stdio: 'ignore' })
  await waitPort(port)
  return { port, dir, child }
}

/** Waits until the master sees both replicas online and near its replication offset (a new replica's first sync takes seconds). */
async function inSync (master: Redis): Promise<void> {
  for (let i = 0; ; i++) {
    const info = await master.info('replication').catch(() => '')
    const offset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1)
    const replicas = [...info.matchAll(/slave\d+:ip=[^,]+,port=\d+,state=online,offset=(\d+)/g)].map(m => Number(m[1]))
    if (replicas.length === 2 && replicas.every(o => o >= offset - 1000)) return
    if (i > 600) throw new Error(`the replicas did not come in sync: ${info}`)
    await sleep(50)
  }
}

function f (n: number, d = 1): string { return Number.isFinite(n) ? n.toFixed(d) : '-' }

export async function sentinelBench (options: SentinelBenchOptions): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prompt-player-sentinel-bench-'))
  const children: ChildProcess[] = []
  const stopAll = (): void => { for (const c of children) c.kill('SIGKILL') }
  process.once('exit', stopAll)
  const clients: Redis[] = []
  const client = (port: number): Redis => {
    const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 200 })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  try {
    const servers = new Map<number, Server>()
    const master = await redisServer(await freePort(), path.join(work, 'r0'), null)
    servers.set(master.port, master)
    for (let i = 1; i <= 2; i++) {
      const replica = await redisServer(await freePort(), path.join(work, `r${i}`), master.port)
      servers.set(replica.port, replica)
    }
    children.push(...[...servers.values()].map(s => s.child))
    const sentinelPorts: number[] = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const dir = path.join(work, `s${i}`)
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, 'sentinel.conf'), `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${NAME} 127.0.0.1 ${master.port} 2\nsentinel down-after-milliseconds ${NAME} ${options.downAfterMs}\nsentinel failover-timeout ${NAME} 5000\n`)
      children.push(spawn('redis-sentinel', [path.join(dir, 'sentinel.conf')], { stdio: 'ignore' }))
      sentinelPorts.push(port)
    }
    for (const port of sentinelPorts) await waitPort(port)
    await inSync(client(master.port))
    const env = { PROMPT_PLAYER_REDIS_SENTINELS: sentinelPorts.map(p => `127.0.0.1:${p}`).join(','), PROMPT_PLAYER_REDIS_MASTER: NAME }
    const waiting = await instance('waits', { ...env, PROMPT_PLAYER_LIBRARY: path.join(work, 'l1') }, '20000-20999')
    const direct = await instance('no-wait', { ...env, PROMPT_PLAYER_REDIS_WAIT_REPLICAS: '0', PROMPT_PLAYER_LIBRARY: path.join(work, 'l2') }, '21000-21999')
    children.push(waiting.child, direct.child)
    const sentinel = client(sentinelPorts[0]!)
    const masterPort = async (): Promise<number> => Number(((await sentinel.call('SENTINEL', 'get-master-addr-by-name', NAME)) as [string, string])[1])
    // A 1 s prompt (8 kHz WAV): the transcode is short, so the commit's share shows.
    const short = path.join(work, 'short.wav')
    const sample = path.join(ROOT, 'prompts', 'media', JSON.parse(fs.readFileSync(path.join(ROOT, 'prompts', 'welcome.json'), 'utf8')).source.sha256, 'source')
    execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', sample, '-t', '1', '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', short])
    const body = fs.readFileSync(short)
    const distinct = (k: number): Uint8Array => new Uint8Array(Buffer.concat([body, Buffer.from(`#${k}`)]))
    console.error(`sentinel benchmark: a master, two replicas, three Sentinels (down-after ${options.downAfterMs} ms), ${os.cpus().length} cores, node ${process.version}`)

    // 1. What waiting for a replica costs an upload, side by side, alternating.
    const timed: Record<'waits' | 'no-wait', number[]> = { waits: [], 'no-wait': [] }
    for (let k = 0; k < options.uploads + 10; k++) {
      for (const i of (k % 2 === 0 ? [waiting, direct] : [direct, waiting])) {
        const t0 = performance.now()
        const res = await fetch(`${i.url}/v1/prompts/w${k}-${i.id}`, { method: 'PUT', body: distinct(k * 2 + (i === waiting ? 0 : 1)) as unknown as BodyInit })
        await res.arrayBuffer()
        if (res.status !== 201) throw new Error(`upload to ${i.id}: ${res.status}`)
        if (k >= 10) timed[i.id as 'waits' | 'no-wait'].push(performance.now() - t0) // the first 10 warm up
      }
    }
    // WAIT's own round trip: a plain client's SET, with and without WAIT 1 after it.
    const raw = client(await masterPort())
    const set: number[] = []
    const setWait: number[] = []
    for (let k = 0; k < 2000; k++) {
      let t0 = performance.now()
      await raw.set('bench:k', String(k))
      set.push(performance.now() - t0)
      t0 = performance.now()
      await raw.set('bench:k', String(k))
      const acked = await raw.wait(1, 1000)
      setWait.push(performance.now() - t0)
      if (acked < 1) throw new Error('WAIT 1 was not acknowledged')
    }
    await raw.del('bench:k')
    console.error('upload latency done')

    // 2. Failover: kill -9 of the master, uploads every 50 ms, until one is answered 201.
    const recoveries: number[] = []
    const refusedDuring: number[] = []
    for (let trial = 0; trial < options.trials; trial++) {
      const before = await masterPort()
      await inSync(client(before))
      const victim = servers.get(before)!
      const exited = new Promise(resolve => victim.child.once('exit', resolve))
      let refused = 0
      let stop = false
      const killedAt = performance.now()
      victim.child.kill('SIGKILL')
      let recoveredAt = NaN
      for (let k = 0; !stop; k++) {
        const res = await fetch(`${waiting.url}/v1/prompts/f${trial}-${k}`, { method: 'PUT', body: distinct(100_000 + trial * 1000 + k) as unknown as BodyInit }).catch(() => null)
        await res?.arrayBuffer()
        if (res?.status === 201) {
          recoveredAt = performance.now()
          stop = true
        } else {
          refused++
          if (performance.now() - killedAt > 60_000) throw new Error(`trial ${trial + 1}: no upload answered 201 within 60 s of the kill`)
          await sleep(50)
        }
      }
      await exited
      recoveries.push(recoveredAt - killedAt)
      refusedDuring.push(refused)
      const after = await masterPort()
      console.error(`failover ${trial + 1} of ${options.trials}: ${before} -> ${after}, uploads again ${f((recoveredAt - killedAt) / 1000, 2)} s after the kill (${refused} refused meanwhile)`)
      // The killed server back, as a replica of the new master, with its data directory.
      const back = await redisServer(victim.port, victim.dir, after)
      servers.set(back.port, back)
      children.push(back.child)
    }

    const d = (a: number[], b: number[], q: number): string => f(quantile(a, q) - quantile(b, q), 2)
    console.log(`Redis under Sentinel, ${options.uploads} uploads of a 1 s prompt to each instance, alternating, and ${options.trials} kills of the master:`)
    console.log('')
    console.log('| | p50 | p99 |')
    console.log('| --- | --- | --- |')
    console.log(`| upload answered, waiting for 1 replica (ms) | ${f(quantile(timed.waits, 0.5), 2)} | ${f(quantile(timed.waits, 0.99), 2)} |`)
    console.log(`| upload answered, no wait (ms) | ${f(quantile(timed['no-wait'], 0.5), 2)} | ${f(quantile(timed['no-wait'], 0.99), 2)} |`)
    console.log(`| difference (ms) | ${d(timed.waits, timed['no-wait'], 0.5)} | ${d(timed.waits, timed['no-wait'], 0.99)} |`)
    console.log(`| SET alone, a plain client (ms) | ${f(quantile(set, 0.5), 3)} | ${f(quantile(set, 0.99), 3)} |`)
    console.log(`| SET then WAIT 1 (ms) | ${f(quantile(setWait, 0.5), 3)} | ${f(quantile(setWait, 0.99), 3)} |`)
    console.log(`| kill -9 of the master to the first upload answered 201 (s) | ${f(quantile(recoveries, 0.5) / 1000, 2)} | ${f(quantile(recoveries, 0.99) / 1000, 2)} (max ${f(Math.max(...recoveries) / 1000, 2)}, min ${f(Math.min(...recoveries) / 1000, 2)}) |`)
    console.log(`| uploads refused (503) meanwhile, every 50 ms | ${quantile(refusedDuring, 0.5)} | ${quantile(refusedDuring, 0.99)} |`)
  } finally {
    for (const c of clients) c.disconnect()
    stopAll()
    fs.rmSync(work, { recursive: true, force: true })
  }
}
