/**
 * A prompt of the library: its description and its audio, in each rendition made so far.
 */
import { describeRendition, packetsIn, RENDITIONS, renditionOf, type Codec, type Ptime, type Rendition, type Renditions } from '../common/codecs.js'
import { SAMPLES_PER_MS } from '../common/g711.js'
import { PROMPT_NAME_PATTERN, type PromptInfo, type RenditionInfo } from '../common/schemas.js'
import { EngineError } from '../common/errors.js'

const PROMPT_NAME = new RegExp(PROMPT_NAME_PATTERN)

export function isPromptName (name: string): boolean {
  return PROMPT_NAME.test(name)
}

/** Makes a rendition of a prompt that lacks it, from its source, and stores it where the prompt lives. */
export type RenditionMaker = (prompt: Prompt, rendition: Rendition) => Promise<Buffer>

/**
 * A prompt of the library: its description and its audio. The audio is handed to the packet
 * threads as is (shared memory); the payloads are sliced there, and nothing of them is kept here.
 */
export class Prompt {
  readonly info: PromptInfo
  readonly audio: Renditions
  private readonly maker: RenditionMaker | null
  /** Renditions being made: plays that start at once wait on the same one. */
  private readonly making = new Map<Rendition, Promise<void>>()

  constructor (info: PromptInfo, audio: Renditions, maker: RenditionMaker | null = null) {
    this.info = info
    this.audio = audio
    this.maker = maker
  }

  get name (): string { return this.info.name }

  /** How many packets a play of it sends at a codec and ptime; its rendition must have been made (ensure). */
  packets (codec: Codec, ptimeMs: Ptime): number {
    const bytes = this.audio[renditionOf(codec, ptimeMs)]
    if (bytes === undefined) throw new Error(`the ${renditionOf(codec, ptimeMs)} rendition of "${this.name}" has not been made`)
    return packetsIn(bytes, codec, ptimeMs)
  }

  /** The description with the renditions made so far, as GET /v1/prompts answers it. */
  describe (): PromptInfo & { renditions: RenditionInfo[] } {
    return { ...this.info, renditions: RENDITIONS.filter(r => this.audio[r] !== undefined).map(r => ({ ...describeRendition(r), bytes: this.audio[r]!.length })) }
  }

  /**
   * Makes sure the rendition a play of `codec` at `ptimeMs` slices is here: made once from the
   * source (or read where another instance stored it) and kept, however many plays ask at once.
   */
  async ensure (codec: Codec, ptimeMs: Ptime): Promise<void> {
    const rendition = renditionOf(codec, ptimeMs)
    if (this.audio[rendition] !== undefined) return
    if (this.maker === null) throw new EngineError('INVALID_REQUEST', `the prompt "${this.name}" has no ${rendition} rendition and none can be made here`)
    let making = this.making.get(rendition)
    if (making === undefined) {
      making = this.maker(this, rendition).then(bytes => { this.audio[rendition] ??= bytes }).finally(() => { this.making.delete(rendition) })
      this.making.set(rendition, making)
    }
    await making
  }
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
