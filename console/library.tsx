/**
 * The library: every prompt with what was detected in its bytes, uploads by drop or picker
 * (several at once, each with its progress and its answer), previews, and delete.
 */
import { useRef, useState } from 'preact/hooks'
import { describe, promptName, uploadFile, type PromptInfo, type PromptPlayerClient, type UploadProgress } from './api.js'
import { channels, hertz, seconds, size } from './format.js'
import { Preview } from './waveform.js'

interface Upload {
  key: number
  file: string
  name: string
  progress: UploadProgress | null
  result: { ok: true, container: string } | { ok: false, code: string, message: string } | null
}

interface Props {
  client: PromptPlayerClient
  token: string | undefined
  prompts: PromptInfo[]
  reload: () => Promise<void>
  announce: (message: string) => void
  onAuthError: (err: unknown) => boolean
}

let uploadKey = 0

export function Library ({ client, token, prompts, reload, announce, onAuthError }: Props): preact.JSX.Element {
  const [uploads, setUploads] = useState<Upload[]>([])
  const [replace, setReplace] = useState(false)
  const [dragging, setDragging] = useState(false)
  const [previewing, setPreviewing] = useState<string | null>(null)
  const [deleting, setDeleting] = useState<string | null>(null)
  const [deleteError, setDeleteError] = useState<string | null>(null)
  const dialog = useRef<HTMLDialogElement>(null)
  const input = useRef<HTMLInputElement>(null)

  const update = (key: number, change: Partial<Upload>): void => setUploads(list => list.map(u => u.key === key ? { ...u, ...change } : u))

  // One file after another: the service transcodes a few at a time and queues the rest anyway,
  // and one at a time keeps each bar meaningful.
  async function upload (files: File[]): Promise<void> {
    const batch = files.map(file => ({ key: ++uploadKey, file: file.name, name: promptName(file.name), progress: null, result: null }))
    setUploads(list => [...batch, ...list].slice(0, 50))
    for (const [i, file] of files.entries()) {
      const { key, name } = batch[i]!
      try {
        const prompt = await uploadFile(file, name, { token, replace, onProgress: progress => update(key, { progress }) })
        update(key, { result: { ok: true, container: prompt.source.container } })
        announce(`${file.name} uploaded as ${name}: ${prompt.source.container}${prompt.source.extensionMismatch ? ', its extension lied' : ''}`)
      } catch (err) {
        if (onAuthError(err)) return
        const { code, message } = describe(err)
        update(key, { result: { ok: false, code, message } })
        announce(`${file.name} was refused: ${code}: ${message}`)
      }
    }
    await reload()
  }

  function onDrop (event: DragEvent): void {
    event.preventDefault()
    setDragging(false)
    const files = [...(event.dataTransfer?.files ?? [])]
    if (files.length > 0) void upload(files)
  }

  function askDelete (name: string): void {
    setDeleting(name)
    setDeleteError(null)
    dialog.current?.showModal()
  }

  async function confirmDelete (): Promise<void> {
    if (deleting === null) return
    try {
      await client.deletePrompt(deleting)
      announce(`${deleting} deleted`)
      if (previewing === deleting) setPreviewing(null)
      dialog.current?.close()
      setDeleting(null)
      await reload()
    } catch (err) {
      if (onAuthError(err)) return
      const { code, message } = describe(err)
      setDeleteError(`${code}: ${message}`)
    }
  }

  return (
    <section aria-labelledby='library-heading'>
      <h2 id='library-heading'>Library <span class='count'>{prompts.length} prompts</span></h2>
      <div
        class={dragging ? 'drop dragging' : 'drop'}
        onDragOver={e => { e.preventDefault(); setDragging(true) }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <label for='upload-files'>Upload prompts: drop audio files here, or choose them</label>
        <input
          id='upload-files' ref={input} type='file' multiple
          aria-describedby='upload-help'
          onChange={e => {
            const files = [...(e.currentTarget.files ?? [])]
            e.currentTarget.value = ''
            if (files.length > 0) void upload(files)
          }}
        />
        <p id='upload-help' class='help'>
          WAV, MP3, WMA, FLAC, Ogg or M4A, whatever the file is called: the container is read from
          the bytes. Each file becomes the prompt named after it.
        </p>
        <label class='inline'>
          <input type='checkbox' checked={replace} onChange={e => setReplace(e.currentTarget.checked)} /> Replace prompts of the same name
        </label>
      </div>
      {uploads.length > 0 && (
        <ul class='uploads' aria-label='Uploads'>
          {uploads.map(u => (
            <li key={u.key} class={u.result === null ? 'upload' : u.result.ok ? 'upload ok' : 'upload failed'} data-file={u.file}>
              <span class='file'>{u.file}</span>
              {u.result === null && (
                <>
                  <progress max={u.progress?.total ?? 1} value={u.progress?.sent ?? 0} aria-label={`Upload of ${u.file}`} />
                  <span>{u.progress?.phase === 'transcoding' ? 'transcoding…' : 'sending…'}</span>
                </>
              )}
              {u.result?.ok === true && <span>uploaded as <strong>{u.name}</strong> ({u.result.container})</span>}
              {u.result?.ok === false && <span class='error' role='alert'><code>{u.result.code}</code> {u.result.message}</span>}
            </li>
          ))}
        </ul>
      )}
      <div class='scroll'>
        <table class='prompts'>
          <caption class='visually-hidden'>Prompts in the library</caption>
          <thead>
            <tr><th scope='col'>Name</th><th scope='col'>Container</th><th scope='col'>Codec</th><th scope='col'>Rate</th><th scope='col'>Channels</th><th scope='col'>Duration</th><th scope='col'>Renditions</th><th scope='col'><span class='visually-hidden'>Actions</span></th></tr>
          </thead>
          <tbody>
            {prompts.length === 0 && <tr><td colSpan={8}>No prompts yet: upload one above.</td></tr>}
            {prompts.map(p => (
              <PromptRow key={p.name} prompt={p} previewing={previewing === p.name} client={client} onPreview={() => setPreviewing(previewing === p.name ? null : p.name)} onDelete={() => askDelete(p.name)} />
            ))}
          </tbody>
        </table>
      </div>
      <dialog ref={dialog} aria-labelledby='delete-heading' onClose={() => setDeleting(null)}>
        <h3 id='delete-heading'>Delete {deleting}?</h3>
        <p>The prompt leaves the library; plays already running keep playing it.</p>
        {deleteError !== null && <p class='error' role='alert'>{deleteError}</p>}
        <div class='actions'>
          <button type='button' onClick={() => dialog.current?.close()}>Cancel</button>
          <button type='button' class='danger' onClick={() => { void confirmDelete() }}>Delete</button>
        </div>
      </dialog>
    </section>
  )
}

function PromptRow ({ prompt, previewing, client, onPreview, onDelete }: { prompt: PromptInfo, previewing: boolean, client: PromptPlayerClient, onPreview: () => void, onDelete: () => void }): preact.JSX.Element {
  const s = prompt.source
  const extension = s.filename?.match(/\.([^.]+)$/)?.[1] ?? null
  return (
    <>
      <tr data-prompt={prompt.name}>
        <th scope='row'>{prompt.name}{s.filename !== null && <span class='filename'>{s.filename}</span>}</th>
        <td class='container'>
          {s.container}
          {s.extensionMismatch && (
            <span class='mismatch' title={`The file was named ${s.filename}, but its bytes are ${s.container}`}>
              named .{extension}
            </span>
          )}
        </td>
        <td>{s.codec ?? '—'}</td>
        <td>{hertz(s.sampleRate)}</td>
        <td>{channels(s.channels)}</td>
        <td>{seconds(s.durationMs)}</td>
        <td class='renditions'>
          <ul aria-label={`Renditions of ${prompt.name}`}>
            {prompt.renditions.map(r => {
              const name = r.frameMs === null ? r.codec : `${r.codec} ${r.frameMs} ms`
              return <li key={name} data-rendition={name}>{name} <span class='size'>{size(r.bytes)}</span></li>
            })}
          </ul>
        </td>
        <td class='actions'>
          <button type='button' aria-expanded={previewing} aria-label={`Preview ${prompt.name}`} onClick={onPreview}>{previewing ? 'Hide' : 'Preview'}</button>
          <button type='button' class='danger' aria-label={`Delete ${prompt.name}`} onClick={onDelete}>Delete</button>
        </td>
      </tr>
      {previewing && (
        <tr class='preview-row'>
          <td colSpan={8}><Preview client={client} name={prompt.name} onClose={onPreview} /></td>
        </tr>
      )}
    </>
  )
}
