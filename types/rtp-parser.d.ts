declare module 'rtp-parser' {
  export interface RtpPacket {
    version: number
    padding: number
    extension: number
    csrcCount: number
    marker: number
    payloadType: number
    sequenceNumber: number
    timestamp: number
    ssrc: number
    csrc: number[]
    payload: Buffer
  }
  export const FIXED_HEADER_LENGTH: number
  export function parseRtpPacket (buf: Buffer): RtpPacket
}
