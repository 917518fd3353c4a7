import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ENGINE_ERRORS } from '../../src/errors.js'
import { SERVICE_ERRORS, STATUS_BY_CODE } from '../../service/errors.js'
import { ROOT } from '../helpers/index.js'

/** Rows of the README's Errors table: code -> status. */
function documented (): Map<string, number> {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('\n## ', readme.indexOf('## Errors') + 1))
  const rows = new Map<string, number>()
  for (const match of section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(match[1]!, Number(match[2]))
  return rows
}

t.test('every engine code has an HTTP status, and nothing else is mapped', async t => {
  t.same(Object.keys(STATUS_BY_CODE).sort(), Object.keys(ENGINE_ERRORS).sort())
})

t.test('every code is in the README with its status, and the README lists no other', async t => {
  const rows = documented()
  const all = { ...STATUS_BY_CODE, ...SERVICE_ERRORS }
  for (const [code, status] of Object.entries(all)) {
    t.equal(rows.get(code), status, `${code} is documented as ${status}`)
  }
  t.same([...rows.keys()].sort(), Object.keys(all).sort(), 'no documented code is unknown')
})
