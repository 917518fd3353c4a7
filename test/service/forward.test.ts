/**
 * A forwarded call whose owner answers with something that is not JSON (a proxy's error page, a
 * body cut off): the caller gets INSTANCE_UNREACHABLE saying what came back, not a parse error
 * as a 500. The owner here is a real HTTP server on 127.0.0.1 that answers HTML.
 */
import http from 'node:http'
import t from 'tap'
import Fastify from 'fastify'
import app, { serverOptions } from '../../service/app.js'
import { forward } from '../../service/forward.js'
import { engine } from '../helpers/index.js'

t.test('an owner that answers with a page that is not JSON: 503 INSTANCE_UNREACHABLE saying what it answered', async t => {
  const owner = http.createServer((_req, res) => { res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad Gateway</body></html>') })
  await new Promise<void>(resolve => owner.listen(0, '127.0.0.1', resolve))
  t.teardown(() => owner.close())
  const address = `http://127.0.0.1:${(owner.address() as { port: number }).port}`
  const fastify = Fastify(serverOptions)
  await fastify.register(app, { engine: await engine(t) })
  fastify.get('/v1/forwarded-test', async (request, reply) => await forward(request, reply, { instance: 'owner-1', address }, { instance: 'me', token: undefined, lostWithinMs: 6000 }))
  t.teardown(() => fastify.close())
  const res = await fastify.inject({ url: '/v1/forwarded-test' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'INSTANCE_UNREACHABLE', message: `the play runs on instance owner-1 at ${address}, which answered 502 with a body that is not JSON ("<html><body>Bad Gateway</body></html>"); if it is lost, its plays are reported failed within 6 s` })
})
