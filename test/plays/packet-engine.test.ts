/**
 * Starting the packet thread: from a script given on the command line (the thread must not
 * inherit --input-type, which Node refuses for a file), and the failure of a thread that cannot
 * start, said once and clearly instead of a new thread started again and again.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ROOT, runNode, sampleLibrary, tempDir } from '../helpers/index.js'

async function node (args: string[]): Promise<{ code: number | null, out: string }> {
  const { code, stdout, stderr } = await runNode(args)
  return { code, out: stdout + stderr }
}

const script = (library: string): string => `
import { createEngine } from ${JSON.stringify(path.join(ROOT, 'src', 'index.ts'))}
try {
  const engine = await createEngine({ libraryDir: ${JSON.stringify(library)} })
  console.log('started with ' + engine.prompts.size + ' prompts')
  await engine.close()
} catch (err) {
  console.log('refused: ' + err.code + ': ' + err.message)
}
`

t.test('an engine started by `node --input-type=module -e` gets its packet thread', async t => {
  const { code, out } = await node(['--input-type=module', '-e', script(sampleLibrary(t))])
  t.equal(code, 0)
  t.match(out, /started with \d+ prompts/)
})

t.test('a packet thread that cannot start: the engine refuses to start, saying why, and starts no other', async t => {
  const hook = path.join(tempDir(t), 'no-packets.mjs')
  fs.writeFileSync(hook, "import { isMainThread } from 'node:worker_threads'\nif (!isMainThread) throw new Error('no threads for packets here')\n")
  const started = Date.now()
  const { code, out } = await node(['--import', hook, '--input-type=module', '-e', script(sampleLibrary(t))])
  t.equal(code, 0, 'the process is not stuck')
  t.match(out, /refused: PACKET_THREAD_FAILED: the packet thread could not start: no threads for packets here/)
  t.ok(Date.now() - started < 20_000, 'at once')
})
