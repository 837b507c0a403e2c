import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { DoorGuard, Grant, exportPublicKey, generateSigningKey, memoryLogger, newId, peek, signTalkCommand, type SigningKeyPair } from '@doorbell/core'
import { migrate } from '../../hub/src/cluster/migrations'
import { PgTrustStore } from '../../hub/src/cluster/pgTrustStore'
import { credentialFor, reissueSigner, setRights, type RightsHost } from '../../hub/src/trust/rights'
import type { StoredMember } from '../../hub/src/trust/store'
import { TestPostgres } from '../src/postgres'

/**
 * Replaced grants on one clock in a cluster (docs/trust.md): a member's floor and its grants'
 * `iat` come from PostgreSQL's clock, not the hub's. Two hubs over a real PostgreSQL on loopback,
 * one an hour ahead, one an hour behind; a real DoorGuard decides.
 */
describe('replaced grants on PostgreSQL\'s clock', { timeout: 120_000 }, () => {
  const HOUR = 3_600_000
  let db: TestPostgres
  let store: PgTrustStore
  let home: SigningKeyPair
  let viewer: SigningKeyPair

  before(async () => {
    db = await TestPostgres.start()
    const url = await db.createDatabase('clock')
    await migrate(url, 'a', { timeoutMs: 10_000 })
    store = new PgTrustStore({ url, timeoutMs: 10_000, nodeId: 'a' })
    home = await generateSigningKey(false)
    viewer = await generateSigningKey(false)
  })
  after(async () => {
    store?.close()
    await db?.destroy()
  })

  it('the floor and the grants are dated by PostgreSQL: a hub an hour ahead cannot make an old grant pass, one an hour behind issues grants the doorbell takes', async () => {
    const dbClock = store.clock()
    assert.ok(Math.abs(dbClock - Date.now()) < 60_000, `PostgreSQL's clock (${dbClock}) is this machine's`)
    const owner: StoredMember = {
      id: 'm-owner', kind: 'viewer', subject: 'v-owner', name: 'Owner', role: 'owner', door: true, zones: [], talk: true, talkZones: [],
      createdAt: Date.now() - HOUR, expiresAt: null, revokedAt: null, key: null, secretHash: new Uint8Array(32)
    }
    const m: StoredMember = {
      id: newId('m'), kind: 'viewer', subject: newId('v'), name: 'Kitchen', role: 'resident', door: true, zones: [], talk: true, talkZones: [],
      createdAt: Date.now() - 60_000, expiresAt: null, revokedAt: null, key: await exportPublicKey(viewer.publicKey), secretHash: new Uint8Array(32)
    }
    store.insertMember(owner)
    store.insertMember(m)
    const hub = (offset: number): RightsHost => ({ homeId: 'home', homeKey: home.privateKey, store, log: memoryLogger(), now: () => Date.now() + offset, requireOwner: () => owner, record: () => {} })
    const iat = (credential: string): number => { const g = peek(Grant, credential); assert.ok(g.ok); return g.value.iat }
    const verdict = async (credential: string): Promise<string> => {
      const guard = new DoorGuard({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey) })
      assert.ok((await guard.takeReissues(await reissueSigner({ homeId: 'home', homeKey: home.privateKey, store })())).ok)
      const v = await guard.checkTalk(await signTalkCommand({ type: 'talk', credential, key: viewer.privateKey, home: 'home', device: 'front-door', session: 's1', command: newId('c') }), { sessionId: 's1', viewerId: m.subject })
      return v.ok ? 'allowed' : v.reason
    }

    // Signed before the change by the hub an hour ahead: dated by PostgreSQL, not an hour on.
    const old = (await credentialFor(hub(HOUR), m)).credential
    assert.ok(Math.abs(iat(old) - Date.now()) < 60_000, 'dated by PostgreSQL\'s clock')
    await new Promise((resolve) => setTimeout(resolve, 5))
    // The change through the hub an hour behind: the floor is PostgreSQL's time.
    assert.equal(setRights(hub(-HOUR), owner, m.id, { talk: false }).changed, true)
    const floor = store.grantsFrom(m.id)!
    assert.ok(Math.abs(floor - Date.now()) < 60_000, `the floor (${floor}) is PostgreSQL's time, not the hub's`)
    assert.ok(floor > iat(old))
    assert.equal(await verdict(old), 'superseded')
    for (const offset of [HOUR, -HOUR]) {
      const fresh = await credentialFor(hub(offset), m)
      assert.equal(fresh.grantsFrom, floor)
      assert.ok(iat(fresh.credential) > floor)
      assert.equal(await verdict(fresh.credential), 'no-talk-right', 'the new grant is taken, with its new rights')
    }
  })
})
