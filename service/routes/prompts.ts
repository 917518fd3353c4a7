import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import multipart, { type MultipartFile } from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import path from 'node:path'
import { Type } from 'typebox'
import { CODECS, PromptStore } from '../../src/index.js'
import { SAMPLE_RATE } from '../../src/g711.js'
import { wavFile } from '../../src/wav.js'
import { HttpError } from '../errors.js'
import { ErrorResponse, NameParams } from '../schemas/common.js'
import { AudioQuery, Prompt, PromptList } from '../schemas/prompts.js'

export interface PromptRoutesOptions {
  maxUploadBytes: number
}

interface Upload {
  bytes: Buffer
  filename: string | null
  name: string | null
}

const UploadErrors = {
  400: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 422: ErrorResponse, 503: ErrorResponse, 507: ErrorResponse
}

export default async function promptRoutes (fastify: FastifyInstance, opts: PromptRoutesOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const store = app.engine.prompts

  // An upload is the raw audio, whatever Content-Type the client sent (curl -T sends none):
  // the bytes decide what it is, so every type is read as bytes here, and multipart is parsed
  // for POST (and accepted by PUT too).
  // Uploads are held in memory from their first byte until stored, so they are admitted only
  // as far as the transcoder can take them (running plus queued): beyond, 503 before a byte of
  // the body is read. Memory held by uploads stays under that many times the upload limit,
  // whatever clients send; an out-of-memory kill would end every play.
  const maxUploads = app.engine.ffmpeg.maxConcurrent + app.engine.ffmpeg.maxQueued
  let uploading = 0
  const admitUpload = async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (uploading >= maxUploads) {
      throw new HttpError(503, 'TRANSCODER_BUSY', `${uploading} uploads are being received or transcoded, the most at once (PROMPT_PLAYER_MAX_TRANSCODES + PROMPT_PLAYER_TRANSCODE_QUEUE = ${maxUploads}); retry shortly`)
    }
    uploading++
    reply.raw.once('close', () => { uploading-- })
  }

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.maxUploadBytes }, (_req, body, done) => { done(null, body) })
  await app.register(multipart, { limits: { fileSize: opts.maxUploadBytes, files: 1, fields: 4, fieldSize: 1024 } })

  app.put('/v1/prompts/:name', {
    onRequest: admitUpload,
    schema: {
      summary: 'Upload or replace a prompt',
      description: 'The body is the raw audio (any Content-Type). The container is detected from the bytes.',
      params: NameParams,
      response: { 200: Prompt, 201: Prompt, ...UploadErrors }
    }
  }, async (request, reply) => {
    const upload = request.isMultipart() ? await readMultipart(request) : rawUpload(request)
    const { prompt, created } = await store.put(request.params.name, upload.bytes, { filename: upload.filename, replace: true })
    request.log.info({ prompt: prompt.name, container: prompt.info.source.container, created }, 'prompt stored')
    return await reply.code(created ? 201 : 200).send(prompt.info)
  })

  app.post('/v1/prompts', {
    onRequest: admitUpload,
    schema: {
      summary: 'Upload a new prompt (multipart/form-data)',
      description: 'Part `file` is the audio; optional part `name`, else the file name\'s stem. 409 if the name exists.',
      response: { 201: Prompt, 409: ErrorResponse, ...UploadErrors }
    }
  }, async (request, reply) => {
    if (!request.isMultipart()) {
      throw new HttpError(415, 'UNSUPPORTED_MEDIA', `POST /v1/prompts takes multipart/form-data with a "file" part, not ${request.headers['content-type'] ?? 'a body without Content-Type'}; to send raw bytes use PUT /v1/prompts/{name}`)
    }
    const upload = await readMultipart(request)
    const name = upload.name ?? (upload.filename === null ? null : path.parse(upload.filename).name)
    if (name === null || name === '') {
      throw new HttpError(400, 'INVALID_PROMPT_NAME', 'no prompt name: add a "name" part, or give the "file" part a file name')
    }
    PromptStore.checkName(name)
    const { prompt } = await store.put(name, upload.bytes, { filename: upload.filename, replace: false })
    request.log.info({ prompt: prompt.name, container: prompt.info.source.container, created: true }, 'prompt stored')
    return await reply.code(201).send(prompt.info)
  })

  app.get('/v1/prompts', {
    schema: { summary: 'List the prompt library', response: { 200: PromptList } }
  }, async () => ({ prompts: store.list() }))

  app.get('/v1/prompts/:name', {
    schema: { summary: 'Describe a prompt', params: NameParams, response: { 200: Prompt, 404: ErrorResponse } }
  }, async (request) => store.getOrThrow(request.params.name).info)

  app.get('/v1/prompts/:name/audio', {
    schema: {
      summary: 'The prompt as a caller will hear it',
      description: '`wav` (default): 8 kHz mono 16-bit PCM decoded from the stored G.711; `pcmu`, `pcma`: the raw G.711 bytes.',
      params: NameParams,
      querystring: AudioQuery,
      response: { 200: Type.Unsafe<Buffer>({ type: 'string', format: 'binary' }), 404: ErrorResponse }
    }
  }, async (request, reply) => {
    const prompt = store.getOrThrow(request.params.name)
    const format = request.query.format
    if (format === 'wav') {
      const pcm = await app.engine.ffmpeg.decodeG711(prompt.audio.PCMU, 'PCMU')
      return await reply.type('audio/wav').send(wavFile(pcm, SAMPLE_RATE))
    }
    const codec = format === 'pcmu' ? 'PCMU' : 'PCMA'
    return await reply.type(CODECS[codec].mediaType).send(prompt.audio[codec])
  })

  app.delete('/v1/prompts/:name', {
    schema: { summary: 'Delete a prompt (plays already running keep playing)', params: NameParams, response: { 204: Type.Null(), 404: ErrorResponse } }
  }, async (request, reply) => {
    if (!await store.delete(request.params.name)) throw store.notFound(request.params.name)
    return await reply.code(204).send(null)
  })
}

function rawUpload (request: FastifyRequest): Upload {
  const body = request.body
  return { bytes: Buffer.isBuffer(body) ? body : Buffer.alloc(0), filename: null, name: null }
}

/** Reads part `file` (buffered, within the size limit) and the optional part `name`, in any order. */
async function readMultipart (request: FastifyRequest): Promise<Upload> {
  let upload: Upload | null = null
  let name: string | null = null
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      const bytes = await fileBytes(request, part)
      if (part.fieldname === 'file') upload = { bytes, filename: part.filename || null, name: null }
    } else if (part.fieldname === 'name' && typeof part.value === 'string') {
      name = part.value
    }
  }
  if (upload === null) {
    throw new HttpError(400, 'MISSING_FILE_PART', 'the multipart body has no part named "file"; send the audio as -F file=@hello.wav')
  }
  return { ...upload, name }
}

/**
 * A file part's bytes. Past the size limit, busboy stops passing data on but goes on reading
 * the request to the part's end, so `toBuffer()` would answer only when the client has sent it
 * all (gigabytes, slowly); the limit event answers 413 at once instead.
 */
async function fileBytes (request: FastifyRequest, part: MultipartFile): Promise<Buffer> {
  return await new Promise<Buffer>((resolve, reject) => {
    part.file.once('limit', () => reject(new request.server.multipartErrors.RequestFileTooLargeError()))
    part.toBuffer().then(resolve, reject)
  })
}
