import { createServer as createNetServer, type Server as NetServer, type AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { HubConfig, parseConfig, type HubConfigInput } from '@doorbell/core'
import { mayPublish, maySubscribe } from './gate'
import { createWebServer, sendJson } from './http'
import { consoleLogger, type Logger } from '@doorbell/core'
import { startHubMesh, type HubMesh } from './mesh/registry'

export interface Hub {
  config: HubConfig
  broker: Aedes
  http: Server
  mqtt: NetServer
  /** Where browsers open the viewer. */
  url: string
  /** MQTT over TCP, for devices. */
  mqttUrl: string
  /** MQTT over WebSocket, for browsers: same origin as the viewer. */
  wsUrl: string
  /** The LAN mesh: mDNS announcement and the devices that found this hub (null if mesh.enabled is off). */
  mesh: HubMesh | null
  stop: () => Promise<void>
}

export const MQTT_WS_PATH = '/mqtt'

export async function startHub (input: HubConfigInput, options: { log?: Logger } = {}): Promise<Hub> {
  const config = parseConfig(HubConfig, input, 'hub config')
  const log = options.log ?? consoleLogger('hub')

  const broker = await Aedes.createBroker({
    authorizePublish: (client, packet, callback) => {
      const verdict = mayPublish(client?.id ?? null, packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload))
      if (verdict.ok) { callback(null); return }
      log.warn('refused a publish', { client: client?.id ?? '(broker)', topic: packet.topic, reason: verdict.reason })
      callback(new Error(verdict.reason))
    },
    authorizeSubscribe: (client, subscription, callback) => {
      const verdict = maySubscribe(subscription.topic)
      if (verdict.ok) { callback(null, subscription); return }
      log.warn('refused a subscription', { client: client.id, topic: subscription.topic, reason: verdict.reason })
      callback(new Error(verdict.reason), null)
    }
  })
  broker.on('clientError', (client, err) => { log.warn('client error', { client: client.id, error: err.message }) })
  broker.on('client', (client) => { log.info('client connected', { client: client.id }) })
  broker.on('clientDisconnect', (client) => { log.info('client disconnected', { client: client.id }) })

  // No Nagle: a small packet sent while the previous one is unacknowledged (a ring right after a
  // SUBACK, PUBACK or QoS 0 message) would otherwise wait for the peer's delayed ACK, up to 40 ms
  // on Linux (measured by tests/bench/broker.ts). The WebSocket path already sets it (ws does).
  let mesh: HubMesh | null = null
  const mqtt = createNetServer({ noDelay: true }, (socket) => broker.handle(socket))
  const http = createWebServer({
    viewerDir: config.viewerDir,
    tls: config.tls,
    api: (req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (path === '/api/info' && req.method === 'GET') {
        sendJson(res, 200, { homeId: config.homeId, hubName: config.hubName, mqttPath: MQTT_WS_PATH, inspect: config.inspect })
        return true
      }
      if (path === '/api/devices' && req.method === 'GET') {
        sendJson(res, 200, { devices: mesh?.devices() ?? [], peers: mesh?.peers().length ?? 0 })
        return true
      }
      if (path === '/healthz') {
        sendJson(res, 200, { ok: true, clients: broker.connectedClients })
        return true
      }
      if (path?.startsWith('/api/')) {
        sendJson(res, 404, { error: `no such endpoint: ${path}` })
        return true
      }
      return false
    }
  })
  const wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 })
  http.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '').split('?')[0] !== MQTT_WS_PATH) {
      socket.destroy()
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', () => { ws.terminate() })
      broker.handle(stream as never, req)
    })
  })

  await listen(mqtt, config.mqttPort, config.host)
  await listen(http, config.httpPort, config.host)
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  const httpPort = (http.address() as AddressInfo).port
  const mqttPort = (mqtt.address() as AddressInfo).port
  const scheme = config.tls ? 'https' : 'http'
  mesh = config.mesh.enabled ? await startHubMesh(config, mqttPort, log.child('mesh')) : null
  const hub: Hub = {
    config,
    broker,
    http,
    mqtt,
    url: `${scheme}://${host}:${httpPort}/`,
    mqttUrl: `mqtt://${host}:${mqttPort}`,
    wsUrl: `${config.tls ? 'wss' : 'ws'}://${host}:${httpPort}${MQTT_WS_PATH}`,
    mesh,
    async stop () {
      await mesh?.stop()
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await Promise.all([close(mqtt), close(http)])
    }
  }
  log.info('hub ready', { viewer: hub.url, mqtt: hub.mqttUrl, ws: hub.wsUrl, home: config.homeId })
  return hub
}

async function listen (server: NetServer | Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
}

async function close (server: NetServer | Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    if ('closeAllConnections' in server) server.closeAllConnections()
  })
}
