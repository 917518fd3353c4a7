/** The command's entry point (bin/prompt-player runs the built copy of this file). */
import { run } from './index.js'

process.exitCode = await run(process.argv.slice(2), {
  out: text => process.stdout.write(text + '\n'),
  err: text => process.stderr.write(text + '\n'),
  env: process.env
})
