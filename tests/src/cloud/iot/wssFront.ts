import { once } from 'node:events'
import { createServer, type Server } from 'node:https'
import type { Duplex } from 'node:stream'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Issued } from '../pki'
import { verifyPresignedUrl, type CredentialStore } from '../sigv4'

/**
 * AWS IoT's WebSocket entry for browsers: `wss://<endpoint>/mqtt?X-Amz-Algorithm=...` presigned
 * with SigV4 for the service `iotdevicegateway` (the session token appended after signing), the
 * WebSocket subprotocol `mqtt`. The URL is checked before the upgrade is accepted (403 otherwise);
 * then the WebSocket's binary frames are piped, as a byte stream, to a TLS connection to mosquitto
 * made with the front's own client certificate, whose ACL lets it read only what viewers listen to.
 * The two sides close together.
 */

export interface WssFrontOptions {
  tls: Issued
  store: CredentialStore
  /** The broker's port while it runs, undefined while it is stopped. */
  brokerPort: () => number | undefined
  upstream: { ca: string, cert: string, key: string }
  /** The region a presigned URL must be scoped to. */
  region: string
  now?: () => number
}

export class WssFront {
  private readonly wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => protocols.has('mqtt') ? 'mqtt' : false })
  private readonly bridges = new Set<{ ws: WebSocket, upstream: TLSSocket }>()

  private constructor (private readonly server: Server, private readonly o: WssFrontOptions, readonly port: number) {}

  static async start (o: WssFrontOptions): Promise<WssFront> {
    const server = createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json', upgrade: 'websocket' })
      res.end(JSON.stringify({ message: 'This endpoint speaks MQTT over WebSocket only: GET /mqtt with Upgrade: websocket.' }))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    const front = new WssFront(server, o, typeof address === 'object' && address !== null ? address.port : 0)
    server.on('upgrade', (req, socket, head) => { front.upgrade(req, socket, head) })
    return front
  }

  get url (): string { return `wss://127.0.0.1:${this.port}/mqtt` }

  /** Open WebSocket connections. */
  get connections (): number { return this.bridges.size }

  async close (): Promise<void> {
    for (const { ws, upstream } of this.bridges) { ws.terminate(); upstream.destroy() }
    this.bridges.clear()
    this.wss.close()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
  }

  private upgrade (req: import('node:http').IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => { socket.destroy() })
    const host = req.headers.host ?? ''
    let url: URL
    try {
      url = new URL(req.url ?? '/', `https://${host === '' ? '127.0.0.1' : host}`)
    } catch {
      refuse(socket, 400, 'BadRequestException', 'The request URL is not valid.')
      return
    }
    if (url.pathname !== '/mqtt') { refuse(socket, 404, 'NotFoundException', 'The MQTT WebSocket path is /mqtt.'); return }
    const auth = verifyPresignedUrl(url, host, this.o.store, { service: 'iotdevicegateway', now: this.o.now?.() })
    if (!auth.ok) { refuse(socket, 403, auth.code, auth.message); return }
    if (auth.region !== this.o.region) { refuse(socket, 403, 'InvalidSignatureException', `Credential should be scoped to a valid region, not '${auth.region}'.`); return }
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
    if (!offered.includes('mqtt')) { refuse(socket, 400, 'BadRequestException', 'The WebSocket subprotocol must be mqtt.'); return }
    const port = this.o.brokerPort()
    if (port === undefined) { refuse(socket, 503, 'ServiceUnavailableException', 'The broker is stopped.'); return }
    this.wss.handleUpgrade(req, socket, head, (ws) => { this.bridge(ws, port) })
  }

  private bridge (ws: WebSocket, port: number): void {
    const upstream = tlsConnect({ host: '127.0.0.1', port, ca: this.o.upstream.ca, cert: this.o.upstream.cert, key: this.o.upstream.key })
    const entry = { ws, upstream }
    this.bridges.add(entry)
    let closed = false
    const closeBoth = (): void => {
      if (closed) return
      closed = true
      this.bridges.delete(entry)
      upstream.destroy()
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close()
    }
    // Frames received before the TLS handshake completes are buffered by the socket.
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
      upstream.write(bytes)
    })
    upstream.on('data', (chunk: Buffer) => { if (ws.readyState === ws.OPEN) ws.send(chunk) })
    ws.on('close', closeBoth)
    ws.on('error', closeBoth)
    upstream.on('close', closeBoth)
    upstream.on('error', closeBoth)
  }
}

function refuse (socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ message })
  const reason = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error'
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nx-amzn-errortype: ${code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}
