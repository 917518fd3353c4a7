// Module hooks (node:module register) for test/helpers/typescript.mjs: .js specifiers that
// name a .ts file resolve to it, and .ts files load transpiled, from a cache by content.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'prompt-player-tests', 'typescript')
const TYPESCRIPT = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'typescript', 'package.json'), 'utf8')).version
const OPTIONS = {
  target: 'ES2022',
  module: 'ESNext',
  esModuleInterop: true,
  inlineSourceMap: true,
  inlineSources: true
}
const KEY = JSON.stringify({ TYPESCRIPT, OPTIONS })
/** The compiler and its options, loaded at the first file not in the cache. */
let compiler = null

export async function resolve (specifier, context, next) {
  if (specifier.endsWith('.js') && context.parentURL?.startsWith('file:') && /^(\.{1,2}\/|\/|file:)/.test(specifier)) {
    const url = new URL(specifier, context.parentURL)
    if (!fs.existsSync(url)) {
      const ts = new URL(url.href.slice(0, -3) + '.ts')
      if (fs.existsSync(ts)) return { url: ts.href, format: 'module', shortCircuit: true }
    }
  }
  return await next(specifier, context)
}

export async function load (url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return await next(url, context)
  const file = fileURLToPath(url)
  const source = fs.readFileSync(file, 'utf8')
  const key = crypto.createHash('sha256').update(KEY).update('\0').update(file).update('\0').update(source).digest('hex')
  const cached = path.join(CACHE, `${key}.js`)
  let code
  try {
    code = fs.readFileSync(cached, 'utf8')
  } catch {
    if (compiler === null) {
      const typescript = (await import(pathToFileURL(path.join(ROOT, 'node_modules', 'typescript', 'lib', 'typescript.js')).href)).default
      compiler = { typescript, compilerOptions: typescript.convertCompilerOptionsFromJson(OPTIONS, ROOT).options }
    }
    code = compiler.typescript.transpileModule(source, { fileName: file, compilerOptions: compiler.compilerOptions }).outputText
    fs.mkdirSync(CACHE, { recursive: true })
    // Another process may write the same entry at once: each writes its own file and renames it.
    const temporary = `${cached}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`
    fs.writeFileSync(temporary, code)
    fs.renameSync(temporary, cached)
  }
  return { format: 'module', source: code, shortCircuit: true }
}
