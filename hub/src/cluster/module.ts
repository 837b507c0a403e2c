import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { ClusterConfig, HubConfig, Logger, Startable } from '@doorbell/core'
import type { BrokerBackend } from '../broker/module'
import type { LimiterFactory } from '../rateLimit'
import { HOME_KEY_FILE } from '../trust/homeKey'
import type { RepliesStore } from '../replies/store'
import type { IntegrationKeys } from '../trust/integrationKey'
import type { StockSettingsStore } from '../trust/stockSettings'
import type { TrustBackend } from '../trust/store'
import type { Trust } from '../trust/trust'
import { TrustBroadcast } from './broadcast'
import { migrate } from './migrations'
import type { PushSubscriptionStore } from '../push/subscriptions'
import type { VapidKeys } from '../push/vapid'
import { homeDerivedKey } from './homeSeal'
import { PgPushSubscriptions, sealedVapidKeys } from './pgPush'
import { PgSharedState } from './pgSharedState'
import { PgTrustStore } from './pgTrustStore'
import { redisBrokerBackend } from './redisBroker'
import { sealedIntegrationKeys } from './sealedKeys'
import { SharedLimits } from './sharedLimits'
import type { BrokerSettings } from '../homeAssistant/brokerSettings'
import type { BridgeLease } from '../homeAssistant/bridgeTurns'
import { pgBridgeLock } from './bridgeLock'
import { pgBrokerSettings } from './pgBrokerSettings'

export interface ClusterModule extends Startable {
  readonly config: ClusterConfig
  /** The trust store on PostgreSQL, for the trust module. */
  store: () => TrustBackend
  /** The broker's Redis persistence and emitter, for the broker module. */
  brokerBackend: () => BrokerBackend
  /** The sign-in and pairing limits, shared between hubs; use after start. */
  limiter: LimiterFactory
  /** `trust` with the other hubs' revocations and pairings heard too; throws before start. */
  share: (trust: Trust) => Trust
  /** The owner's per-doorbell settings on PostgreSQL; use after start. */
  stockSettings: () => StockSettingsStore
  /** The owner's quick replies on PostgreSQL; use after start. */
  replies: () => RepliesStore
  /** Home Assistant's integration keys on PostgreSQL, sealed with a key derived from the home key; use after start. */
  integrationKeys: () => IntegrationKeys
  /** Web Push's VAPID key (sealed, one for the cluster) and the screens' subscriptions on PostgreSQL; use after start. */
  push: () => Promise<{ keys: VapidKeys, subscriptions: PushSubscriptionStore }>
  /** The key of the clips' signed addresses, derived from the home key: an address from any hub plays on every hub; use after start. */
  clipTicketKey: () => Buffer
  /** Home Assistant's user-broker settings on PostgreSQL (the password sealed); use after start. */
  homeAssistantBroker: () => BrokerSettings
  /** The lease of the one hub that runs Home Assistant's bridge to the user's broker (a lock of its own). */
  bridgeLock: () => BridgeLease
}

/** A cluster's hub was given something it cannot run with. */
export class ClusterSetupError extends Error {
  override readonly name = 'ClusterSetupError'
}

/**
 * The cluster module (docs/cluster.md): first in the hub's list. It checks that the home key was
 * provisioned to this node (a hub of a cluster never makes its own: each would sign with a
 * different one), brings PostgreSQL's schema up to date under an advisory lock, and connects the
 * trust broadcast and the shared rate limits on Redis. The trust and broker modules then take their stores from it.
 */
export function clusterModule (config: HubConfig & { cluster: ClusterConfig }, log: Logger): ClusterModule {
  const cluster = config.cluster
  let broadcast: TrustBroadcast | null = null
  let limits: SharedLimits | null = null
  let shared: PgSharedState | null = null
  let sealed: IntegrationKeys | null = null
  let clipKey: Buffer | null = null
  let haBroker: BrokerSettings | null = null
  const sharedState = (): PgSharedState => {
    if (shared === null) throw new Error('the cluster module has not started')
    return shared
  }
  return {
    name: 'cluster',
    config: cluster,
    store: () => new PgTrustStore({ url: cluster.postgresUrl, timeoutMs: cluster.postgresTimeoutMs, nodeId: cluster.nodeId }),
    brokerBackend: () => redisBrokerBackend(cluster, log.child('redis')),
    limiter (name, o) {
      if (limits === null) throw new Error('the cluster module has not started')
      return limits.limiter(name, o)
    },
    share (trust) {
      if (broadcast === null) throw new Error('the cluster module has not started')
      return broadcast.wrap(trust)
    },
    stockSettings: () => sharedState().stockSettings(),
    replies: () => sharedState().replies(),
    integrationKeys: () => {
      if (sealed === null) throw new Error('the cluster module has not started')
      return sealed
    },
    clipTicketKey: () => {
      if (clipKey === null) throw new Error('the cluster module has not started')
      return clipKey
    },
    homeAssistantBroker: () => {
      if (haBroker === null) throw new Error('the cluster module has not started')
      return haBroker
    },
    bridgeLock: () => pgBridgeLock({ url: cluster.postgresUrl, timeoutMs: cluster.postgresTimeoutMs, nodeId: cluster.nodeId, homeId: config.homeId, log: log.child('bridge') }),
    push: async () => ({
      keys: await sealedVapidKeys({ trustDir: join(config.dataDir, 'trust'), homeId: config.homeId, db: sharedState() }),
      subscriptions: new PgPushSubscriptions({ url: cluster.postgresUrl, timeoutMs: cluster.postgresTimeoutMs, nodeId: cluster.nodeId })
    }),
    async start () {
      const keyFile = join(config.dataDir, 'trust', HOME_KEY_FILE)
      if (!existsSync(keyFile)) {
        throw new ClusterSetupError(`no home key at ${keyFile}: every hub of a cluster signs with the same key; make it once (npm run cluster:key -w @doorbell/hub -- DIR) and copy it to each node, mode 0600 (docs/cluster.md)`)
      }
      const migrated = await migrate(cluster.postgresUrl, cluster.nodeId, { timeoutMs: cluster.postgresTimeoutMs })
      log.info('PostgreSQL schema ready', { version: migrated.version, applied: migrated.applied.join(',') || 'none' })
      shared = new PgSharedState({ url: cluster.postgresUrl, timeoutMs: cluster.postgresTimeoutMs, nodeId: cluster.nodeId, log: log.child('shared') })
      sealed = await sealedIntegrationKeys({ trustDir: join(config.dataDir, 'trust'), homeId: config.homeId, db: shared })
      haBroker = await pgBrokerSettings({ trustDir: join(config.dataDir, 'trust'), homeId: config.homeId, dataDir: config.dataDir, db: shared })
      clipKey = await homeDerivedKey(join(config.dataDir, 'trust'), config.homeId, 'doorbell clip addresses v1')
      const b = new TrustBroadcast({ redisUrl: cluster.redisUrl, homeId: config.homeId, nodeId: cluster.nodeId, log: log.child('broadcast') })
      await b.start()
      broadcast = b
      const l = new SharedLimits({ redisUrl: cluster.redisUrl, homeId: config.homeId, nodeId: cluster.nodeId, log: log.child('limits') })
      try {
        await l.start()
      } catch (err) {
        await b.stop()
        broadcast = null
        await shared.close()
        shared = null
        throw err
      }
      limits = l
      log.info('joined the cluster', { node: cluster.nodeId })
    },
    async stop () {
      await limits?.stop()
      limits = null
      await broadcast?.stop()
      broadcast = null
      await shared?.close()
      shared = null
    }
  }
}
