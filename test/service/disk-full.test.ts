/**
 * Fault drills for storage: the real server process on a disk that fills up (a small tmpfs in
 * a private mount namespace) and under a file-size limit (RLIMIT_FSIZE). Every upload that
 * cannot be stored is answered 507 STORAGE_FAILED saying which step failed and why, and leaves
 * nothing behind: no temporary file, no media without a prompt, no description without media.
 * The prompts stored before keep playing, and space freed is usable again.
 */
import { execFile, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { wavFile } from '../../src/library/wav.js'
import { Receiver, tempDir } from '../helpers/index.js'
import { spawnServer, waitForLine, type ServerRun, type SpawnOptions } from '../helpers/server-process.js'

const run = promisify(execFile)

interface Server extends ServerRun { url: string, root: string }

async function start (t: Test, library: string, options: SpawnOptions = {}): Promise<Server> {
  const server = spawnServer(t, { PROMPT_PLAYER_LIBRARY: library }, options)
  const line = JSON.parse(await waitForLine(server, /prompt-player listening/))
  // The library as the server sees it: /proc/<pid>/root shows the process's own mounts.
  return { ...server, url: line.url, root: `/proc/${server.child.pid}/root` }
}

/** A tone as a WAV at 8 kHz: distinct frequencies make distinct media. */
function tone (seconds: number, hz: number): Buffer {
  const samples = Math.round(seconds * 8000)
  const pcm = Buffer.alloc(samples * 2)
  for (let i = 0; i < samples; i++) pcm.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * hz * i / 8000)), i * 2)
  return wavFile(pcm, 8000)
}

async function put (server: Server, name: string, body: Buffer): Promise<{ status: number, json: any }> {
  const res = await fetch(`${server.url}/v1/prompts/${name}`, { method: 'PUT', body: new Uint8Array(body) })
  return { status: res.status, json: await res.json() }
}

async function listed (server: Server): Promise<Array<{ name: string, source: { sha256: string } }>> {
  const res = await fetch(`${server.url}/v1/prompts`)
  return (await res.json() as { prompts: Array<{ name: string, source: { sha256: string } }> }).prompts
}

/**
 * The library as the server sees it (through /proc/<pid>/root, which shows the process's own
 * mounts), compared with what it lists: one description and one media directory per prompt,
 * each media directory whole, and nothing in .tmp.
 */
async function checkNothingLeft (t: Test, server: Server, library: string, when: string): Promise<void> {
  const dir = path.join(server.root, library)
  const prompts = await listed(server)
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [], `${when}: .tmp is empty`)
  t.same(fs.readdirSync(dir).filter(f => f.endsWith('.json')).sort(), prompts.map(p => `${p.name}.json`).sort(), `${when}: a description for each listed prompt, and no other`)
  const media = [...new Set(prompts.map(p => p.source.sha256))].sort()
  t.same(fs.readdirSync(path.join(dir, 'media')).sort(), media, `${when}: media for each listed prompt, and no other`)
  for (const sha of media) t.same(fs.readdirSync(path.join(dir, 'media', sha)).sort(), ['g722', 'opus-20', 'pcma', 'pcmu', 'source'], `${when}: media ${sha.slice(0, 8)} is whole`)
}

function sha (file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

/** A low-bitrate MP3: small to upload, large once decoded (8 kB per second per law). */
async function longMp3 (dir: string, seconds: number): Promise<Buffer> {
  const file = path.join(dir, 'long.mp3')
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=f=300:d=${seconds}`, '-ar', '8000', '-b:a', '8k', file])
  return fs.readFileSync(file)
}

/** Plays a prompt to a receiver on 127.0.0.1 and returns the payloads. */
async function playAll (t: Test, server: Server, prompt: string, packets: number): Promise<Buffer> {
  const receiver = await Receiver.open(t)
  const res = await fetch(`${server.url}/v1/plays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: [prompt] }) })
  t.equal(res.status, 201, `${prompt} plays`)
  await receiver.waitFor(packets)
  return Buffer.concat(receiver.packets.map(p => p.rtp.payload))
}

function namespacesWork (): boolean {
  try {
    execFileSync('unshare', ['--user', '--map-root-user', '--mount', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

t.test('a disk that fills up (tmpfs of 512 KiB): 507 at every step, nothing left behind, stored prompts play, freed space is used', async t => {
  // unshare gives the server its own mount namespace, so the tmpfs is private to it and gone
  // when it exits; no privilege is needed where user namespaces are allowed (Debian's default).
  // Where they are not but the tests run as root, the tmpfs is mounted for all and unmounted after.
  const library = tempDir(t)
  const mount = ['sh', '-c', 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"', 'sh', '512k', library]
  const private_ = namespacesWork()
  if (!private_) t.teardown(() => { try { execFileSync('umount', [library]) } catch {} })
  const server = await start(t, library, { wrapper: private_ ? ['unshare', '--user', '--map-root-user', '--mount', ...mount] : mount })
  const dir = path.join(server.root, library)
  t.same(fs.readdirSync(dir).sort(), ['.tmp', '.url-cache', 'media'], 'the server sees its empty tmpfs, not the directory under it')

  const keep = await put(server, 'keep', tone(1, 440))
  t.equal(keep.status, 201)
  const keepPcmu = path.join(dir, 'media', keep.json.source.sha256, 'pcmu')
  const keepHash = sha(keepPcmu)

  // Step 1: the upload itself does not fit.
  const big = await put(server, 'big', tone(40, 500))
  t.equal(big.status, 507)
  t.match(big.json, { statusCode: 507, code: 'STORAGE_FAILED', message: /^could not write the prompt library while saving the upload \(the disk is full\): ENOSPC.*; nothing was stored$/ })
  await checkNothingLeft(t, server, library, 'after an upload too big for the disk')

  // Step 2: the upload fits, its transcoded audio does not (ffmpeg hits the full disk).
  const mp3 = await longMp3(tempDir(t), 60)
  t.ok(mp3.length < 100_000, `the MP3 is small (${mp3.length} bytes)`)
  const long = await put(server, 'long', mp3)
  t.equal(long.status, 507)
  t.match(long.json, { code: 'STORAGE_FAILED', message: /^could not write the prompt library while transcoding it: ffmpeg could not write its output \(the disk is full\); nothing was stored$/ })
  await checkNothingLeft(t, server, library, 'after a transcode that filled the disk')

  // Fill the disk with 1 s prompts (13 pages each on tmpfs: 4 source, 2 + 2 G.711, 2 G.722, 2
  // Opus, 1 description).
  const fillers: string[] = []
  for (let i = 0; ; i++) {
    const res = await put(server, `filler${i}`, tone(1, 200 + 10 * i))
    if (res.status !== 201) {
      t.equal(res.status, 507, 'the disk is full')
      break
    }
    fillers.push(`filler${i}`)
  }
  t.ok(fillers.length >= 5, `${fillers.length} one-second prompts stored before the disk was full`)
  // Then tiny prompts (one page per file, six per prompt: the source, four renditions, the
  // description). Freeing a filler's 13 pages and refilling with tiny prompts leaves a different
  // remainder each round (13 mod 6 = 1), so the uploads fail at every step in turn: the source,
  // ffmpeg's output, the description.
  const steps = new Map<string, number>()
  let tiny = 0
  let sawReadyFull = false
  for (let round = 0; round < 8 && steps.size < 3; round++) {
    for (;;) {
      const res = await put(server, `tiny${tiny}`, tone(0.02, 1000 + tiny))
      tiny++
      if (res.status === 201) continue
      t.equal(res.status, 507, 'a tiny upload on the full disk: 507')
      const step = /while (saving the upload|transcoding it|writing its description)/.exec(res.json.message)?.[1] ?? res.json.message
      t.match(res.json.message, /the disk is full/)
      steps.set(step, (steps.get(step) ?? 0) + 1)
      await checkNothingLeft(t, server, library, `after a failure while ${step}`)
      if (step === 'saving the upload' && !sawReadyFull) {
        // Not one page free: the readiness probe cannot write either, and says why.
        const ready = await fetch(`${server.url}/readyz`)
        t.equal(ready.status, 503)
        t.match((await ready.json() as { problems: string[] }).problems, [/not readable and writable: the disk is full: ENOSPC/])
        sawReadyFull = true
      }
      break
    }
    const freed = await fetch(`${server.url}/v1/prompts/${fillers.pop()!}`, { method: 'DELETE' })
    t.equal(freed.status, 204)
  }
  t.same([...steps.keys()].sort(), ['saving the upload', 'transcoding it', 'writing its description'], `the full disk was met at every step of an upload (${JSON.stringify(Object.fromEntries(steps))})`)
  t.ok(sawReadyFull, '/readyz said the disk was full while it was')

  // What was stored before is untouched and plays.
  t.equal(sha(keepPcmu), keepHash, 'the stored audio of "keep" is unchanged')
  const payload = await playAll(t, server, 'keep', 50)
  t.same(payload, fs.readFileSync(keepPcmu).subarray(0, payload.length), 'and it plays byte for byte')

  // Space freed is space usable: the service is not wedged by the full disk.
  for (const name of fillers.splice(0, 3)) await fetch(`${server.url}/v1/prompts/${name}`, { method: 'DELETE' })
  const after = await put(server, 'after', tone(1, 777))
  t.equal(after.status, 201, 'an upload after freeing space is stored')
  await checkNothingLeft(t, server, library, 'at the end')
  server.child.kill('SIGTERM')
  t.equal(await server.exit, 0)
})

t.test('a file-size limit (RLIMIT_FSIZE, as systemd LimitFSIZE sets): 507 saying so, nothing left behind', async t => {
  const library = tempDir(t)
  const limit = 256 * 1024
  // Node ignores SIGXFSZ, so a write past the limit fails with EFBIG; a plain child (without
  // tap's hooks, which would turn SIGXFSZ back into death) handles it as `npm start` does.
  const server = await start(t, library, { plain: true })
  // Set on the running process (TypeScript's loader, used by the tests, caches to files at
  // startup); ffmpeg, started by it, inherits the limit.
  execFileSync('prlimit', ['--pid', String(server.child.pid), `--fsize=${limit}`])
  const small = await put(server, 'small', tone(1, 440))
  t.equal(small.status, 201, 'a prompt under the limit is stored')

  const big = await put(server, 'big', tone(20, 500))
  t.equal(big.status, 507)
  t.match(big.json, { code: 'STORAGE_FAILED', message: /^could not write the prompt library while saving the upload \(a file-size limit was reached \(ulimit -f, systemd LimitFSIZE\)\): EFBIG/ })
  await checkNothingLeft(t, server, library, 'after an upload over the file-size limit')

  // ffmpeg inherits the limit and dies of SIGXFSZ when its output passes it.
  const long = await put(server, 'long', await longMp3(tempDir(t), 40))
  t.equal(long.status, 507)
  t.match(long.json, { code: 'STORAGE_FAILED', message: /while transcoding it: ffmpeg could not write its output \(a file-size limit was reached/ })
  await checkNothingLeft(t, server, library, 'after ffmpeg was stopped by the file-size limit')

  const payload = await playAll(t, server, 'small', 50)
  t.same(payload, fs.readFileSync(path.join(library, 'media', small.json.source.sha256, 'pcmu')).subarray(0, payload.length), 'the prompt stored before plays byte for byte')
  server.child.kill('SIGTERM')
  t.equal(await server.exit, 0)
})
