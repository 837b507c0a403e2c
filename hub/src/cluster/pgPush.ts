import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER, type PushSubscriptionInput } from '@doorbell/core'
import type { PushSubscriptionStore, StoredSubscription } from '../push/subscriptions'
import { PushKeyError, rawPublicKey, type VapidKeys } from '../push/vapid'
import { homeDerivedKey, sealer } from './homeSeal'
import type { PgSharedState } from './pgSharedState'
import { SyncPg, type Row } from './syncPg'

/** How long a ring's claim is kept: a doorbell resends a ring for minutes at most. */
const CLAIM_KEEP_MS = 86_400_000

/**
 * The cluster's VAPID key pair (docs/cluster.md): one for every hub, since a screen subscribed
 * through B is pushed by whichever hub its doorbell is on, and a push service refuses a token
 * signed by another key than the one the screen subscribed with. The first hub to start makes it;
 * the private key is kept in `push_vapid` sealed (AES-256-GCM) under a key derived from the home
 * key, as Home Assistant's integration keys are: the database alone has nothing to sign with.
 */
export async function sealedVapidKeys (o: { trustDir: string, homeId: string, db: PgSharedState }): Promise<VapidKeys> {
  const box = sealer(await homeDerivedKey(o.trustDir, o.homeId, 'doorbell vapid key v1'))
  const made = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'der', type: 'pkcs8' })
  // Two hubs starting at once: the first row stays, and both read it back.
  await o.db.query('INSERT INTO push_vapid (id, sealed, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING', [box.seal('vapid', made), Date.now()])
  made.fill(0)
  const row = (await o.db.query<{ sealed: Buffer }>('SELECT sealed FROM push_vapid WHERE id = 1')).rows[0]!
  let der: Buffer
  try {
    der = box.unseal('vapid', row.sealed)
  } catch (err) {
    throw new PushKeyError(`the cluster's VAPID key in PostgreSQL: ${(err as Error).message}`)
  }
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  der.fill(0)
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) }
}

/**
 * The screens' push subscriptions on the cluster's PostgreSQL (`push_subscriptions`): the single
 * hub's `PushSubscriptions` contract (../push/subscriptions.ts), synchronous like it (./syncPg.ts),
 * so a screen subscribed through any hub is woken by the hub its doorbell is on, and a prune
 * (404/410, a removed member) through one hub holds for all. `claimRing` makes each ring's pushes
 * one hub's.
 */
export class PgPushSubscriptions implements PushSubscriptionStore {
  private readonly pg: SyncPg

  constructor (o: { url: string, timeoutMs: number, nodeId: string }, private readonly now: () => number = Date.now) {
    this.pg = new SyncPg({ url: o.url, timeoutMs: o.timeoutMs, name: `doorbell-hub ${o.nodeId} push` })
  }

  add (memberId: string, s: PushSubscriptionInput, screen: string | null): { count: number, dropped: number } {
    this.pg.query('BEGIN')
    try {
      // One member's screens at a time across hubs, so the cap holds.
      this.pg.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`push:${memberId}`])
      this.pg.query(`INSERT INTO push_subscriptions (endpoint, member_id, p256dh, auth, screen, created_at) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (endpoint) DO UPDATE SET member_id = excluded.member_id, p256dh = excluded.p256dh, auth = excluded.auth, screen = excluded.screen, created_at = excluded.created_at`,
      [s.endpoint, memberId, s.keys.p256dh, s.keys.auth, screen, this.now()])
      const dropped = this.pg.query(`DELETE FROM push_subscriptions WHERE endpoint IN (
        SELECT endpoint FROM push_subscriptions WHERE member_id = $1 ORDER BY created_at DESC, endpoint OFFSET $2)`, [memberId, MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER]).rowCount
      this.pg.query('COMMIT')
      return { count: this.forMember(memberId).length, dropped }
    } catch (err) {
      try { this.pg.query('ROLLBACK') } catch { /* the connection is gone: PostgreSQL rolled it back */ }
      throw err
    }
  }

  remove (memberId: string, endpoint: string): boolean {
    return this.pg.query('DELETE FROM push_subscriptions WHERE member_id = $1 AND endpoint = $2', [memberId, endpoint]).rowCount > 0
  }

  removeEndpoint (endpoint: string): boolean {
    return this.pg.query('DELETE FROM push_subscriptions WHERE endpoint = $1', [endpoint]).rowCount > 0
  }

  removeMember (memberId: string): number {
    return this.pg.query('DELETE FROM push_subscriptions WHERE member_id = $1', [memberId]).rowCount
  }

  forMember (memberId: string): StoredSubscription[] {
    return this.pg.query('SELECT * FROM push_subscriptions WHERE member_id = $1 ORDER BY created_at, endpoint', [memberId]).rows.map(row)
  }

  all (): StoredSubscription[] {
    return this.pg.query('SELECT * FROM push_subscriptions ORDER BY created_at, endpoint').rows.map(row)
  }

  claimRing (ring: string, at: number): boolean {
    const got = this.pg.query('INSERT INTO push_rings (ring, at) VALUES ($1, $2) ON CONFLICT (ring) DO NOTHING', [ring, at]).rowCount === 1
    if (got) this.pg.query('DELETE FROM push_rings WHERE at < $1', [at - CLAIM_KEEP_MS])
    return got
  }

  close (): void { void this.pg.close() }
}

const row = (r: Row): StoredSubscription => ({
  endpoint: String(r.endpoint),
  memberId: String(r.member_id),
  p256dh: String(r.p256dh),
  auth: String(r.auth),
  screen: r.screen === null ? null : String(r.screen),
  createdAt: Number(r.created_at)
})
