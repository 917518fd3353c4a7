import t from 'tap'
import { buildApp } from '../helpers/index.js'

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
  t.same(body.properties.ptimeMs.anyOf.map((s: { enum?: number[], const?: number }) => s.enum?.[0] ?? s.const), [10, 20, 30, 40])
  t.ok(post.responses['201'] && post.responses['403'] && post.responses['503'], 'responses with their statuses')
  t.same(doc.security, [{ bearer: [] }], 'the bearer scheme applies when tokens are set')
  t.equal(doc.paths['/healthz'], undefined, 'health checks are not part of the API document')
})
