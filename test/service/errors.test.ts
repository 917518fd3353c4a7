import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ENGINE_ERRORS } from '../../src/index.js'
import { ERRORS } from '../../service/errors.js'
import { ROOT } from '../helpers/index.js'

/** Rows of the API reference's error table: code -> status. */
function documented (): Map<string, number> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8')
  const start = doc.indexOf('## Errors')
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1))
  const rows = new Map<string, number>()
  for (const match of section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(match[1]!, Number(match[2]))
  return rows
}

t.test('every engine code is in the table, with a status', async t => {
  for (const code of Object.keys(ENGINE_ERRORS)) t.ok(code in ERRORS, `${code} has a row`)
})

t.test('every code is in docs/api.md with its status, and the docs list no other', async t => {
  const rows = documented()
  for (const [code, row] of Object.entries(ERRORS)) {
    t.equal(rows.get(code), row.status, `${code} is documented as ${row.status}`)
  }
  t.same([...rows.keys()].sort(), Object.keys(ERRORS).sort(), 'no documented code is unknown')
})
