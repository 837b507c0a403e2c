import type { AedesPublishPacket, Client } from 'aedes'
import { decodePublished } from './decodedOnce'
import type { Trust } from '../trust/trust'

/**
 * What devices report goes to the audit log: open-door attempts (`…/audit`), and who answered
 * each call (`…/calls`). A listener of the broker's `publish` event: the gate has already let the
 * message through, and the payload is parsed by its schema again here before anything is
 * recorded; a message the broker itself publishes (no client) is not a device's report.
 */
export function auditIngest (trust: Pick<Trust, 'recordDoorAttempt' | 'recordAnswered'>): (packet: AedesPublishPacket, client: Client | null) => void {
  return (packet, client) => {
    if (!client) return
    if (!packet.topic.endsWith('/audit') && !packet.topic.endsWith('/calls')) return
    const decoded = decodePublished(packet.topic, packet.payload as Buffer)
    if (!decoded.ok) return
    const m = decoded.value
    if (m.kind === 'audit') trust.recordDoorAttempt(m.payload)
    if (m.kind === 'calls' && m.payload.outcome !== 'missed') {
      for (const a of m.payload.answeredBy) {
        trust.recordAnswered({ deviceId: m.payload.deviceId, viewerName: a.viewerName, at: m.payload.startedAt, ringId: m.payload.ringId ?? 'live-view', sourceId: `${m.payload.deviceId}:${m.payload.startedAt}:${a.viewerId}` })
      }
    }
  }
}
