import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { ConfigError, ConfigSchema, loadConfig } from '../../service/config.js'
import { ROOT } from '../helpers/index.js'

t.test('defaults are those of the API reference', async t => {
  t.same(loadConfig({}), {
    host: '127.0.0.1',
    port: 8080,
    libraryDir: './prompts',
    rtpPorts: { min: 20000, max: 39999 },
    maxPlays: 2000,
    maxUploadBytes: 50 * 1024 * 1024,
    ffmpegPath: 'ffmpeg',
    ffmpegTimeoutMs: 60000,
    ffmpegNiceness: 10,
    maxPromptSeconds: 600,
    maxTranscodes: 2,
    transcodeQueue: 32,
    opusBitrate: 32000,
    logLevel: 'info',
    tokens: [],
    targets: { allow: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'], minPort: 1024 },
    rtcpIntervalMs: 5000,
    fetch: { allow: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'], timeoutMs: 10000, cacheBytes: 268435456 },
    consoleDir: null,
    realtimePriority: 10,
    packetThreads: os.availableParallelism(),
    pacing: 'sleep',
    lateLimitPtimes: 3,
    callbacks: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
    maxPromptsPerPlay: 100,
    rateLimit: 2000,
    requestTimeoutMs: 120000,
    maxConnections: 0,
    pool: null,
    instanceId: '',
    advertiseUrl: '',
    maxEventLoopDelayMs: 1000
  })
})

t.test('values are read and coerced', async t => {
  const config = loadConfig({ PROMPT_PLAYER_PORT: '0', PROMPT_PLAYER_RTP_PORTS: '30000-30099', PROMPT_PLAYER_HOST: '::1', FFMPEG_PATH: '/opt/ffmpeg', PROMPT_PLAYER_CONSOLE_DIR: '/srv/console', PROMPT_PLAYER_OPUS_BITRATE: '64000', PROMPT_PLAYER_PACKET_THREADS: '3', PROMPT_PLAYER_PACING: 'spin', PROMPT_PLAYER_LATE_LIMIT_PTIMES: '0' })
  t.match(config, { port: 0, rtpPorts: { min: 30000, max: 30099 }, host: '::1', ffmpegPath: '/opt/ffmpeg', consoleDir: '/srv/console', opusBitrate: 64000, packetThreads: 3, pacing: 'spin', lateLimitPtimes: 0 })
})

t.test('a bad value stops startup with a message that names the variable', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PROMPT_PLAYER_PORT: '70000' }, /PROMPT_PLAYER_PORT must be <= 65535/],
    [{ PROMPT_PLAYER_PORT: 'eighty' }, /PROMPT_PLAYER_PORT must be integer/],
    [{ PROMPT_PLAYER_RTP_PORTS: 'lots' }, /PROMPT_PLAYER_RTP_PORTS must match pattern/],
    [{ PROMPT_PLAYER_RTP_PORTS: '100-200' }, /PROMPT_PLAYER_RTP_PORTS is "100-200"; give a range MIN-MAX with 1024 <= MIN < MAX <= 65535/],
    [{ PROMPT_PLAYER_RTP_PORTS: '30000-20000' }, /PROMPT_PLAYER_RTP_PORTS is "30000-20000"/],
    [{ PROMPT_PLAYER_MAX_PLAYS: '0' }, /PROMPT_PLAYER_MAX_PLAYS must be >= 1/],
    [{ PROMPT_PLAYER_FFMPEG_NICE: '-5' }, /PROMPT_PLAYER_FFMPEG_NICE must be >= 0/],
    [{ PROMPT_PLAYER_OPUS_BITRATE: '510000' }, /PROMPT_PLAYER_OPUS_BITRATE must be <= 256000/],
    [{ PROMPT_PLAYER_PACKET_THREADS: '0' }, /PROMPT_PLAYER_PACKET_THREADS must be >= 1/],
    [{ PROMPT_PLAYER_PACING: 'fast' }, /PROMPT_PLAYER_PACING/],
    [{ PROMPT_PLAYER_LATE_LIMIT_PTIMES: '-1' }, /PROMPT_PLAYER_LATE_LIMIT_PTIMES must be >= 0/],
    [{ PROMPT_PLAYER_LOG_LEVEL: 'loud' }, /PROMPT_PLAYER_LOG_LEVEL/],
    [{ PROMPT_PLAYER_ALLOWED_TARGETS: '10.0.0.0/8,pbx.example/24' }, /PROMPT_PLAYER_ALLOWED_TARGETS: "pbx.example\/24" is not a network/],
    [{ PROMPT_PLAYER_ALLOWED_TARGETS: '10.0.0.0/33' }, /PROMPT_PLAYER_ALLOWED_TARGETS: "10.0.0.0\/33" has no valid prefix length \(0-32\)/],
    [{ PROMPT_PLAYER_ALLOWED_CALLBACKS: '10.0.0.0/8,ivr.example' }, /PROMPT_PLAYER_ALLOWED_CALLBACKS: "ivr.example" is not a network/],
    [{ PROMPT_PLAYER_MIN_TARGET_PORT: '0' }, /PROMPT_PLAYER_MIN_TARGET_PORT must be >= 1/],
    [{ PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY: '5000' }, /PROMPT_PLAYER_MAX_PROMPTS_PER_PLAY must be <= 1000/],
    [{ PROMPT_PLAYER_REDIS_URL: 'localhost:6379' }, /PROMPT_PLAYER_REDIS_URL must start with redis:\/\/ or rediss:\/\/, not localhost:\/\//],
    [{ PROMPT_PLAYER_REDIS_URL: 'not a url' }, /PROMPT_PLAYER_REDIS_URL is not a URL; give redis:\/\/host:port\/db/],
    [{ PROMPT_PLAYER_ADVERTISE_URL: 'ftp://x' }, /PROMPT_PLAYER_ADVERTISE_URL must be an http:\/\/ or https:\/\/ URL/],
    [{ PROMPT_PLAYER_INSTANCE_ID: 'has space' }, /PROMPT_PLAYER_INSTANCE_ID must match pattern/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
  t.ok(new ConfigError('x') instanceof Error)
})

t.test('a pool: the Redis URL, this instance\'s id and where it is reached', async t => {
  t.match(loadConfig({ PROMPT_PLAYER_REDIS_URL: 'redis://127.0.0.1:6379/2', PROMPT_PLAYER_INSTANCE_ID: 'media-1', PROMPT_PLAYER_ADVERTISE_URL: 'http://10.0.0.5:8080/' }), {
    pool: { redisUrl: 'redis://127.0.0.1:6379/2', keepSource: true },
    instanceId: 'media-1',
    advertiseUrl: 'http://10.0.0.5:8080'
  })
  t.match(loadConfig({ PROMPT_PLAYER_REDIS_URL: 'rediss://:secret@redis.internal:6380/0', PROMPT_PLAYER_REDIS_KEEP_SOURCE: 'false' }), { pool: { keepSource: false } })
  t.notOk('waitReplicas' in loadConfig({ PROMPT_PLAYER_REDIS_URL: 'redis://127.0.0.1:6379/0' }).pool!, 'the number of replicas to wait for is the engine\'s default unless set')
})

t.test('a pool under Sentinel: the Sentinels, the master\'s name, its password, the replicas to wait for', async t => {
  t.same(loadConfig({ PROMPT_PLAYER_REDIS_SENTINELS: '10.0.0.1:26379, sentinel-b:26380,[fd00::3]:26381,sentinel-d', PROMPT_PLAYER_REDIS_MASTER: 'mymaster', PROMPT_PLAYER_REDIS_PASSWORD: 's3cret', PROMPT_PLAYER_REDIS_WAIT_REPLICAS: '2', PROMPT_PLAYER_REDIS_WAIT_MS: '250' }).pool, {
    sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-b', port: 26380 }, { host: 'fd00::3', port: 26381 }, { host: 'sentinel-d', port: 26379 }],
    master: 'mymaster',
    password: 's3cret',
    waitReplicas: 2,
    waitMs: 250,
    keepSource: true
  })
  t.equal(loadConfig({}).pool, null, 'neither: one instance on its own library')
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PROMPT_PLAYER_REDIS_URL: 'redis://127.0.0.1:6379/0', PROMPT_PLAYER_REDIS_SENTINELS: '127.0.0.1:26379', PROMPT_PLAYER_REDIS_MASTER: 'm' }, /set either PROMPT_PLAYER_REDIS_URL \(one Redis\) or PROMPT_PLAYER_REDIS_SENTINELS with PROMPT_PLAYER_REDIS_MASTER/],
    [{ PROMPT_PLAYER_REDIS_URL: 'redis://127.0.0.1:6379/0', PROMPT_PLAYER_REDIS_MASTER: 'm' }, /not both/],
    [{ PROMPT_PLAYER_REDIS_URL: 'redis://127.0.0.1:6379/0', PROMPT_PLAYER_REDIS_PASSWORD: 'x' }, /put the password in the URL \(redis:\/\/:password@host:port\/db\)/],
    [{ PROMPT_PLAYER_REDIS_MASTER: 'mymaster' }, /PROMPT_PLAYER_REDIS_MASTER is "mymaster" but PROMPT_PLAYER_REDIS_SENTINELS is empty; give the Sentinels as host:port,host:port/],
    [{ PROMPT_PLAYER_REDIS_SENTINELS: '127.0.0.1:26379' }, /PROMPT_PLAYER_REDIS_MASTER is empty; give the name the Sentinels monitor the master under/],
    [{ PROMPT_PLAYER_REDIS_SENTINELS: '127.0.0.1:26379,,x', PROMPT_PLAYER_REDIS_MASTER: 'm' }, /PROMPT_PLAYER_REDIS_SENTINELS has ""; give each Sentinel as host:port/],
    [{ PROMPT_PLAYER_REDIS_SENTINELS: '127.0.0.1:70000', PROMPT_PLAYER_REDIS_MASTER: 'm' }, /has "127\.0\.0\.1:70000"/],
    [{ PROMPT_PLAYER_REDIS_SENTINELS: 'fd00::3:26379', PROMPT_PLAYER_REDIS_MASTER: 'm' }, /an IPv6 address in brackets/],
    [{ PROMPT_PLAYER_REDIS_SENTINELS: '127.0.0.1:26379', PROMPT_PLAYER_REDIS_MASTER: 'm', PROMPT_PLAYER_REDIS_WAIT_REPLICAS: '-1' }, /PROMPT_PLAYER_REDIS_WAIT_REPLICAS must be >= 0/],
    [{ PROMPT_PLAYER_REDIS_SENTINELS: '127.0.0.1:26379', PROMPT_PLAYER_REDIS_MASTER: 'm', PROMPT_PLAYER_REDIS_WAIT_MS: '0' }, /PROMPT_PLAYER_REDIS_WAIT_MS must be >= 10/]
  ]
  for (const [env, message] of cases) t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
})

t.test('listening beyond loopback needs tokens', async t => {
  t.throws(() => loadConfig({ PROMPT_PLAYER_HOST: '0.0.0.0' }), { message: /refusing to listen on 0\.0\.0\.0 without authentication.*PROMPT_PLAYER_TOKENS/ })
  t.throws(() => loadConfig({ PROMPT_PLAYER_HOST: '::', PROMPT_PLAYER_TOKENS: ' , ' }), { message: /refusing to listen on ::/ }, 'blank tokens are no tokens')
  t.same(loadConfig({ PROMPT_PLAYER_HOST: '0.0.0.0', PROMPT_PLAYER_TOKENS: 'a, b' }).tokens, ['a', 'b'])
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) {
    t.equal(loadConfig({ PROMPT_PLAYER_HOST: host }).host, host, `${host} needs no token`)
  }
})

t.test('every variable is documented in docs/operations.md', async t => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8')
  for (const variable of Object.keys(ConfigSchema.properties)) t.match(doc, new RegExp(`^\\| \`${variable}\` \\|`, 'm'), `${variable} has a row`)
})
