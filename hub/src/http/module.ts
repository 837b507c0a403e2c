import type { IncomingMessage, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Logger, Startable } from '@doorbell/core'
import { attachMqttSocket, type MqttSocket } from './mqttSocket'
import { createWebServer } from './server'

export interface WebModule extends Startable {
  /** Fastify's HTTP(S) server; throws before start. */
  readonly server: Server
  readonly port: number
}

export interface WebModuleOptions {
  port: number
  host: string
  /** The key and certificate to serve HTTPS with (known once the tls module started); null: plain HTTP. */
  tls: () => { key: string, cert: string } | null
  viewerDir?: string
  connectTo: string[]
  trustProxy: boolean
  /** The routes, made once the modules they read have started. */
  api: () => FastifyPluginAsync
  /** MQTT over WebSocket at this path of the same server. */
  mqttPath: string
  /** Hands each MQTT-over-WebSocket connection to the broker (through its connection guard). */
  acceptMqtt: (conn: Duplex, remoteAddress: string, req: IncomingMessage) => void
  /** The largest MQTT packet after sign-in: also the largest WebSocket message taken. */
  mqttMaxPacketBytes: number
  log: Logger
}

/** HTTPS (or HTTP on loopback): the built viewer, the API, and MQTT over secure WebSocket. */
export function webModule (o: WebModuleOptions): WebModule {
  let app: FastifyInstance | null = null
  let socket: MqttSocket | null = null
  const started = (): FastifyInstance => {
    if (app === null) throw new Error('the web server has not started')
    return app
  }
  return {
    name: 'http',
    get server (): Server { return started().server },
    get port (): number { return (started().server.address() as AddressInfo).port },
    async start () {
      const tls = o.tls()
      const web = await createWebServer({
        viewerDir: o.viewerDir,
        ...(tls ? { tls } : {}),
        api: o.api(),
        connectTo: o.connectTo,
        trustProxy: o.trustProxy,
        log: o.log
      })
      socket = attachMqttSocket(web.server, { path: o.mqttPath, reached: { tls: tls !== null, trustProxy: o.trustProxy }, accept: o.acceptMqtt, maxPayload: o.mqttMaxPacketBytes + 16 })
      try {
        await web.listen({ port: o.port, host: o.host })
      } catch (err) {
        socket.close()
        await web.close().catch(() => {})
        throw err
      }
      app = web
    },
    async stop () {
      socket?.close()
      await app?.close()
      app = null
    }
  }
}
