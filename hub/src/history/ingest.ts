import type { AedesPublishPacket, Client } from 'aedes'
import { decodeTopicMessage, describeError, type Logger } from '@doorbell/core'
import type { HistoryStore } from './store'

/**
 * What devices publish, into the history: rings, their snapshots, how each call ended (`…/calls`)
 * and open-door attempts (`…/audit`). A listener of the broker's `publish` event, like the audit
 * ingest: the gate has already refused what a device may not publish (a snapshot that is not a
 * JPEG, too big, or another device's), and the payload is parsed by its schema again here.
 */
export function historyIngest (d: { store: HistoryStore, deviceName: (deviceId: string) => string, log: Logger }): (packet: AedesPublishPacket, client: Client | null) => void {
  return (packet, client) => {
    if (!client) return
    const kind = packet.topic.slice(packet.topic.lastIndexOf('/') + 1)
    if (kind !== 'ring' && kind !== 'snapshot' && kind !== 'calls' && kind !== 'audit') return
    const decoded = decodeTopicMessage(packet.topic, packet.payload as Buffer)
    if (!decoded.ok) return
    const m = decoded.value
    try {
      if (m.kind === 'ring') d.store.addRing(m.payload)
      if (m.kind === 'calls') d.store.endRing(m.payload, d.deviceName(m.payload.deviceId))
      if (m.kind === 'audit') d.store.addDoor(m.payload, d.deviceName(m.payload.deviceId))
      if (m.kind === 'snapshot') {
        const s = m.payload
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
    } catch (err) {
      d.log.error('could not record an event in the history', { topic: packet.topic, error: describeError(err) })
    }
  }
}
