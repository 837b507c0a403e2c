import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER, type PushSubscriptionInput } from '@doorbell/core'

/** One screen's push subscription, kept for its member. */
export interface StoredSubscription {
  endpoint: string
  memberId: string
  /** The screen's P-256 key (base64url, 65 bytes) and authentication secret (base64url, 16 bytes). */
  p256dh: string
  auth: string
  screen: string | null
  createdAt: number
}

/**
 * Where the subscriptions are kept: one hub's `push.db` (below), or a cluster's PostgreSQL
 * (../cluster/pgPush.ts), synchronous both, as the routes and the ring listener use them.
 */
export type PushSubscriptionStore = Pick<PushSubscriptions, 'add' | 'remove' | 'removeEndpoint' | 'removeMember' | 'forMember' | 'all' | 'close'> & {
  /**
   * A cluster's: claims this ring's pushes for this hub; false when another hub claimed it (the
   * doorbell's ring reached two hubs, say across a reconnect). One hub needs none: its listener
   * pushes each ring once.
   */
  claimRing?: (ring: string, at: number) => boolean
}

/**
 * The screens that asked to be woken by a ring, per member, in `dataDir/push/push.db`
 * (node:sqlite). An endpoint is one screen: subscribing it again (another member signed in on
 * that browser, or new keys) replaces it. At most MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER per member,
 * the oldest dropped first.
 */
export class PushSubscriptions {
  private readonly db: DatabaseSync

  constructor (dir: string, private readonly now: () => number = Date.now) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    this.db = new DatabaseSync(join(dir, 'push.db'), { timeout: 5000 })
    this.db.exec(`CREATE TABLE IF NOT EXISTS subscriptions (
      endpoint TEXT PRIMARY KEY, member_id TEXT NOT NULL, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
      screen TEXT, created_at INTEGER NOT NULL)`)
    this.db.exec('CREATE INDEX IF NOT EXISTS subscriptions_member ON subscriptions (member_id, created_at)')
  }

  /** Keeps this screen's subscription for the member; returns how many the member has now and how many old ones went. */
  add (memberId: string, s: PushSubscriptionInput, screen: string | null): { count: number, dropped: number } {
    let dropped = 0
    this.db.exec('BEGIN IMMEDIATE')
    try {
      this.db.prepare('DELETE FROM subscriptions WHERE endpoint = ?').run(s.endpoint)
      this.db.prepare('INSERT INTO subscriptions (endpoint, member_id, p256dh, auth, screen, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(s.endpoint, memberId, s.keys.p256dh, s.keys.auth, screen, this.now())
      const over = this.forMember(memberId).length - MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER
      if (over > 0) {
        dropped = Number(this.db.prepare(`DELETE FROM subscriptions WHERE endpoint IN (
          SELECT endpoint FROM subscriptions WHERE member_id = ? ORDER BY created_at, rowid LIMIT ?)`).run(memberId, over).changes)
      }
      this.db.exec('COMMIT')
    } catch (err) {
      this.db.exec('ROLLBACK')
      throw err
    }
    return { count: this.forMember(memberId).length, dropped }
  }

  /** The member's subscription at this endpoint goes (a screen turned it off); false if there was none. */
  remove (memberId: string, endpoint: string): boolean {
    return Number(this.db.prepare('DELETE FROM subscriptions WHERE member_id = ? AND endpoint = ?').run(memberId, endpoint).changes) > 0
  }

  /** The push service said this endpoint is gone (404/410). */
  removeEndpoint (endpoint: string): boolean {
    return Number(this.db.prepare('DELETE FROM subscriptions WHERE endpoint = ?').run(endpoint).changes) > 0
  }

  /** A removed member's screens are never woken again. */
  removeMember (memberId: string): number {
    return Number(this.db.prepare('DELETE FROM subscriptions WHERE member_id = ?').run(memberId).changes)
  }

  forMember (memberId: string): StoredSubscription[] {
    return this.db.prepare('SELECT * FROM subscriptions WHERE member_id = ? ORDER BY created_at, rowid').all(memberId).map(row)
  }

  /** Asked on every ring (ringPush.ts): prepared once, not parsed again each time. */
  private allRows: ReturnType<DatabaseSync['prepare']> | null = null

  all (): StoredSubscription[] {
    this.allRows ??= this.db.prepare('SELECT * FROM subscriptions ORDER BY created_at, rowid')
    return this.allRows.all().map(row)
  }

  close (): void {
    this.db.close()
  }
}

const row = (r: Record<string, unknown>): StoredSubscription => ({
  endpoint: String(r.endpoint),
  memberId: String(r.member_id),
  p256dh: String(r.p256dh),
  auth: String(r.auth),
  screen: r.screen === null ? null : String(r.screen),
  createdAt: Number(r.created_at)
})
