/**
 * Podman for the image's test, on these machines: Debian's podman as root, with runc (crun
 * fails on their cgroup mode), cgroupfs and no default ulimits (not permitted here), set in a
 * containers.conf of the test's own, and image storage in a directory the tests own, kept
 * between runs.
 *
 * No image registry is reachable, so the Dockerfile's base (`NODE_IMAGE`, by default
 * node:20-bookworm-slim) is made here as that image is made: Debian bookworm by debootstrap,
 * this machine's Node.js and npm in /usr/local, a user `node` with uid 1000. It is made once
 * per Node version and kept.
 */
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Where the tests keep podman's storage and the base image between runs. */
export const CACHE = process.env.PROMPT_PLAYER_TEST_CACHE ?? path.join(os.homedir(), '.cache', 'prompt-player-tests')

const MIRROR = process.env.PROMPT_PLAYER_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian'

/** The environment podman runs in: the tests' containers.conf and storage. */
export function podmanEnv (): NodeJS.ProcessEnv {
  const dir = path.join(CACHE, 'podman')
  fs.mkdirSync(dir, { recursive: true })
  const containers = path.join(dir, 'containers.conf')
  fs.writeFileSync(containers, '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
  const storage = path.join(dir, 'storage.conf')
  fs.writeFileSync(storage, `[storage]\ndriver = "overlay"\ngraphroot = "${path.join(dir, 'storage')}"\nrunroot = "${path.join(dir, 'run')}"\n`)
  return { ...process.env, CONTAINERS_CONF: containers, CONTAINERS_STORAGE_CONF: storage }
}

/** Runs podman; rejects with its stderr's last lines. */
export async function podman (args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await run('podman', args, { env: podmanEnv(), maxBuffer: 64 << 20, timeout: options.timeoutMs ?? 60_000 })
    return stdout
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`podman ${args.slice(0, 2).join(' ')} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-8).join('\n')}`)
  }
}

/** A command's output to a log file, rejecting with the log's tail when it fails. */
async function logged (command: string, args: string[], log: string, env: NodeJS.ProcessEnv = process.env, input?: NodeJS.ReadableStream): Promise<void> {
  const out = fs.openSync(log, 'a')
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command, args, { env, stdio: [input === undefined ? 'ignore' : 'pipe', out, out] })
      if (input !== undefined) input.pipe(child.stdin!)
      child.once('error', reject)
      child.once('exit', code => {
        if (code === 0) resolve()
        else reject(new Error(`${command} ${args.slice(0, 2).join(' ')} exited with ${code}: ${fs.readFileSync(log, 'utf8').trim().split('\n').slice(-8).join('\n')}`))
      })
    })
  } finally {
    fs.closeSync(out)
  }
}

/**
 * The base image, `localhost/prompt-player-test-base:bookworm-node<version>`: made by
 * debootstrap and podman import when it is not in the tests' storage yet (about 40 s).
 */
export async function baseImage (log: string): Promise<string> {
  const tag = `localhost/prompt-player-test-base:bookworm-node${process.versions.node}`
  const exists = await podman(['image', 'exists', tag]).then(() => true, () => false)
  if (exists) return tag
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'prompt-player-rootfs-'))
  try {
    await logged('debootstrap', ['--variant=minbase', 'bookworm', root, MIRROR], log)
    // Node.js as the official images have it: the binary and npm under /usr/local.
    const prefix = path.resolve(path.dirname(process.execPath), '..')
    fs.mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true })
    fs.mkdirSync(path.join(root, 'usr/local/lib/node_modules'), { recursive: true })
    fs.copyFileSync(process.execPath, path.join(root, 'usr/local/bin/node'))
    fs.cpSync(path.join(prefix, 'lib/node_modules/npm'), path.join(root, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true })
    fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'))
    fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/local/bin/npx'))
    await logged('chroot', [root, 'sh', '-c', 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node'], log)
    const changes = ['--change', 'CMD ["node"]']
    // This machine reaches the npm registry through a proxy whose certificate authority Node
    // is told of here; the build's npm needs to know it too.
    const extra = process.env.NODE_EXTRA_CA_CERTS
    if (extra !== undefined && fs.existsSync(extra)) {
      fs.mkdirSync(path.join(root, 'usr/local/share/ca-certificates'), { recursive: true })
      fs.copyFileSync(extra, path.join(root, 'usr/local/share/ca-certificates/host.pem'))
      changes.push('--change', 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/host.pem')
    }
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
    await logged('podman', ['import', ...changes, '-', tag], log, podmanEnv(), tar.stdout)
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
  return tag
}

/** Builds the repository's Dockerfile on the base image (about 100 s); npm's cache is shared with this machine's. */
export async function buildImage (root: string, tag: string, base: string, log: string): Promise<void> {
  const npmCache = path.join(os.homedir(), '.npm')
  fs.mkdirSync(npmCache, { recursive: true })
  await logged('podman', ['build', '--format', 'docker', '--network', 'host', '--volume', `${npmCache}:/root/.npm`, '--build-arg', `NODE_IMAGE=${base}`, '--tag', tag, root], log, podmanEnv())
}
