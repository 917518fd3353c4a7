/**
 * A canonical 44-byte WAV header (RIFF/WAVE, fmt chunk with PCM format 1) before 16-bit
 * little-endian samples, so that any player opens what a caller would hear.
 */
export function wavFile (pcm16le: Buffer, sampleRate: number, channels = 1): Buffer {
  const header = Buffer.alloc(44)
  const blockAlign = channels * 2
  header.write('RIFF', 0, 'latin1')
  header.writeUInt32LE(36 + pcm16le.length, 4)
  header.write('WAVE', 8, 'latin1')
  header.write('fmt ', 12, 'latin1')
  header.writeUInt32LE(16, 16)
  header.writeUInt16LE(1, 20)
  header.writeUInt16LE(channels, 22)
  header.writeUInt32LE(sampleRate, 24)
  header.writeUInt32LE(sampleRate * blockAlign, 28)
  header.writeUInt16LE(blockAlign, 32)
  header.writeUInt16LE(16, 34)
  header.write('data', 36, 'latin1')
  header.writeUInt32LE(pcm16le.length, 40)
  return Buffer.concat([header, pcm16le])
}
