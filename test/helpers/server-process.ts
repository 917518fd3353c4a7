/**
 * The real entry point (service/server.ts) as a child process, the way `npm start` runs it,
 * with its log lines collected: for startup, shutdown and fault drills.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import type { Test } from 'tap'
import { ROOT, TEST_LATE_LIMIT, TEST_PACKET_THREADS, rtpPorts, sleep } from './index.js'

export const SERVER = path.join(ROOT, 'service', 'server.ts')

export interface ServerRun { child: ChildProcess, lines: string[], exit: Promise<number | null> }

export interface SpawnOptions {
  /** A command the server runs under, ending in `exec "$@"` (unshare, sh -c 'ulimit ...'). */
  wrapper?: string[]
  /**
   * Without tap's process hooks. They use signal-exit, which turns signals Node ignores
   * (SIGXFSZ) back into death; a plain child handles signals as `npm start` does, and reports
   * no coverage. tap puts its hook in NODE_OPTIONS of every child; `env -u` takes it out.
   */
  plain?: boolean
}

export function spawnServer (t: Pick<Test, 'teardown'>, env: Record<string, string>, options: SpawnOptions = {}): ServerRun {
  const range = rtpPorts(20)
  const execArgv = options.plain === true ? process.execArgv.filter(a => !/@tapjs\/(processinfo|mock)/.test(a)) : process.execArgv
  // The test runner's own loader flags let the process run the TypeScript source directly.
  const command = [...options.wrapper ?? [], ...(options.plain === true ? ['env', '-u', 'NODE_OPTIONS'] : []), process.execPath, ...execArgv, SERVER]
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, PROMPT_PLAYER_PORT: '0', PROMPT_PLAYER_RTP_PORTS: `${range.min}-${range.max}`, PROMPT_PLAYER_LATE_LIMIT_PTIMES: String(TEST_LATE_LIMIT), PROMPT_PLAYER_PACKET_THREADS: String(TEST_PACKET_THREADS), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  const collect = (chunk: Buffer): void => { lines.push(...chunk.toString().split('\n').filter(Boolean)) }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  const exit = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })
  return { child, lines, exit }
}

// A server run from the TypeScript source compiles it first, on each of its packet threads too:
// several starting at once on a busy 2-core machine take a while.
export async function waitForLine (run: ServerRun, pattern: RegExp, timeoutMs = 45_000): Promise<string> {
  const started = Date.now()
  for (;;) {
    const line = run.lines.find(l => pattern.test(l))
    if (line !== undefined) return line
    if (Date.now() - started > timeoutMs) throw new Error(`no line like ${pattern} in:\n${run.lines.join('\n')}`)
    await sleep(50)
  }
}
