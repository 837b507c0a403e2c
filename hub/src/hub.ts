import type { Server as NetServer } from 'node:net'
import type { Server } from 'node:http'
import type { Aedes } from 'aedes'
import { HubConfig, consoleLogger, parseConfig, startInOrder, type HistoryEvent, type HubConfigInput, type Logger, type ViewerCloudConfig } from '@doorbell/core'
import { createApi } from './api'
import { brokerModule } from './broker/module'
import { clusterModule } from './cluster/module'
import { clusterPresence, localPresence, presenceRoutes } from './cluster/presence'
import { PgHistoryStore } from './cluster/pgHistory'
import { PgClipStore } from './cluster/pgClips'
import { clusterScreensShown } from './cluster/shownScreens'
import { mqttListener } from './broker/mqttListener'
import { homeAssistantModule } from './homeAssistant/module'
import { homeAssistantRoutes } from './homeAssistant/routes'
import { historyModule, type HistoryModule } from './history/module'
import { historyRoutes } from './history/routes'
import { clipRoutes } from './history/clipRoutes'
import { pushModule, type PushModule } from './push/module'
import { pushRoutes } from './push/routes'
import { repliesRoutes } from './replies/routes'
import { rightsRoutes } from './trust/rightsRoutes'
import { clientAddressOf } from './http'
import { webModule } from './http/module'
import type { HubMesh } from './mesh/registry'
import { meshModule } from './mesh/module'
import type { LocalTls } from './tls/localCa'
import { tlsModule } from './tls/module'
import type { Trust } from './trust/trust'
import { trustModule } from './trust/module'
import { stockSettingRoutes } from './trust/stockSettingRoutes'

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
  /** The event history: rings, door attempts, snapshots (docs/history.md). */
  history: HistoryModule
  /** Web Push: the VAPID key and the screens' subscriptions (docs/history.md); `state` null when off. */
  push: PushModule
  /** The owner's one-time setup code, while the home has no owner. */
  setupCode: { code: string, expiresAt: number } | null
  /** The modules that started, in order (`cluster` for a cluster's hub, `trust`, `tls`, `broker`, `presence` (a cluster's), `homeAssistant`, `history`, `push`, `mqtt`, `http`, `mesh`). */
  modules: readonly string[]
  stop: () => Promise<void>
}

export const MQTT_WS_PATH = '/mqtt'

/**
 * The hub: its modules in start order. A ring arrives on `mqtt` (the device signed in there,
 * checked by the `broker`'s hooks against the `trust` store) and goes through the broker to every
 * screen on `http`'s WebSocket. If one module cannot start, the
 * ones before it are stopped and startHub rejects with a StartError naming it; `stop` stops them
 * in reverse order.
 */
export async function startHub (input: HubConfigInput, options: { log?: Logger, signal?: AbortSignal } = {}): Promise<Hub> {
  const config = parseConfig(HubConfig, input, 'hub config')
  const log = options.log ?? consoleLogger('hub')
  // One client-address rule (and one "logged once") for the API and the MQTT WebSocket.
  const requestAddress = clientAddressOf({ trustProxy: config.trustProxy, log })

  // A cluster's hub (docs/cluster.md): PostgreSQL for trust, Redis for the broker; else node:sqlite.
  const cluster = config.cluster ? clusterModule({ ...config, cluster: config.cluster }, log.child('cluster')) : null
  const trust = trustModule(config, log, cluster ? { store: cluster.store, share: cluster.share, stockSettings: cluster.stockSettings, integrationKeys: cluster.integrationKeys } : {})
  const tls = tlsModule(config, log)
  const broker = brokerModule({ config, trust: () => trust.trust, requestAddress, log, stockSettings: () => trust.stockSettings, ...(cluster ? { backend: cluster.brokerBackend, limiter: cluster.limiter } : {}) })
  // Who is connected: this hub's broker, or (a cluster) every hub's, in Redis.
  const presence = cluster ? clusterPresence({ redisUrl: cluster.config.redisUrl, homeId: config.homeId, nodeId: cluster.config.nodeId, broker: () => broker.broker, principalOf: broker.principalOf, log: log.child('presence') }) : null
  const ownPresence = localPresence({ broker: () => broker.broker, principalOf: broker.principalOf, hub: 'local' })
  // A cluster's history and clips are in the one PostgreSQL every hub shares (a ring through A is in B's /api/events).
  const c = config.cluster
  const pgOptions = c ? { url: c.postgresUrl, timeoutMs: c.postgresTimeoutMs, nodeId: c.nodeId } : null
  const clusterHistory = pgOptions ? { open: () => new PgHistoryStore(pgOptions), openClips: () => new PgClipStore({ ...pgOptions, log: log.child('clips') }) } : {}
  // Who was shown each ring ("dismissed by everyone"): this hub's screens, or a cluster's on every hub (the shared presence).
  const shown = presence ? { shownTo: clusterScreensShown({ presence, members: () => trust.trust.members() }) } : { principalOf: broker.principalOf }
  const history = historyModule({ config, trust: () => trust.trust, broker: () => broker.broker, ...shown, log: log.child('history'), ...clusterHistory })
  // A ring's clip, kept beside its row (docs/history.md, "The clip").
  // A page's clips in one lookup (a cluster's: through PostgreSQL's pool, never on the event loop).
  const withClips = async (events: HistoryEvent[]): Promise<HistoryEvent[]> => {
    const clips = await history.clips.states(events.map((e) => e.id))
    return events.map((e) => { const clip = clips.get(e.id); return clip ? { ...e, clip } : e })
  }
  const push = pushModule({ config, trust: () => trust.trust, broker: () => broker.broker, log: log.child('push'), ...(cluster ? { shared: cluster.push } : {}) })
  // A cluster: Home settings' broker in PostgreSQL, and one hub at a time bridging to it (docs/cluster.md).
  const haCluster = cluster ? { cluster: { settings: cluster.homeAssistantBroker, lease: cluster.bridgeLock(), observeOthers: broker.observeOthers } } : {}
  const homeAssistant = homeAssistantModule({ config, trust: () => trust.trust, broker: () => broker.broker, principalOf: broker.principalOf, log: log.child('homeAssistant'), ...haCluster })
  const mqtt = mqttListener({ keyPair: () => tls.keyPair, port: config.mqttPort, host: config.host, accept: broker.accept })
  const mesh = meshModule(config, () => mqtt.port, () => tls.keyPair !== null, log.child('mesh'))
  const http = webModule({
    port: config.httpPort,
    host: config.host,
    tls: () => tls.keyPair,
    viewerDir: config.viewerDir,
    connectTo: config.cloud ? cloudOrigins(config.cloud) : [],
    trustProxy: config.trustProxy,
    api: () => createApi({ config, trust: trust.trust, tls: tls.local, mesh: () => mesh.mesh, clients: () => broker.broker.connectedClients, mqttPath: MQTT_WS_PATH, mqttPort: () => mqtt.port, log, addressOf: requestAddress, routes: [historyRoutes({ store: () => history.store, members: () => trust.trust.members(), decorate: withClips, deleted: async (id) => { await Promise.resolve(history.clips.remove(id)).catch((err: unknown) => { log.warn('an event was deleted, its clip not yet: the next sweep removes it (a cluster: with its row)', { event: id, error: (err as Error).message }) }) } }), clipRoutes({ store: () => history.store, clips: () => history.clips, members: () => trust.trust.members(), ...(cluster ? { key: cluster.clipTicketKey() } : {}) }), pushRoutes({ module: push, allowLoopback: config.push.allowLoopbackEndpoints }), stockSettingRoutes({ settings: () => trust.stockSettings, members: () => trust.trust.members() }), homeAssistantRoutes({ enabled: config.homeAssistant.enabled, module: homeAssistant, fromConfig: config.homeAssistant.broker, log: log.child('homeAssistant') }), repliesRoutes({ dataDir: config.dataDir, homeId: config.homeId, homeKey: () => trust.trust.homeKey, broker: () => broker.broker, stamp: async (list, seq) => await trust.trust.stampReplies(list, seq), log: log.child('replies'), ...(cluster ? { store: cluster.replies, shared: true } : {}) }), presenceRoutes(() => presence ?? ownPresence), rightsRoutes({ trust: () => trust.trust })], ...(cluster ? { limiter: cluster.limiter } : {}) }),
    mqttPath: MQTT_WS_PATH,
    acceptMqtt: broker.accept,
    mqttMaxPacketBytes: config.mqtt.maxPacketBytes,
    log
  })
  // Each module in the order it starts; Home Assistant and the mesh only when the config turns them
  // on (Home Assistant and the history before `mqtt`: they must see each doorbell's first message).
  const modules = [...(cluster ? [cluster] : []), trust, tls, broker, ...(presence ? [presence] : []), ...(config.homeAssistant.enabled ? [homeAssistant] : []), history, push, mqtt, http, ...(config.mesh.enabled ? [mesh] : [])]
  const started = await startInOrder(modules, { log, ...(options.signal ? { signal: options.signal } : {}) })

  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  const secure = tls.keyPair !== null
  const hub: Hub = {
    config,
    broker: broker.broker,
    http: http.server,
    mqtt: mqtt.server,
    url: `${secure ? 'https' : 'http'}://${host}:${http.port}/`,
    mqttUrl: `${secure ? 'mqtts' : 'mqtt'}://${host}:${mqtt.port}`,
    wsUrl: `${secure ? 'wss' : 'ws'}://${host}:${http.port}${MQTT_WS_PATH}`,
    mesh: mesh.mesh,
    trust: trust.trust,
    tls: tls.local,
    history,
    push,
    setupCode: trust.trust.setupCode(),
    modules: started.names,
    stop: started.stop
  }
  log.info('hub ready', { viewer: hub.url, mqtt: hub.mqttUrl, ws: hub.wsUrl, home: config.homeId, ...(tls.local ? { caFingerprint: tls.local.fingerprint } : {}) })
  if (hub.setupCode) log.info('no owner yet: pair the owner\'s browser with this one-time setup code', { code: hub.setupCode.code, at: `${hub.url}pair`, expires: new Date(hub.setupCode.expiresAt).toISOString() })
  return hub
}

/** What the page may call for the home's cloud path: KVS's control plane and signaling in its region, or the stand-ins the config names. */
export function cloudOrigins (cloud: ViewerCloudConfig): string[] {
  if (cloud.kvsEndpoint) return [new URL(cloud.kvsEndpoint).origin]
  return [`https://kinesisvideo.${cloud.region}.amazonaws.com`, `https://*.kinesisvideo.${cloud.region}.amazonaws.com`]
}
