/**
 * The container image, built and run: podman builds the repository's Dockerfile (on a base made
 * by debootstrap, since no registry is reachable here: test/helpers/podman.ts), and the image
 * starts, serves /healthz (its HEALTHCHECK passes), runs as the user `node` with Debian's
 * ffmpeg and the sample prompts, takes an upload (an MP3 named .wma) and plays it to a UDP
 * receiver on the host, which ffmpeg decodes to the source's audio; SIGTERM stops it cleanly.
 * Then deploy/compose.yaml is checked against what was built and run: the image's name, the
 * ports it exposes, the variables it reads.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ConfigSchema, loadConfig } from '../../service/config.js'
import { freePort } from '../helpers/cluster.js'
import { correlation, Receiver, referenceDecode, ROOT, sample, tempDir } from '../helpers/index.js'
import { multipart } from '../helpers/multipart.js'
import { json, until } from '../helpers/sse.js'
import { baseImage, buildImage, podman } from '../helpers/podman.js'

t.setTimeout(900_000)

const IMAGE = 'localhost/prompt-player:latest'
const TOKEN = 'image-test-token'

t.test('podman builds the Dockerfile; the image serves, takes an upload and plays it to the host', async t => {
  const log = path.join(tempDir(t, 'prompt-player-image-'), 'build.log')
  const base = await baseImage(log)
  await buildImage(ROOT, IMAGE, base, log)
  const inspected = JSON.parse(await podman(['image', 'inspect', IMAGE]))[0]
  t.equal(inspected.Config.User, 'node', 'the image runs as the user node')
  t.same(Object.keys(inspected.Config.ExposedPorts).sort(), ['20000-39999/udp', '8080/tcp'].sort(), 'it exposes the HTTP port and the RTP range')
  t.match(inspected.Healthcheck, { Test: ['CMD', 'node', '-e', /\/healthz/] }, 'with its HEALTHCHECK')

  const port = await freePort()
  const rtp = 30000 + (process.pid % 4000) * 2
  const name = `prompt-player-image-test-${process.pid}`
  // Host network: the container's 127.0.0.1 is the host's, where the receiver listens.
  await podman(['run', '--detach', '--name', name, '--network', 'host',
    '--env', 'PROMPT_PLAYER_HOST=127.0.0.1', '--env', `PROMPT_PLAYER_PORT=${port}`,
    '--env', `PROMPT_PLAYER_RTP_PORTS=${rtp}-${rtp + 39}`, '--env', `PROMPT_PLAYER_TOKENS=${TOKEN}`, IMAGE])
  t.teardown(async () => { await podman(['rm', '--force', name]).catch(() => {}) })
  const url = `http://127.0.0.1:${port}`
  const auth = { authorization: `Bearer ${TOKEN}` }
  await until('the container answers /healthz', async () => (await fetch(`${url}/healthz`).catch(() => null))?.status === 200, 60_000)
  await podman(['healthcheck', 'run', name])
  t.pass('the image\'s HEALTHCHECK passes')
  t.match(await json(await fetch(`${url}/readyz`)), { status: 'ready', prompts: 9 }, 'ready, with the sample prompts')
  t.equal((await podman(['exec', name, 'id', '-u'])).trim(), '1000', 'the service runs as uid 1000')
  t.match(await podman(['exec', name, 'ffmpeg', '-version']), /^ffmpeg version/, 'with Debian\'s ffmpeg')
  t.equal((await fetch(`${url}/v1/prompts`)).status, 401, 'the token is required')

  const source = sample('renamed')
  const form = await multipart({ file: { bytes: source.bytes, filename: source.filename } })
  const upload = await fetch(`${url}/v1/prompts/menu-choice`, { method: 'PUT', headers: { ...auth, ...form.headers }, body: new Uint8Array(form.payload) })
  t.equal(upload.status, 201, 'an upload')
  t.match(await json(upload), { name: 'menu-choice', source: { container: source.container, filename: source.filename } }, `detected as ${source.container}, whatever its name (${source.filename})`)

  const receiver = await Receiver.open(t)
  const res = await fetch(`${url}/v1/plays`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu-choice'], rtcp: 'off' }) })
  t.equal(res.status, 201, 'a play to the host')
  const play = await json(res)
  const ended = await until('the play finished', async () => {
    const state = await json(await fetch(`${url}/v1/plays/${play.id as string}`, { headers: auth }))
    return state.state === 'finished' ? state : undefined
  }, 60_000)
  await receiver.waitFor(ended.packetsSent)
  t.equal(receiver.packets.length, ended.packetsSent, `every packet arrived (${ended.packetsSent})`)
  const payload = Buffer.concat(receiver.packets.map(p => p.rtp.payload))
  const heard = correlation(await referenceDecode(payload, 'mulaw'), await referenceDecode(source.path))
  t.ok(heard > 0.9, `ffmpeg decodes what arrived to the uploaded audio (correlation ${heard.toFixed(3)})`)

  await podman(['stop', '--time', '20', name], { timeoutMs: 30_000 })
  const state = JSON.parse(await podman(['inspect', name]))[0].State
  t.equal(state.ExitCode, 0, 'SIGTERM stops it cleanly (exit 0)')
  t.match(await podman(['logs', name]), /prompt-player listening on/, 'its log went to stdout')
})

t.test('deploy/compose.yaml names the image, ports and variables that were built and run', async t => {
  const compose = fs.readFileSync(path.join(ROOT, 'deploy', 'compose.yaml'), 'utf8')
  t.match(compose, /^\s+image: prompt-player$/m, 'the instances run the image the test built (prompt-player)')
  t.match(compose, /docker build -t prompt-player \./, 'and say how to build it')
  const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
  const exposed = /^EXPOSE (\d+)\/tcp (\d+)-(\d+)\/udp$/m.exec(dockerfile)!
  const httpPort = Number(exposed[1])
  const [rtpMin, rtpMax] = [Number(exposed[2]), Number(exposed[3])]
  t.match(compose, new RegExp(`PROMPT_PLAYER_PORT: "${httpPort}"`), 'the instances listen on the port the image exposes')
  const variables = Object.keys(ConfigSchema.properties)
  const named = [...compose.matchAll(/^\s+(PROMPT_PLAYER_[A-Z_]+):/gm)].map(m => m[1]!)
  t.ok(named.length >= 5)
  t.same(named.filter(v => !variables.includes(v)), [], `every variable it sets is one the service reads (${[...new Set(named)].join(', ')})`)
  const instances = [...compose.matchAll(/PROMPT_PLAYER_RTP_PORTS: (\d+)-(\d+)\n\s+ports: \["(\d+)-(\d+):(\d+)-(\d+)\/udp"\]/g)]
  t.equal(instances.length, 3, 'three instances, each with an RTP range and its published ports')
  for (const m of instances) {
    const [min, max, hostMin, hostMax, innerMin, innerMax] = m.slice(1).map(Number) as [number, number, number, number, number, number]
    t.same([hostMin, hostMax, innerMin, innerMax], [min, max, min, max], `${min}-${max} is published as itself (the SDP names the port the packets leave from)`)
    t.ok(min >= rtpMin && max <= rtpMax, `${min}-${max} is within the image's EXPOSE ${rtpMin}-${rtpMax}/udp`)
    // What an instance of the compose file is started with passes the service's own checks.
    const env = { PROMPT_PLAYER_REDIS_URL: 'redis://redis:6379/0', PROMPT_PLAYER_TOKENS: 'x', PROMPT_PLAYER_HOST: '0.0.0.0', PROMPT_PLAYER_PORT: String(httpPort), PROMPT_PLAYER_RTP_PORTS: `${min}-${max}` }
    t.match(loadConfig(env), { port: httpPort, rtpPorts: { min, max }, pool: { redisUrl: 'redis://redis:6379/0' } })
  }
})
