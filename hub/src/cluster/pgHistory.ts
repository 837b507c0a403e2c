import type { CallRecord, DoorAttempt, EventsQuery, HistoryEvent, RingEvent } from '@doorbell/core'
import type { HistoryBackend } from '../history/backend'
import { eventOfRow, eventsPage } from '../history/rows'
import type { DismissResult, EventScope, RetentionOptions, RetentionResult } from '../history/store'
import { SyncPg, type Row } from './syncPg'

/** Taken by the hub that runs retention: the others skip it rather than delete the same rows at once. */
export const HISTORY_RETENTION_LOCK = 0x68697374 // "hist"

const ringSource = (deviceId: string, ringId: string): string => `ring:${deviceId}:${ringId}`
/** A dismissal's screen when it named none: all of the member's screens (as on one hub; not an Id, so never a real screen). */
const ANY_SCREEN = '*'

/**
 * A cluster's event history (docs/cluster.md): the single hub's `HistoryStore` contract
 * (../history/store.ts) on the PostgreSQL every hub shares, so a ring through hub A is in
 * `/api/events` on hub B with its picture, a member's seen marks hold on every hub, and the owner
 * deletes through any of them. Pictures are bytea rows (history_pictures), deleted with their
 * event, and bounded by the same retention (days, then `history.maxMegabytes`), which one hub at a
 * time runs (an advisory lock, and at most once per interval across hubs). Synchronous, as the
 * trust store is (./syncPg.ts), on a connection of its own. PostgreSQL down: each call throws a
 * `ClusterStoreError`: the API answers 503, the ingest logs the event it could not record.
 */
export class PgHistoryStore implements HistoryBackend {
  private readonly pg: SyncPg

  constructor (o: { url: string, timeoutMs: number, nodeId: string }) {
    this.pg = new SyncPg({ url: o.url, timeoutMs: o.timeoutMs, name: `doorbell-hub ${o.nodeId} history` })
  }

  /** A ring (a repeat press or a copy delivered twice, through any hub, is the same row). Returns its event id. */
  addRing (ring: RingEvent): number {
    // DO UPDATE of nothing: the row's id comes back whether it was new or not.
    const row = this.pg.query(`INSERT INTO history_events (kind, source, device_id, device_name, at, outcome, ring_id)
      VALUES ('ring', $1, $2, $3, $4, 'ringing', $5) ON CONFLICT (source) DO UPDATE SET source = excluded.source RETURNING id`,
    [ringSource(ring.deviceId, ring.ringId), ring.deviceId, ring.deviceName, ring.at, ring.ringId]).rows[0]!
    return Number(row.id)
  }

  ringEventId (deviceId: string, ringId: string): number | null {
    const row = this.pg.query('SELECT id FROM history_events WHERE source = $1', [ringSource(deviceId, ringId)]).rows[0]
    return row === undefined ? null : Number(row.id)
  }

  endRing (record: CallRecord, deviceName: string): void {
    if (record.ringId === null || record.outcome === 'live-view') return
    const who = JSON.stringify([...new Set(record.answeredBy.map((a) => a.viewerName))])
    const duration = record.outcome === 'answered' ? record.endedAt - record.startedAt : null
    const row = this.pg.query(`INSERT INTO history_events (kind, source, device_id, device_name, at, outcome, ring_id, who, duration_ms)
      VALUES ('ring', $1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (source) DO UPDATE SET outcome = excluded.outcome, who = excluded.who, duration_ms = excluded.duration_ms RETURNING id`,
    [ringSource(record.deviceId, record.ringId), record.deviceId, deviceName, record.startedAt, record.outcome, record.ringId, who, duration]).rows[0]!
    if (record.outcome === 'missed') this.markDismissed(Number(row.id))
  }

  dismiss (deviceId: string, ringId: string, member: { id: string, name: string, screen?: string }, now = Date.now()): DismissResult {
    const row = this.pg.query("SELECT id, outcome FROM history_events WHERE source = $1 AND kind = 'ring'", [ringSource(deviceId, ringId)]).rows[0]
    if (row === undefined) return { ok: false, status: 404, error: 'no such ring' }
    const outcome = String(row.outcome)
    if (outcome === 'answered') return { ok: false, status: 409, error: 'this ring was answered; it cannot be dismissed' }
    const id = Number(row.id)
    this.pg.query('INSERT INTO history_dismissals (event_id, member_id, member_name, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [id, member.id, member.name, now])
    // Which screen ('*': the dismissal named none, so it stands for all of the member's screens).
    this.pg.query('INSERT INTO history_dismissed_screens (event_id, member_id, screen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [id, member.id, member.screen ?? ANY_SCREEN])
    if (outcome === 'ringing') return { ok: true, outcome: 'ringing' }
    this.markDismissed(id)
    return { ok: true, outcome: 'dismissed' }
  }

  private markDismissed (id: number): void {
    const names = this.pg.query('SELECT member_name FROM history_dismissals WHERE event_id = $1 ORDER BY at, member_id', [id]).rows.map((r) => String(r.member_name))
    if (names.length === 0) return
    this.pg.query("UPDATE history_events SET outcome = 'dismissed', who = $1 WHERE id = $2 AND outcome IN ('missed', 'dismissed')", [JSON.stringify([...new Set(names)]), id])
  }

  /**
   * The members and screens shown this ring: the screens connected to any hub of the cluster when
   * it rang (the history's shown.ts, from the shared presence). A ring every one of those screens
   * dismissed is "dismissed by everyone".
   */
  addShown (eventId: number, memberIds: readonly string[], screens: ReadonlyArray<{ memberId: string, screen: string }> = []): void {
    // All or none, as the single hub's store: members without their screens would judge by member.
    this.transaction(() => {
      if (memberIds.length > 0) this.pg.query('INSERT INTO history_ring_shown (event_id, member_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [eventId, [...memberIds]])
      if (screens.length > 0) {
        this.pg.query('INSERT INTO history_ring_shown_screens (event_id, member_id, screen) SELECT $1, unnest($2::text[]), unnest($3::text[]) ON CONFLICT DO NOTHING',
          [eventId, screens.map((s) => s.memberId), screens.map((s) => s.screen)])
      }
    })
  }

  /**
   * Of these dismissed rings, those that every screen shown them dismissed (a dismissal naming no
   * screen counts for all of its member's); a ring noted by member only (before screens were):
   * every member shown it. None shown: not known, so not listed. The single hub's rule (store.ts).
   */
  private everyoneDismissed (ids: number[]): Set<number> {
    if (ids.length === 0) return new Set()
    const rows = this.pg.query(`SELECT s.event_id FROM history_ring_shown_screens s WHERE s.event_id = ANY($1::bigint[])
      GROUP BY s.event_id HAVING bool_and(EXISTS (SELECT 1 FROM history_dismissed_screens d
        WHERE d.event_id = s.event_id AND d.member_id = s.member_id AND d.screen IN (s.screen, '${ANY_SCREEN}')))
      UNION
      SELECT s.event_id FROM history_ring_shown s WHERE s.event_id = ANY($1::bigint[])
        AND NOT EXISTS (SELECT 1 FROM history_ring_shown_screens x WHERE x.event_id = s.event_id)
      GROUP BY s.event_id HAVING bool_and(EXISTS (SELECT 1 FROM history_dismissals d WHERE d.event_id = s.event_id AND d.member_id = s.member_id))`, [ids]).rows
    return new Set(rows.map((r) => Number(r.event_id)))
  }

  addTalk (attempt: DoorAttempt, deviceName: string): void {
    // The lease's end: how long that request's talk lasted (its own record, after the request's).
    if (attempt.lease) {
      this.pg.query("UPDATE history_events SET duration_ms = $1 WHERE source = $2 AND kind = 'talk'", [attempt.lease.durationMs, `talk:${attempt.lease.attemptId}`])
      return
    }
    this.pg.query(`INSERT INTO history_events (kind, source, device_id, device_name, at, outcome, who, detail)
      VALUES ('talk', $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source) DO NOTHING`,
    [`talk:${attempt.id}`, attempt.deviceId, deviceName, attempt.at, attempt.outcome, JSON.stringify([attempt.viewerName]), attempt.outcome === 'denied' || attempt.kind === 'reply' ? attempt.message : null])
  }

  addDoor (attempt: DoorAttempt, deviceName: string): void {
    this.pg.query(`INSERT INTO history_events (kind, source, device_id, device_name, at, outcome, who, detail)
      VALUES ('door', $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source) DO NOTHING`,
    [`door:${attempt.id}`, attempt.deviceId, deviceName, attempt.at, attempt.outcome, JSON.stringify(attempt.viewerName ? [attempt.viewerName] : []), attempt.outcome === 'denied' ? attempt.message : null])
  }

  /**
   * The ring's picture (a later `seq` replaces an earlier one; an earlier one arriving late, even
   * through another hub, is ignored): the row's claim and the bytes in one transaction.
   */
  setSnapshot (eventId: number, seq: number, jpeg: Buffer | null, reason?: string): boolean {
    if (jpeg === null) {
      // "No picture" never replaces a picture already kept.
      this.pg.query('UPDATE history_events SET no_picture = $1 WHERE id = $2 AND snapshot_seq IS NULL', [reason ?? 'no picture', eventId])
      return false
    }
    return this.transaction(() => {
      const claimed = this.pg.query(`UPDATE history_events SET snapshot_bytes = $1, snapshot_seq = $2, no_picture = NULL
        WHERE id = $3 AND (snapshot_seq IS NULL OR snapshot_seq < $2)`, [jpeg.length, seq, eventId]).rowCount === 1
      if (claimed) this.pg.query('INSERT INTO history_pictures (event_id, jpeg) VALUES ($1, $2) ON CONFLICT (event_id) DO UPDATE SET jpeg = excluded.jpeg', [eventId, jpeg])
      return claimed
    })
  }

  snapshot (id: number): Buffer | null {
    const row = this.pg.query('SELECT jpeg FROM history_pictures WHERE event_id = $1', [id]).rows[0]
    if (row === undefined) return null
    const jpeg = row.jpeg as Uint8Array
    return Buffer.isBuffer(jpeg) ? jpeg : Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength)
  }

  get (id: number, scope: EventScope): HistoryEvent | null {
    const row = this.pg.query('SELECT * FROM history_events WHERE id = $1', [id]).rows[0]
    if (row === undefined || (scope.devices !== null && !scope.devices.includes(String(row.device_id)))) return null
    return eventOfRow(row, new Set(this.seenOf(scope.memberId, [Number(row.id)])), this.everyoneDismissed(row.outcome === 'dismissed' ? [Number(row.id)] : []))
  }

  list (q: EventsQuery, scope: EventScope): { events: HistoryEvent[], next: string | null, unseen: number } {
    const w = new Where()
    w.scope(scope)
    if (q.device !== undefined) w.add('device_id = $?', q.device)
    if (q.filter === 'door') w.add("kind = 'door'")
    if (q.filter === 'talk') w.add("kind = 'talk'")
    if (q.filter === 'missed') w.add("kind = 'ring' AND outcome = 'missed'")
    if (q.filter === 'dismissed') w.add("kind = 'ring' AND outcome = 'dismissed'")
    if (q.filter === 'answered') w.add("kind = 'ring' AND outcome = 'answered'")
    if (q.before !== undefined) {
      const [at, id] = q.before.split('-').map(Number) as [number, number]
      w.add('(at < $? OR (at = $? AND id < $?))', at, at, id)
    }
    const rows = this.pg.query(`SELECT * FROM history_events ${w.sql()} ORDER BY at DESC, id DESC LIMIT $${w.args.length + 1}`, [...w.args, q.limit + 1]).rows
    const page = eventsPage(rows, q.limit, (ids) => this.seenOf(scope.memberId, ids), (ids) => this.everyoneDismissed(ids))
    return { ...page, unseen: this.unseenCount(scope) }
  }

  markSeen (scope: EventScope, ids: readonly number[] | 'all'): number {
    if (ids !== 'all' && ids.length === 0) return 0
    const w = new Where(1)
    w.add("kind = 'ring'").add("outcome = 'missed'").scope(scope)
    if (ids !== 'all') w.add('id = ANY($?::bigint[])', [...ids])
    return this.pg.query(`INSERT INTO history_seen (member_id, event_id) SELECT $1, id FROM history_events ${w.sql()} ON CONFLICT DO NOTHING`,
      [scope.memberId, ...w.args]).rowCount
  }

  /** Deletes one event; its picture, seen marks and dismissals go with it (ON DELETE CASCADE). */
  delete (id: number): boolean {
    return this.pg.query('DELETE FROM history_events WHERE id = $1', [id]).rowCount > 0
  }

  /**
   * Retention, once for the cluster: the hub that takes the lock runs it, one that finds it taken
   * (another hub is at it) or finds it ran within `unlessWithinMs` skips. Then as on one hub:
   * events older than `days`, then the oldest pictured events until the pictures fit `maxBytes`.
   */
  prune (o: RetentionOptions): RetentionResult {
    return this.transaction(() => {
      const none = { events: 0, files: 0 }
      if (this.pg.query('SELECT pg_try_advisory_xact_lock($1) AS got', [HISTORY_RETENTION_LOCK]).rows[0]!.got !== true) return none
      const last = this.pg.query("SELECT value FROM meta WHERE key = 'history_pruned_at'").rows[0]
      if (o.unlessWithinMs !== undefined && last !== undefined && o.now - Number(last.value) < o.unlessWithinMs) return none
      const cut = o.now - o.days * 86_400_000
      const old = this.pg.query(`WITH gone AS (DELETE FROM history_events WHERE at < $1 RETURNING snapshot_bytes)
        SELECT count(*) AS events, count(snapshot_bytes) AS files FROM gone`, [cut]).rows[0]!
      // Newest first, a running sum of the pictures' and clips' sizes (clips: ./pgClips.ts, in the
      // database, so `o.extraBytes`, one hub's clip files, is not needed): what runs over the cap is the oldest.
      const over = this.pg.query(`WITH ranked AS (
          SELECT e.id, sum(COALESCE(e.snapshot_bytes, 0) + COALESCE(c.bytes, 0)) OVER (ORDER BY e.at DESC, e.id DESC) AS running
          FROM history_events e LEFT JOIN history_clips c ON c.event_id = e.id WHERE e.snapshot_bytes IS NOT NULL OR c.bytes IS NOT NULL),
        gone AS (DELETE FROM history_events WHERE id IN (SELECT id FROM ranked WHERE running > $1) RETURNING snapshot_bytes)
        SELECT count(*) AS n, count(snapshot_bytes) AS files FROM gone`, [o.maxBytes]).rows[0]!
      this.pg.query("INSERT INTO meta (key, value) VALUES ('history_pruned_at', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(o.now)])
      return { events: Number(old.events) + Number(over.n), files: Number(old.files) + Number(over.files) }
    })
  }

  count (): number { return Number(this.pg.query('SELECT count(*) AS n FROM history_events').rows[0]!.n) }

  close (): void { void this.pg.close() }

  private transaction<T> (fn: () => T): T {
    this.pg.query('BEGIN')
    try {
      const result = fn()
      this.pg.query('COMMIT')
      return result
    } catch (err) {
      try { this.pg.query('ROLLBACK') } catch { /* the connection is gone: PostgreSQL rolled it back */ }
      throw err
    }
  }

  private unseenCount (scope: EventScope): number {
    const w = new Where(1)
    w.add("kind = 'ring'").add("outcome = 'missed'").scope(scope)
    w.add('id NOT IN (SELECT event_id FROM history_seen WHERE member_id = $1)')
    return Number(this.pg.query(`SELECT count(*) AS n FROM history_events ${w.sql()}`, [scope.memberId, ...w.args]).rows[0]!.n)
  }

  private seenOf (memberId: string, ids: number[]): number[] {
    if (ids.length === 0) return []
    return this.pg.query('SELECT event_id FROM history_seen WHERE member_id = $1 AND event_id = ANY($2::bigint[])', [memberId, ids]).rows.map((r) => Number(r.event_id))
  }
}

/** A WHERE clause whose `$?` placeholders are numbered as they are added, after `offset` fixed ones. */
class Where {
  readonly args: unknown[] = []
  private readonly parts: string[] = []
  constructor (private readonly offset = 0) {}

  add (part: string, ...args: unknown[]): this {
    this.parts.push(part.replace(/\$\?/g, () => { this.args.push(args.shift()); return `$${this.offset + this.args.length}` }))
    return this
  }

  /** The member's devices, when they are not the whole home. */
  scope (scope: EventScope): this {
    return scope.devices === null ? this : this.add('device_id = ANY($?::text[])', [...scope.devices])
  }

  sql (): string { return this.parts.length ? `WHERE ${this.parts.join(' AND ')}` : '' }
}
