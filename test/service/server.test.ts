/**
 * The real entry point, run as a process the way `npm start` runs it: what it logs when it
 * starts, the one line it prints when it cannot, and a graceful stop on SIGTERM.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { ROOT, Receiver, rtpPorts, sampleLibrary, sleep, tempDir } from '../helpers/index.js'
import { SERVER, spawnServer, waitForLine, type ServerRun } from '../helpers/server-process.js'

function start (t: Parameters<typeof sampleLibrary>[0], env: Record<string, string>): ServerRun {
  return spawnServer(t, env)
}

t.test('starts with the sample library and says where, with what; SIGTERM stops plays and exits 0', async t => {
  const library = sampleLibrary(t)
  const run = start(t, { PROMPT_PLAYER_LIBRARY: library })
  const line = JSON.parse(await waitForLine(run, /prompt-player listening/))
  t.match(line, { library, prompts: 9, ffmpeg: /^ffmpeg \(\d/, url: /^http:\/\/127\.0\.0\.1:\d+$/, msg: /listening on http:\/\/127\.0\.0\.1:\d+ with 9 prompts from/ })
  const receiver = await Receiver.open(t)
  const res = await fetch(`${line.url}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'] }) })
  t.equal(res.status, 201)
  await receiver.waitFor(5)
  run.child.kill('SIGTERM')
  t.equal(await run.exit, 0, 'exit 0')
  await sleep(50)
  const count = receiver.packets.length
  await sleep(100)
  t.equal(receiver.packets.length, count, 'no packet after the process exited')
  t.ok(run.lines.some(l => /shutting down: stopping plays/.test(l) && /"playsRunning":1/.test(l)), 'the shutdown is logged with the plays it stopped')
})

t.test('a port in use: one line that says so and what to do, exit 1', async t => {
  const blocker = net.createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as net.AddressInfo).port
  const run = start(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t), PROMPT_PLAYER_PORT: String(port) })
  t.equal(await run.exit, 1)
  const line = await waitForLine(run, /cannot listen/)
  t.match(line, new RegExp(`port ${port} on 127.0.0.1 is in use by another process; stop it or set PROMPT_PLAYER_PORT`))
})

t.test('bad configuration: one line naming the variable, exit 1', async t => {
  const run = start(t, { PROMPT_PLAYER_RTP_PORTS: '10-20' })
  t.equal(await run.exit, 1)
  t.same(run.lines, ['prompt-player: invalid configuration: PROMPT_PLAYER_RTP_PORTS is "10-20"; give a range MIN-MAX with 1024 <= MIN < MAX <= 65535, e.g. 20000-39999'])
})

t.test('a pool whose Redis cannot be reached: one line saying where it looked, exit 1', async t => {
  const closed = net.createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as net.AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  const run = start(t, { PROMPT_PLAYER_REDIS_URL: `redis://:hunter2@127.0.0.1:${port}/0` })
  t.equal(await run.exit, 1)
  t.equal(run.lines.length, 1)
  t.match(run.lines[0], new RegExp(`^prompt-player: cannot start: cannot reach the pool's Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED.*; start it, or fix PROMPT_PLAYER_REDIS_URL$`))
  t.notMatch(run.lines[0], /hunter2/, 'the password is not printed')
})

t.test('a pool whose Sentinels cannot be reached: one line naming them and the variable, exit 1', async t => {
  const closed = net.createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as net.AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  const run = start(t, { PROMPT_PLAYER_REDIS_SENTINELS: `127.0.0.1:${port}`, PROMPT_PLAYER_REDIS_MASTER: 'pp', PROMPT_PLAYER_REDIS_PASSWORD: 'hunter2' })
  t.equal(await run.exit, 1)
  t.equal(run.lines.length, 1)
  t.match(run.lines[0], new RegExp(`^prompt-player: cannot start: cannot reach the pool's Redis at master "pp" of the Sentinels at 127\\.0\\.0\\.1:${port}: no Sentinel answered; start it, or fix PROMPT_PLAYER_REDIS_SENTINELS$`))
  t.notMatch(run.lines[0], /hunter2/, 'the password is not printed')
})

t.test('a library path that is not a directory: one line naming it, exit 1', async t => {
  const file = path.join(tempDir(t), 'not-a-dir')
  fs.writeFileSync(file, 'x')
  const run = start(t, { PROMPT_PLAYER_LIBRARY: file })
  t.equal(await run.exit, 1)
  t.equal(run.lines.length, 1)
  t.match(run.lines[0], new RegExp(`^prompt-player: cannot start: cannot open the prompt library at ${file}: `))
})

t.test('no ffmpeg: starts anyway and logs one line that says what is wrong', async t => {
  const run = start(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t), FFMPEG_PATH: '/nonexistent/ffmpeg' })
  const line = JSON.parse(await waitForLine(run, /ffmpeg is not usable/))
  t.match(line.msg, /uploads will fail until it is: cannot run ffmpeg at "\/nonexistent\/ffmpeg".*apt-get install -y ffmpeg/)
  const listening = JSON.parse(await waitForLine(run, /prompt-player listening/))
  t.equal(listening.ffmpeg, null)
  const ready = await fetch(`${listening.url}/readyz`)
  t.equal(ready.status, 503)
  run.child.kill('SIGINT')
  t.equal(await run.exit, 0, 'SIGINT stops it too')
})

t.test('a library entry that cannot be read is skipped with a warning', async t => {
  const library = sampleLibrary(t)
  fs.writeFileSync(path.join(library, 'broken.json'), '{')
  const run = start(t, { PROMPT_PLAYER_LIBRARY: library })
  const warning = JSON.parse(await waitForLine(run, /library entry skipped/))
  t.match(warning, { level: 40, file: path.join(library, 'broken.json') })
  const listening = JSON.parse(await waitForLine(run, /prompt-player listening/))
  t.equal(listening.prompts, 9)
  run.child.kill('SIGTERM')
  await run.exit
})

t.test('an open-file limit too low for the configured plays is said at startup, with what to raise', async t => {
  const range = rtpPorts(20)
  const child = spawn('bash', ['-c', 'ulimit -n 600 && exec "$0" "$@"', process.execPath, ...process.execArgv, SERVER], {
    env: { ...process.env, PROMPT_PLAYER_PORT: '0', PROMPT_PLAYER_RTP_PORTS: `${range.min}-${range.max}`, PROMPT_PLAYER_LIBRARY: sampleLibrary(t), PROMPT_PLAYER_MAX_PLAYS: '2000' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const run: ServerRun = { child, lines: [], exit: new Promise(resolve => child.on('exit', code => resolve(code))) }
  child.stdout.on('data', (chunk: Buffer) => { run.lines.push(...chunk.toString().split('\n').filter(Boolean)) })
  t.teardown(() => { child.kill('SIGKILL') })
  const warning = JSON.parse(await waitForLine(run, /open-file limit/))
  t.match(warning, { level: 40, openFileLimit: 600, maxPlays: 2000, msg: /the open-file limit is 600, below the 4256 that 2000 plays need \(two UDP sockets each.*ulimit -n 65536.*LimitNOFILE.*PROMPT_PLAYER_MAX_PLAYS/ })
  const listening = JSON.parse(await waitForLine(run, /prompt-player listening/))
  t.equal(listening.openFileLimit, 600)
  child.kill('SIGTERM')
  t.equal(await run.exit, 0)
})

t.test('the packet thread runs ahead of the HTTP thread and of ffmpeg', async t => {
  const run = start(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t) })
  const line = JSON.parse(await waitForLine(run, /prompt-player listening/))
  const threads = threadsOf(run.child.pid!)
  const main = threads.find(th => th.tid === run.child.pid)!
  t.equal(main.nice, line.httpThreadNiceness, 'the log says the HTTP thread\'s niceness')
  t.ok(line.packetThreadNiceness < line.httpThreadNiceness, `packets (${line.packetThreadNiceness}) ahead of HTTP (${line.httpThreadNiceness})`)
  t.ok(threads.some(th => th.nice === line.packetThreadNiceness && th.tid !== run.child.pid), 'a thread of the process runs at the packet niceness')
  // The real-time policy where the process may take it (root here, or CAP_SYS_NICE): on the
  // packet thread alone, as the startup line says.
  const fifo = threads.filter(th => th.policy === SCHED_FIFO)
  if (process.getuid?.() === 0) t.equal(line.packetThreadRealtime, 10, 'as root, the packet thread takes SCHED_FIFO 10')
  t.same(fifo.map(th => th.rtPriority), line.packetThreadRealtime === null ? [] : [line.packetThreadRealtime], `one thread runs SCHED_FIFO at the priority the log says (${line.packetThreadRealtime})`)
  t.ok(fifo.every(th => th.nice === line.packetThreadNiceness), 'and it is the packet thread')
  run.child.kill('SIGTERM')
  await run.exit

  const plain = start(t, { PROMPT_PLAYER_LIBRARY: sampleLibrary(t), PROMPT_PLAYER_REALTIME_PRIORITY: '0' })
  const plainLine = JSON.parse(await waitForLine(plain, /prompt-player listening/))
  t.equal(plainLine.packetThreadRealtime, null, 'PROMPT_PLAYER_REALTIME_PRIORITY=0: niceness only')
  t.same(threadsOf(plain.child.pid!).filter(th => th.policy === SCHED_FIFO), [], 'no real-time thread')
  plain.child.kill('SIGTERM')
  await plain.exit
})

const SCHED_FIFO = 1

/** Each thread of a process: niceness, scheduling policy and real-time priority (proc(5), stat fields 19, 41, 40). */
function threadsOf (pid: number): Array<{ tid: number, nice: number, policy: number, rtPriority: number }> {
  return fs.readdirSync(`/proc/${pid}/task`).map(tid => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { tid: Number(tid), nice: Number(fields[16]), rtPriority: Number(fields[37]), policy: Number(fields[38]) }
  })
}

t.test('kill -9 in the middle of an upload, then a restart: no half prompt listed or left on disk', async t => {
  const library = sampleLibrary(t)
  const first = start(t, { PROMPT_PLAYER_LIBRARY: library })
  const line = JSON.parse(await waitForLine(first, /prompt-player listening/))
  const before = fs.readdirSync(library).filter(f => f.endsWith('.json')).sort()
  // An upload whose body never finishes: the server holds a partial request when it dies.
  const url = new URL(line.url)
  const socket = net.connect(Number(url.port), url.hostname)
  socket.on('error', () => {})
  socket.write('PUT /v1/prompts/half HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n' + 'RIFF'.padEnd(50_000, 'x'))
  // And a complete one in flight while the process dies.
  const whole = fetch(`${line.url}/v1/prompts/racing`, { method: 'PUT', body: fs.readFileSync(path.join(ROOT, 'prompts', 'media', fs.readdirSync(path.join(ROOT, 'prompts', 'media'))[0]!, 'source')) }).catch(() => null)
  await sleep(30)
  first.child.kill('SIGKILL')
  await first.exit
  socket.destroy()
  await whole
  const second = start(t, { PROMPT_PLAYER_LIBRARY: library })
  const again = JSON.parse(await waitForLine(second, /prompt-player listening/))
  const after = fs.readdirSync(library).filter(f => f.endsWith('.json')).sort()
  t.notOk(after.includes('half.json'), 'the unfinished upload is not in the library')
  t.ok(after.length === before.length || (after.length === before.length + 1 && after.includes('racing.json')), `either the racing upload committed whole or not at all (${after.join(', ')})`)
  t.equal(again.prompts, after.length, 'the restarted service lists exactly the committed prompts')
  t.same(fs.readdirSync(path.join(library, '.tmp')), [], 'no temporary file survives the restart')
  const res = await fetch(`${again.url}/v1/prompts`)
  const listed = (await res.json() as { prompts: Array<{ name: string }> }).prompts.map(p => `${p.name}.json`).sort()
  t.same(listed, after)
  second.child.kill('SIGTERM')
  await second.exit
})
