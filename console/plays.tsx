/**
 * Plays: a form to start one, and a live table of every play the service keeps (running ones,
 * then those ended in the last minutes). State changes arrive on /v1/events, resumed with the
 * last event id after a drop; the counters of running plays (packets, position, the far end's
 * report) are read again every second.
 */
import { useEffect, useState } from 'preact/hooks'
import { describe, sleep, whileVisible, type PlayInfo, type PlayRequest, type PromptInfo, type PromptPlayerClient } from './api.js'
import { count, millis, percent, seconds, shortId, time } from './format.js'

interface Props {
  client: PromptPlayerClient
  prompts: PromptInfo[]
  announce: (message: string) => void
  onAuthError: (err: unknown) => boolean
}

type Link = 'connecting' | 'live' | 'reconnecting'

/**
 * The most rows the table asks for: running plays first, newest first. A busy instance runs
 * thousands; reading them all every second would cost the service and the browser more than a
 * person can read (docs/benchmark.md has the figures).
 */
export const MAX_ROWS = 100

/** Counters only grow and an ended play never plays again: the newer of two snapshots wins. */
function newer (a: PlayInfo | undefined, b: PlayInfo): PlayInfo {
  if (a === undefined) return b
  if (a.state !== 'playing' && b.state === 'playing') return a
  if (a.state === b.state && a.packetsSent > b.packetsSent) return a
  return b
}

export function Plays ({ client, prompts, announce, onAuthError }: Props): preact.JSX.Element {
  const [plays, setPlays] = useState<Map<string, PlayInfo>>(new Map())
  const [link, setLink] = useState<Link>('connecting')
  const [failure, setFailure] = useState<string | null>(null)
  const [total, setTotal] = useState(0)

  const refresh = async (): Promise<void> => {
    const page = await client.playList({ limit: MAX_ROWS })
    setTotal(page.total)
    merge(page.plays, true)
  }

  const merge = (list: PlayInfo[], whole: boolean): void => setPlays(current => {
    // A whole list from GET /v1/plays also drops the plays the service no longer keeps.
    const next = new Map(whole ? [] : current)
    for (const play of list) next.set(play.id, newer(current.get(play.id), play))
    return next
  })

  // The event stream, reconnected after a drop with the id of the last event seen.
  useEffect(() => {
    const stop = new AbortController()
    void (async () => {
      let lastEventId: string | undefined
      while (!stop.signal.aborted) {
        try {
          const stream = client.events({ signal: stop.signal, ...(lastEventId === undefined ? {} : { lastEventId }) })
          setLink('live')
          await refresh()
          for await (const event of stream) {
            if (event.id !== null) lastEventId = event.id
            merge([event.play], false)
          }
        } catch (err) {
          if (onAuthError(err)) return
        }
        if (stop.signal.aborted) return
        setLink('reconnecting')
        await sleep(1000, stop.signal)
      }
    })()
    return () => stop.abort()
  }, [client])

  // The live counters: every second while a play runs, every five otherwise (ended plays age
  // out); nothing while the tab is hidden.
  const running = [...plays.values()].some(p => p.state === 'playing')
  useEffect(() => whileVisible(running ? 1000 : 5000, () => {
    refresh().catch(err => { onAuthError(err) })
  }), [client, running])

  async function act (id: string, action: () => Promise<PlayInfo>, done: string): Promise<void> {
    try {
      merge([await action()], false)
      setFailure(null)
      announce(done)
    } catch (err) {
      if (onAuthError(err)) return
      const { code, message } = describe(err)
      setFailure(`${shortId(id)}: ${code}: ${message}`)
    }
  }

  // As the service lists them: running plays newest first, then the latest ended first.
  const rows = [...plays.values()].sort((a, b) => Number(b.state === 'playing') - Number(a.state === 'playing') ||
    (b.endedAt ?? '').localeCompare(a.endedAt ?? '') || b.id.localeCompare(a.id))
  return (
    <section aria-labelledby='plays-heading'>
      <h2 id='plays-heading'>
        Plays <span class='count'>{total > rows.length ? `${count(total)} kept` : `${rows.filter(p => p.state === 'playing').length} running`}</span>
        <span class={`link ${link}`} role='status'>{link === 'live' ? 'live' : link === 'connecting' ? 'connecting…' : 'reconnecting…'}</span>
      </h2>
      <StartForm client={client} prompts={prompts} announce={announce} onAuthError={onAuthError} onStarted={play => merge([play], false)} />
      {failure !== null && <p class='error' role='alert'>{failure}</p>}
      {total > rows.length && <p class='muted' id='plays-cut'>Showing the {count(rows.length)} newest of {count(total)} plays, running ones first.</p>}
      <div class='scroll'>
        <table class='plays'>
          <caption class='visually-hidden'>Plays, running first</caption>
          <thead>
            <tr>
              <th scope='col'>Play</th><th scope='col'>Target</th><th scope='col'>Prompts</th><th scope='col'>State</th>
              <th scope='col'>Position</th><th scope='col'>Packets</th><th scope='col'>Late (max)</th><th scope='col'>Far end (RTCP)</th>
              <th scope='col'><span class='visually-hidden'>Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 && <tr><td colSpan={9}>No plays in the last minutes.</td></tr>}
            {rows.map(play => (
              <tr key={play.id} data-play={play.id} data-state={play.state}>
                <th scope='row'><code title={play.id}>{shortId(play.id)}</code><span class='started'>{time(play.startedAt)}</span></th>
                <td><code>{play.target.host.includes(':') ? `[${play.target.host}]` : play.target.host}:{play.target.port}</code><span class='codec'>{play.codec}/{play.ptimeMs} ms{play.srtp === null ? '' : ` SRTP ${play.srtp.suite}`} from :{play.source.port}</span><span class='instance' title='the instance that sends it'>{play.instance}</span></td>
                <td class='prompt-list'>{play.prompts.join(', ')}</td>
                <td class='state'>
                  <span class={`state ${play.paused ? 'paused' : play.state}`}>{play.paused ? 'paused' : play.state}</span>
                  {play.stoppedBy !== null && <span class='why'>by {play.stoppedBy}</span>}
                  {play.error !== null && <span class='why error'>{play.error}</span>}
                </td>
                <td>
                  <progress max={play.durationMs} value={Math.min(play.positionMs, play.durationMs)} aria-label={`Position of play ${shortId(play.id)}`} />
                  <span class='position'>{seconds(play.positionMs)} / {seconds(play.durationMs)}{play.loop !== 1 ? ` · loop ${play.loopsDone + 1}${play.loop === 0 ? '' : ` of ${play.loop}`}` : ''}</span>
                </td>
                <td class='packets'>{count(play.packetsSent)}{play.sendErrors > 0 && <span class='why error'>{count(play.sendErrors)} send errors</span>}</td>
                <td>{millis(play.maxLateMs)}</td>
                <td>{play.remote === null
                  ? <span class='muted'>{play.rtcp === 'off' ? 'RTCP off' : 'no report yet'}</span>
                  : <span>lost {percent(play.remote.fractionLost)} ({count(play.remote.packetsLost)}), jitter {millis(play.remote.jitterMs)}, RTT {millis(play.remote.rttMs)}</span>}
                </td>
                <td class='actions'>
                  {play.state === 'playing' && (
                    <>
                      {play.paused
                        ? <button type='button' aria-label={`Resume play ${shortId(play.id)}`} onClick={() => { void act(play.id, async () => await client.control(play.id, { operation: 'resume' }), `play ${shortId(play.id)} resumed`) }}>Resume</button>
                        : <button type='button' aria-label={`Pause play ${shortId(play.id)}`} onClick={() => { void act(play.id, async () => await client.control(play.id, { operation: 'pause' }), `play ${shortId(play.id)} paused`) }}>Pause</button>}
                      <button type='button' class='danger' aria-label={`Stop play ${shortId(play.id)}`} onClick={() => { void act(play.id, async () => await client.stop(play.id), `play ${shortId(play.id)} stopped`) }}>Stop</button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

type Codec = NonNullable<PlayRequest['codec']>
/** The packet times each codec can be sent at (opus's differ: one Opus frame per packet). */
const PTIMES_OF: Record<Codec, readonly number[]> = { PCMU: [10, 20, 30, 40], PCMA: [10, 20, 30, 40], G722: [10, 20, 30, 40], opus: [10, 20, 40, 60] }

function StartForm ({ client, prompts, announce, onAuthError, onStarted }: Props & { onStarted: (play: PlayInfo) => void }): preact.JSX.Element {
  const [host, setHost] = useState('127.0.0.1')
  const [port, setPort] = useState('')
  const [codec, setCodec] = useState<Codec>('PCMU')
  const [ptime, setPtime] = useState<number>(20)
  const ptimes = PTIMES_OF[codec]
  const [pick, setPick] = useState('')
  const [list, setList] = useState<string[]>([])
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const chosen = pick !== '' && prompts.some(p => p.name === pick) ? pick : prompts[0]?.name ?? ''

  async function submit (event: Event): Promise<void> {
    event.preventDefault()
    if (list.length === 0) {
      setError('Add at least one prompt to the list.')
      return
    }
    setBusy(true)
    try {
      const play = await client.play({ target: { host: host.trim(), port: Number(port) }, prompts: list, codec, ptimeMs: ptime as NonNullable<PlayRequest['ptimeMs']> })
      setError(null)
      onStarted(play)
      announce(`play ${shortId(play.id)} started to ${host}:${port}`)
    } catch (err) {
      if (onAuthError(err)) return
      const { code, message } = describe(err)
      setError(`${code}: ${message}`)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form class='start' onSubmit={e => { void submit(e) }} aria-labelledby='start-heading'>
      <h3 id='start-heading'>Start a play</h3>
      <div class='fields'>
        <div class='field'>
          <label for='play-host'>Target host</label>
          <input id='play-host' name='host' value={host} required onInput={e => setHost(e.currentTarget.value)} placeholder='the SDP c= address' />
        </div>
        <div class='field'>
          <label for='play-port'>Port</label>
          <input id='play-port' name='port' type='number' min={1} max={65535} required value={port} onInput={e => setPort(e.currentTarget.value)} placeholder='m=audio' />
        </div>
        <div class='field'>
          <label for='play-codec'>Codec</label>
          <select id='play-codec' name='codec' value={codec} onChange={e => { const next = e.currentTarget.value as Codec; setCodec(next); if (!PTIMES_OF[next].includes(ptime)) setPtime(20) }}>
            <option value='PCMU'>PCMU (G.711 µ-law, 8 kHz)</option>
            <option value='PCMA'>PCMA (G.711 A-law, 8 kHz)</option>
            <option value='G722'>G722 (wideband, 16 kHz)</option>
            <option value='opus'>opus (48 kHz)</option>
          </select>
        </div>
        <div class='field'>
          <label for='play-ptime'>Packet time</label>
          <select id='play-ptime' name='ptime' value={String(ptime)} onChange={e => setPtime(Number(e.currentTarget.value))}>
            {ptimes.map(p => <option key={p} value={String(p)}>{p} ms</option>)}
          </select>
        </div>
        <div class='field'>
          <label for='play-prompt'>Prompt</label>
          <select id='play-prompt' name='prompt' value={chosen} onChange={e => setPick(e.currentTarget.value)} disabled={prompts.length === 0}>
            {prompts.map(p => <option key={p.name} value={p.name}>{p.name}</option>)}
          </select>
        </div>
        <button type='button' onClick={() => { if (chosen !== '') setList([...list, chosen]) }} disabled={chosen === ''}>Add to list</button>
      </div>
      <ol class='chosen' aria-label='Prompts to play, in order'>
        {list.map((name, i) => (
          <li key={`${i}-${name}`}>
            {name} <button type='button' class='small' aria-label={`Remove ${name} (number ${i + 1}) from the list`} onClick={() => setList(list.filter((_, j) => j !== i))}>×</button>
          </li>
        ))}
      </ol>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      <button type='submit' disabled={busy}>{busy ? 'Starting…' : 'Start play'}</button>
    </form>
  )
}
