import {
  CallRecord, DeviceState, MAX_SNAPSHOT_MESSAGE_BYTES, Presence, RingEvent, SnapshotEvent, decode, parseCloudTopic,
  type CloudDevice, type CloudTopicKind, type ViewerTransportEvents
} from '@doorbell/core'

/**
 * A doorbell's message on AWS IoT, read as the viewer event it becomes: each kind by its schema
 * and bound (a picture by its own: JPEG magic and size), as the hub reads the same messages at home.
 * Which doorbell may speak on a thing's topics: `readThingMessage`.
 */
export type ThingEvent = { [K in 'ring' | 'state' | 'presence' | 'call' | 'snapshot']: { event: K, value: Parameters<ViewerTransportEvents[K]>[0] } }['ring' | 'state' | 'presence' | 'call' | 'snapshot']

export function readThingEvent (kind: CloudTopicKind, payload: Uint8Array, where: string): { ok: true, e: ThingEvent } | { ok: false, error: Error } {
  const read = <E extends ThingEvent['event'], T>(event: E, d: { ok: true, value: T } | { ok: false, error: Error }): { ok: true, e: ThingEvent } | { ok: false, error: Error } =>
    d.ok ? { ok: true, e: { event, value: d.value } as ThingEvent } : d
  switch (kind) {
    case 'ring': return read('ring', decode(RingEvent, payload, where))
    case 'state': return read('state', decode(DeviceState, payload, where))
    case 'presence': return read('presence', decode(Presence, payload, where))
    case 'calls': return read('call', decode(CallRecord, payload, where))
    case 'snapshot': return read('snapshot', decode(SnapshotEvent, payload, where, MAX_SNAPSHOT_MESSAGE_BYTES))
  }
}

/**
 * A message on AWS IoT as the cloud client takes it: on one of our topics, from a thing that is a
 * doorbell of this home, read by its schema, and speaking only for that thing's own device. The
 * refusal says why, for the log.
 */
export function readThingMessage (topic: string, payload: Uint8Array, byThing: ReadonlyMap<string, CloudDevice>): { ok: true, device: CloudDevice, e: ThingEvent } | { ok: false, why: string } {
  const t = parseCloudTopic(topic)
  if (!t) return { ok: false, why: `rejected a message on ${topic}: not one of ours` }
  const device = byThing.get(t.thing)
  if (!device) return { ok: false, why: `rejected a message on ${topic}: ${t.thing} is not a doorbell of this home` }
  const read = readThingEvent(t.kind, payload, `cloud ${topic}`)
  if (!read.ok) return { ok: false, why: `rejected a message: ${read.error.message}` }
  if (read.e.value.deviceId !== device.deviceId) return { ok: false, why: `rejected a message on ${topic}: ${t.thing} spoke for ${read.e.value.deviceId}` }
  return { ok: true, device, e: read.e }
}
