/**
 * A far end's pair of UDP sockets: RTP on a port and RTCP on the one above (RFC 3550 §11), as
 * `prompt-player listen`, the benchmark's receiver and the tests bind them, so that a play's
 * RTCP reaches the far end it is about and never another socket.
 */
import dgram from 'node:dgram'
import { isIP } from 'node:net'

export interface UdpPair { socket: dgram.Socket, rtcpSocket: dgram.Socket | null }

/**
 * Binds `port` on `host` and, when it is free, the port above. Port 0: a free pair, tried until
 * one is found (RTCP then always has its socket).
 */
export async function bindPair (host: string, port: number, options: { recvBufferSize?: number } = {}): Promise<UdpPair> {
  const type = isIP(host) === 6 ? 'udp6' : 'udp4'
  const create = (): dgram.Socket => dgram.createSocket({ type, ...options })
  const bind = async (socket: dgram.Socket, p: number): Promise<void> => await new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(p, host, () => { socket.off('error', reject); resolve() })
  })
  for (let attempt = 0; ; attempt++) {
    const socket = create()
    await bind(socket, port)
    const rtp = socket.address().port
    const rtcpSocket = create()
    try {
      if (rtp === 65535) throw new Error('no port above')
      await bind(rtcpSocket, rtp + 1)
      return { socket, rtcpSocket }
    } catch {
      try { rtcpSocket.close() } catch {}
      if (port !== 0) return { socket, rtcpSocket: null }
      socket.close()
      if (attempt >= 50) throw new Error(`no free pair of UDP ports on ${host}`)
    }
  }
}
