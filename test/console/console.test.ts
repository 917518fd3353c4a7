/**
 * The web console in a real browser: Debian's Chromium, driven by playwright-core, against a
 * real service on 127.0.0.1 with the console built by the project's own build script. What a
 * person does with the page (upload, preview, start, pause and stop a play, delete, give a
 * token) is done by clicks and the file input, and checked against the service and the UDP
 * receiver, not only against what the page says.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { PromptPlayerClient } from '../../client/index.js'
import { LIBRARY, ROOT, Receiver, buildApp, engineOf, sample, sleep, tempDir, waitUntil } from '../helpers/index.js'
import { RedisServer, startHaproxy, startInstance } from '../helpers/cluster.js'

const run = promisify(execFile)

/** Debian's chromium (scripts/setup installs it), or the browser named by CHROMIUM. */
function chromiumPath (): string {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => p !== undefined && p !== '')
  const found = candidates.find(p => fs.existsSync(p))
  if (found === undefined) throw new Error(`no Chromium at ${candidates.join(' or ')}: run scripts/setup (it installs Debian's chromium), or set CHROMIUM`)
  return found
}

/** Screenshots go to a temporary folder, or to CONSOLE_SCREENSHOTS when set (docs/console.png comes from there). */
function screenshotDir (): string {
  const dir = process.env.CONSOLE_SCREENSHOTS ?? tempDir(t, 'prompt-player-console-shots-')
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

const built = tempDir(t, 'prompt-player-console-')
const consoleDir = path.join(built, 'console')
const shots = screenshotDir()
let browser: Browser

t.before(async () => {
  // The build `npm run build` runs, into a folder of this test's own.
  await run(process.execPath, [path.join(ROOT, 'scripts', 'build-console.mjs'), consoleDir])
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    // Root in a container has no user namespaces for Chromium's sandbox. Audio plays without
    // a click (the test starts the preview with play()), to a muted fake output.
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required']
  })
})
t.teardown(async () => { await browser?.close() })

async function service (t: Test, options: { tokens?: string[], maxPlays?: number } = {}): Promise<{ url: string, app: Awaited<ReturnType<typeof buildApp>> }> {
  const app = await buildApp(t, { consoleDir, ...options })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as { port: number }
  return { url: `http://127.0.0.1:${address.port}`, app }
}

/** A page on a fresh browser context; `faults()` lists its script errors so far. */
async function open (t: Test, url: string, viewport = { width: 1280, height: 900 }): Promise<Page & { faults: () => string[] }> {
  const context = await browser.newContext({ viewport })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  page.on('console', message => { if (message.type() === 'error') errors.push(message.text()) })
  await page.goto(`${url}/console`)
  // A refused upload or call, and /readyz saying 503, log a failed load in the console; anything else is a fault.
  return Object.assign(page, { faults: () => errors.filter(e => !/Failed to load resource: the server responded with a status of (401|415|503)/.test(e)) })
}

const packetsOf = async (page: Page, id: string): Promise<number> => Number((await page.locator(`tr[data-play="${id}"] td.packets`).innerText()).split(/\s/)[0]!.replace(/,/g, ''))

t.test('the console: library, upload, preview, a live play stopped, a refused upload, delete', async t => {
  const { url, app } = await service(t)
  const engine = engineOf(app)
  const page = await open(t, url)
  t.equal(page.url(), `${url}/console/`, '/console leads to /console/')

  // The library as the service has it, with the lie of a sample's name marked.
  await page.getByRole('heading', { name: /Library/ }).waitFor()
  const names = await page.locator('table.prompts tbody tr[data-prompt]').evaluateAll(rows => rows.map(r => r.getAttribute('data-prompt')))
  t.same(names, engine.prompts.list().map(p => p.name), 'every prompt of the library, in its order')
  t.match(await page.locator('tr[data-prompt="disguised"] td.container').innerText(), /^wma\s*named \.wav$/, 'a WMA named .wav: wma, marked')
  t.match(await page.locator('tr[data-prompt="welcome"] td.container').innerText(), /^wav$/, 'an honest name: no mark')
  t.same(await page.getByRole('list', { name: 'Renditions of welcome' }).locator('li').evaluateAll(items => items.map(i => i.getAttribute('data-rendition'))),
    engine.prompts.get('welcome')!.describe().renditions.map(r => r.frameMs === null ? r.codec : `${r.codec} ${r.frameMs} ms`), 'its renditions, as the service lists them')
  await page.screenshot({ path: path.join(shots, 'console-library.png'), fullPage: true })

  // Upload an MP3 named .wma with the file input.
  const mp3 = sample('renamed')
  t.equal(mp3.container, 'mp3')
  await page.getByLabel('Upload prompts: drop audio files here, or choose them').setInputFiles({ name: 'caller-menu.wma', mimeType: 'audio/x-ms-wma', buffer: mp3.bytes })
  const row = page.locator('tr[data-prompt="caller-menu"]')
  await row.waitFor()
  t.match(await row.locator('td.container').innerText(), /^mp3\s*named \.wma$/, 'listed as mp3, the .wma marked')
  t.equal(await row.locator('.mismatch').getAttribute('title'), 'The file was named caller-menu.wma, but its bytes are mp3')
  t.match(await page.locator('li[data-file="caller-menu.wma"]').innerText(), /uploaded as caller-menu \(mp3\)/)
  const stored = engine.prompts.get('caller-menu')!
  t.match(stored.info.source, { container: 'mp3', filename: 'caller-menu.wma', extensionMismatch: true }, 'the service has it, from the page\'s multipart upload')
  t.same(await row.getByRole('list', { name: 'Renditions of caller-menu' }).locator('li').evaluateAll(items => items.map(i => i.textContent)),
    stored.describe().renditions.map(r => `${r.frameMs === null ? r.codec : `${r.codec} ${r.frameMs} ms`} ${(r.bytes / 1000).toFixed(1)} kB`), 'the renditions the upload made, each with its size')

  // Its preview, as the caller hears it: the 8 kHz WAV in an <audio>, played to its end.
  await page.getByRole('button', { name: 'Preview caller-menu' }).click()
  const audio = page.locator('audio[aria-label="caller-menu as the caller hears it"]')
  await audio.waitFor()
  const played = await audio.evaluate(async (element: HTMLAudioElement) => {
    if (element.readyState < 1) await new Promise(resolve => element.addEventListener('loadedmetadata', resolve, { once: true }))
    const ended = new Promise<number>(resolve => element.addEventListener('ended', () => resolve(performance.now()), { once: true }))
    const start = performance.now()
    await element.play()
    const at = await ended
    return { duration: element.duration, currentTime: element.currentTime, ended: element.ended, wallMs: at - start }
  })
  t.ok(played.ended, 'the <audio> reached ended')
  const telephonyMs = stored.info.telephony.durationMs
  t.ok(Math.abs(played.duration * 1000 - telephonyMs) <= 20, `its duration ${played.duration} s is the prompt's ${telephonyMs} ms at 8 kHz (within a packet)`)
  t.ok(Math.abs(played.duration * 1000 - stored.info.source.durationMs!) <= 60, `and the source's length, ${stored.info.source.durationMs} ms`)
  t.ok(played.wallMs >= played.duration * 1000 - 250, `it played in real time (${Math.round(played.wallMs)} ms)`)
  const inked = await page.locator('canvas.waveform').evaluate((canvas: HTMLCanvasElement) => {
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
    const columns = new Set<number>()
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) columns.add(((i - 3) / 4) % canvas.width)
    return { columns: columns.size, width: canvas.width, label: canvas.getAttribute('aria-label') }
  })
  t.ok(inked.columns > inked.width * 0.5, `the waveform is drawn (${inked.columns} of ${inked.width} columns)`)
  t.match(inked.label, /^Waveform of caller-menu, 3\.\d\d s at 8 kHz$/)

  // Start a play to a UDP receiver of this test, from the form.
  const receiver = await Receiver.open(t)
  await page.getByLabel('Port', { exact: true }).fill(String(receiver.port))
  await page.getByLabel('Prompt', { exact: true }).selectOption('caller-menu')
  await page.getByRole('button', { name: 'Add to list' }).click()
  await page.getByLabel('Prompt', { exact: true }).selectOption('menu')
  await page.getByRole('button', { name: 'Add to list' }).click()
  await page.getByLabel('Codec', { exact: true }).selectOption('opus')
  t.same(await page.getByLabel('Packet time', { exact: true }).locator('option').evaluateAll(options => options.map(o => o.textContent)), ['10 ms', '20 ms', '40 ms', '60 ms'], 'opus offers its packet times')
  await page.getByLabel('Packet time', { exact: true }).selectOption('40')
  await page.getByLabel('Codec', { exact: true }).selectOption('G722')
  t.same(await page.getByLabel('Packet time', { exact: true }).locator('option').evaluateAll(options => options.map(o => o.textContent)), ['10 ms', '20 ms', '30 ms', '40 ms'], 'G.722 offers its own')
  await page.getByLabel('Packet time', { exact: true }).selectOption('20')
  t.same(await page.getByRole('list', { name: 'Prompts to play, in order' }).locator('li').evaluateAll(items => items.map(i => i.firstChild?.textContent?.trim())), ['caller-menu', 'menu'])
  await page.getByRole('button', { name: 'Start play' }).click()
  const playing = page.locator('tr[data-play][data-state="playing"]')
  await playing.waitFor()
  const id = (await playing.getAttribute('data-play'))!
  const info = async (): Promise<Awaited<ReturnType<typeof engine.plays.get>>> => await engine.plays.get(id)
  t.match(await info(), { target: { host: '127.0.0.1', port: receiver.port }, prompts: ['caller-menu', 'menu'], codec: 'G722', ptimeMs: 20, payloadType: 9 }, 'the service plays what the form asked')
  const { ssrc } = await info()
  await receiver.waitFor(10)
  const first = await packetsOf(page, id)
  await page.waitForFunction(({ id, first }) => {
    const cell = document.querySelector(`tr[data-play="${id}"] td.packets`)
    return cell !== null && Number(cell.textContent!.split(/\s/)[0]!.replace(/,/g, '')) >= first + 40
  }, { id, first }, { timeout: 10_000 })
  const later = await packetsOf(page, id)
  t.ok(later >= first + 40, `the packets count up on the page (${first}, then ${later})`)
  t.ok(later <= receiver.packets.length + 5, `and not past what the receiver got (${receiver.packets.length})`)
  t.ok(receiver.packets.every(p => p.rtp.payloadType === 9 && p.rtp.ssrc === ssrc), 'G.722 (payload type 9), one SSRC')
  await page.screenshot({ path: path.join(shots, 'console-playing.png'), fullPage: true })

  // Pause: silence on the wire and "paused" on the page; resume: audio again.
  await page.getByRole('button', { name: `Pause play …${id.slice(-8)}` }).click()
  await page.locator(`tr[data-play="${id}"] span.state.paused`).waitFor()
  const pausedAt = receiver.packets.length
  await receiver.waitFor(pausedAt + 10)
  t.ok(receiver.packets.slice(pausedAt + 2, pausedAt + 10).every(p => p.rtp.payload.every(b => b === 0xff)), 'paused: G.722 silence (0xFF) on the wire')
  await page.getByRole('button', { name: `Resume play …${id.slice(-8)}` }).click()
  await page.locator(`tr[data-play="${id}"] span.state.playing`).waitFor()
  t.notOk((await info()).paused, 'resumed at the service')

  // Stop: the row says stopped, and not one packet arrives after.
  await page.getByRole('button', { name: `Stop play …${id.slice(-8)}` }).click()
  await page.locator(`tr[data-play="${id}"][data-state="stopped"]`).waitFor()
  t.match(await page.locator(`tr[data-play="${id}"] td.state`).innerText(), /stopped\s*by api/)
  const atStop = receiver.packets.length
  await sleep(300)
  t.equal(receiver.packets.length, atStop, 'no packet after the page showed stopped')
  t.equal((await info()).packetsSent, atStop, 'every packet sent arrived')
  t.equal(await page.getByRole('button', { name: `Stop play …${id.slice(-8)}` }).count(), 0, 'no stop button on an ended play')

  // The health panel saw the packets.
  await page.waitForFunction(() => /packets; 99 % left within/.test(document.querySelector('#lateness-caption')?.textContent ?? ''), undefined, { timeout: 10_000 })
  t.match(await page.locator('.health .status').innerText(), /ready/i)

  // A text file: the 415 with its message, and the library as it was.
  const before = engine.prompts.list().map(p => p.name)
  await page.getByLabel('Upload prompts: drop audio files here, or choose them').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('Press 1 for sales.\nPress 2 for support.\n') })
  const refused = page.locator('li[data-file="notes.txt"] .error')
  await refused.waitFor()
  t.match(await refused.innerText(), /^UNSUPPORTED_MEDIA .*plain text/, 'the code and the service\'s message')
  t.same(engine.prompts.list().map(p => p.name), before, 'the library as it was')
  await page.screenshot({ path: path.join(shots, 'console-refused.png'), fullPage: true })

  // Delete, with a confirmation that can be cancelled.
  await page.getByRole('button', { name: 'Delete caller-menu' }).click()
  const dialog = page.getByRole('dialog', { name: 'Delete caller-menu?' })
  await dialog.waitFor()
  await dialog.getByRole('button', { name: 'Cancel' }).click()
  await dialog.waitFor({ state: 'hidden' })
  t.ok(engine.prompts.get('caller-menu'), 'cancelled: still there')
  await page.getByRole('button', { name: 'Delete caller-menu' }).click()
  await dialog.getByRole('button', { name: 'Delete' }).click()
  await row.waitFor({ state: 'detached' })
  t.equal(engine.prompts.get('caller-menu'), undefined, 'confirmed: gone from the service')
  t.same(page.faults(), [], 'no script error in the page')
})

t.test('the plays table resumes its event stream with Last-Event-ID after a drop', async t => {
  const { url, app } = await service(t)
  const page = await open(t, url)
  const streams: Array<string | null> = []
  page.on('request', request => { if (new URL(request.url()).pathname === '/v1/events') streams.push(request.headers()['last-event-id'] ?? null) })
  await page.locator('.link.live').waitFor()
  // The test follows the same stream, to know the id of the event the page saw last.
  const client = new PromptPlayerClient({ url })
  const seen = new AbortController()
  const started = (async () => {
    for await (const event of client.events({ signal: seen.signal })) if (event.type === 'play.started') return event
  })()
  await sleep(200)
  const receiver = await Receiver.open(t)
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'] })
  const event = (await started)!
  seen.abort()
  await page.locator(`tr[data-play="${play.id}"]`).waitFor()
  t.same(streams, [null], 'one stream so far, opened without an id')
  // Every connection dropped, as a proxy restart would do: the page opens the stream again
  // with the id of the last event it had, and the row still reaches its end.
  app.server.closeAllConnections()
  await page.locator('.link.reconnecting').waitFor()
  await page.locator('.link.live').waitFor({ timeout: 10_000 })
  await page.locator(`tr[data-play="${play.id}"][data-state="finished"]`).waitFor({ timeout: 10_000 })
  t.ok(streams.length >= 2, `the stream was opened again (${streams.length} times)`)
  t.equal(streams[1], event.id, `with Last-Event-ID: the id of the play.started it had seen (${event.id})`)
  // The cut stream and a poll caught by the drop are logged as failed loads: expected here.
  t.same(page.faults().filter(e => !e.startsWith('Failed to load resource: net::')), [], 'no script error in the page')
})

t.test('a console in a hidden tab polls nothing, and catches up when shown', async t => {
  const { url } = await service(t)
  const page = await open(t, url)
  const polls: Array<{ path: string, at: number }> = []
  page.on('request', request => {
    const { pathname } = new URL(request.url())
    if (['/v1/plays', '/readyz', '/metrics'].includes(pathname) && request.method() === 'GET') polls.push({ path: pathname, at: performance.now() })
  })
  const receiver = await Receiver.open(t)
  const client = new PromptPlayerClient({ url })
  const play = await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'], loop: 0 })
  t.teardown(async () => { await client.stop(play.id) })
  await page.locator(`tr[data-play="${play.id}"]`).waitFor()
  const visibility = async (state: 'hidden' | 'visible'): Promise<void> => await page.evaluate(state => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
    document.dispatchEvent(new Event('visibilitychange'))
  }, state)
  const count = (path: string, since: number): number => polls.filter(p => p.path === path && p.at >= since).length
  const start = performance.now()
  await sleep(3200)
  t.ok(count('/v1/plays', start) >= 2, `visible, a play running: GET /v1/plays every second (${count('/v1/plays', start)} in 3.2 s)`)
  // The health panel reads every 5 s from its first read: its ticks fall at a known phase. Its
  // first read may have come before this test listened: wait for one it saw.
  await waitUntil(() => polls.some(p => p.path === '/readyz'), 'a health read', 10_000, 50)
  const lastHealth = polls.filter(p => p.path === '/readyz').at(-1)!.at
  await visibility('hidden')
  await sleep(300)
  const hidden = performance.now()
  await sleep(6000)
  t.same(polls.filter(p => p.at >= hidden), [], 'hidden: not one poll in 6 s, the health panel\'s included')
  // Shown half a second after a tick the hidden tab skipped: its next tick is 4.5 s away, so a
  // read of the health within the next 1.5 s is the page catching up, not its timer.
  const phase = (performance.now() - lastHealth) % 5000
  await sleep((5500 - phase) % 5000)
  const shownAt = performance.now()
  await visibility('visible')
  const firstOf = async (path: string): Promise<number> => {
    while (count(path, shownAt) === 0 && performance.now() - shownAt < 5000) await sleep(10)
    return performance.now() - shownAt
  }
  const [plays, ready] = [await firstOf('/v1/plays'), await firstOf('/readyz')]
  t.ok(plays < 1500 && ready < 1500, `shown again: the plays and the health read at once (after ${Math.round(plays)} and ${Math.round(ready)} ms)`)
  t.same(page.faults(), [], 'no script error in the page')
})

t.test('with tokens, the page asks for one, shows nothing without it, and keeps it for the tab only', async t => {
  const { url } = await service(t, { tokens: ['s3cret-token'] })
  const page = await open(t, url)
  await page.getByRole('heading', { name: 'This service needs a token' }).waitFor()
  const text = await page.locator('body').innerText()
  t.notMatch(text, /welcome|goodbye|Library|Plays running/, 'no prompt, no plays, no health figures without a token')
  t.equal(await page.locator('table').count(), 0, 'no table')
  await page.screenshot({ path: path.join(shots, 'console-token.png') })
  await page.getByLabel('Token', { exact: true }).fill('wrong')
  await page.getByRole('button', { name: 'Open the console' }).click()
  await page.getByText('The service did not accept that token.').waitFor()
  t.equal(await page.locator('table').count(), 0, 'a wrong token shows nothing either')
  await page.getByLabel('Token', { exact: true }).fill('s3cret-token')
  await page.getByRole('button', { name: 'Open the console' }).click()
  await page.locator('tr[data-prompt="welcome"]').waitFor()
  await page.locator('.link.live').waitFor()
  t.pass('the right token opens the library and the live plays')
  await page.reload()
  await page.locator('tr[data-prompt="welcome"]').waitFor()
  t.pass('kept across a reload of the tab')
  t.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage')
  const other = await browser.newContext()
  t.teardown(() => other.close())
  const fresh = await other.newPage()
  await fresh.goto(`${url}/console/`)
  await fresh.getByRole('heading', { name: 'This service needs a token' }).waitFor()
  t.pass('another session asks again')
  await page.getByRole('button', { name: 'Forget token' }).click()
  await page.getByRole('heading', { name: 'This service needs a token' }).waitFor()
  t.equal(await page.evaluate(() => sessionStorage.length), 0, 'forgotten')
  t.same(page.faults(), [], 'no script error in the page')
})

t.test('keyboard, labels and a narrow window', async t => {
  const { url } = await service(t)
  const page = await open(t, url, { width: 380, height: 800 })
  await page.locator('tr[data-prompt="welcome"]').waitFor()
  const unlabelled = await page.evaluate(() => {
    const named = (e: Element): boolean => (e.getAttribute('aria-label') ?? '').trim() !== '' || (e.getAttribute('aria-labelledby') ?? '') !== '' ||
      ((e as HTMLInputElement).labels?.length ?? 0) > 0 || (e.tagName === 'BUTTON' && (e.textContent ?? '').trim() !== '')
    return [...document.querySelectorAll('button, input, select, audio, progress, meter')].filter(e => !named(e)).map(e => e.outerHTML.slice(0, 80))
  })
  t.same(unlabelled, [], 'every control has a name a screen reader reads')
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  t.ok(overflow <= 0, `nothing wider than a 380 px window (${overflow} px over); wide tables scroll in their own box`)
  await page.screenshot({ path: path.join(shots, 'console-narrow.png'), fullPage: true })

  // From the keyboard alone: Tab to the first Preview button, Enter opens the preview.
  let focused = ''
  for (let i = 0; i < 40 && focused !== 'Preview disguised'; i++) {
    await page.keyboard.press('Tab')
    focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? '')
  }
  t.equal(focused, 'Preview disguised', 'Tab reaches the library\'s first Preview')
  await page.keyboard.press('Enter')
  await page.locator('audio[aria-label="disguised as the caller hears it"]').waitFor()
  t.pass('Enter opens it')
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)
  t.equal(outline, 'solid', 'the focused control shows it')
  t.same(page.faults(), [], 'no script error in the page')
})

t.test('in a pool behind HAProxy: every instance\'s plays in one table, each stopped wherever it runs', async t => {
  const redis = await RedisServer.start(t)
  const instances = await Promise.all(['c1', 'c2', 'c3'].map(async id => await startInstance(t, redis, id, { PROMPT_PLAYER_CONSOLE_DIR: consoleDir })))
  const lb = await startHaproxy(t, instances)
  const put = await fetch(`${instances[0]!.url}/v1/prompts/goodbye`, { method: 'PUT', body: new Uint8Array(sample('goodbye').bytes) })
  t.equal(put.status, 201)
  const page = await open(t, lb.url)
  await page.locator('tr[data-prompt="goodbye"]').waitFor({ timeout: 10_000 })
  await page.locator('.link.live').waitFor()
  // One play on each instance, asked of that instance directly; the page reaches the pool
  // through the balancer, whichever instance answers it.
  const receiver = await Receiver.open(t)
  const plays = await Promise.all(instances.map(async instance => await new PromptPlayerClient({ url: instance.url }).play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['goodbye'], loop: 0, rtcp: 'off' })))
  t.teardown(async () => { for (const [i, play] of plays.entries()) await new PromptPlayerClient({ url: instances[i]!.url }).stop(play.id).catch(() => {}) })
  for (const [i, play] of plays.entries()) {
    const row = page.locator(`tr[data-play="${play.id}"][data-state="playing"]`)
    await row.waitFor({ timeout: 10_000 })
    t.match(await row.locator('.instance').innerText(), instances[i]!.id, `${instances[i]!.id}'s play is listed with its instance`)
  }
  // Stop each from the page: the balancer takes the call to any instance, which forwards it.
  for (const play of plays) {
    await page.getByRole('button', { name: `Stop play …${play.id.slice(-8)}` }).click()
    await page.locator(`tr[data-play="${play.id}"][data-state="stopped"]`).waitFor({ timeout: 10_000 })
  }
  const atStop = receiver.packets.length
  await sleep(300)
  t.equal(receiver.packets.length, atStop, 'no packet of any of them after the page showed them stopped')
  t.same(new Set(receiver.packets.map(p => p.rtp.ssrc)), new Set(plays.map(p => p.ssrc)), 'the three streams had arrived')
  t.same(page.faults(), [], 'no script error in the page')
})

t.test('a service started without a build says how to get the console', async t => {
  const app = await buildApp(t, { consoleDir: path.join(tempDir(t), 'nothing') })
  const res = await app.inject('/console/')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'CONSOLE_NOT_BUILT', message: /run "npm run build"/ })
  t.ok(fs.existsSync(LIBRARY))
})

t.test('several files dropped at once: each with its answer; health shows a problem as the service words it', async t => {
  const { url, app } = await service(t, { maxPlays: 1 })
  const engine = engineOf(app)
  const page = await open(t, url)
  await page.locator('tr[data-prompt="welcome"]').waitFor()
  // A drop as a browser makes it: a DataTransfer holding two files, on the dashed box.
  const wav = sample('welcome').bytes.toString('base64')
  const dropped = await page.evaluateHandle(({ wav }) => {
    const transfer = new DataTransfer()
    transfer.items.add(new File([Uint8Array.from(atob(wav), c => c.charCodeAt(0))], 'Lobby greeting.wav', { type: 'audio/wav' }))
    transfer.items.add(new File(['<html><body>404</body></html>'], 'broken.mp3', { type: 'audio/mpeg' }))
    return transfer
  }, { wav })
  // Every state the upload rows go through, as a person would have seen them.
  await page.evaluate(() => {
    const seen: string[] = []
    Object.assign(window, { seen })
    new MutationObserver(() => {
      for (const li of document.querySelectorAll('li.upload')) {
        const bar = li.querySelector('progress')
        const state = `${li.getAttribute('data-file')}: ${bar === null ? '' : `[${bar.value}/${bar.max}] `}${(li.textContent ?? '').replace(li.getAttribute('data-file') ?? '', '').trim()}`
        if (seen.at(-1) !== state && !seen.includes(state)) seen.push(state)
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true })
  })
  await page.locator('.drop').dispatchEvent('dragover', { dataTransfer: dropped })
  t.equal(await page.locator('.drop.dragging').count(), 1, 'the box shows where to drop')
  await page.locator('.drop').dispatchEvent('drop', { dataTransfer: dropped })
  await page.locator('tr[data-prompt="Lobby-greeting"]').waitFor()
  t.match(await page.locator('li[data-file="Lobby greeting.wav"]').innerText(), /uploaded as Lobby-greeting \(wav\)/, 'a name the service takes, from the file\'s')
  const refused = page.locator('li[data-file="broken.mp3"] .error')
  await refused.waitFor()
  t.match(await refused.innerText(), /^UNSUPPORTED_MEDIA .*HTML/, 'the other refused with its code and message')
  t.match(engine.prompts.get('Lobby-greeting')?.info.source, { container: 'wav', filename: 'Lobby greeting.wav', extensionMismatch: false })
  const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen)
  const size = sample('welcome').bytes.length
  const wavStates = seen.filter(s => s.startsWith('Lobby greeting.wav: '))
  t.ok(wavStates.some(s => s.endsWith('sending…')), `a progress bar while sending (${wavStates.join(' | ')})`)
  const full = wavStates.map(s => /^Lobby greeting\.wav: \[(\d+)\/(\d+)\] transcoding…$/.exec(s)).find(m => m !== null)
  t.ok(full !== undefined && full[1] === full[2] && Number(full[2]) > size && Number(full[2]) < size + 1000, `full (the file and its multipart framing), then "transcoding…" until the answer (${full?.[0]})`)
  t.match(wavStates.at(-1), /uploaded as Lobby-greeting \(wav\)$/, 'then the answer')
  t.ok(seen.some(s => s.startsWith('broken.mp3: ') && s.endsWith('sending…')), 'the second file queued with its own bar')
  t.equal(engine.prompts.get('broken'), undefined, 'nothing of the refused one')

  // At capacity (one play at most): the service says it is not ready, and why.
  const receiver = await Receiver.open(t)
  const client = new PromptPlayerClient({ url })
  await client.play({ target: { host: '127.0.0.1', port: receiver.port }, prompts: ['menu'], loop: 0 })
  await page.locator('.health .status.not-ready').waitFor({ timeout: 10_000 })
  t.match(await page.getByRole('list', { name: 'Problems' }).innerText(), /at capacity: no play can start now/)
  t.match(await page.locator('.health .big').innerText(), /^1\s+of 1$/, 'one running of one')
  t.same(page.faults(), [], 'no script error in the page')
})
