/**
 * The architecture, checked: what may import what. The packet thread's code imports only
 * itself and what both threads share (src/common), so nothing of the HTTP thread can end up
 * running between two packets; the engine never imports the service, the command line or the
 * client; and those three reach the engine only through its public API, src/index.ts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { builtinModules } from 'node:module'
import t from 'tap'
import { ROOT } from './helpers/index.js'

interface Import { from: string, to: string }

function sources (dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter(e => e.isFile() && (e.name.endsWith('.ts') || e.name.endsWith('.tsx')))
    .map(e => path.relative(ROOT, path.join(e.parentPath, e.name)))
}

/** Every import (static, for its effects alone, dynamic, type-only, and `new URL(...)` of a worker) of a file. */
function importsOf (file: string): Import[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8')
  const found: Import[] = []
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"](\.[^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) {
    const spec = match[1] ?? match[2] ?? match[3] ?? match[4]!
    const to = spec.startsWith('.') ? resolveSource(path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), spec))) : spec
    found.push({ from: file, to })
  }
  return found
}

/** `./app.js` is app.ts or app.tsx, whichever exists. */
function resolveSource (file: string): string {
  const ts = file.replace(/\.js$/, '.ts')
  return file.endsWith('.js') && !fs.existsSync(path.join(ROOT, ts)) && fs.existsSync(path.join(ROOT, `${ts}x`)) ? `${ts}x` : ts
}

const isBuiltin = (spec: string): boolean => spec.startsWith('node:') || builtinModules.includes(spec)
const all = ['src', 'service', 'cli', 'client', 'bench'].flatMap(sources).flatMap(importsOf)

t.test('the packet thread imports only itself, what both threads share, and Node', async t => {
  const packet = all.filter(i => i.from.startsWith('src/packet/'))
  t.ok(packet.length > 10, 'the packet thread\'s imports were found')
  for (const i of packet) {
    const ok = i.to.startsWith('src/packet/') || i.to.startsWith('src/common/') || isBuiltin(i.to)
    t.ok(ok, `${i.from} imports ${i.to}`)
  }
})

t.test('the HTTP thread\'s engine code imports nothing of the packet thread but the worker\'s file', async t => {
  const http = all.filter(i => /^src\/(plays|library|pool|events|common)\//.test(i.from))
  t.ok(http.length > 20, 'their imports were found')
  for (const i of http.filter(i => i.to.startsWith('src/packet/'))) {
    t.ok(i.from === 'src/plays/packet-engine.ts' && i.to === 'src/packet/worker.ts', `${i.from} imports ${i.to}`)
  }
  t.ok(http.some(i => i.to === 'src/packet/worker.ts'), 'the packet engine starts the worker by its file')
})

t.test('what both threads share imports nothing of either', async t => {
  for (const i of all.filter(i => i.from.startsWith('src/common/'))) {
    t.ok(i.to.startsWith('src/common/') || isBuiltin(i.to) || i.to === 'typebox', `${i.from} imports ${i.to}`)
  }
})

t.test('the engine imports nothing of the service, the command line or the client', async t => {
  for (const i of all.filter(i => i.from.startsWith('src/'))) {
    t.notOk(/^(service|cli|client|bench)\//.test(i.to), `${i.from} imports ${i.to}`)
  }
})

t.test('the service, the command line, the client and the benchmark use the engine through src/index.ts only', async t => {
  const outside = all.filter(i => !i.from.startsWith('src/') && i.to.startsWith('src/'))
  t.ok(outside.length > 5, 'their imports of the engine were found')
  for (const i of outside) t.equal(i.to, 'src/index.ts', `${i.from} imports ${i.to}`)
})

t.test('the example IVR uses the service as any application would: through the client and HTTP only', async t => {
  const example = sources('examples').flatMap(importsOf)
  t.ok(example.length > 3, 'its imports were found')
  for (const i of example) t.ok(i.to.startsWith('client/') || i.to.startsWith('examples/') || isBuiltin(i.to) || i.to === 'sip' || i.to === 'sip/sdp.js', `${i.from} imports ${i.to}`)
})

t.test('the web console is a client like any other: the typed client, Preact, its own files; no Node', async t => {
  const page = sources('console').flatMap(importsOf)
  t.ok(page.length > 10, 'its imports were found')
  for (const i of page) t.ok(i.to.startsWith('console/') || i.to === 'client/index.ts' || /^preact(\/|$)/.test(i.to), `${i.from} imports ${i.to}`)
  t.ok(page.some(i => i.to === 'console/console.css'), 'the stylesheet comes through the bundle')
})

t.test('the configuration does not import the app', async t => {
  t.same(all.filter(i => i.from === 'service/config.ts' && i.to.startsWith('service/')), [])
})

t.test('each folder of src/ says what it is in its first lines', async t => {
  for (const folder of ['common', 'library', 'plays', 'events', 'packet', 'pool']) {
    const readme = path.join(ROOT, 'src', folder, 'README.md')
    t.ok(fs.existsSync(readme), `src/${folder}/README.md exists`)
    if (fs.existsSync(readme)) t.match(fs.readFileSync(readme, 'utf8'), /^# src\/\w+\n\n\S/, `src/${folder}/README.md starts by saying what it is`)
  }
})
