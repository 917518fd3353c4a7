#!/usr/bin/env node
// Builds the web console (console/) into dist/console, or the folder given as the argument:
// one ES module bundle of its TypeScript with Preact (esbuild), its stylesheet and its page.
// `npm run build` runs it; the service serves that folder at /console/. The folder is replaced
// whole, so a service running meanwhile never serves half of one build and half of another.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'console'))
const staging = `${out}.${process.pid}.tmp`
fs.rmSync(staging, { recursive: true, force: true })

await build({
  entryPoints: { console: path.join(root, 'console', 'main.tsx') },
  outdir: staging,
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: 'linked',
  // What the page needs: ES modules, fetch streams, <dialog>; browsers of the last three years.
  target: ['chrome111', 'firefox115', 'safari16.4'],
  tsconfig: path.join(root, 'console', 'tsconfig.json'),
  legalComments: 'linked',
  logLevel: 'warning'
})
fs.copyFileSync(path.join(root, 'console', 'index.html'), path.join(staging, 'index.html'))
fs.rmSync(out, { recursive: true, force: true })
fs.renameSync(staging, out)
const size = fs.readdirSync(out).map(f => `${f} ${fs.statSync(path.join(out, f)).size} B`).join(', ')
console.log(`console built in ${path.relative(process.cwd(), out) || '.'}: ${size}`)
