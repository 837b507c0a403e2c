import { createHash } from 'node:crypto'
import type { Member } from '@doorbell/core'
import type { StoredMember } from './store'

/** Small facts about a stored member, shared by the trust module and its integrations. */

export function sha256 (data: string | Uint8Array): Buffer {
  return createHash('sha256').update(data).digest()
}

export function isLive (m: Member, now: number): boolean {
  return m.revokedAt === null && (m.expiresAt === null || m.expiresAt > now)
}

/** What the API shows of a member: never its key hash. */
export function publicMember (m: StoredMember): Member {
  return {
    id: m.id, kind: m.kind, subject: m.subject, name: m.name, role: m.role, door: m.door, zones: m.zones, talk: m.talk, talkZones: m.talkZones,
    createdAt: m.createdAt, expiresAt: m.expiresAt, revokedAt: m.revokedAt
  }
}
