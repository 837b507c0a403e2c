import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync, type SQLOutputValue, type StatementSync } from 'node:sqlite'
import type { AuditRecord, Member, MemberKind, Role } from '@doorbell/core'
import { rowMappers } from './rows'

export const TRUST_DB_FILE = 'trust.db'

/** Bumped when the tables change; a hub refuses a database written by a newer one. */
/** 2: audit.path (which path carried an open-door attempt). 3: members of kind 'integration'. */
const SCHEMA_VERSION = 3

const APPEND_ONLY = 'the audit log is append-only'

const MEMBERS_TABLE = (name: string): string => `CREATE TABLE IF NOT EXISTS ${name} (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('viewer', 'device', 'integration')),
  subject     TEXT NOT NULL,
  name        TEXT NOT NULL,
  role        TEXT CHECK (role IN ('owner', 'resident', 'guest', 'operator')),
  door        INTEGER NOT NULL CHECK (door IN (0, 1)),
  zones       TEXT NOT NULL,
  key         TEXT,
  secret_hash BLOB NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER
)`

const SCHEMA = `
${MEMBERS_TABLE('members')};
CREATE INDEX IF NOT EXISTS members_by_subject ON members (kind, subject);

CREATE TABLE IF NOT EXISTS invites (
  code_hash    BLOB PRIMARY KEY,
  kind         TEXT NOT NULL CHECK (kind IN ('viewer', 'device')),
  role         TEXT CHECK (role IN ('owner', 'resident', 'guest', 'operator')),
  door         INTEGER NOT NULL CHECK (door IN (0, 1)),
  zones        TEXT NOT NULL,
  device_id    TEXT,
  access_hours REAL,
  expires_at   INTEGER NOT NULL,
  used_at      INTEGER,
  created_by   TEXT
);

CREATE TABLE IF NOT EXISTS audit (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  at        INTEGER NOT NULL,
  kind      TEXT NOT NULL,
  outcome   TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied')),
  reason    TEXT NOT NULL,
  actor     TEXT NOT NULL,
  device_id TEXT,
  message   TEXT NOT NULL,
  source_id TEXT UNIQUE,
  path      TEXT CHECK (path IN ('lan', 'direct', 'cloud'))
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, '${APPEND_ONLY}'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, '${APPEND_ONLY}'); END;

CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`

/** A member as stored: the API's {@link Member} plus what only the hub sees. */
export interface StoredMember extends Member {
  /** The viewer's public key (null for devices). */
  key: string | null
  /** SHA-256 of the token's secret. */
  secretHash: Uint8Array
}

/** A one-time code's terms; the code itself is never stored, only its SHA-256. */
export interface StoredInvite {
  codeHash: Uint8Array
  kind: MemberKind
  role: Role | null
  door: boolean
  zones: string[]
  talk: boolean
  talkZones: string[]
  deviceId: string | null
  accessHours: number | null
  expiresAt: number
  usedAt: number | null
  /** The inviting member's id; null for the owner's setup code. */
  createdBy: string | null
}

export type NewAudit = Omit<AuditRecord, 'seq' | 'path'> & { path?: AuditRecord['path'], sourceId?: string }

type Row = Record<string, SQLOutputValue>

/**
 * What the trust logic needs of a store (synchronous): this file's SQLite one, or a cluster's
 * PostgreSQL one (hub/src/cluster/pgTrustStore.ts).
 */
export type TrustBackend = { [K in keyof TrustStore]: TrustStore[K] } & {
  /**
   * A cluster's store: the live owner setup code another hub issued (which hub, until when), or
   * null. Then this hub issues none, so the one printed stays valid (../cluster/pgTrustStore.ts).
   */
  setupCodeElsewhere?: (now: number) => { node: string, expiresAt: number } | null
  /**
   * A cluster's store: the shared clock (PostgreSQL's, ms since the epoch) that a member's
   * `grants_from` and its grants' `iat` are both read from, so hubs whose clocks are apart cannot
   * make a new grant look older than the floor, or an old one newer (docs/trust.md). Absent: the
   * hub's own clock, the only one there is.
   */
  clock?: () => number
}

/**
 * The trust database (`dir/trust.db`, SQLite in WAL mode): members, one-time codes, the audit
 * log and the revocation counter. Synchronous on purpose: a call that runs inside
 * {@link TrustStore.transaction} cannot interleave with another.
 */
export class TrustStore {
  private readonly db: DatabaseSync
  private readonly q: ReturnType<typeof prepareStatements>
  /**
   * `members()` as last read, until a member is written (or a transaction that may have written one
   * rolls back). Two reads of every member per ring (the screens shown it, the Web Push check) were
   * 0.6-1 ms of the broker's thread with 100 members (docs/performance.md). This process is the
   * database's only writer, so every change passes through the methods below.
   */
  private cachedMembers: readonly StoredMember[] | null = null

  constructor (dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    // defensive: no SQL can rewrite the schema behind our back (e.g. drop the audit triggers via writable_schema).
    this.db = new DatabaseSync(join(dir, TRUST_DB_FILE), { timeout: 5000, defensive: true })
    try {
      this.migrate()
    } catch (err) {
      this.db.close()
      throw err
    }
    this.q = prepareStatements(this.db)
  }

  private migrate (): void {
    this.db.exec('PRAGMA journal_mode = WAL')
    // The audit log is evidence: a power cut must not lose a committed line.
    this.db.exec('PRAGMA synchronous = FULL')
    const version = Number((this.db.prepare('PRAGMA user_version').get() as Row).user_version)
    if (version > SCHEMA_VERSION) throw new Error(`${this.db.location() ?? TRUST_DB_FILE} was written by a newer hub (schema ${version}, this hub knows ${SCHEMA_VERSION})`)
    // One transaction: a power cut leaves the old schema or the new one, never half of it.
    this.db.exec('BEGIN IMMEDIATE')
    try {
      // Version 1 had no path column. Adding one is no UPDATE: the append-only triggers stay, and old lines read null.
      const columns = version === 0 ? [] : (this.db.prepare('PRAGMA table_info(audit)').all() as Row[]).map((c) => String(c.name))
      if (columns.length > 0 && !columns.includes('path')) this.db.exec("ALTER TABLE audit ADD COLUMN path TEXT CHECK (path IN ('lan', 'direct', 'cloud'))")
      // Versions 1-2 checked members.kind against viewer and device only; SQLite cannot change a
      // CHECK in place, so the table is copied into one that also takes integrations.
      const members = this.db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'members'").get() as Row | undefined
      if (members !== undefined && !String(members.sql).includes("'integration'")) {
        this.db.exec(MEMBERS_TABLE('members_v3'))
        this.db.exec('INSERT INTO members_v3 SELECT id, kind, subject, name, role, door, zones, key, secret_hash, created_at, expires_at, revoked_at FROM members')
        this.db.exec('DROP TABLE members')
        this.db.exec('ALTER TABLE members_v3 RENAME TO members')
      }
      this.db.exec(SCHEMA)
      addTalkColumns(this.db)
      addGrantsFromColumn(this.db)
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
      this.db.exec('COMMIT')
    } catch (err) {
      this.db.exec('ROLLBACK')
      throw err
    }
  }

  /** Runs `fn` atomically: all of its writes, or none. `fn` must be synchronous. */
  transaction<T> (fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE')
    try {
      const result = fn()
      this.db.exec('COMMIT')
      return result
    } catch (err) {
      // The list may have been read inside the transaction, with rows that are now undone.
      this.cachedMembers = null
      this.db.exec('ROLLBACK')
      throw err
    }
  }

  // ------------------------------------------------------------ members

  insertMember (m: StoredMember): void {
    this.cachedMembers = null
    this.q.insertMember.run({
      id: m.id, kind: m.kind, subject: m.subject, name: m.name, role: m.role, door: m.door ? 1 : 0,
      zones: JSON.stringify(m.zones), talk: m.talk === true ? 1 : 0, talkZones: JSON.stringify(m.talkZones ?? []), key: m.key, secretHash: m.secretHash, createdAt: m.createdAt, expiresAt: m.expiresAt
    })
  }

  member (id: string): StoredMember | null {
    const row = this.q.member.get(id) as Row | undefined
    return row === undefined ? null : toMember(row)
  }

  /**
   * Every member, oldest first. The same frozen array until a member changes (the caller must not
   * change it); a changed member gives a new array, so a caller may keep what it derived from one
   * and compare arrays (trust.ts).
   */
  members (): readonly StoredMember[] {
    this.cachedMembers ??= Object.freeze((this.q.members.all() as Row[]).map((r) => deepFreeze(toMember(r))))
    return this.cachedMembers
  }

  /** Members of that kind and subject that are neither revoked nor expired at `now`. */
  liveMembersOf (kind: MemberKind, subject: string, now: number): StoredMember[] {
    return (this.q.liveBySubject.all(kind, subject, now) as Row[]).map(toMember)
  }

  liveOwnerCount (now: number): number {
    return Number((this.q.liveOwners.get(now) as Row).n)
  }

  /** A live member's door right; false when it is revoked (or does not exist). */
  setDoor (id: string, door: boolean): boolean {
    this.cachedMembers = null
    return Number(this.q.setDoor.run(door ? 1 : 0, id).changes) === 1
  }

  /**
   * A live member's door and talk rights, and since when its older grants are void (the grant
   * signed next carries `iat` >= `grantsFrom`); false when it is revoked (or does not exist).
   */
  setRights (id: string, r: { door: boolean, talk: boolean, talkZones: string[], grantsFrom: number }): boolean {
    this.cachedMembers = null
    return Number(this.q.setRights.run(r.door ? 1 : 0, r.talk ? 1 : 0, JSON.stringify(r.talkZones), r.grantsFrom, id).changes) === 1
  }

  /** Since when a member's older grants are void; null when its rights never changed. */
  grantsFrom (id: string): number | null {
    const row = this.q.grantsFrom.get(id) as Row | undefined
    return row === undefined || row.grants_from === null ? null : Number(row.grants_from)
  }

  /** Live (not revoked) members whose rights changed, oldest change first: the floors of the signed list. */
  grantFloors (): Array<{ id: string, from: number }> {
    return (this.q.grantFloors.all() as Row[]).map((r) => ({ id: String(r.id), from: Number(r.grants_from) }))
  }

  /** False when the member was already revoked (or does not exist). */
  revokeMember (id: string, at: number): boolean {
    this.cachedMembers = null
    return Number(this.q.revoke.run(at, id).changes) === 1
  }

  /** Revoked member ids, and when the last revocation happened (0 if none). */
  revoked (): { ids: string[], lastAt: number } {
    const rows = this.q.revoked.all() as Row[]
    return { ids: rows.map((r) => String(r.id)), lastAt: rows.reduce((max, r) => Math.max(max, Number(r.revoked_at)), 0) }
  }

  // ------------------------------------------------------------ one-time codes

  insertInvite (i: Omit<StoredInvite, 'usedAt'>): void {
    this.q.insertInvite.run({
      codeHash: i.codeHash, kind: i.kind, role: i.role, door: i.door ? 1 : 0, zones: JSON.stringify(i.zones),
      talk: i.talk ? 1 : 0, talkZones: JSON.stringify(i.talkZones),
      deviceId: i.deviceId, accessHours: i.accessHours, expiresAt: i.expiresAt, createdBy: i.createdBy
    })
  }

  invite (codeHash: Uint8Array): StoredInvite | null {
    const row = this.q.invite.get(codeHash) as Row | undefined
    return row === undefined ? null : toInvite(row)
  }

  /** Marks a code used if it still can be: false when it was used or expired meanwhile. */
  useInvite (codeHash: Uint8Array, now: number): boolean {
    return Number(this.q.useInvite.run(now, codeHash, now).changes) === 1
  }

  /** Forgets unused owner setup codes: only the latest one printed may work. */
  dropSetupCodes (): void {
    this.q.dropSetupCodes.run()
  }

  // ------------------------------------------------------------ audit

  /** Null when a record with that `sourceId` is already stored (a redelivered report). */
  appendAudit (r: NewAudit): AuditRecord | null {
    const result = this.q.appendAudit.run({
      at: r.at, kind: r.kind, outcome: r.outcome, reason: r.reason, actor: r.actor,
      deviceId: r.deviceId, message: r.message, sourceId: r.sourceId ?? null, path: r.path ?? null
    })
    if (Number(result.changes) === 0) return null
    return { seq: Number(result.lastInsertRowid), at: r.at, kind: r.kind, outcome: r.outcome, reason: r.reason, actor: r.actor, deviceId: r.deviceId, message: r.message, path: r.path ?? null }
  }

  auditAfter (afterSeq: number, limit: number): AuditRecord[] {
    return (this.q.auditAfter.all(afterSeq, limit) as Row[]).map(toAudit)
  }

  auditAll (): AuditRecord[] {
    return (this.q.auditAll.all() as Row[]).map(toAudit)
  }

  // ------------------------------------------------------------ meta

  revocationSeq (): number {
    const row = this.q.getMeta.get('revocation_seq') as Row | undefined
    return row === undefined ? 0 : Number(row.value)
  }

  bumpRevocationSeq (): number {
    const seq = this.revocationSeq() + 1
    this.q.setMeta.run('revocation_seq', String(seq))
    return seq
  }

  reissueSeq (): number {
    const row = this.q.getMeta.get('reissue_seq') as Row | undefined
    return row === undefined ? 0 : Number(row.value)
  }

  bumpReissueSeq (): number {
    const seq = this.reissueSeq() + 1
    this.q.setMeta.run('reissue_seq', String(seq))
    return seq
  }

  close (): void {
    if (this.db.isOpen) this.db.close()
  }
}

/** Every statement the store runs, prepared once; values always go in as parameters. */
function prepareStatements (db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql)
  return {
    insertMember: p(`INSERT INTO members (id, kind, subject, name, role, door, zones, talk, talk_zones, key, secret_hash, created_at, expires_at, revoked_at)
      VALUES (:id, :kind, :subject, :name, :role, :door, :zones, :talk, :talkZones, :key, :secretHash, :createdAt, :expiresAt, NULL)`),
    member: p('SELECT * FROM members WHERE id = ?'),
    members: p('SELECT * FROM members ORDER BY created_at, id'),
    liveBySubject: p(`SELECT * FROM members WHERE kind = ? AND subject = ? AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > ?)`),
    liveOwners: p(`SELECT count(*) AS n FROM members WHERE role = 'owner' AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > ?)`),
    revoke: p('UPDATE members SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    setDoor: p('UPDATE members SET door = ? WHERE id = ? AND revoked_at IS NULL'),
    setRights: p('UPDATE members SET door = ?, talk = ?, talk_zones = ?, grants_from = ? WHERE id = ? AND revoked_at IS NULL'),
    grantsFrom: p('SELECT grants_from FROM members WHERE id = ?'),
    grantFloors: p('SELECT id, grants_from FROM members WHERE grants_from IS NOT NULL AND revoked_at IS NULL ORDER BY grants_from, id'),
    revoked: p('SELECT id, revoked_at FROM members WHERE revoked_at IS NOT NULL ORDER BY revoked_at, id'),
    insertInvite: p(`INSERT INTO invites (code_hash, kind, role, door, zones, talk, talk_zones, device_id, access_hours, expires_at, used_at, created_by)
      VALUES (:codeHash, :kind, :role, :door, :zones, :talk, :talkZones, :deviceId, :accessHours, :expiresAt, NULL, :createdBy)`),
    invite: p('SELECT * FROM invites WHERE code_hash = ?'),
    useInvite: p('UPDATE invites SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?'),
    dropSetupCodes: p("DELETE FROM invites WHERE role = 'owner' AND created_by IS NULL AND used_at IS NULL"),
    appendAudit: p(`INSERT INTO audit (at, kind, outcome, reason, actor, device_id, message, source_id, path)
      VALUES (:at, :kind, :outcome, :reason, :actor, :deviceId, :message, :sourceId, :path)
      ON CONFLICT (source_id) DO NOTHING`),
    auditAfter: p('SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?'),
    auditAll: p('SELECT * FROM audit ORDER BY seq'),
    getMeta: p('SELECT value FROM meta WHERE key = ?'),
    setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
  }
}


/**
 * The talk right's columns, added to members and invites in place (nullable: no UPDATE, no new
 * schema version, so an older hub still reads the file). A row from before them reads null: its
 * role's default (owners and residents talk, guests and operators do not), as core's `mayTalk` has it.
 */
function addTalkColumns (db: DatabaseSync): void {
  for (const table of ['members', 'invites']) {
    const columns = (db.prepare(`PRAGMA table_info(${table})`).all() as Row[]).map((c) => String(c.name))
    if (!columns.includes('talk')) db.exec(`ALTER TABLE ${table} ADD COLUMN talk INTEGER CHECK (talk IN (0, 1))`)
    if (!columns.includes('talk_zones')) db.exec(`ALTER TABLE ${table} ADD COLUMN talk_zones TEXT`)
  }
}

/**
 * Since when a member's older grants are void (the owner changed its rights: grants.ts), added in
 * place like the talk columns: nullable, null for every member whose rights never changed.
 */
function addGrantsFromColumn (db: DatabaseSync): void {
  const columns = (db.prepare('PRAGMA table_info(members)').all() as Row[]).map((c) => String(c.name))
  if (!columns.includes('grants_from')) db.exec('ALTER TABLE members ADD COLUMN grants_from INTEGER')
}

/** A cached member is shared by every caller: frozen, with its lists (its key hash is a typed array, which cannot be frozen; only this file reads it). */
function deepFreeze (m: StoredMember): StoredMember {
  Object.freeze(m.zones)
  Object.freeze(m.talkZones)
  return Object.freeze(m)
}

const { toMember, toInvite, toAudit } = rowMappers({ bool: (v) => v === 1, list: (v) => JSON.parse(String(v)) as string[] })
