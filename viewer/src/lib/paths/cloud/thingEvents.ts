import {
  CallRecord, DeviceState, MAX_SNAPSHOT_MESSAGE_BYTES, Presence, RingEvent, SnapshotEvent, decode,
  type CloudTopicKind, type ViewerTransportEvents
} from '@doorbell/core'

/**
 * A doorbell's message on AWS IoT, read as the viewer event it becomes: each kind by its schema
 * and bound (a picture by its own: JPEG magic and size), as the hub reads the same messages at home.
 * Which doorbell may speak on a thing's topics is the client's check, not this one's.
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
