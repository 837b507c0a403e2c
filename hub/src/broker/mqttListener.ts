import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Duplex } from 'node:stream'
import type { Startable } from '@doorbell/core'

export interface MqttListener extends Startable {
  readonly server: Server
  /** The port it listens on; throws before start. */
  readonly port: number
}

/**
 * MQTT over TLS (or plain TCP when the hub runs without TLS, on loopback only) for devices: each
 * connection is handed to the broker. Stopping closes the port at once and ends its connections
 * (their wills are published, as when the broker closes them).
 */
export function mqttListener (o: { keyPair: () => { key: string, cert: string } | null, port: number, host: string, accept: (conn: Duplex, remoteAddress: string) => void }): MqttListener {
  let server: Server | null = null
  const sockets = new Set<Socket>()
  const started = (): Server => {
    if (server === null) throw new Error('the MQTT listener has not started')
    return server
  }
  return {
    name: 'mqtt',
    get server (): Server { return started() },
    get port (): number { return (started().address() as AddressInfo).port },
    async start () {
      const tls = o.keyPair()
      // No Nagle: a small packet sent while the previous one is unacknowledged (a ring right after a
  // SUBACK, PUBACK or QoS 0 message) would otherwise wait for the peer's delayed ACK, up to 40 ms
  // on Linux (measured by tests/bench/broker.ts). The WebSocket path already sets it (ws does).
      const accept = (socket: Socket): void => { o.accept(socket, socket.remoteAddress ?? 'unknown') }
      const s: Server = tls
        ? createTlsServer({ key: tls.key, cert: tls.cert, noDelay: true } as never, accept)
        : createNetServer({ noDelay: true }, accept)
      s.on('connection', (socket: Socket) => {
        sockets.add(socket)
        socket.once('close', () => sockets.delete(socket))
      })
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(o.port, o.host, () => { s.off('error', reject); resolve() })
      })
      server = s
    },
    async stop () {
      const s = server
      if (s === null) return
      const closed = new Promise<void>((resolve) => s.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    }
  }
}
