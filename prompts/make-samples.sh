#!/usr/bin/env bash
# Makes the sample prompts of the default library: speech from espeak-ng, encoded by ffmpeg
# into each container the service recognises (WAV, MP3, WMA, FLAC, Ogg Vorbis and Opus, M4A;
# two of them under a lying name), then
# stored in this directory through the engine itself, so the library holds exactly what an
# upload of these files makes. The results are committed: neither the service nor the tests
# need espeak-ng. Run it again (npm run prompts) after changing the transcoder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v espeak-ng >/dev/null || { echo "make-samples: needs espeak-ng (apt-get install -y espeak-ng)" >&2; exit 1; }

speak() { espeak-ng -v en-us -s 160 -w "$work/$1.speech.wav" "$2"; }
speak welcome "Welcome to prompt player."
speak menu "For sales, press 1. For support, press 2."
speak goodbye "Thank you for calling. Goodbye."
speak renamed "This is an M P 3 file, named as W M A."
speak disguised "This is a W M A file, named as wave."
speak hold "Please hold while we connect you."
speak transfer "Transferring your call."
speak voicemail "Please leave a message after the tone."
speak hours "Our office is open from nine to five."

enc() { ffmpeg -nostdin -hide_banner -v error -y -i "$work/$1.speech.wav" "${@:3}" "$work/$2"; }
# WAV: 16 kHz 16-bit PCM, so the transcoder really resamples.
enc welcome welcome.wav -ar 16000 -ac 1 -c:a pcm_s16le
# MP3 with an ID3v2 tag, 22.05 kHz stereo: detection must skip the tag, the transcoder downmix.
enc menu menu.mp3 -ar 22050 -ac 2 -c:a libmp3lame -b:a 48k -metadata title="Main menu" -id3v2_version 3
# WMA (ASF), 22.05 kHz mono.
enc goodbye goodbye.wma -ar 22050 -ac 1 -c:a wmav2 -b:a 32k
# An MP3 named .wma, the case UCMA's WmaFileSource is known for; no ID3 tag this time.
enc renamed renamed.wma -ar 22050 -ac 1 -c:a libmp3lame -b:a 32k -id3v2_version 0 -write_xing 0 -f mp3
# A WMA named .wav.
enc disguised disguised.wav -ar 16000 -ac 1 -c:a wmav2 -b:a 32k -f asf
# FLAC, 44.1 kHz 16-bit stereo.
enc hold hold.flac -ar 44100 -ac 2 -c:a flac
# Ogg Vorbis, 22.05 kHz mono.
enc transfer transfer.ogg -ar 22050 -ac 1 -c:a libvorbis -q:a 3
# Ogg Opus, 48 kHz mono (Opus always decodes at 48 kHz).
enc voicemail voicemail.opus -ar 48000 -ac 1 -c:a libopus -b:a 24k
# M4A: AAC-LC in MP4 with the M4A brand (ffmpeg's ipod muxer), 44.1 kHz mono.
enc hours hours.m4a -ar 44100 -ac 1 -c:a aac -b:a 64k -f ipod

cd "$here/.."
npm run --silent build
node --input-type=module - "$here" "$work" <<'JS'
import fs from 'node:fs/promises'
import path from 'node:path'
import { createEngine } from './dist/src/index.js'
const [library, work] = process.argv.slice(2)
const engine = await createEngine({ libraryDir: library })
for (const file of ['welcome.wav', 'menu.mp3', 'goodbye.wma', 'renamed.wma', 'disguised.wav', 'hold.flac', 'transfer.ogg', 'voicemail.opus', 'hours.m4a']) {
  const bytes = await fs.readFile(path.join(work, file))
  const { prompt } = await engine.prompts.put(path.parse(file).name, bytes, { filename: file, replace: true })
  const s = prompt.info.source
  console.log(`${file}: ${s.container} ${s.codec} ${s.sampleRate} Hz ${s.channels} ch ${s.durationMs} ms, ${s.bytes} bytes, mismatch ${s.extensionMismatch}`)
}
await engine.close()
JS
