/** The parts of the `sip` package (kirm/sip.js) the example IVR uses. */
declare module 'sip' {
  export interface SipUri { schema?: string, user?: string, host: string, port?: number, params?: Record<string, string | null> }
  export interface Message {
    method?: string
    uri?: string
    status?: number
    reason?: string
    version?: string
    headers: Record<string, any> & {
      to: { uri: string, params: Record<string, string | null> }
      from: { uri: string, params: Record<string, string | null> }
      'call-id': string
      cseq: { seq: number, method: string }
      contact?: Array<{ uri: string }>
      via?: unknown[]
    }
    content?: string
  }
  export interface Remote { protocol: string, address: string, port: number }
  export interface Stack {
    send: (message: Message, callback?: (response: Message) => void) => void
    destroy: () => void
  }
  export function create (options: { port: number, address?: string, publicAddress?: string, udp?: boolean, tcp?: boolean, logger?: { error?: (err: unknown) => void } }, onRequest: (request: Message, remote: Remote) => void): Stack
  export function makeResponse (request: Message, status: number, reason: string, extension?: { headers?: Record<string, unknown>, content?: string }): Message
  const sip: { create: typeof create, makeResponse: typeof makeResponse }
  export default sip
}

declare module 'sip/sdp.js' {
  export interface Media { media: string, port: number, proto: string, fmt: number[], c?: { address: string }, a?: string[] }
  export interface Sdp { c?: { address: string }, m: Media[], a?: string[] }
  export function parse (text: string): Sdp
  const sdp: { parse: typeof parse }
  export default sdp
}
