import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { Aedes, type Client } from 'aedes'
import { ROOT, topics, type HubConfig, type Logger, type Startable } from '@doorbell/core'
import { RateLimiter } from '../rateLimit'
import type { Trust } from '../trust/trust'
import { auditIngest } from './auditIngest'
import { authenticate, clientAddressOfMqtt } from './authenticate'
import { authorizePublish } from './authorizePublish'
import { authorizeSubscribe } from './authorizeSubscribe'
import { SqlitePersistence } from './persistence/sqlitePersistence'
import { zoneOfDevice, type Principal } from './gate'
import { staleStates } from './staleState'
import type { Principals } from './principals'

export interface BrokerModule extends Startable {
  /** The Aedes broker; throws before start. */
  readonly broker: Aedes
  /** Who a connected client signed in as (null: not signed in, or not connected). */
  principalOf: (client: Client) => Principal | null
}

/**
 * The home's Aedes broker with its hooks (one file each), the audit ingest, and revocation: a
 * removed member's connections close at once and devices get the signed revocation list
 * (retained). Listeners (MQTT over TCP/TLS, the WebSocket) hand it their connections.
 */
export function brokerModule (d: { config: HubConfig, trust: () => Trust, requestAddress: (req: IncomingMessage) => string, log: Logger }): BrokerModule {
  let broker: Aedes | null = null
  let persistence: SqlitePersistence | null = null
  let unsubscribe = (): void => {}
  const principals: Principals = new WeakMap()
  return {
    name: 'broker',
    get broker (): Aedes {
      if (broker === null) throw new Error('the broker has not started')
      return broker
    },
    principalOf: (client) => principals.get(client) ?? null,
    async start () {
      const trust = d.trust()
      const { homeId } = d.config
      const log = d.log
      const live = (): ReturnType<Trust['members']> => trust.members().filter((m) => m.kind === 'device' && m.revokedAt === null)
      const devices = (): string[] => live().map((m) => m.subject)
      const zonesOf = (deviceId: string): string[] => {
        const device = live().find((m) => m.subject === deviceId)
        return device ? [zoneOfDevice(device)] : []
      }
      // Failed sign-ins per address: 20, then one more a second (a token is 256 bits; this stops floods, and only failures count).
      const failedSignIn = new RateLimiter({ burst: 20, refillMs: 1000 })
      // An offline doorbell's last state (it may say unlocked) is withheld until it reports again.
      const stale = staleStates()
      const mayPublish = authorizePublish({ principals, zonesOf, discoveryPrefix: d.config.homeAssistant.discoveryPrefix, log })
      // Retained state, persistent sessions and their queued messages on disk (dataDir/broker.db).
      persistence = new SqlitePersistence({ dir: d.config.dataDir })
      const b = await Aedes.createBroker({
        persistence,
        authenticate: authenticate({ trust, homeId, principals, failedSignIn, addressOf: clientAddressOfMqtt(d.requestAddress), log }),
        authorizePublish: (client, packet, callback) => {
          mayPublish(client, packet, (err) => {
            if (!err) stale.observe(packet)
            callback(err)
          })
        },
        authorizeSubscribe: authorizeSubscribe({ principals, devices, zonesOf, discoveryPrefix: d.config.homeAssistant.discoveryPrefix, log }),
        authorizeForward: stale.authorizeForward
      })
      broker = b
      // The fail-secure rule outlives a restart: a doorbell whose retained presence says offline
      // keeps its retained state withheld (states first, then presences: the order `observe` needs).
      for await (const packet of persistence.createRetainedStreamCombi([`${ROOT}/${homeId}/+/state`, `${ROOT}/${homeId}/+/presence`])) stale.observe(packet as { topic: string, payload: Buffer })
      b.on('clientError', (client, err) => { log.warn('client error', { client: client.id, error: err.message }) })
      b.on('client', (client) => { log.info('client connected', { client: client.id }) })
      b.on('clientDisconnect', (client) => { log.info('client disconnected', { client: client.id }) })
      b.on('publish', auditIngest(trust))

      const publishRevocations = async (): Promise<void> => {
        const list = await trust.revocationList()
        await new Promise<void>((resolve) => {
          b.publish({ cmd: 'publish', topic: topics.revocations(homeId), payload: Buffer.from(JSON.stringify({ list })), qos: 1, retain: true, dup: false }, () => resolve())
        })
      }
      unsubscribe = trust.onRevoked((member) => {
        for (const client of Object.values((b as unknown as { clients: Record<string, Client> }).clients)) {
          if (principals.get(client)?.member.id === member.id) {
            log.info('disconnecting a removed member', { client: client.id, member: member.name })
            client.close()
          }
        }
        publishRevocations().catch((err: Error) => { log.error('could not publish the revocation list', { error: err.message }) })
      })
      try {
        await publishRevocations()
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
