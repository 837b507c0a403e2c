import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync, type SQLOutputValue } from 'node:sqlite'
import type { CallRecord, DoorAttempt, EventsQuery, HistoryEvent, RingEvent } from '@doorbell/core'
import { eventOfRow, eventsPage } from './rows'

/**
 * The event history on disk: rows in `dataDir/history/history.db` (node:sqlite, WAL), pictures as
 * files beside it (`snapshots/<event id>.jpg`). Apart from the trust store on purpose: retention
 * deletes here, and never reaches the audit log.
 */
export const HISTORY_DB_FILE = 'history.db'
/**
 * 2: talk requests are events of their own kind (1 filed them as door attempts' kind).
 * 3: the `dismissals` table and the `dismissed` outcome (a hub of 2 would not know that outcome).
 */
const SCHEMA_VERSION = 3

const eventsTable = (name: string): string => `
CREATE TABLE IF NOT EXISTS ${name} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('ring', 'door', 'talk')),
  source TEXT NOT NULL UNIQUE,
  device_id TEXT NOT NULL,
  device_name TEXT NOT NULL,
  at INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  who TEXT NOT NULL DEFAULT '[]',
  duration_ms INTEGER,
  detail TEXT,
  ring_id TEXT,
  snapshot_bytes INTEGER,
  snapshot_seq INTEGER,
  no_picture TEXT
);`

const SCHEMA = `${eventsTable('events')}
CREATE INDEX IF NOT EXISTS events_at ON events (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS events_device_at ON events (device_id, at DESC, id DESC);
CREATE TABLE IF NOT EXISTS seen (
  member_id TEXT NOT NULL,
  event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  PRIMARY KEY (member_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dismissals (
  event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  member_name TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (event_id, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ring_shown (
  event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  PRIMARY KEY (event_id, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ring_shown_screens (
  event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  screen TEXT NOT NULL,
  PRIMARY KEY (event_id, screen)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dismissed_screens (
  event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  screen TEXT NOT NULL,
  PRIMARY KEY (event_id, member_id, screen)
) WITHOUT ROWID;
`

type Row = Record<string, SQLOutputValue>

/** A dismissal's screen when it named none (older pages, a kept ring's): all of the member's screens. Not an Id, so never a real screen. */
const ANY_SCREEN = '*'

export interface EventScope {
  memberId: string
  /** The devices this member may see; null: every device of the home. */
  devices: readonly string[] | null
}

export interface RetentionResult { events: number, files: number }

/** Retention's settings; `unlessWithinMs`: a shared store skips it when another hub ran it this recently (one hub alone ignores it). */
export interface RetentionOptions {
  now: number
  days: number
  maxBytes: number
  /** A cluster's hubs: skip the run if another hub ran it within this long. */
  unlessWithinMs?: number
  /** Bytes kept beside events (their clips: clipStore.ts), by event id: they count in the cap and go with their events. */
  extraBytes?: ReadonlyMap<number, number>
}

/** What became of a dismissal: kept (the ring is still ringing, or was missed and is now dismissed), or refused. */
export type DismissResult =
  | { ok: true, outcome: 'ringing' | 'dismissed' }
  | { ok: false, status: 404 | 409, error: string }

const ringSource = (deviceId: string, ringId: string): string => `ring:${deviceId}:${ringId}`

export class HistoryStore {
  private readonly db: DatabaseSync
  readonly snapshotDir: string

  constructor (readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    this.snapshotDir = join(dir, 'snapshots')
    mkdirSync(this.snapshotDir, { recursive: true, mode: 0o700 })
    this.db = new DatabaseSync(join(dir, HISTORY_DB_FILE), { timeout: 5000, enableForeignKeyConstraints: true })
    try {
      this.db.exec('PRAGMA journal_mode = WAL')
      // A ring is recorded on the broker's thread right after its fan-out: an fsync per commit
      // (FULL) held the event loop 3-5 ms per ring, and 20-50 ms when the disk was busy, so the
      // next ring waited behind it. In WAL, NORMAL stays consistent; a power cut may lose the
      // last rings' rows, never the database (the audit log, in the trust store, stays FULL).
      this.db.exec('PRAGMA synchronous = NORMAL')
      const version = Number((this.db.prepare('PRAGMA user_version').get() as Row).user_version)
      if (version > SCHEMA_VERSION) throw new Error(`${join(dir, HISTORY_DB_FILE)} was written by a newer hub (schema ${version}, this hub knows ${SCHEMA_VERSION})`)
      if (version === 1) this.migrateFrom1()
      // 2 → 3 is the new table alone (CREATE … IF NOT EXISTS below).
      this.db.exec(SCHEMA)
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
    } catch (err) {
      this.db.close()
      throw err
    }
  }

  /**
   * Schema 1 → 2: the kind's CHECK admits 'talk'. SQLite cannot change a CHECK in place: the table
   * is copied into a new one (ids kept, so the seen marks and picture files still match) and
   * renamed, with foreign keys off meanwhile so that dropping the old table deletes no seen mark.
   */
  private migrateFrom1 (): void {
    this.db.exec('PRAGMA foreign_keys = OFF')
    try {
      this.db.exec('BEGIN')
      try {
        this.db.exec(eventsTable('events_v2'))
        this.db.exec('INSERT INTO events_v2 SELECT * FROM events')
        this.db.exec('DROP TABLE events')
        this.db.exec('ALTER TABLE events_v2 RENAME TO events')
        this.db.exec('COMMIT')
      } catch (err) {
        this.db.exec('ROLLBACK')
        throw err
      }
    } finally {
      this.db.exec('PRAGMA foreign_keys = ON')
    }
  }

  snapshotPath (id: number): string { return join(this.snapshotDir, `${id}.jpg`) }

  /** A ring (a repeat press or a copy delivered twice is the same row). Returns its event id. */
  addRing (ring: RingEvent): number {
    this.db.prepare(`INSERT INTO events (kind, source, device_id, device_name, at, outcome, ring_id)
      VALUES ('ring', ?, ?, ?, ?, 'ringing', ?) ON CONFLICT (source) DO NOTHING`)
      .run(ringSource(ring.deviceId, ring.ringId), ring.deviceId, ring.deviceName, ring.at, ring.ringId)
    return this.ringEventId(ring.deviceId, ring.ringId)!
  }

  ringEventId (deviceId: string, ringId: string): number | null {
    const row = this.db.prepare('SELECT id FROM events WHERE source = ?').get(ringSource(deviceId, ringId)) as Row | undefined
    return row ? Number(row.id) : null
  }

  /**
   * How the ring ended (the device's call record): answered by whom and for how long, or missed;
   * a missed ring that a screen dismissed is dismissed, by the members who dismissed it.
   */
  endRing (record: CallRecord, deviceName: string): void {
    if (record.ringId === null || record.outcome === 'live-view') return
    const who = JSON.stringify([...new Set(record.answeredBy.map((a) => a.viewerName))])
    const duration = record.outcome === 'answered' ? record.endedAt - record.startedAt : null
    const source = ringSource(record.deviceId, record.ringId)
    this.db.prepare(`INSERT INTO events (kind, source, device_id, device_name, at, outcome, ring_id, who, duration_ms)
      VALUES ('ring', ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (source) DO UPDATE SET outcome = excluded.outcome, who = excluded.who, duration_ms = excluded.duration_ms`)
      .run(source, record.deviceId, deviceName, record.startedAt, record.outcome, record.ringId, who, duration)
    if (record.outcome === 'missed') this.markDismissed(this.ringEventId(record.deviceId, record.ringId)!)
  }

  /**
   * A member's screen dismissed a ring (the route checked that they may see its doorbell). While
   * it rings, the dismissal is kept for when it ends; a ring already missed becomes dismissed; an
   * answered ring, or one the history does not have, is refused and nothing changes.
   */
  dismiss (deviceId: string, ringId: string, member: { id: string, name: string, screen?: string }, now = Date.now()): DismissResult {
    const row = this.db.prepare("SELECT id, outcome FROM events WHERE source = ? AND kind = 'ring'").get(ringSource(deviceId, ringId)) as Row | undefined
    if (!row) return { ok: false, status: 404, error: 'no such ring' }
    const outcome = String(row.outcome)
    if (outcome === 'answered') return { ok: false, status: 409, error: 'this ring was answered; it cannot be dismissed' }
    const id = Number(row.id)
    this.db.prepare('INSERT INTO dismissals (event_id, member_id, member_name, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING').run(id, member.id, member.name, now)
    // Which screen ('*': the dismissal named none, so it stands for all of the member's screens).
    this.db.prepare('INSERT INTO dismissed_screens (event_id, member_id, screen) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(id, member.id, member.screen ?? ANY_SCREEN)
    if (outcome === 'ringing') return { ok: true, outcome: 'ringing' }
    this.markDismissed(id)
    return { ok: true, outcome: 'dismissed' }
  }

  /** A missed ring with dismissals: dismissed, by the dismissing members in order. */
  private markDismissed (id: number): void {
    const names = (this.db.prepare('SELECT member_name FROM dismissals WHERE event_id = ? ORDER BY at, member_id').all(id) as Row[]).map((r) => String(r.member_name))
    if (names.length === 0) return
    this.db.prepare("UPDATE events SET outcome = 'dismissed', who = ? WHERE id = ? AND outcome IN ('missed', 'dismissed')").run(JSON.stringify([...new Set(names)]), id)
  }

  /**
   * The members whose screens were shown this ring (connected when it rang: shown.ts). A ring
   * every one of them dismissed is "dismissed by everyone" (`everyoneDismissed`).
   */
  addShown (eventId: number, memberIds: readonly string[], screens: ReadonlyArray<{ memberId: string, screen: string }> = []): void {
    this.addShownEncoded(eventId, JSON.stringify(memberIds), JSON.stringify(screens))
  }

  /**
   * `addShown` with both lists as JSON arrays, as they cross from the broker's thread (threadStore.ts):
   * one string each instead of a structured clone of 100 objects per ring, and each list written
   * by one statement (json_each) instead of one statement per row.
   */
  addShownEncoded (eventId: number, memberIds: string, screens: string): void {
    // `WHERE true`: SQLite's INSERT … SELECT needs it before an upsert clause (its parsing ambiguity).
    const members = this.db.prepare('INSERT INTO ring_shown (event_id, member_id) SELECT ?, value FROM json_each(?) WHERE true ON CONFLICT DO NOTHING')
    // Per screen (a member's two tabs are two screens): every one of them must have dismissed it.
    const perScreen = this.db.prepare(`INSERT INTO ring_shown_screens (event_id, member_id, screen)
      SELECT ?, value ->> '$.memberId', value ->> '$.screen' FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`)
    // One commit for all the rows: each insert on its own was a commit (a WAL write) of its own,
    // 200 for a ring shown to 100 screens, about 6 ms on the broker's thread right after the fan-out.
    const own = !this.db.isTransaction
    if (own) this.db.exec('BEGIN')
    try {
      members.run(eventId, memberIds)
      perScreen.run(eventId, screens)
      if (own) this.db.exec('COMMIT')
    } catch (err) {
      if (own) this.db.exec('ROLLBACK')
      throw err
    }
  }

  /**
   * Of these dismissed rings, those that every screen shown them dismissed (a dismissal naming no
   * screen counts for all of its member's). A ring recorded before screens were noted: every
   * member shown it. None shown: not known, so not listed.
   */
  private everyoneDismissed (ids: number[]): Set<number> {
    if (ids.length === 0) return new Set()
    const marks = ids.map(() => '?').join(',')
    const byScreen = this.db.prepare(`SELECT s.event_id FROM ring_shown_screens s WHERE s.event_id IN (${marks})
      GROUP BY s.event_id HAVING SUM(NOT EXISTS (SELECT 1 FROM dismissed_screens d
        WHERE d.event_id = s.event_id AND d.member_id = s.member_id AND d.screen IN (s.screen, '${ANY_SCREEN}'))) = 0`).all(...ids) as Row[]
    const byMember = this.db.prepare(`SELECT s.event_id FROM ring_shown s WHERE s.event_id IN (${marks})
      AND s.event_id NOT IN (SELECT event_id FROM ring_shown_screens)
      GROUP BY s.event_id HAVING SUM(s.member_id NOT IN (SELECT d.member_id FROM dismissals d WHERE d.event_id = s.event_id)) = 0`).all(...ids) as Row[]
    return new Set([...byScreen, ...byMember].map((r) => Number(r.event_id)))
  }

  /** A request to talk (the talk lease's audit record): who, allowed or refused and why; stored once per attempt id. */
  addTalk (attempt: DoorAttempt, deviceName: string): void {
    // The lease's end: how long that request's talk lasted (its own record, after the request's).
    if (attempt.lease) {
      this.db.prepare("UPDATE events SET duration_ms = ? WHERE source = ? AND kind = 'talk'").run(attempt.lease.durationMs, `talk:${attempt.lease.attemptId}`)
      return
    }
    this.db.prepare(`INSERT INTO events (kind, source, device_id, device_name, at, outcome, who, detail)
      VALUES ('talk', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO NOTHING`)
      // A quick reply says which reply was played (its audit message names it), allowed or not.
      .run(`talk:${attempt.id}`, attempt.deviceId, deviceName, attempt.at, attempt.outcome, JSON.stringify([attempt.viewerName]), attempt.outcome === 'denied' || attempt.kind === 'reply' ? attempt.message : null)
  }

  /** An open-door attempt from the audit records the hub ingests (stored once per attempt id). */
  addDoor (attempt: DoorAttempt, deviceName: string): void {
    this.db.prepare(`INSERT INTO events (kind, source, device_id, device_name, at, outcome, who, detail)
      VALUES ('door', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO NOTHING`)
      .run(`door:${attempt.id}`, attempt.deviceId, deviceName, attempt.at, attempt.outcome, JSON.stringify(attempt.viewerName ? [attempt.viewerName] : []), attempt.outcome === 'denied' ? attempt.message : null)
  }

  /**
   * The ring's picture, written as a file (a later `seq` replaces an earlier one; an earlier one
   * arriving late is ignored). A file that cannot be written (a full disk) throws after the row
   * is updated to say so: the ring itself is kept.
   */
  setSnapshot (eventId: number, seq: number, jpeg: Buffer | null, reason?: string): boolean {
    const row = this.db.prepare('SELECT snapshot_seq FROM events WHERE id = ?').get(eventId) as Row | undefined
    if (!row) return false
    if (row.snapshot_seq !== null && Number(row.snapshot_seq) >= seq) return false
    if (jpeg === null) {
      // "No picture" never replaces a picture already kept.
      if (row.snapshot_seq === null) this.db.prepare('UPDATE events SET no_picture = ? WHERE id = ?').run(reason ?? 'no picture', eventId)
      return false
    }
    try {
      writeFileSync(this.snapshotPath(eventId), jpeg, { mode: 0o600 })
    } catch (err) {
      this.db.prepare('UPDATE events SET no_picture = ? WHERE id = ? AND snapshot_seq IS NULL').run('the hub could not store the picture', eventId)
      throw err
    }
    this.db.prepare('UPDATE events SET snapshot_bytes = ?, snapshot_seq = ?, no_picture = NULL WHERE id = ?').run(jpeg.length, seq, eventId)
    return true
  }

  snapshot (id: number): Buffer | null {
    const row = this.db.prepare('SELECT snapshot_bytes FROM events WHERE id = ?').get(id) as Row | undefined
    if (!row || row.snapshot_bytes === null) return null
    try { return readFileSync(this.snapshotPath(id)) } catch { return null }
  }

  /** One event, if this scope may see it. */
  get (id: number, scope: EventScope): HistoryEvent | null {
    const row = this.db.prepare('SELECT * FROM events WHERE id = ?').get(id) as Row | undefined
    if (!row || (scope.devices !== null && !scope.devices.includes(String(row.device_id)))) return null
    return eventOfRow(row, new Set(this.seenOf(scope.memberId, [Number(row.id)])), this.everyoneDismissed(row.outcome === 'dismissed' ? [Number(row.id)] : []))
  }

  /** A page, newest first, after the cursor, within the member's devices. */
  list (q: EventsQuery, scope: EventScope): { events: HistoryEvent[], next: string | null, unseen: number } {
    const where: string[] = []
    const args: Array<string | number> = []
    const scoped = this.scopeClause(scope, where, args)
    if (q.device !== undefined) { where.push('device_id = ?'); args.push(q.device) }
    if (q.filter === 'door') where.push("kind = 'door'")
    if (q.filter === 'talk') where.push("kind = 'talk'")
    if (q.filter === 'missed') where.push("kind = 'ring' AND outcome = 'missed'")
    if (q.filter === 'dismissed') where.push("kind = 'ring' AND outcome = 'dismissed'")
    if (q.filter === 'answered') where.push("kind = 'ring' AND outcome = 'answered'")
    if (q.before !== undefined) {
      const [at, id] = q.before.split('-').map(Number) as [number, number]
      where.push('(at < ? OR (at = ? AND id < ?))')
      args.push(at, at, id)
    }
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`
    const rows = this.db.prepare(sql).all(...args, q.limit + 1) as Row[]
    const page = eventsPage(rows, q.limit, (ids) => this.seenOf(scope.memberId, ids), (ids) => this.everyoneDismissed(ids))
    return { ...page, unseen: this.unseenCount(scope, scoped) }
  }

  /** Marks events seen by a member (only those in their scope; all: every missed ring). */
  markSeen (scope: EventScope, ids: readonly number[] | 'all'): number {
    const where: string[] = ["kind = 'ring'", "outcome = 'missed'"]
    const args: Array<string | number> = []
    this.scopeClause(scope, where, args)
    if (ids !== 'all') {
      if (ids.length === 0) return 0
      where.push(`id IN (${ids.map(() => '?').join(',')})`)
      args.push(...ids)
    }
    const r = this.db.prepare(`INSERT INTO seen (member_id, event_id) SELECT ?, id FROM events WHERE ${where.join(' AND ')} ON CONFLICT DO NOTHING`)
      .run(scope.memberId, ...args)
    return Number(r.changes)
  }

  /** Deletes one event and its picture. */
  delete (id: number): boolean {
    const r = this.db.prepare('DELETE FROM events WHERE id = ?').run(id)
    rmSync(this.snapshotPath(id), { force: true })
    return Number(r.changes) > 0
  }

  /**
   * Retention: events older than `days`, then the oldest pictures' events until the pictures fit
   * in `maxBytes`. Rows and files go together.
   */
  prune (o: RetentionOptions): RetentionResult {
    const doomed = (this.db.prepare('SELECT id, snapshot_bytes FROM events WHERE at < ?').all(o.now - o.days * 86_400_000) as Row[])
    let total = Number((this.db.prepare('SELECT COALESCE(SUM(snapshot_bytes), 0) AS n FROM events WHERE at >= ?').get(o.now - o.days * 86_400_000) as Row).n)
    // Files kept beside an event (its clip: clipStore.ts) count in the cap too, and go with it.
    const extra = o.extraBytes ?? new Map<number, number>()
    const old = new Set(doomed.map((r) => Number(r.id)))
    for (const [id, n] of extra) if (!old.has(id)) total += n
    if (total > o.maxBytes) {
      const withFiles = extra.size > 0 ? '' : ' AND snapshot_bytes IS NOT NULL'
      for (const r of this.db.prepare(`SELECT id, snapshot_bytes FROM events WHERE at >= ?${withFiles} ORDER BY at, id`).iterate(o.now - o.days * 86_400_000) as Iterable<Row>) {
        if (total <= o.maxBytes) break
        const bytes = Number(r.snapshot_bytes ?? 0) + (extra.get(Number(r.id)) ?? 0)
        if (bytes === 0) continue
        doomed.push(r)
        total -= bytes
      }
    }
    let files = 0
    for (const r of doomed) {
      this.db.prepare('DELETE FROM events WHERE id = ?').run(Number(r.id))
      if (r.snapshot_bytes !== null) { rmSync(this.snapshotPath(Number(r.id)), { force: true }); files++ }
    }
    return { events: doomed.length, files }
  }

  count (): number { return Number((this.db.prepare('SELECT COUNT(*) AS n FROM events').get() as Row).n) }

  close (): void { this.db.close() }

  private scopeClause (scope: EventScope, where: string[], args: Array<string | number>): { where: string[], args: Array<string | number> } {
    const mine: string[] = []
    const mineArgs: Array<string | number> = []
    if (scope.devices !== null) {
      mine.push(scope.devices.length ? `device_id IN (${scope.devices.map(() => '?').join(',')})` : '0')
      mineArgs.push(...scope.devices)
    }
    where.push(...mine)
    args.push(...mineArgs)
    return { where: mine, args: mineArgs }
  }

  private unseenCount (scope: EventScope, scoped: { where: string[], args: Array<string | number> }): number {
    const where = ["kind = 'ring'", "outcome = 'missed'", ...scoped.where, 'id NOT IN (SELECT event_id FROM seen WHERE member_id = ?)']
    return Number((this.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE ${where.join(' AND ')}`).get(...scoped.args, scope.memberId) as Row).n)
  }

  private seenOf (memberId: string, ids: number[]): number[] {
    if (ids.length === 0) return []
    const rows = this.db.prepare(`SELECT event_id FROM seen WHERE member_id = ? AND event_id IN (${ids.map(() => '?').join(',')})`).all(memberId, ...ids) as Row[]
    return rows.map((r) => Number(r.event_id))
  }
}
