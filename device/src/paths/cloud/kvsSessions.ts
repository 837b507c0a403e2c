import { decodeKvsToDevice, type SignalToDevice } from '@doorbell/core'

/** Open sessions remembered (session id → the KVS client id that offered it); the oldest is forgotten beyond this. */
export const MAX_SESSIONS = 256

/** What to do with a message a viewer sent over KVS: pass it on, or drop it and say why. */
export type KvsAdmission =
  | { ok: true, viewerId: string, message: SignalToDevice }
  | { ok: false, why: string, fields: Record<string, unknown> }

/**
 * Which viewer owns which session on the KVS path. KVS authenticates the sender's AWS signature,
 * not the client id it claims, so the sender id is the viewer id: an offer naming another viewer
 * is dropped, an offer for another viewer's open session too, and a bye is taken only from the
 * viewer whose offer opened the session (once). The device's own bye forgets the session.
 */
export class KvsSessions {
  private readonly owners = new Map<string, string>()

  /** Decodes a viewer's message (every one rides SDP_OFFER) and checks it against the sessions. */
  admit (payload: unknown, senderClientId: unknown): KvsAdmission {
    if (typeof senderClientId !== 'string' || senderClientId === '') return { ok: false, why: 'dropped a KVS message with no sender id', fields: {} }
    const decoded = decodeKvsToDevice(payload)
    if (!decoded.ok) return { ok: false, why: 'dropped a KVS message that is not a doorbell message', fields: { from: senderClientId, error: decoded.error.slice(0, 300) } }
    const m = decoded.message
    const owner = this.owners.get(m.sessionId)
    if (m.type === 'offer') {
      if (m.viewerId !== senderClientId) return { ok: false, why: 'dropped an offer whose viewer id is not its KVS sender', fields: { from: senderClientId, viewerId: m.viewerId, session: m.sessionId } }
      if (owner !== undefined && owner !== senderClientId) return { ok: false, why: 'dropped an offer for another viewer\'s session', fields: { from: senderClientId, session: m.sessionId } }
      // Newest last: the oldest is forgotten first.
      this.owners.delete(m.sessionId)
      this.owners.set(m.sessionId, senderClientId)
      while (this.owners.size > MAX_SESSIONS) this.owners.delete(this.owners.keys().next().value!)
    } else {
      if (owner !== senderClientId) {
        return { ok: false, why: owner === undefined ? 'dropped a bye for a session not offered over KVS' : 'dropped a bye from a viewer that did not offer the session', fields: { from: senderClientId, session: m.sessionId } }
      }
      this.owners.delete(m.sessionId)
    }
    return { ok: true, viewerId: senderClientId, message: m }
  }

  /** The device ended the session. */
  forget (sessionId: string): void { this.owners.delete(sessionId) }

  clear (): void { this.owners.clear() }
}
