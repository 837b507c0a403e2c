import type { AedesPublishPacket, Client } from 'aedes'
import { decodeTopicMessage, describeError, type Logger, type SnapshotEvent } from '@doorbell/core'
import type { HistoryBackend } from './backend'
import type { ShownScreen } from './shown'

/**
 * What devices publish, into the history: rings, their snapshots, how each call ended (`…/calls`),
 * open-door attempts (`…/audit`) and the rings a doorbell kept while the hub was away (`…/kept`). A listener of the broker's `publish` event, like the audit
 * ingest: the gate has already refused what a device may not publish (a snapshot that is not a
 * JPEG, too big, or another device's), and the payload is parsed by its schema again here.
 */
export function historyIngest (d: { store: HistoryBackend, deviceName: (deviceId: string) => string, log: Logger, shownTo?: (deviceId: string) => ShownScreen[] | Promise<ShownScreen[]> }): (packet: AedesPublishPacket, client: Client | null) => void {
  const picture = (s: SnapshotEvent): void => {
    const id = d.store.ringEventId(s.deviceId, s.ringId)
    if (id === null) { d.log.warn('a snapshot for a ring the history does not have', { device: s.deviceId, ringId: s.ringId }); return }
    try {
      d.store.setSnapshot(id, s.seq, s.jpeg === null ? null : Buffer.from(s.jpeg, 'base64'), s.reason)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // The ring's row is kept (it says the picture could not be stored); only the picture is lost.
      d.log.error(code === 'ENOSPC'
        ? 'the disk is full: the ring is kept in the history without its picture (free space, or lower history.maxMegabytes)'
        : 'could not store a ring\'s picture; the ring is kept without it', { device: s.deviceId, ringId: s.ringId, error: describeError(err) })
    }
  }
  return (packet, client) => {
    if (!client) return
    const kind = packet.topic.slice(packet.topic.lastIndexOf('/') + 1)
    if (kind !== 'ring' && kind !== 'snapshot' && kind !== 'calls' && kind !== 'audit' && kind !== 'kept') return
    const decoded = decodeTopicMessage(packet.topic, packet.payload as Buffer)
    if (!decoded.ok) return
    const m = decoded.value
    try {
      if (m.kind === 'ring') {
        const id = d.store.addRing(m.payload)
        // Who was shown it (shown.ts): for "dismissed by everyone".
        if (m.payload.count === 1 && d.shownTo) {
          const ring = m.payload
          const note = (shown: ShownScreen[]): void => { d.store.addShown(id, [...new Set(shown.map((s) => s.memberId))], shown) }
          const shown = d.shownTo(ring.deviceId)
          // A cluster reads every hub's screens from the shared presence: noted when it answers.
          if (shown instanceof Promise) shown.then(note).catch((err: unknown) => { d.log.warn('could not note who was shown a ring', { device: ring.deviceId, ringId: ring.ringId, error: describeError(err) }) })
          else note(shown)
        }
      }
      if (m.kind === 'calls') d.store.endRing(m.payload, d.deviceName(m.payload.deviceId))
      // A request to talk and a quick reply played are talk events, not door openings; the owner's
      // fetch of call traces is in the audit log only.
      if (m.kind === 'audit' && m.payload.kind !== 'traces') {
        if (m.payload.kind === 'talk' || m.payload.kind === 'reply') d.store.addTalk(m.payload, d.deviceName(m.payload.deviceId))
        else d.store.addDoor(m.payload, d.deviceName(m.payload.deviceId))
      }
      if (m.kind === 'snapshot') picture(m.payload)
      if (m.kind === 'kept') {
        // The doorbell's own copy of a ring the hub may have missed: each part as if it had come
        // on its own topic, and by ring id, so what the hub already has changes nothing.
        const k = m.payload
        const known = d.store.ringEventId(k.deviceId, k.ring.ringId) !== null
        d.store.addRing(k.ring)
        if (k.snapshot) picture(k.snapshot)
        if (k.record) d.store.endRing(k.record, d.deviceName(k.deviceId))
        // Dismissed on the doorbell while the hub was down (the direct path): as if the screen had
        // told the hub; a member's dismissal already here changes nothing.
        for (const x of k.dismissals ?? []) {
          const r = d.store.dismiss(k.deviceId, k.ring.ringId, { id: x.memberId, name: x.memberName }, x.at)
          if (!r.ok) d.log.info('a dismissal the doorbell kept was not taken', { device: k.deviceId, ringId: k.ring.ringId, error: r.error })
        }
        d.log.info('took a ring the doorbell kept', { device: k.deviceId, ringId: k.ring.ringId, new: !known, picture: k.snapshot?.jpeg != null, ended: k.record !== null, dismissals: k.dismissals?.length ?? 0 })
      }
    } catch (err) {
      d.log.error('could not record an event in the history', { topic: packet.topic, error: describeError(err) })
    }
  }
}
