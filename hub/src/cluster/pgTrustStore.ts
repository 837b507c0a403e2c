import type { AuditRecord, MemberKind } from '@doorbell/core'
import { rowMappers } from '../trust/rows'
import type { NewAudit, StoredInvite, StoredMember, TrustBackend } from '../trust/store'
import { TRUST_LOCK } from './migrations'
import { ClusterStoreError, SyncPg, type Row } from './syncPg'

/** The owner setup codes not used yet (issued by no member: the hub itself). */
const UNUSED_SETUP_CODES = "role = 'owner' AND created_by IS NULL AND used_at IS NULL"
/** The counters kept in `meta`. */
type SeqKey = 'revocation_seq' | 'reissue_seq'

/**
 * The trust store of a cluster's hub: the same synchronous contract as the single hub's
 * `TrustStore` (hub/src/trust/store.ts), on PostgreSQL shared by every hub. No cache: each read is
 * a query, so a member revoked through one hub fails its next sign-in on every hub as soon as the
 * revocation commits, and PostgreSQL down means every sign-in and pairing fails (closed), never
 * falls back to something stale. Each transaction takes one advisory lock: the cluster's trust
 * transactions run one at a time, as BEGIN IMMEDIATE makes them on one SQLite file.
 */
export class PgTrustStore implements TrustBackend {
  private readonly pg: SyncPg
  private readonly nodeId: string

  constructor (o: { url: string, timeoutMs: number, nodeId: string }) {
    this.pg = new SyncPg({ url: o.url, timeoutMs: o.timeoutMs, name: `doorbell-hub ${o.nodeId}` })
    this.nodeId = o.nodeId
  }

  transaction<T> (fn: () => T): T {
    this.pg.query('BEGIN')
    try {
      this.pg.query('SELECT pg_advisory_xact_lock($1)', [TRUST_LOCK])
      const result = fn()
      this.pg.query('COMMIT')
      return result
    } catch (err) {
      try { this.pg.query('ROLLBACK') } catch { /* the connection is gone: PostgreSQL rolled it back */ }
      throw err
    }
  }

  /**
   * PostgreSQL's clock (docs/trust.md, "One clock"): the statement's time, not the transaction's
   * start, so a floor set inside the trust lock is read after every earlier change committed.
   */
  clock (): number {
    return Number(this.pg.query('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now').rows[0]!.now)
  }

  insertMember (m: StoredMember): void {
    this.pg.query(`INSERT INTO members (id, kind, subject, name, role, door, zones, talk, talk_zones, key, secret_hash, created_at, expires_at, revoked_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)`,
    [m.id, m.kind, m.subject, m.name, m.role, m.door, JSON.stringify(m.zones), m.talk === true, JSON.stringify(m.talkZones ?? []), m.key, m.secretHash, m.createdAt, m.expiresAt])
  }

  member (id: string): StoredMember | null {
    const row = this.pg.query('SELECT * FROM members WHERE id = $1', [id]).rows[0]
    return row === undefined ? null : toMember(row)
  }

  members (): StoredMember[] {
    return this.pg.query('SELECT * FROM members ORDER BY created_at, id').rows.map(toMember)
  }

  liveMembersOf (kind: MemberKind, subject: string, now: number): StoredMember[] {
    return this.pg.query(`SELECT * FROM members WHERE kind = $1 AND subject = $2 AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > $3)`, [kind, subject, now]).rows.map(toMember)
  }

  liveOwnerCount (now: number): number {
    return Number(this.pg.query(`SELECT count(*) AS n FROM members WHERE role = 'owner' AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > $1)`, [now]).rows[0]!.n)
  }

  revokeMember (id: string, at: number): boolean {
    return this.pg.query('UPDATE members SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id]).rowCount === 1
  }

  /** A live member's door right (Home Assistant's integration member); false when it is revoked or absent. */
  setDoor (id: string, door: boolean): boolean {
    return this.pg.query('UPDATE members SET door = $1 WHERE id = $2 AND revoked_at IS NULL', [door, id]).rowCount === 1
  }

  setRights (id: string, r: { door: boolean, talk: boolean, talkZones: string[], grantsFrom: number }): boolean {
    return this.pg.query('UPDATE members SET door = $1, talk = $2, talk_zones = $3, grants_from = $4 WHERE id = $5 AND revoked_at IS NULL',
      [r.door, r.talk, JSON.stringify(r.talkZones), r.grantsFrom, id]).rowCount === 1
  }

  grantsFrom (id: string): number | null {
    const row = this.pg.query('SELECT grants_from FROM members WHERE id = $1', [id]).rows[0]
    return row === undefined || row.grants_from == null ? null : Number(row.grants_from)
  }

  grantFloors (): Array<{ id: string, from: number }> {
    return this.pg.query('SELECT id, grants_from FROM members WHERE grants_from IS NOT NULL AND revoked_at IS NULL ORDER BY grants_from, id').rows
      .map((r) => ({ id: String(r.id), from: Number(r.grants_from) }))
  }

  revoked (): { ids: string[], lastAt: number } {
    const rows = this.pg.query('SELECT id, revoked_at FROM members WHERE revoked_at IS NOT NULL ORDER BY revoked_at, id').rows
    return { ids: rows.map((r) => String(r.id)), lastAt: rows.reduce((max, r) => Math.max(max, Number(r.revoked_at)), 0) }
  }

  insertInvite (i: Omit<StoredInvite, 'usedAt'>): void {
    // The owner setup code: which hub printed it, for the others to say (setupCodeElsewhere).
    if (i.role === 'owner' && i.createdBy === null) {
      this.pg.query(`INSERT INTO meta (key, value) VALUES ('setup_code_node', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [this.nodeId])
    }
    this.pg.query(`INSERT INTO invites (code_hash, kind, role, door, zones, talk, talk_zones, device_id, access_hours, expires_at, used_at, created_by)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)`,
    [i.codeHash, i.kind, i.role, i.door, JSON.stringify(i.zones), i.talk, JSON.stringify(i.talkZones), i.deviceId, i.accessHours, i.expiresAt, i.createdBy])
  }

  invite (codeHash: Uint8Array): StoredInvite | null {
    const row = this.pg.query('SELECT * FROM invites WHERE code_hash = $1', [codeHash]).rows[0]
    return row === undefined ? null : toInvite(row)
  }

  useInvite (codeHash: Uint8Array, now: number): boolean {
    return this.pg.query('UPDATE invites SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1', [now, codeHash]).rowCount === 1
  }

  /**
   * One owner setup code for the cluster: the first hub to start with no owner issues it, and the
   * others leave it valid (each issuing its own would leave only the last one working). The hub
   * that issued it, restarting, issues a fresh one: the code was only in its memory.
   */
  setupCodeElsewhere (now: number): { node: string, expiresAt: number } | null {
    const live = this.pg.query(`SELECT max(expires_at) AS until FROM invites WHERE ${UNUSED_SETUP_CODES} AND expires_at > $1`, [now]).rows[0]
    if (live?.until === null || live?.until === undefined) return null
    const node = this.pg.query("SELECT value FROM meta WHERE key = 'setup_code_node'").rows[0]?.value
    if (node === undefined || node === this.nodeId) return null
    return { node: String(node), expiresAt: Number(live.until) }
  }

  dropSetupCodes (): void {
    this.pg.query(`DELETE FROM invites WHERE ${UNUSED_SETUP_CODES}`)
  }

  appendAudit (r: NewAudit): AuditRecord | null {
    const row = this.pg.query(`INSERT INTO audit (at, kind, outcome, reason, actor, device_id, message, source_id, path)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (source_id) DO NOTHING RETURNING seq`,
    [r.at, r.kind, r.outcome, r.reason, r.actor, r.deviceId, r.message, r.sourceId ?? null, r.path ?? null]).rows[0]
    if (row === undefined) return null
    return { seq: Number(row.seq), at: r.at, kind: r.kind, outcome: r.outcome, reason: r.reason, actor: r.actor, deviceId: r.deviceId, message: r.message, path: r.path ?? null }
  }

  auditAfter (afterSeq: number, limit: number): AuditRecord[] {
    return this.pg.query('SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit]).rows.map(toAudit)
  }

  auditAll (): AuditRecord[] {
    return this.pg.query('SELECT * FROM audit ORDER BY seq').rows.map(toAudit)
  }

  revocationSeq (): number { return this.seq('revocation_seq') }
  bumpRevocationSeq (): number { return this.bumpSeq('revocation_seq') }
  reissueSeq (): number { return this.seq('reissue_seq') }
  bumpReissueSeq (): number { return this.bumpSeq('reissue_seq') }

  private seq (key: SeqKey): number {
    const row = this.pg.query('SELECT value FROM meta WHERE key = $1', [key]).rows[0]
    return row === undefined ? 0 : Number(row.value)
  }

  private bumpSeq (key: SeqKey): number {
    // One statement: the increment cannot race another hub's even outside a transaction.
    const row = this.pg.query(`INSERT INTO meta (key, value) VALUES ($1, '1')
      ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text RETURNING value`, [key]).rows[0]!
    return Number(row.value)
  }

  close (): void {
    void this.pg.close()
  }
}

export { ClusterStoreError }

// PostgreSQL hands back booleans and text[] as they are.
const { toMember, toInvite, toAudit } = rowMappers({ bool: (v) => v === true, list: (v) => v as string[] })
