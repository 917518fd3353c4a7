/**
 * Property: real audio files damaged at random (bytes flipped in their headers, cut, spliced)
 * go through the whole upload path (detection, music-metadata, the integrity checks, ffmpeg)
 * and end either stored whole or refused with an upload error; never an unexpected exception,
 * never a hang, and never anything left in the library's work area.
 */
import fs from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { isEngineError } from '../../src/common/errors.js'
import { Ffmpeg } from '../../src/library/ffmpeg.js'
import { PromptStore } from '../../src/library/prompt-store.js'
import { samples, tempDir } from '../helpers/index.js'

const UPLOAD_ERRORS = new Set(['UNSUPPORTED_MEDIA', 'UNDECODABLE_AUDIO', 'TRUNCATED_AUDIO', 'PROMPT_TOO_LONG'])

type Damage =
  | { kind: 'flip', at: number, value: number }
  | { kind: 'cut', fraction: number }
  | { kind: 'splice', at: number, bytes: Uint8Array }

const damage: fc.Arbitrary<Damage[]> = fc.array(fc.oneof(
  // Headers are where parsers trust what they read: flip bytes in the first kilobyte, past the
  // magic numbers (a damaged magic is simply not audio, which the detection tests cover).
  fc.record({ kind: fc.constant('flip' as const), at: fc.integer({ min: 16, max: 1023 }), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat({ max: 4095 }), bytes: fc.uint8Array({ maxLength: 64 }) })
), { minLength: 1, maxLength: 4 })

function apply (source: Buffer, steps: Damage[]): Buffer {
  let bytes = Buffer.from(source)
  for (const step of steps) {
    if (step.kind === 'flip' && step.at < bytes.length) bytes[step.at] = step.value
    if (step.kind === 'cut') bytes = bytes.subarray(0, Math.floor(bytes.length * step.fraction))
    if (step.kind === 'splice') {
      const at = Math.min(step.at, bytes.length)
      bytes = Buffer.concat([bytes.subarray(0, at), step.bytes, bytes.subarray(at)])
    }
  }
  return bytes
}

t.test('damaged real files: stored or refused with an upload error, nothing left behind', async t => {
  const dir = tempDir(t)
  const { store } = await PromptStore.open(dir, new Ffmpeg({ timeoutMs: 20_000 }))
  const sources = samples()
  const outcomes = new Map<string, number>()
  await fc.assert(fc.asyncProperty(fc.nat({ max: sources.length - 1 }), damage, async (which, steps) => {
    const bytes = apply(sources[which]!.bytes, steps)
    let outcome: string
    try {
      const { prompt } = await store.put('fuzzed', bytes, { replace: true })
      // Stored: then it is whole audio, and its packets add up.
      if (prompt.audio.PCMU.length === 0 || prompt.info.telephony.packets !== Math.ceil(prompt.audio.PCMU.length / 160)) return false
      outcome = 'stored'
    } catch (err) {
      if (!isEngineError(err) || !UPLOAD_ERRORS.has(err.code)) throw err
      outcome = err.code
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    return fs.readdirSync(path.join(dir, '.tmp')).length === 0
  }), { seed: 20261126, numRuns: 200, interruptAfterTimeLimit: 60_000 })
  t.comment(JSON.stringify(Object.fromEntries(outcomes)))
  t.ok(outcomes.size >= 3, `damage led to several outcomes: ${[...outcomes.keys()].join(', ')}`)
  t.same(fs.readdirSync(path.join(dir, '.tmp')), [])
})
