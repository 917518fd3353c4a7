/**
 * A prompt of the library: its description and its audio, in both G.711 laws.
 */
import { SAMPLES_PER_MS, type Codec } from '../common/g711.js'
import { PROMPT_NAME_PATTERN, type PromptInfo } from '../common/schemas.js'
import { PromptAudio } from '../packet/prompt-audio.js'

const PROMPT_NAME = new RegExp(PROMPT_NAME_PATTERN)

export function isPromptName (name: string): boolean {
  return PROMPT_NAME.test(name)
}

/** A prompt of the library: its description and its audio. */
export class Prompt extends PromptAudio {
  readonly info: PromptInfo

  constructor (info: PromptInfo, audio: Record<Codec, Buffer>) {
    super(audio)
    this.info = info
  }

  get name (): string { return this.info.name }
}

export function packetCount (bytes: number, ptimeMs: number): number {
  return Math.ceil(bytes / (ptimeMs * SAMPLES_PER_MS))
}

/** Copies bytes into shared memory, so that worker threads can read them without a copy. */
export function toShared (bytes: Uint8Array): Buffer {
  const shared = Buffer.from(new SharedArrayBuffer(bytes.byteLength))
  shared.set(bytes)
  return shared
}
