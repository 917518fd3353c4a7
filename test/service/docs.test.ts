import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ERRORS } from '../../service/errors.js'
import { buildApp, ROOT } from '../helpers/index.js'

t.test('/docs serves the OpenAPI UI, /docs/json the document built from the route schemas', async t => {
  const app = await buildApp(t, { tokens: ['x'] })
  const ui = await app.inject({ url: '/docs' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  t.equal(doc.openapi, '3.0.3')
  t.match(doc.info, { title: 'prompt-player', version: /^\d+\.\d+\.\d+$/ })
  for (const [path, methods] of Object.entries({
    '/v1/prompts/{name}': ['put', 'get', 'delete'],
    '/v1/prompts': ['post', 'get'],
    '/v1/prompts/{name}/audio': ['get'],
    '/v1/plays': ['post', 'get'],
    '/v1/plays/{id}': ['get', 'delete'],
    '/v1/events': ['get']
  })) {
    for (const method of methods) t.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`)
  }
  const post = doc.paths['/v1/plays'].post
  const body = post.requestBody.content['application/json'].schema
  t.same(body.required.sort(), ['prompts', 'target'], 'the play request schema, as validated')
  t.same(body.properties.ptimeMs.anyOf.map((s: { enum?: number[], const?: number }) => s.enum?.[0] ?? s.const), [10, 20, 30, 40, 60], 'every ptime some codec takes')
  t.ok(post.responses['201'] && post.responses['403'] && post.responses['503'], 'responses with their statuses')
  t.same(doc.security, [{ bearer: [] }], 'the bearer scheme applies when tokens are set')
  t.equal(doc.paths['/healthz'], undefined, 'health checks are not part of the API document')
})

t.test('docs/api.md and the OpenAPI document name the same routes and the same error codes', async t => {
  const api = fs.readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8')
  const app = await buildApp(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  const served = new Set<string>()
  for (const [route, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(methods)) served.add(`${method.toUpperCase()} ${route}`)
  }
  t.ok(served.size >= 11, 'the document lists the API\'s routes')
  const start = api.indexOf('## Routes')
  const table = api.slice(start, api.indexOf('\n## ', start + 1))
  const documented = new Set([...table.matchAll(/^\| `(GET|PUT|POST|DELETE) (\/v1\/[^`?]+)`/gm)].map(m => `${m[1]} ${m[2]}`))
  for (const route of served) t.ok(documented.has(route), `${route} is in docs/api.md's route table`)
  for (const route of documented) t.ok(served.has(route), `${route} of docs/api.md is in the OpenAPI document`)
  // Every code the service answers with is in the document's error schema, and no other.
  const refusal = doc.paths['/v1/plays'].post.responses['403'].content['application/json'].schema
  const codes = (refusal.properties.code.enum ?? []) as string[]
  t.same([...codes].sort(), Object.keys(ERRORS).sort(), 'the Error schema lists every code')
  for (const code of Object.keys(ERRORS)) t.match(api, new RegExp(`\\| \`${code}\` \\|`), `${code} is in docs/api.md`)
})

t.test('nothing in the repository points outside it for its documentation', async t => {
  for (const file of ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => path.join('docs', f))]) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8')
    t.notMatch(text, /\.\.\/shared|API\.md/, `${file} links only to the repository's own docs`)
    for (const [, link] of text.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)) {
      if (/^https?:/.test(link!)) continue
      t.ok(fs.existsSync(path.resolve(path.dirname(path.join(ROOT, file)), link!)), `${file} links to ${link}, which exists`)
    }
  }
})

t.test('every file under src/ is named in its folder\'s README', async t => {
  const src = path.join(ROOT, 'src')
  const folders = fs.readdirSync(src, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name)
  t.ok(folders.length >= 6)
  for (const folder of folders) {
    const readme = fs.readFileSync(path.join(src, folder, 'README.md'), 'utf8')
    const files = fs.readdirSync(path.join(src, folder)).filter(f => f.endsWith('.ts'))
    t.same(files.filter(f => !readme.includes(`\`${f}\``)), [], `src/${folder}/README.md names its ${files.length} files`)
  }
})
