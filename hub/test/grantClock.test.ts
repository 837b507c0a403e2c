import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DoorGuard, Grant, exportPublicKey, generateSigningKey, memoryLogger, newId, peek, signTalkCommand,
  type SigningKeyPair
} from '@doorbell/core'
import { TrustStore, type StoredMember, type TrustBackend } from '../src/trust/store'
import { credentialFor, grantIat, reissueSigner, setRights, type RightsHost } from '../src/trust/rights'

/**
 * Replaced grants on one clock (docs/trust.md): a member's floor (`grants_from`) and its grants'
 * `iat` are read from the same clock (the store's: PostgreSQL's in a cluster), and a grant signed
 * after a change is always after the floor. Hubs are stood in for by hosts with clocks of their
 * own over one store; the verdict is a real DoorGuard's, fed the signed list of floors.
 */

const HOME = 'home'
const T = Date.parse('2026-12-06T12:00:00Z')
let dir: string
let store: TrustStore
let home: SigningKeyPair
let viewer: SigningKeyPair

const owner: StoredMember = {
  id: 'm-owner', kind: 'viewer', subject: 'v-owner', name: 'Owner', role: 'owner', door: true, zones: [], talk: true, talkZones: [],
  createdAt: T - 3_600_000, expiresAt: null, revokedAt: null, key: null, secretHash: new Uint8Array(32)
}

/** A hub over `backend` whose own clock reads `now()`. */
const hubAt = (now: () => number, backend: TrustBackend = store): RightsHost => ({
  homeId: HOME, homeKey: home.privateKey, store: backend, log: memoryLogger(), now,
  requireOwner: () => owner,
  record: () => {}
})

async function resident (): Promise<StoredMember> {
  const m: StoredMember = {
    id: newId('m'), kind: 'viewer', subject: newId('v'), name: 'Kitchen', role: 'resident', door: true, zones: [], talk: true, talkZones: [],
    createdAt: T - 60_000, expiresAt: null, revokedAt: null, key: await exportPublicKey(viewer.publicKey), secretHash: new Uint8Array(32)
  }
  store.insertMember(m)
  return m
}

/** What a doorbell (its clock right) decides on a talk command made with `credential`, given the home's list of floors. */
async function verdict (m: StoredMember, credential: string): Promise<string> {
  const guard = new DoorGuard({ homeId: HOME, deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey) })
  const list = await reissueSigner({ homeId: HOME, homeKey: home.privateKey, store })()
  assert.ok((await guard.takeReissues(list)).ok)
  const command = await signTalkCommand({ type: 'talk', credential, key: viewer.privateKey, home: HOME, device: 'front-door', session: 's1', command: newId('c') })
  const v = await guard.checkTalk(command, { sessionId: 's1', viewerId: m.subject })
  return v.ok ? 'allowed' : v.reason
}

const iatOf = (credential: string): number => { const g = peek(Grant, credential); assert.ok(g.ok); return g.value.iat }

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-grant-clock-'))
  store = new TrustStore(dir)
  store.insertMember(owner)
  home = await generateSigningKey(false)
  viewer = await generateSigningKey(false)
})
after(async () => { store.close(); await rm(dir, { recursive: true, force: true }) })

describe('replaced grants on one clock', () => {
  test('a hub whose clock is a minute behind the floor still issues a grant the doorbell accepts; the grant from before the change is refused', async () => {
    const m = await resident()
    const a = hubAt(() => T)
    const behind = hubAt(() => T - 60_000)
    const before = (await credentialFor(a, m)).credential
    assert.equal(await verdict(m, before), 'allowed')
    // The owner withdraws talk through hub A (its clock right), at T + 1 s.
    const changer = hubAt(() => T + 1000)
    assert.equal(setRights(changer, owner, m.id, { talk: false }).changed, true)
    assert.equal(store.grantsFrom(m.id), T + 1000)
    // Hub B's clock reads a minute before the floor: its grant is still dated after it.
    const renewed = await credentialFor(behind, m)
    assert.equal(renewed.grantsFrom, T + 1000)
    assert.equal(iatOf(renewed.credential), T + 1001)
    assert.equal(await verdict(m, renewed.credential), 'no-talk-right', 'taken as the member\'s grant now (its new rights say no talk), not as an old one')
    assert.equal(await verdict(m, before), 'superseded')
  })

  test('with the store\'s clock (a cluster\'s PostgreSQL), a hub whose clock runs ahead cannot sign an old grant that looks newer than the floor', async () => {
    let dbNow = T + 10_000
    // The store's clock stands in for PostgreSQL's; the hubs' own clocks are off from it.
    const shared: TrustBackend = Object.assign(Object.create(store) as TrustStore, { clock: () => dbNow })
    const m = await resident()
    const ahead = hubAt(() => dbNow + 30_000, shared)
    const behind = hubAt(() => dbNow - 60_000, shared)
    // Hub C (30 s ahead) signs the member's grant before the change: dated by the store's clock.
    const old = (await credentialFor(ahead, m)).credential
    assert.equal(iatOf(old), dbNow)
    dbNow += 2000
    // The change is taken by the hub that is behind; the floor is the store's time, not its own.
    assert.equal(setRights(behind, owner, m.id, { talk: false }).changed, true)
    assert.equal(store.grantsFrom(m.id), dbNow)
    assert.equal(await verdict(m, old), 'superseded', 'signed before the change by the hub ahead: refused')
    // The grants signed after it, by either hub, are after the floor.
    for (const hub of [ahead, behind]) {
      const fresh = (await credentialFor(hub, m)).credential
      assert.ok(iatOf(fresh) > dbNow, `iat ${iatOf(fresh)} after the floor ${dbNow}`)
      assert.equal(await verdict(m, fresh), 'no-talk-right')
    }
    // Given back on the store's clock: the grant with no talk is void in turn, a new one talks.
    dbNow += 2000
    const noTalk = (await credentialFor(ahead, m)).credential
    dbNow += 1
    assert.equal(setRights(ahead, owner, m.id, { talk: true }).changed, true)
    assert.equal(await verdict(m, noTalk), 'superseded')
    assert.equal(await verdict(m, (await credentialFor(behind, m)).credential), 'allowed')
  })

  test('grantIat: the hub\'s clock without a floor; never at or before the floor', () => {
    const at = (now: number, clock?: number): Pick<RightsHost, 'now' | 'store'> =>
      ({ now: () => now, store: (clock === undefined ? store : Object.assign(Object.create(store) as TrustStore, { clock: () => clock })) as TrustBackend })
    assert.equal(grantIat(at(T), null), T)
    assert.equal(grantIat(at(T), T - 5), T)
    assert.equal(grantIat(at(T), T), T + 1)
    assert.equal(grantIat(at(T - 60_000), T), T + 1)
    assert.equal(grantIat(at(T + 60_000, T), null), T, 'the store\'s clock when it has one')
    assert.equal(grantIat(at(T + 60_000, T), T + 500), T + 501)
  })
})
