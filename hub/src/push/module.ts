import { join } from 'node:path'
import type { Aedes } from 'aedes'
import { describeError, toB64url, type HubConfig, type Logger, type RingEvent, type Startable } from '@doorbell/core'
import type { Trust } from '../trust/trust'
import { ringPusher } from './ringPush'
import type { PushResult } from './send'
import { PushSubscriptions, type PushSubscriptionStore } from './subscriptions'
import { loadVapidKeys, type VapidKeys } from './vapid'

export interface PushModule extends Startable {
  /** Null before start, or when `push.enabled` is off. */
  readonly state: { subscriptions: PushSubscriptionStore, keys: VapidKeys, publicKey: string } | null
  /** Why Web Push is off on this hub, or null. */
  readonly off: string | null
}

/**
 * Web Push (docs/history.md, "Web Push"): the hub's VAPID key in `dataDir/push/vapid.json`
 * (0600), the screens' subscriptions in `dataDir/push/push.db`, and a push to each of them when a
 * doorbell rings. A cluster's hub takes both from PostgreSQL (`shared`: ../cluster/pgPush.ts), so
 * every hub signs with one key; the hub the doorbell is connected to pushes its ring (the broker's
 * publish event is this hub's clients' only), once (the ring claimed in PostgreSQL).
 */
export function pushModule (d: { config: HubConfig, trust: () => Trust, broker: () => Aedes, log: Logger, onSent?: (ring: RingEvent, results: PushResult[]) => void, shared?: () => Promise<{ keys: VapidKeys, subscriptions: PushSubscriptionStore }> }): PushModule {
  let state: PushModule['state'] = null
  let pusher: ReturnType<typeof ringPusher> | null = null
  let unrevoked: (() => void) | null = null
  const off = !d.config.push.enabled ? 'Web Push is turned off in this hub\'s config (push.enabled)' : null
  return {
    name: 'push',
    get state () { return state },
    off,
    async start () {
      if (off) return
      const dir = join(d.config.dataDir, 'push')
      const { keys, subscriptions } = d.shared ? await d.shared() : { keys: await loadVapidKeys(dir), subscriptions: new PushSubscriptions(dir) }
      const trust = d.trust()
      // A removed member's screens are never woken again.
      unrevoked = trust.onRevoked((member) => {
        try {
          const n = subscriptions.removeMember(member.id)
          if (n > 0) d.log.info('a removed member\'s push subscriptions deleted', { member: member.id, subscriptions: n })
        } catch (err) {
          // A cluster's PostgreSQL down: the next start's sweep (below) deletes them.
          d.log.error('could not delete a removed member\'s push subscriptions', { member: member.id, error: describeError(err) })
        }
      })
      // Members removed while the hub was down.
      const live = new Set(trust.members().filter((m) => m.revokedAt === null).map((m) => m.id))
      for (const s of subscriptions.all()) if (!live.has(s.memberId)) subscriptions.removeMember(s.memberId)
      pusher = ringPusher({ subscriptions, keys, members: () => trust.members(), log: d.log, allowLoopback: d.config.push.allowLoopbackEndpoints, ...(d.config.push.contact ? { contact: d.config.push.contact } : {}), ...(d.onSent ? { onSent: d.onSent } : {}) })
      d.broker().on('publish', pusher.listener)
      state = { subscriptions, keys, publicKey: toB64url(keys.publicKey) }
    },
    async stop () {
      unrevoked?.()
      if (pusher) { d.broker().off('publish', pusher.listener); pusher.stop() }
      state?.subscriptions.close()
      state = null
    }
  }
}
