import type { AedesOptions } from 'aedes'
import type { Logger } from '@doorbell/core'
import { mayPublish, type ZonesOf } from './gate'
import type { Principals } from './principals'

/**
 * The broker's `authorizePublish` hook: `mayPublish` parses the payload by its topic's schema and
 * checks the publisher's right to the topic before the broker stores or forwards anything. A
 * refusal closes the connection (MQTT-3.3.5-2: a server may refuse a PUBLISH by closing it;
 * aedes does so when this hook returns an error). A publish with no signed-in client behind it
 * (an orphaned will) is refused too.
 */
export function authorizePublish (d: { principals: Principals, zonesOf: ZonesOf, discoveryPrefix: string, log: Logger }): NonNullable<AedesOptions['authorizePublish']> {
  return (client, packet, callback) => {
    const who = client ? d.principals.get(client) ?? null : null
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const verdict = mayPublish(who, packet.topic, payload, d.zonesOf, packet.retain, d.discoveryPrefix)
    if (verdict.ok) { callback(null); return }
    d.log.warn('refused a publish', { client: client?.id ?? '(broker)', topic: packet.topic, reason: verdict.reason })
    callback(new Error(verdict.reason))
  }
}
