import type { AedesOptions } from 'aedes'
import type { Logger } from '@doorbell/core'
import { maySubscribe, type ZonesOf } from './gate'
import type { Principals } from './principals'

/**
 * The broker's `authorizeSubscribe` hook: `maySubscribe` checks each filter against what the
 * client's member may see (`#` and `$SYS` closed, operators only their zones' devices). A refused
 * filter gets a negative SUBACK (0x80, MQTT-3.9.3) and the client stays connected.
 */
export function authorizeSubscribe (d: { principals: Principals, devices: () => readonly string[], zonesOf: ZonesOf, discoveryPrefix: string, log: Logger }): NonNullable<AedesOptions['authorizeSubscribe']> {
  return (client, subscription, callback) => {
    const who = d.principals.get(client)
    const verdict = who ? maySubscribe(who, subscription.topic, d.devices, d.zonesOf, d.discoveryPrefix) : { ok: false as const, reason: 'not signed in' }
    if (verdict.ok) { callback(null, subscription); return }
    d.log.warn('refused a subscription', { client: client.id, topic: subscription.topic, reason: verdict.reason })
    callback(null, null)
  }
}
