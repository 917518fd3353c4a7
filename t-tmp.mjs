import Fastify from 'fastify'
import { execSync } from 'node:child_process'
const app = Fastify()
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, b, d) => d(null, b))
app.put('/x', async (req) => ({ len: req.body?.length ?? null, ct: req.headers['content-type'] ?? null }))
await app.listen({ port: 18082 })
console.log(execSync('curl -s -T /tmp/a.bin http://127.0.0.1:18082/x; echo; curl -s -T /tmp/a.bin -H "Content-Type:" http://127.0.0.1:18082/x').toString())
await app.close()
