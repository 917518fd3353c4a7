/**
 * The prompt library in Redis, shared by every instance of a pool:
 *
 *   prompt-player:library          hash: name -> the prompt's description (PromptInfo JSON)
 *   prompt-player:media:<sha256>   hash: a field per rendition (pcmu, pcma, g722, opus-20, ...;
 *                                  see RENDITIONS), and source, unless turned off
 *   prompt-player:library          channel: the name of each prompt committed or removed
 *
 * A commit is one Lua script, so it is atomic: the media and the description appear together
 * or not at all, and another instance never reads half a prompt. Media is named by the
 * source's hash, so the same audio under two names is stored once, as on disk. Transcoding
 * stays on the instance that received the upload: it stages files locally for ffmpeg.
 *
 * Replication is asynchronous, so a write the master took can die with it. With replicas to
 * wait for, a commit or a remove is answered only once that many replicas acknowledged it
 * (WAIT); when fewer did within the time, it is taken back by a script of its own (the
 * description as it was, the media fields it added) and refused: a 201 is never lost in a
 * failover, and a refusal leaves the library as it was.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Redis } from 'ioredis'
import { EngineError } from '../common/errors.js'
import { RENDITIONS, type Rendition, type Renditions } from '../common/codecs.js'
import type { PromptInfo } from '../common/schemas.js'
import { toShared } from '../library/prompt.js'
import { discard, readAudio, stage, stagedDir } from '../library/staging.js'
import type { LibraryStorage, Staged, StoredPrompt, StoreWarning } from '../library/storage.js'
import { KEYS, storeUnavailable } from './redis.js'

/** A rendition's field in a media hash. */
const field = (rendition: Rendition): string => rendition.toLowerCase()

// KEYS: library, media:<sha>. ARGV: name, info, replace (1/0), source ('' when not kept), then
// field, value pairs of the renditions. A rendition stored already (same source) is kept.
// Returns {0} when the name is taken, else {1, the description it replaced or '', the media
// fields it added...}: what taking it back needs.
const COMMIT = `
if ARGV[3] == '0' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {0} end
local added = {}
for i = 5, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then added[#added + 1] = ARGV[i] end
end
if ARGV[4] ~= '' and redis.call('HSETNX', KEYS[2], 'source', ARGV[4]) == 1 then added[#added + 1] = 'source' end
local previous = redis.call('HGET', KEYS[1], ARGV[1]) or ''
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return {1, previous, unpack(added)}`

// KEYS: library, media:<sha>. ARGV: name, the description committed, the one it replaced or
// '', sha, then the media fields the commit added. Puts the description back unless another
// write changed it meanwhile, and drops the added fields unless a description names the media.
const UNDO_COMMIT = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
  redis.call('PUBLISH', KEYS[1], ARGV[1])
end
if #ARGV > 4 then
  for _, info in ipairs(redis.call('HVALS', KEYS[1])) do
    if string.find(info, ARGV[4], 1, true) then return 1 end
  end
  for i = 5, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
end
return 1`

// KEYS: media:<sha>. ARGV: field, value. Only beside the other renditions: media dropped meanwhile stays dropped.
const ADD_RENDITION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])`

// KEYS: library. ARGV: name. Returns the description removed (nil when there was none).
const REMOVE = `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return previous`

// KEYS: library. ARGV: name, the description removed. Back, unless the name was taken meanwhile.
const UNDO_REMOVE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then redis.call('PUBLISH', KEYS[1], ARGV[1]) end
return 1`

// KEYS: library, media:<sha>. ARGV: sha. Frees the media only when no description names it.
const DROP_MEDIA = `
for _, info in ipairs(redis.call('HVALS', KEYS[1])) do
  if string.find(info, ARGV[1], 1, true) then return 0 end
end
return redis.call('DEL', KEYS[2])`

export interface RedisStorageOptions {
  /** The Redis URL without its password, for messages. */
  location: string
  /** Keep the uploaded bytes too (default), or only the G.711 renditions. */
  keepSource: boolean
  /** A directory for uploads being transcoded on this instance. */
  stagingDir?: string
  /** The connection commits and removes go on, and WAIT after them (default: the command one). */
  writer?: Redis
  /** Replicas that must acknowledge a commit or a remove, and for how long to wait (default none). */
  durability?: { replicas: number, timeoutMs: number }
}

export class RedisStorage implements LibraryStorage {
  readonly location: string
  private readonly redis: Redis
  private readonly writer: Redis
  private readonly durability: { replicas: number, timeoutMs: number }
  private readonly subscriber: Redis
  private readonly keepSource: boolean
  private readonly stagingDir: string
  private readonly listeners = new Set<(name: string | null) => void>()
  private subscribed = false

  constructor (redis: Redis, subscriber: Redis, options: RedisStorageOptions) {
    this.redis = redis
    this.writer = options.writer ?? redis
    this.durability = options.durability ?? { replicas: 0, timeoutMs: 0 }
    this.subscriber = subscriber
    this.location = options.location
    this.keepSource = options.keepSource
    this.stagingDir = options.stagingDir ?? path.join(os.tmpdir(), `prompt-player-staging-${process.pid}`)
  }

  async load (): Promise<{ prompts: StoredPrompt[], warnings: StoreWarning[] }> {
    await fs.rm(this.stagingDir, { recursive: true, force: true })
    const warnings: StoreWarning[] = []
    const prompts: StoredPrompt[] = []
    const media = new Map<string, Renditions>()
    for (const info of await this.readInfos(warnings)) {
      try {
        let audio = media.get(info.source.sha256)
        if (audio === undefined) {
          audio = await this.readMedia(info.source.sha256)
          media.set(info.source.sha256, audio)
        }
        prompts.push({ info, audio })
      } catch (err) {
        if (err instanceof EngineError && err.code === 'STORE_UNAVAILABLE') throw err
        warnings.push({ file: `${KEYS.library} ${info.name}`, reason: (err as Error).message })
      }
    }
    return { prompts, warnings }
  }

  async stage (bytes: Uint8Array, sha256: string): Promise<Staged> {
    return await stage(this.stagingDir, bytes, sha256)
  }

  async readStaged (staged: Staged): Promise<Renditions> {
    return await readAudio(stagedDir(staged))
  }

  async discard (staged: Staged): Promise<void> {
    await discard(stagedDir(staged))
  }

  async commit (info: PromptInfo, staged: Staged, options: { replace: boolean }): Promise<void> {
    try {
      const [audio, source] = await Promise.all([
        readAudio(stagedDir(staged)),
        this.keepSource ? fs.readFile(staged.source) : Promise.resolve(Buffer.alloc(0))
      ])
      const fields = (Object.entries(audio) as Array<[Rendition, Buffer]>).flatMap(([rendition, bytes]) => [field(rendition), bytes])
      const description = JSON.stringify(info)
      const reply = await this.run(async () => await this.writer.eval(COMMIT, 2, KEYS.library, KEYS.media(staged.sha256), info.name, description, options.replace ? '1' : '0', source, ...fields)) as [number, string?, ...string[]]
      if (reply[0] === 0) {
        throw new EngineError('PROMPT_EXISTS', `a prompt named "${info.name}" was stored meanwhile (by another instance); upload with replace (PUT) to replace it, or delete it first`)
      }
      const [, previous = '', ...added] = reply
      await this.acknowledged(`"${info.name}"`, async () => await this.writer.eval(UNDO_COMMIT, 2, KEYS.library, KEYS.media(staged.sha256), info.name, description, previous, staged.sha256, ...added))
    } finally {
      await this.discard(staged)
    }
  }

  async remove (name: string): Promise<void> {
    const previous = await this.run(async () => await this.writer.eval(REMOVE, 1, KEYS.library, name)) as string | null
    if (previous === null) return
    await this.acknowledged(`the delete of "${name}"`, async () => await this.writer.eval(UNDO_REMOVE, 1, KEYS.library, name, previous))
  }

  /**
   * Waits for the replicas to acknowledge the last write on the writer connection (WAIT). When
   * fewer do in time, the write is taken back (`undo`) and STORE_UNAVAILABLE is thrown.
   */
  private async acknowledged (what: string, undo: () => Promise<unknown>): Promise<void> {
    const { replicas, timeoutMs } = this.durability
    if (replicas === 0) return
    let acknowledged: number
    try {
      acknowledged = await this.writer.wait(replicas, timeoutMs)
    } catch (err) {
      await undo().catch(() => {})
      throw storeUnavailable(this.location, err)
    }
    if (acknowledged >= replicas) return
    await undo().catch(() => {})
    throw new EngineError('STORE_UNAVAILABLE', `the pool's Redis master at ${this.location} took ${what}, but ${acknowledged} of the ${replicas} replica${replicas === 1 ? '' : 's'} it must reach acknowledged it within ${timeoutMs} ms (pool.waitReplicas, pool.waitMs): it was taken back rather than answered while a failover could lose it; the library is as it was. Retry once a replica is back`, { options: ['pool.waitReplicas', 'pool.waitMs'] })
  }

  async dropMedia (sha256: string): Promise<void> {
    await this.run(async () => await this.redis.eval(DROP_MEDIA, 2, KEYS.library, KEYS.media(sha256), sha256)).catch(() => {})
  }

  async checkWritable (): Promise<void> {
    try {
      await this.redis.ping()
    } catch (err) {
      throw new Error(`the pool's Redis at ${this.location} cannot be reached: ${(err as Error).message}`, { cause: err })
    }
  }

  watch (listener: (name: string | null) => void): () => void {
    this.listeners.add(listener)
    if (!this.subscribed) {
      this.subscribed = true
      this.subscriber.on('message', (_channel: string, name: string) => {
        for (const l of this.listeners) l(name)
      })
      // After a lost connection (of either the subscriber, which may have missed messages, or
      // the command connection, which may have failed to read a change), everything is checked
      // again, once both are back.
      let pending = false
      const resync = (): void => {
        if (!pending || this.redis.status !== 'ready' || this.subscriber.status !== 'ready') return
        pending = false
        for (const l of this.listeners) l(null)
      }
      for (const connection of [this.subscriber, this.redis]) {
        connection.on('close', () => { pending = true })
        connection.on('ready', resync)
      }
      void this.subscriber.subscribe(KEYS.library).catch(() => {})
    }
    return () => { this.listeners.delete(listener) }
  }

  async readInfo (name: string): Promise<PromptInfo | undefined> {
    const text = await this.run(async () => await this.redis.hget(KEYS.library, name))
    return text === null ? undefined : JSON.parse(text) as PromptInfo
  }

  async readInfos (warnings: StoreWarning[] = []): Promise<PromptInfo[]> {
    const all = await this.run(async () => await this.redis.hgetall(KEYS.library))
    const infos: PromptInfo[] = []
    for (const [name, text] of Object.entries(all)) {
      try {
        const info = JSON.parse(text) as PromptInfo
        if (info.name !== name || typeof info.source?.sha256 !== 'string') throw new Error('not a prompt description written by prompt-player')
        infos.push(info)
      } catch (err) {
        warnings.push({ file: `${KEYS.library} ${name}`, reason: (err as Error).message })
      }
    }
    return infos.sort((a, b) => a.name < b.name ? -1 : 1)
  }

  async readMedia (sha256: string): Promise<Renditions> {
    const values = await this.run(async () => await this.redis.hmgetBuffer(KEYS.media(sha256), ...RENDITIONS.map(field)))
    const audio: Partial<Renditions> = {}
    for (const [i, rendition] of RENDITIONS.entries()) if (values[i] != null) audio[rendition] = toShared(values[i]!)
    if (audio.PCMU === undefined || audio.PCMA === undefined) throw new Error(`the audio of ${sha256.slice(0, 12)}... is missing from ${KEYS.media(sha256)}`)
    return audio as Renditions
  }

  /** The uploaded bytes of a stored source, if kept. */
  async readSource (sha256: string): Promise<Buffer | null> {
    return await this.run(async () => await this.redis.hgetBuffer(KEYS.media(sha256), 'source'))
  }

  async readRendition (sha256: string, rendition: Rendition): Promise<Buffer | null> {
    return await this.run(async () => await this.redis.hgetBuffer(KEYS.media(sha256), field(rendition)))
  }

  async addRendition (sha256: string, rendition: Rendition, bytes: Buffer): Promise<void> {
    await this.run(async () => await this.redis.eval(ADD_RENDITION, 1, KEYS.media(sha256), field(rendition), bytes))
  }

  private async run<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw storeUnavailable(this.location, err)
    }
  }
}
