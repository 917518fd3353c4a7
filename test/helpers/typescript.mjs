// The tests' TypeScript loader, in every thread of every test process and of the servers and
// packet threads they start (they inherit it from execArgv; tap's `node-arg` puts it there).
//
// tap's own loader (ts-node) loads the TypeScript compiler and transpiles each file anew in each
// of them: about 1.5 s of CPU for a packet thread, and the suite starts hundreds. These hooks
// transpile the same way (TypeScript's transpileModule, inline source maps with the sources, so
// coverage maps back to the .ts lines) and keep the result by content, so a file is transpiled
// once per change and the compiler is loaded only when one is new. tsx (esbuild) starts as fast,
// but its source maps leave tap's coverage report at a false 100 % on Node 20.
import { register } from 'node:module'

register('./typescript-hooks.mjs', import.meta.url)
