import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { isSameOrigin, type Reached } from './origin'

export interface MqttSocket {
  /** Ends every MQTT-over-WebSocket connection and stops taking new ones. */
  close: () => void
}

/**
 * MQTT over (secure) WebSocket at `path` on the web server, for browsers: the upgrade is taken
 * only from a page of the hub's own origin (browsers always send Origin on a WebSocket, so another
 * site's page may not use this hub; behind a trusted proxy the page's origin is the proxy's,
 * X-Forwarded-Proto/-Host). Anything else is hung up on before a byte of WebSocket is spoken.
 */
export function attachMqttSocket (server: Server, o: { path: string, reached: Reached, accept: (conn: Duplex, remoteAddress: string, req: IncomingMessage) => void, maxPayload: number }): MqttSocket {
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload })
  server.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '').split('?')[0] !== o.path || !isSameOrigin(req, o.reached)) {
      socket.destroy()
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', () => { ws.terminate() })
      // The upgrade request goes along: the sign-in limit keys on its client address.
      o.accept(stream, req.socket.remoteAddress ?? 'unknown', req)
    })
  })
  return {
    close: () => {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
    }
  }
}
