import { createServer as createNetServer, type Server as NetServer, type AddressInfo } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Server } from 'node:http'
import { Aedes, type Client } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { HubConfig, decodeTopicMessage, parseConfig, topics, type HubConfigInput, type ViewerCloudConfig } from '@doorbell/core'
import { mayPublish, maySubscribe, principalFor, zoneOfDevice, type Principal } from './gate'
import { clientAddressOf, createWebServer, isSameOrigin } from './http'
import { consoleLogger, type Logger } from '@doorbell/core'
import { startHubMesh, type HubMesh } from './mesh/registry'
import { createApi } from './api'
import { RateLimiter } from './rateLimit'
import { ensureLocalTls, lanAddresses, type LocalTls } from './tls/localCa'
import { startTrust, type Trust } from './trust/trust'

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
  /** Members, pairing, revocation and the audit log. */
  trust: Trust
  /** The local CA and server certificate (tls 'auto'); null otherwise. */
  tls: LocalTls | null
  /** The owner's one-time setup code, while the home has no owner. */
  setupCode: { code: string, expiresAt: number } | null
  stop: () => Promise<void>
}

export const MQTT_WS_PATH = '/mqtt'

export async function startHub (input: HubConfigInput, options: { log?: Logger } = {}): Promise<Hub> {
  const config = parseConfig(HubConfig, input, 'hub config')
  const log = options.log ?? consoleLogger('hub')

  const trust = await startTrust({ dir: join(config.dataDir, 'trust'), homeId: config.homeId, hubName: config.hubName, log: log.child('trust') })
  const tls: LocalTls | null = config.tls === 'auto'
    ? await ensureLocalTls({ dir: join(config.dataDir, 'tls'), hostnames: [hostname(), `${hostname()}.local`, ...config.tlsNames], ips: lanAddresses(), log: log.child('tls') })
    : null
  const keyPair: { key: string, cert: string } | null = tls
    ? { key: tls.key, cert: tls.cert }
    : typeof config.tls === 'object' ? config.tls : null

  // Who each connected client is: set by authenticate, read by every other hook.
  const principals = new WeakMap<Client, Principal>()
  const devices = (): string[] => trust.members().filter((m) => m.kind === 'device' && m.revokedAt === null).map((m) => m.subject)
  const zonesOf = (deviceId: string): string[] => {
    const device = trust.members().find((m) => m.kind === 'device' && m.subject === deviceId && m.revokedAt === null)
    return device ? [zoneOfDevice(device)] : []
  }
  // Failed sign-ins per address: 20, then one more a second (a token is 256 bits; this stops floods, and only failures count).
  const failedSignIn = new RateLimiter({ burst: 20, refillMs: 1000 })
  // One client-address rule (and one "logged once") for the API and the MQTT WebSocket.
  const requestAddress = clientAddressOf({ trustProxy: config.trustProxy, log })
  /**
   * A client's address: for MQTT over WebSocket the upgrade request's (behind a trusted proxy,
   * its X-Real-IP); for MQTT over TCP or TLS, which never passes the HTTP proxy, the socket's.
   */
  const addressOf = (client: Client): string => {
    if (client.req !== undefined) return requestAddress(client.req)
    return (client.conn as { remoteAddress?: string }).remoteAddress ?? 'unknown'
  }

  const broker = await Aedes.createBroker({
    // No anonymous clients: user name = member id, password = the token from pairing (MQTT-3.1.3-… fields).
    authenticate: (client, username, password, callback) => {
      // 3 (server unavailable) means "try again later"; 4 and 5 mean "these credentials are no
      // good", which a viewer takes as "removed" and forgets its pairing (MQTT-3.2.2.3).
      const refuse = (returnCode: 3 | 4 | 5, reason: string): void => {
        log.warn('refused a client', { client: client.id, reason })
        callback(Object.assign(new Error(reason), { returnCode }), false)
      }
      const address = addressOf(client)
      if (!failedSignIn.allows(address)) { refuse(3, 'too many failed sign-ins from this address; wait a little'); return }
      const member = username && password ? trust.authenticate(username, password.toString('utf8')) : null
      if (!member) { failedSignIn.take(address); refuse(4, username ? 'unknown, removed or expired member' : 'no credentials'); return }
      const who = principalFor(member, config.homeId, client.id)
      if (!who) { failedSignIn.take(address); refuse(5, `client id ${client.id} is not ${member.name}'s`); return }
      principals.set(client, who)
      callback(null, true)
    },
    authorizePublish: (client, packet, callback) => {
      const who = client ? principals.get(client) ?? null : null
      const verdict = mayPublish(who, packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), zonesOf, packet.retain)
      if (verdict.ok) { callback(null); return }
      log.warn('refused a publish', { client: client?.id ?? '(broker)', topic: packet.topic, reason: verdict.reason })
      callback(new Error(verdict.reason))
    },
    authorizeSubscribe: (client, subscription, callback) => {
      const who = principals.get(client)
      const verdict = who ? maySubscribe(who, subscription.topic, devices, zonesOf) : { ok: false as const, reason: 'not signed in' }
      if (verdict.ok) { callback(null, subscription); return }
      log.warn('refused a subscription', { client: client.id, topic: subscription.topic, reason: verdict.reason })
      // A negative SUBACK (0x80) for this filter: the client stays connected (MQTT-3.9.3).
      callback(null, null)
    }
  })
  broker.on('clientError', (client, err) => { log.warn('client error', { client: client.id, error: err.message }) })
  broker.on('client', (client) => { log.info('client connected', { client: client.id }) })
  broker.on('clientDisconnect', (client) => { log.info('client disconnected', { client: client.id }) })

  // What devices report goes to the audit log: open-door attempts, and who answered each call.
  broker.on('publish', (packet, client) => {
    if (!client) return
    const kind = packet.topic.endsWith('/audit') ? 'audit' : packet.topic.endsWith('/calls') ? 'calls' : null
    if (!kind) return
    const decoded = decodeTopicMessage(packet.topic, packet.payload as Buffer)
    if (!decoded.ok) return
    const m = decoded.value
    if (m.kind === 'audit') trust.recordDoorAttempt(m.payload)
    if (m.kind === 'calls' && m.payload.outcome !== 'missed') {
      for (const a of m.payload.answeredBy) {
        trust.recordAnswered({ deviceId: m.payload.deviceId, viewerName: a.viewerName, at: m.payload.startedAt, ringId: m.payload.ringId ?? 'live-view', sourceId: `${m.payload.deviceId}:${m.payload.startedAt}:${a.viewerId}` })
      }
    }
  })

  // Revocation takes effect at once: the member's connections close, devices get the signed list.
  const publishRevocations = async (): Promise<void> => {
    const list = await trust.revocationList()
    await new Promise<void>((resolve) => {
      broker.publish({ cmd: 'publish', topic: topics.revocations(config.homeId), payload: Buffer.from(JSON.stringify({ list })), qos: 1, retain: true, dup: false }, () => resolve())
    })
  }
  trust.onRevoked((member) => {
    for (const client of Object.values((broker as unknown as { clients: Record<string, Client> }).clients)) {
      if (principals.get(client)?.member.id === member.id) {
        log.info('disconnecting a removed member', { client: client.id, member: member.name })
        client.close()
      }
    }
    publishRevocations().catch((err: Error) => { log.error('could not publish the revocation list', { error: err.message }) })
  })
  await publishRevocations()

  // No Nagle: a small packet sent while the previous one is unacknowledged (a ring right after a
  // SUBACK, PUBACK or QoS 0 message) would otherwise wait for the peer's delayed ACK, up to 40 ms
  // on Linux (measured by tests/bench/broker.ts). The WebSocket path already sets it (ws does).
  let mesh: HubMesh | null = null
  const mqtt = keyPair
    ? createTlsServer({ key: keyPair.key, cert: keyPair.cert, noDelay: true } as never, (socket) => broker.handle(socket))
    : createNetServer({ noDelay: true }, (socket) => broker.handle(socket))
  const http = createWebServer({
    viewerDir: config.viewerDir,
    ...(keyPair ? { tls: keyPair } : {}),
    connectTo: config.cloud ? cloudOrigins(config.cloud) : [],
    trustProxy: config.trustProxy,
    api: createApi({ config, trust, tls, mesh: () => mesh, clients: () => broker.connectedClients, mqttPath: MQTT_WS_PATH, log, addressOf: requestAddress })
  })
  const wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 })
  http.on('upgrade', (req, socket, head) => {
    // Browsers always send Origin on a WebSocket: another site's page may not use this hub.
    // Behind a trusted proxy the page's origin is the proxy's (X-Forwarded-Proto/-Host).
    if ((req.url ?? '').split('?')[0] !== MQTT_WS_PATH || !isSameOrigin(req, { tls: keyPair !== null, trustProxy: config.trustProxy })) {
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
  const secure = keyPair !== null
  const scheme = secure ? 'https' : 'http'
  mesh = config.mesh.enabled ? await startHubMesh(config, mqttPort, log.child('mesh'), secure) : null
  const hub: Hub = {
    config,
    broker,
    http,
    mqtt,
    url: `${scheme}://${host}:${httpPort}/`,
    mqttUrl: `${secure ? 'mqtts' : 'mqtt'}://${host}:${mqttPort}`,
    wsUrl: `${secure ? 'wss' : 'ws'}://${host}:${httpPort}${MQTT_WS_PATH}`,
    mesh,
    trust,
    tls,
    setupCode: trust.setupCode(),
    async stop () {
      await mesh?.stop()
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await Promise.all([close(mqtt), close(http)])
      trust.stop()
    }
  }
  log.info('hub ready', { viewer: hub.url, mqtt: hub.mqttUrl, ws: hub.wsUrl, home: config.homeId, ...(tls ? { caFingerprint: tls.fingerprint } : {}) })
  if (hub.setupCode) log.info('no owner yet: pair the owner\'s browser with this one-time setup code', { code: hub.setupCode.code, at: `${hub.url}pair`, expires: new Date(hub.setupCode.expiresAt).toISOString() })
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

/** What the page may call for the home's cloud path: KVS's control plane and signaling in its region, or the stand-ins the config names. */
export function cloudOrigins (cloud: ViewerCloudConfig): string[] {
  if (cloud.kvsEndpoint) return [new URL(cloud.kvsEndpoint).origin]
  return [`https://kinesisvideo.${cloud.region}.amazonaws.com`, `https://*.kinesisvideo.${cloud.region}.amazonaws.com`]
}
