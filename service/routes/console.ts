/**
 * The web console: a page and its assets, built from console/ by `npm run build` into
 * dist/console and served at /console/. The files are open (they hold no data); every call the
 * page makes goes to /v1 with the same bearer token as any client, so the console sees exactly
 * what the API would show the person holding that token.
 */
import fs from 'node:fs'
import path from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { httpError } from '../errors.js'

/**
 * The page may load and connect to nothing but this service: no CDN, no outside fonts, no
 * frames around it. Audio previews and waveforms come from blobs the page fetched itself.
 */
const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "media-src 'self' blob:",
  "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "object-src 'none'"
].join('; ')

export default async function consoleRoutes (app: FastifyInstance, opts: { dir: string }): Promise<void> {
  if (!fs.existsSync(path.join(opts.dir, 'index.html'))) {
    // Started from the sources without a build: say how to get the page, not a bare 404.
    const notBuilt = async (): Promise<never> => {
      throw httpError('CONSOLE_NOT_BUILT', `the web console is not built: run "npm run build" (it writes ${opts.dir}), then restart the service`)
    }
    app.get('/console', { schema: { hide: true } }, notBuilt)
    app.get('/console/*', { schema: { hide: true } }, notBuilt)
    return
  }
  await app.register(fastifyStatic, {
    root: opts.dir,
    prefix: '/console/',
    // @fastify/swagger-ui registers the plugin too; one reply.sendFile decorator is enough.
    decorateReply: false,
    index: ['index.html'],
    redirect: true,
    // The bundle's name does not change between builds: browsers revalidate (ETag) each load.
    maxAge: 0,
    setHeaders: (reply) => {
      void reply.header('content-security-policy', CSP)
      void reply.header('x-content-type-options', 'nosniff')
      void reply.header('referrer-policy', 'no-referrer')
    }
  })
  // The page's relative links need the slash: /console is /console/.
  app.get('/console', { schema: { hide: true } }, async (_request, reply) => await reply.redirect('/console/', 308))
}
