import t from 'tap'
import { Receiver, buildApp, sample, tempDir } from '../helpers/index.js'

/** The value of one sample line of the exposition, e.g. `prompt_player_plays_running`. */
function value (text: string, series: string): number {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  if (line === undefined) throw new Error(`no series ${series} in\n${text.slice(0, 400)}`)
  return Number(line.slice(series.length + 1))
}

t.test('/metrics counts plays, packets, lateness, uploads and ffmpeg runs; needs no token', async t => {
  const app = await buildApp(t, { libraryDir: tempDir(t), tokens: ['tok'] })
  const auth = { authorization: 'Bearer tok' }
  await app.inject({ method: 'PUT', url: '/v1/prompts/hello', payload: sample('welcome').bytes, headers: auth })
  await app.inject({ method: 'PUT', url: '/v1/prompts/bad', payload: Buffer.from('text'), headers: auth })
  const receiver = await Receiver.open(t)
  const a = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello'] }, headers: auth })).json()
  const b = (await app.inject({ method: 'POST', url: '/v1/plays', payload: { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['hello'] }, headers: auth })).json()
  await receiver.waitFor(10)
  await app.inject({ method: 'DELETE', url: `/v1/plays/${a.id}`, headers: auth })

  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200, 'open without a token, like /healthz')
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = res.body
  t.equal(value(text, 'prompt_player_plays_running'), 1)
  t.equal(value(text, 'prompt_player_plays_started_total'), 2)
  t.equal(value(text, 'prompt_player_plays_ended_total{state="stopped"}'), 1)
  t.equal(value(text, 'prompt_player_plays_ended_total{state="finished"}'), 0)
  const play = (await app.inject({ url: `/v1/plays/${b.id}`, headers: auth })).json()
  const stopped = (await app.inject({ url: `/v1/plays/${a.id}`, headers: auth })).json()
  const packets = value(text, 'prompt_player_packets_sent_total')
  t.ok(packets >= stopped.packetsSent && packets <= stopped.packetsSent + play.packetsSent, `packets counted (${packets})`)
  t.equal(value(text, 'prompt_player_octets_sent_total'), packets * 160)
  t.equal(value(text, 'prompt_player_prompts'), 1)
  t.equal(value(text, 'prompt_player_uploads_total{status="201"}'), 1)
  t.equal(value(text, 'prompt_player_uploads_total{status="415"}'), 1)
  t.equal(value(text, 'prompt_player_ffmpeg_runs_total{what="transcode",outcome="ok"}'), 1)
  const lateCount = value(text, 'prompt_player_packet_lateness_seconds_count')
  t.ok(lateCount >= packets, `every packet's lateness recorded (${lateCount})`)
  t.equal(value(text, 'prompt_player_packet_lateness_seconds_bucket{le="+Inf"}'), lateCount)
  t.ok(value(text, 'prompt_player_packet_lateness_seconds_bucket{le="0.005"}') <= lateCount, 'buckets are cumulative')
  t.match(text, /^nodejs_eventloop_lag_seconds \d/m, 'event-loop delay')
  t.match(text, /^process_resident_memory_bytes \d/m)
})
