import { decodeTopicMessage, parseTopic, ROOT } from '@doorbell/core'

/**
 * The broker's gate: what may be published and subscribed. Every payload on our topics is
 * parsed by its schema before the broker stores or forwards it (MQTT-3.3.5-2 lets a server
 * refuse a PUBLISH by closing the connection; aedes does so when the hook returns an error).
 *
 * Until pairing lands, a client's role is what its client id says: `device-{deviceId}` for a
 * doorbell, anything else for a viewer. The trust layer replaces this with authenticated roles.
 */
export type GateResult = { ok: true } | { ok: false, reason: string }

const DEVICE_PREFIX = 'device-'

export function mayPublish (clientId: string | null, topic: string, payload: Buffer): GateResult {
  if (topic.startsWith('$SYS')) return { ok: false, reason: '$SYS topics are reserved for the broker' }
  const decoded = decodeTopicMessage(topic, payload)
  if (!decoded.ok) return { ok: false, reason: decoded.error.message }
  const kind = decoded.value.kind
  const device = decoded.value.topic.device
  // The broker publishes wills itself (client null) after checking them at connect.
  if (clientId === null) return { ok: true }
  const isDevice = clientId.startsWith(DEVICE_PREFIX)
  if (kind === 'inspect') {
    // A device inspects under its device id, a viewer tab under its own client id.
    return clientId === DEVICE_PREFIX + device || clientId === device ? { ok: true } : { ok: false, reason: `${clientId} may not publish inspection for ${device}` }
  }
  if (kind === 'to-device') {
    return isDevice ? { ok: false, reason: 'a device does not send offers' } : { ok: true }
  }
  // ring, state, presence, calls, to-viewer: only the device itself.
  if (!isDevice) return { ok: false, reason: `only the device may publish ${kind}` }
  if (clientId !== DEVICE_PREFIX + device) return { ok: false, reason: `${clientId} may not publish for device ${device}` }
  return { ok: true }
}

export function maySubscribe (topic: string): GateResult {
  if (topic.startsWith('$SYS')) return { ok: false, reason: '$SYS is not open to clients' }
  if (topic !== ROOT + '/#' && !topic.startsWith(ROOT + '/')) return { ok: false, reason: `only ${ROOT}/ topics exist here` }
  // A concrete topic must be one of ours; filters with wildcards are checked level by level by the broker.
  if (!topic.includes('+') && !topic.includes('#') && parseTopic(topic) === null) {
    return { ok: false, reason: 'not a doorbell topic' }
  }
  return { ok: true }
}
