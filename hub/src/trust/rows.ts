import type { AuditRecord, MemberKind, Role } from '@doorbell/core'
import type { StoredInvite, StoredMember } from './store'

/**
 * Rows of the members, invites and audit tables as the trust module sees them, the same for the
 * single hub's node:sqlite file and a cluster's PostgreSQL: only how a boolean and a list of ids
 * come back differs (0/1 and JSON text in SQLite; booleans and arrays in PostgreSQL).
 */
export interface RowDialect {
  bool: (v: unknown) => boolean
  list: (v: unknown) => string[]
}

type Row = Record<string, unknown>

const nullableNumber = (v: unknown): number | null => v == null ? null : Number(v)
const nullableString = (v: unknown): string | null => v == null ? null : String(v)

export function rowMappers (d: RowDialect): { toMember: (r: Row) => StoredMember, toInvite: (r: Row) => StoredInvite, toAudit: (r: Row) => AuditRecord } {
  // A row from before the talk right reads null: its role's default, as core's `mayTalk` has it.
  const talkOf = (r: Row): { talk: boolean, talkZones: string[] } => {
    const role = nullableString(r.role)
    return {
      talk: r.talk == null ? role === 'owner' || role === 'resident' : d.bool(r.talk),
      talkZones: r.talk_zones == null ? [] : d.list(r.talk_zones)
    }
  }
  return {
    toMember: (r) => ({
      id: String(r.id),
      kind: String(r.kind) as MemberKind,
      subject: String(r.subject),
      name: String(r.name),
      role: nullableString(r.role) as Role | null,
      door: d.bool(r.door),
      zones: d.list(r.zones),
      ...talkOf(r),
      createdAt: Number(r.created_at),
      expiresAt: nullableNumber(r.expires_at),
      revokedAt: nullableNumber(r.revoked_at),
      key: nullableString(r.key),
      secretHash: r.secret_hash as Uint8Array
    }),
    toInvite: (r) => ({
      codeHash: r.code_hash as Uint8Array,
      kind: String(r.kind) as MemberKind,
      role: nullableString(r.role) as Role | null,
      door: d.bool(r.door),
      zones: d.list(r.zones),
      ...talkOf(r),
      deviceId: nullableString(r.device_id),
      accessHours: nullableNumber(r.access_hours),
      expiresAt: Number(r.expires_at),
      usedAt: nullableNumber(r.used_at),
      createdBy: nullableString(r.created_by)
    }),
    toAudit: (r) => ({
      seq: Number(r.seq),
      at: Number(r.at),
      kind: String(r.kind) as AuditRecord['kind'],
      outcome: String(r.outcome) as AuditRecord['outcome'],
      reason: String(r.reason),
      actor: String(r.actor),
      deviceId: nullableString(r.device_id),
      message: String(r.message),
      path: nullableString(r.path) as AuditRecord['path']
    })
  }
}
