/**
 * A real pool on this machine, for the pool drills: Debian's redis-server on a free port in a
 * temporary directory (append-only file on), or a master, replicas and Debian's redis-sentinel
 * watching them; prompt-player instances as real server processes pointed at it, and HAProxy
 * with deploy/haproxy.cfg in front. Everything is stopped at the end of the test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { ROOT, sleep, tempDir } from './index.js'
import { spawnServer, waitForLine, type ServerRun } from './server-process.js'

type T = Pick<Test, 'teardown'>

export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise(resolve => server.close(resolve))
  return port
}

async function waitForPort (port: number, timeoutMs = 10_000): Promise<void> {
  const started = Date.now()
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() - started > timeoutMs) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`)
    await sleep(50)
  }
}

export class RedisServer {
  readonly port: number
  readonly dir: string
  private readonly args: string[]
  private child: ChildProcess | null = null

  constructor (port: number, dir: string, args: string[] = []) {
    this.port = port
    this.dir = dir
    this.args = args
  }

  get url (): string { return `redis://127.0.0.1:${this.port}/0` }

  /** A Redis with its append-only file; `args` are more of redis-server's options (`--replicaof`, `--requirepass`). */
  static async start (t: T, args: string[] = []): Promise<RedisServer> {
    const redis = new RedisServer(await freePort(), tempDir(t, 'prompt-player-redis-'), args)
    t.teardown(async () => { await redis.stop() })
    await redis.start()
    return redis
  }

  /** Starts (again) on the same port and directory: with its append-only file, it has its data back. */
  async start (): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--save', '', '--protected-mode', 'yes', ...this.args], { stdio: 'ignore' })
    await waitForPort(this.port)
  }

  /** SIGSTOP / SIGCONT: the process is there (its sockets open) but answers nothing. */
  signal (signal: 'SIGSTOP' | 'SIGCONT'): void {
    this.child?.kill(signal)
  }

  /** Stops it the hard way (SIGKILL): what it had written to its append-only file is all it keeps. */
  async stop (): Promise<void> {
    const child = this.child
    if (child === null) return
    this.child = null
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
}

/** Debian's redis-sentinel on a free port, watching the master named `name`. */
export class Sentinel {
  readonly port: number
  private readonly child: ChildProcess

  private constructor (port: number, child: ChildProcess) {
    this.port = port
    this.child = child
  }

  static async start (t: T, name: string, master: RedisServer, options: { downAfterMs: number, password?: string }): Promise<Sentinel> {
    const port = await freePort()
    const dir = tempDir(t, 'prompt-player-sentinel-')
    // Sentinel rewrites its configuration file as it learns the replicas and the other Sentinels.
    const conf = path.join(dir, 'sentinel.conf')
    fs.writeFileSync(conf, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs}`,
      `sentinel failover-timeout ${name} 10000`,
      ...(options.password === undefined ? [] : [`sentinel auth-pass ${name} ${options.password}`])
    ].join('\n') + '\n')
    const child = spawn('redis-sentinel', [conf], { stdio: 'ignore' })
    t.teardown(() => { child.kill('SIGKILL') })
    await waitForPort(port)
    return new Sentinel(port, child)
  }
}

/**
 * A master, replicas and three Sentinels (quorum 2), all with one password: what three boxes
 * with a Redis and a Sentinel each would run. `env` points prompt-player at it.
 */
export async function startSentinelSet (t: T, options: { replicas?: number, downAfterMs?: number } = {}): Promise<{ master: RedisServer, replicas: RedisServer[], sentinels: Sentinel[], password: string, env: Record<string, string> }> {
  const password = 'pool-secret'
  const auth = ['--requirepass', password, '--masterauth', password]
  const master = await RedisServer.start(t, auth)
  const replicas = await Promise.all(Array.from({ length: options.replicas ?? 2 }, async () => await RedisServer.start(t, [...auth, '--replicaof', '127.0.0.1', String(master.port)])))
  const sentinels = await Promise.all([0, 1, 2].map(async () => await Sentinel.start(t, 'pp', master, { downAfterMs: options.downAfterMs ?? 2000, password })))
  // A new replica takes seconds to be of use (Redis 7 waits 5 s before a diskless first sync):
  // until then, a write waiting for one would be refused.
  const admin = new Redis({ port: master.port, host: '127.0.0.1', password, maxRetriesPerRequest: 1 })
  try {
    const started = Date.now()
    while (((await admin.info('replication')).match(/state=online/g)?.length ?? 0) < replicas.length) {
      if (Date.now() - started > 30_000) throw new Error(`the replicas of ${master.port} did not come online: ${await admin.info('replication')}`)
      await sleep(50)
    }
  } finally {
    admin.disconnect()
  }
  return {
    master,
    replicas,
    sentinels,
    password,
    env: { PROMPT_PLAYER_REDIS_SENTINELS: sentinels.map(s => `127.0.0.1:${s.port}`).join(','), PROMPT_PLAYER_REDIS_MASTER: 'pp', PROMPT_PLAYER_REDIS_PASSWORD: password }
  }
}

export interface Instance {
  id: string
  url: string
  port: number
  run: ServerRun
}

/** An instance on this Redis, or on the store `env` names (`PROMPT_PLAYER_REDIS_SENTINELS`, ...). */
export async function startInstance (t: T, redis: RedisServer | null, id: string, env: Record<string, string> = {}): Promise<Instance> {
  const port = await freePort()
  const run = spawnServer(t, { ...(redis === null ? {} : { PROMPT_PLAYER_REDIS_URL: redis.url }), PROMPT_PLAYER_INSTANCE_ID: id, PROMPT_PLAYER_PORT: String(port), PROMPT_PLAYER_LIBRARY: tempDir(t), ...env })
  await waitForLine(run, /prompt-player listening/)
  return { id, url: `http://127.0.0.1:${port}`, port, run }
}

export interface Balancer {
  url: string
  stats: string
  child: ChildProcess
}

/** HAProxy with the repository's configuration in front of three instances. */
export async function startHaproxy (t: T, instances: Instance[]): Promise<Balancer> {
  const port = await freePort()
  const stats = await freePort()
  const env = {
    ...process.env,
    PP_LB_BIND: `127.0.0.1:${port}`,
    PP_STATS_BIND: `127.0.0.1:${stats}`,
    PP_INSTANCE_1: `127.0.0.1:${instances[0]!.port}`,
    PP_INSTANCE_2: `127.0.0.1:${instances[1]!.port}`,
    PP_INSTANCE_3: `127.0.0.1:${instances[2]!.port}`
  }
  // Debian puts haproxy in /usr/sbin, which a user's PATH may lack.
  const binary = fs.existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy'
  const child = spawn(binary, ['-db', '-f', path.join(ROOT, 'deploy', 'haproxy.cfg')], { env, stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await waitForPort(port)
  return { url: `http://127.0.0.1:${port}`, stats: `http://127.0.0.1:${stats}`, child }
}

/** Redis, three instances and HAProxy. */
export async function startPool (t: T): Promise<{ redis: RedisServer, instances: Instance[], lb: Balancer }> {
  const redis = await RedisServer.start(t)
  const instances = await Promise.all(['p1', 'p2', 'p3'].map(async id => await startInstance(t, redis, id)))
  const lb = await startHaproxy(t, instances)
  return { redis, instances, lb }
}
