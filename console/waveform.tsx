/**
 * The preview of a prompt as the caller hears it: the service's 8 kHz WAV of the stored G.711,
 * fetched once (with the token, which an <audio src> could not send), played from a blob URL
 * by an <audio> element and drawn as a waveform from the same bytes.
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import { describe, type PromptPlayerClient } from './api.js'
import { seconds } from './format.js'

interface Loaded { url: string, samples: Float32Array, durationMs: number }

export function Preview ({ client, name, onClose }: { client: PromptPlayerClient, name: string, onClose: () => void }): preact.JSX.Element {
  const [loaded, setLoaded] = useState<Loaded | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    let url: string | null = null
    let cancelled = false
    void (async () => {
      try {
        const bytes = await client.promptAudio(name, 'wav')
        const blob = new Blob([bytes], { type: 'audio/wav' })
        // Decoded at the file's own rate (8 kHz): one sample per sample, nothing resampled.
        const audio = await new OfflineAudioContext(1, 1, 8000).decodeAudioData(await blob.arrayBuffer())
        if (cancelled) return
        url = URL.createObjectURL(blob)
        setLoaded({ url, samples: audio.getChannelData(0), durationMs: audio.duration * 1000 })
      } catch (err) {
        const { code, message } = describe(err)
        if (!cancelled) setError(`${code}: ${message}`)
      }
    })()
    return () => {
      cancelled = true
      if (url !== null) URL.revokeObjectURL(url)
    }
  }, [client, name])

  return (
    <div class='preview' role='group' aria-label={`Preview of ${name}`}>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {error === null && loaded === null && <p>Loading the audio…</p>}
      {loaded !== null && (
        <>
          <Waveform samples={loaded.samples} label={`Waveform of ${name}, ${seconds(loaded.durationMs)} at 8 kHz`} />
          <audio controls preload='auto' src={loaded.url} aria-label={`${name} as the caller hears it`} />
        </>
      )}
      <button type='button' onClick={onClose}>Close preview</button>
    </div>
  )
}

/** Each pixel column shows the lowest and highest sample under it. */
function Waveform ({ samples, label }: { samples: Float32Array, label: string }): preact.JSX.Element {
  const canvas = useRef<HTMLCanvasElement>(null)
  useEffect(() => {
    const element = canvas.current
    if (element === null) return
    const draw = (): void => {
      const ratio = window.devicePixelRatio || 1
      const width = Math.max(1, Math.floor(element.clientWidth * ratio))
      const height = Math.max(1, Math.floor(element.clientHeight * ratio))
      element.width = width
      element.height = height
      const context = element.getContext('2d')
      if (context === null) return
      context.clearRect(0, 0, width, height)
      context.fillStyle = getComputedStyle(element).color
      const perColumn = samples.length / width
      const middle = height / 2
      for (let x = 0; x < width; x++) {
        let low = 0
        let high = 0
        const end = Math.min(samples.length, Math.ceil((x + 1) * perColumn))
        for (let i = Math.floor(x * perColumn); i < end; i++) {
          const v = samples[i]!
          if (v < low) low = v
          if (v > high) high = v
        }
        const top = middle - high * middle
        context.fillRect(x, top, 1, Math.max(1, (high - low) * middle))
      }
    }
    draw()
    const observer = new ResizeObserver(draw)
    observer.observe(element)
    return () => observer.disconnect()
  }, [samples])
  return <canvas ref={canvas} class='waveform' role='img' aria-label={label} />
}
