import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { Aedes, type Client } from 'aedes'
import { ROOT, topics, type HubConfig, type Logger, type Startable } from '@doorbell/core'
import { localLimiter, type LimiterFactory } from '../rateLimit'
import type { Trust } from '../trust/trust'
import { whenStored } from './ackAfterStore'
import { auditIngest } from './auditIngest'
import { authenticate, clientAddressOfMqtt } from './authenticate'
import { authorizePublish } from './authorizePublish'
import { authorizeSubscribe } from './authorizeSubscribe'
import { connectionGuard, GuardedConnection, type ConnectionGuard } from './connectionGuard'
import { deliverNow } from './deliverNow'
import { shareEncodings } from './sharedPublish'
import { SqlitePersistence } from './persistence/sqlitePersistence'
import { deviceDirectory, forwardAccess } from './forwardAccess'
import { sessionsOf, type Principal } from './gate'
import { staleStates } from './staleState'
import type { Principals } from './principals'
import { retainedLatest } from './retainedLatest'

export interface BrokerModule extends Startable {
  /** The Aedes broker; throws before start. */
  readonly broker: Aedes
  /** Who a connected client signed in as (null: not signed in, or not connected). */
  principalOf: (client: Client) => Principal | null
  /** A cluster: hears the messages on `patterns` published through the other hubs (nothing on a single hub); use after start. */
  observeOthers: (patterns: string[], listener: (packet: { topic: string, payload: Buffer | string }) => void) => void
  /**
   * Takes a new connection from a listener: through the guard (packet sizes, connections waiting
   * to sign in, the PROXY header) to Aedes. `req`: the WebSocket upgrade request.
   */
  accept: (conn: Duplex, remoteAddress: string, req?: IncomingMessage) => void
}

/**
 * Where the broker keeps its state and how it reaches other brokers: by default its own
 * node:sqlite file and no one; a cluster's hub gives Redis for both (hub/src/cluster/).
 */
export interface BrokerBackend {
  /** The broker's id among its peers. */
  id?: string
  /** `dropSessions` where the persistence can drop a removed member's sessions (both ours do). */
  persistence: Pick<SqlitePersistence, 'createRetainedStreamCombi' | 'destroy'> & Partial<Pick<SqlitePersistence, 'dropSessions'>>
  mq?: NonNullable<Parameters<typeof Aedes.createBroker>[0]>['mq']
  /** Hears every message published through another broker (a cluster's other hubs), before it is forwarded here. */
  observeOthers?: (patterns: string[], listener: (packet: { topic: string, payload: Buffer | string }) => void) => void
}

/** Any packet before sign-in: a CONNECT holds a client id, a member id and a token. */
const MAX_CONNECT_BYTES = 16 * 1024

/**
 * The home's Aedes broker with its hooks (one file each), the audit ingest, and revocation: a
 * removed member's connections close at once and devices get the signed revocation list
 * (retained). Listeners (MQTT over TCP/TLS, the WebSocket) hand it their connections.
 */
export function brokerModule (d: { config: HubConfig, trust: () => Trust, requestAddress: (req: IncomingMessage) => string, log: Logger, stockSettings?: () => { tokens: () => Promise<string[]>, onChange: (listener: () => void) => () => void }, backend?: () => BrokerBackend, limiter?: LimiterFactory }): BrokerModule {
  let broker: Aedes | null = null
  let persistence: BrokerBackend['persistence'] | null = null
  let backend: BrokerBackend | undefined
  let guard: ConnectionGuard | null = null
  let unsubscribe = (): void => {}
  const principals: Principals = new WeakMap()
  return {
    name: 'broker',
    get broker (): Aedes {
      if (broker === null) throw new Error('the broker has not started')
      return broker
    },
    principalOf: (client) => principals.get(client) ?? null,
    observeOthers: (patterns, listener) => { backend?.observeOthers?.(patterns, listener) },
    accept (conn, remoteAddress, req) {
      if (broker === null || guard === null) { conn.destroy(); return }
      const guarded = guard.admit(conn, remoteAddress, req === undefined)
      if (guarded === null) return
      broker.handle(guarded as never, req as never)
      // Each screen's copy of a ring written as soon as it is prepared (deliverNow.ts), where the
      // packet id is recorded in memory: the hub's own store, not a cluster's Redis.
      const client = (guarded as { client?: Client }).client
      const store = persistence instanceof SqlitePersistence ? persistence : null
      if (client !== undefined && store !== null) deliverNow(client, (c, packet) => store.outgoingUpdateNow(c, packet))
    },
    async start () {
      const trust = d.trust()
      const { homeId } = d.config
      const log = d.log
      // The home's devices and their zones, read again after each removal or re-pairing.
      const directory = deviceDirectory(() => trust.members())
      const { devices, zonesOf } = directory
      const mayForward = forwardAccess((client) => principals.get(client), directory)
      // Failed sign-ins per claimed identity at an address: 20, then one more a second (a token is
      // 256 bits; this stops floods, and only failures count). Per address, 20 and one a second
      // too: past it a failure is told to wait (CONNACK 3); a correct token still passes.
      const limiter = d.limiter ?? localLimiter
      const failedSignIn = limiter('mqtt-sign-in', { burst: 20, refillMs: 1000 })
      const failedSignInByAddress = limiter('mqtt-sign-in-address', { burst: 20, refillMs: 1000 })
      // One encoding of each PUBLISH for all its deliveries on the guard's connections (sharedPublish.ts).
      const unshare = shareEncodings((stream) => stream instanceof GuardedConnection)
      unsubscribe = unshare
      const g = connectionGuard({ maxConnectBytes: MAX_CONNECT_BYTES, maxPacketBytes: d.config.mqtt.maxPacketBytes, maxPending: d.config.mqtt.maxPendingConnections, proxyProtocol: d.config.mqtt.proxyProtocol }, log)
      guard = g
      // An offline doorbell's last state (it may say unlocked) is withheld until it reports again.
      const stale = staleStates()
      const mayPublish = authorizePublish({ principals, zonesOf, discoveryPrefix: d.config.homeAssistant.discoveryPrefix, log })
      // Retained state, persistent sessions and their queued messages on disk (dataDir/broker.db).
      backend = d.backend?.()
      const local = backend === undefined ? new SqlitePersistence({ dir: d.config.dataDir, onError: (err) => { log.error('could not write the broker\'s store to disk', { error: err.message }) } }) : null
      persistence = backend?.persistence ?? local!
      const b = await Aedes.createBroker({
        persistence: persistence as never,
        ...(backend?.id !== undefined ? { id: backend.id } : {}),
        ...(backend?.mq !== undefined ? { mq: backend.mq } : {}),
        // A connection that has not completed its CONNECT by then is closed (aedes's default is 30 s).
        connectTimeout: d.config.mqtt.connectTimeoutMs,
        authenticate: authenticate({ trust, homeId, principals, failedSignIn, failedSignInByAddress, addressOf: clientAddressOfMqtt(d.requestAddress), log }),
        authorizePublish: (client, packet, callback) => {
          mayPublish(client, packet, (err) => {
            if (!err) stale.observe(packet)
            callback(err)
          })
        },
        authorizeSubscribe: authorizeSubscribe({ principals, devices, zonesOf, discoveryPrefix: d.config.homeAssistant.discoveryPrefix, log }),
        // Access again at forward time (zones, removed devices), then fail-secure for stale states.
        authorizeForward: (client, packet) => {
          const allowed = mayForward(client, packet)
          return allowed ? stale.authorizeForward(client, allowed) : allowed
        }
      })
      broker = b
      // A cluster: a doorbell signed in on another hub is seen going offline here too.
      backend?.observeOthers?.([`${ROOT}/${homeId}/+/state`, `${ROOT}/${homeId}/+/presence`], (packet) => { stale.observe(packet) })
      // A client's QoS 1 message is acknowledged once stored: its PUBACK waits in the guard till then.
      whenStored(b, (conn, err) => { if (err === undefined) g.stored(conn); else g.notStored(conn, err) }, local === null ? undefined : () => local.committed())
      // The fail-secure rule outlives a restart: a doorbell whose retained presence says offline
      // keeps its retained state withheld (states first, then presences: the order `observe` needs);
      // a retained "ringing" from before the restart waits for the doorbell to confirm it.
      for await (const packet of persistence.createRetainedStreamCombi([`${ROOT}/${homeId}/+/state`, `${ROOT}/${homeId}/+/presence`])) stale.restore(packet as { topic: string, payload: Buffer })
      b.on('clientError', (client, err) => { log.warn('client error', { client: client.id, error: err.message }) })
      b.on('client', (client) => {
        g.signedIn(client.conn)
        log.info('client connected', { client: client.id })
      })
      b.on('clientDisconnect', (client) => { log.info('client disconnected', { client: client.id }) })
      b.on('publish', auditIngest(trust))

      const retain = (topic: string) => async (payload: Buffer): Promise<void> => {
        await new Promise<void>((resolve) => {
          b.publish({ cmd: 'publish', topic, payload, qos: 1, retain: true, dup: false }, () => resolve())
        })
      }
      const publishRevocations = retainedLatest(async () => {
        const list = await trust.revocationList()
        // The owner's signed per-doorbell stock KVS settings ride along: the same retained, home-signed word to every doorbell.
        const stockSettings = await d.stockSettings?.().tokens() ?? []
        return Buffer.from(JSON.stringify(stockSettings.length > 0 ? { list, stockSettings } : { list }))
      }, retain(topics.revocations(homeId)))
      const unpaired = trust.onPaired((member) => { if (member.kind === 'device') directory.invalidate() })
      const unrevoked = trust.onRevoked((member) => {
        directory.invalidate()
        for (const client of Object.values((b as unknown as { clients: Record<string, Client> }).clients)) {
          if (principals.get(client)?.member.id === member.id) {
            log.info('disconnecting a removed member', { client: client.id, member: member.name })
            client.close()
          }
        }
        // Its persistent sessions go too, with what was queued for them (a removed screen's rings).
        const own = sessionsOf(member)
        persistence?.dropSessions?.(own).then((ids: string[]) => {
          if (ids.length > 0) log.info('dropped a removed member\'s sessions', { member: member.name, sessions: ids.length })
        }, (err: Error) => { log.error('could not drop a removed member\'s sessions', { error: err.message }) })
        publishRevocations().catch((err: Error) => { log.error('could not publish the revocation list', { error: err.message }) })
      })
      // The home's signed list of replaced grants: retained for the devices (and the screens, which fetch their new grant when it names them).
      const publishReissues = retainedLatest(async () => Buffer.from(JSON.stringify({ list: await trust.reissueList() })), retain(topics.grants(homeId)))
      const unrighted = trust.onRightsChanged(() => {
        publishReissues().catch((err: Error) => { log.error('could not publish the replaced grants', { error: err.message }) })
      })
      const unsettled = d.stockSettings?.().onChange(() => {
        publishRevocations().catch((err: Error) => { log.error('could not publish the stock settings', { error: err.message }) })
      }) ?? (() => {})
      unsubscribe = () => { unpaired(); unrevoked(); unsettled(); unrighted(); unshare() }
      try {
        await publishRevocations()
        await publishReissues()
      } catch (err) {
        await this.stop()
        throw err
      }
    },
    async stop () {
      unsubscribe()
      const b = broker
      if (b !== null) await new Promise<void>((resolve) => b.close(() => resolve()))
      // After the broker: the wills and goodbyes of closing clients are written first.
      await persistence?.destroy()
      persistence = null
    }
  }
}
