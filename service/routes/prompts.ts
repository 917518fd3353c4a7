import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import multipart, { type MultipartFile } from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import path from 'node:path'
import { Type } from 'typebox'
import { PromptStore } from '../../src/index.js'
import { httpError } from '../errors.js'
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
  // Uploads are held in memory from their first byte until stored, so the library admits them
  // only as far as the transcoder can take them: beyond, 503 before a byte of the body is read
  // (an out-of-memory kill would end every play). The slot is freed when the answer is sent.
  const admitUpload = async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const done = store.admitUpload()
    reply.raw.once('close', done)
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
    return await reply.code(created ? 201 : 200).send(prompt.describe())
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
      throw httpError('UNSUPPORTED_CONTENT_TYPE', `POST /v1/prompts takes multipart/form-data with a "file" part, not ${request.headers['content-type'] ?? 'a body without Content-Type'}; to send raw bytes use PUT /v1/prompts/{name}`)
    }
    const upload = await readMultipart(request)
    const name = upload.name ?? (upload.filename === null ? null : path.parse(upload.filename).name)
    if (name === null || name === '') {
      throw httpError('INVALID_PROMPT_NAME', 'no prompt name: add a "name" part, or give the "file" part a file name')
    }
    PromptStore.checkName(name)
    const { prompt } = await store.put(name, upload.bytes, { filename: upload.filename, replace: false })
    request.log.info({ prompt: prompt.name, container: prompt.info.source.container, created: true }, 'prompt stored')
    return await reply.code(201).send(prompt.describe())
  })

  app.get('/v1/prompts', {
    schema: { summary: 'List the prompt library', response: { 200: PromptList } }
  }, async () => ({ prompts: store.list() }))

  app.get('/v1/prompts/:name', {
    schema: { summary: 'Describe a prompt', params: NameParams, response: { 200: Prompt, 404: ErrorResponse } }
  }, async (request) => store.getOrThrow(request.params.name).describe())

  app.get('/v1/prompts/:name/audio', {
    schema: {
      summary: 'The prompt as a caller will hear it',
      description: '`wav` (default): 8 kHz mono 16-bit PCM decoded from the stored G.711; `pcmu`, `pcma`: the raw G.711 bytes.',
      params: NameParams,
      querystring: AudioQuery,
      response: { 200: Type.Unsafe<Buffer>({ type: 'string', format: 'binary' }), 404: ErrorResponse }
    }
  }, async (request, reply) => {
    const { mediaType, bytes } = await store.audio(request.params.name, request.query.format)
    return await reply.type(mediaType).send(bytes)
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
    throw httpError('MISSING_FILE_PART', 'the multipart body has no part named "file"; send the audio as -F file=@hello.wav')
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
