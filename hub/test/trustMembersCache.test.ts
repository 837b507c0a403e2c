import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportPublicKey, generateSigningKey, memoryLogger, type Member } from '@doorbell/core'
import { startTrust, type Trust } from '../src/trust/trust'
import { TrustStore } from '../src/trust/store'

// `trust.members()` is read twice per ring (the screens shown it, the Web Push check): one hub's
// store keeps the list until a member changes. Every change must be seen by the very next read.

const T0 = 1_750_000_000_000
let dir: string
let trust: Trust

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-members-cache-'))
  trust = await startTrust({ dir, homeId: 'home-1', hubName: 'Hub', now: () => T0, log: memoryLogger() })
})

afterEach(async () => {
  trust.stop()
  await rm(dir, { recursive: true, force: true })
})

const pair = async (code: string, id: string, name: string, key?: string): Promise<{ member: Member, key: string }> => {
  const k = key ?? await exportPublicKey((await generateSigningKey(false)).publicKey)
  return { member: (await trust.pair({ kind: 'viewer', code, id, name, key: k })).member, key: k }
}
const byId = (id: string): Member | undefined => trust.members().find((m) => m.id === id)

test('members() is read once until a member changes, and every change is seen by the next read', async () => {
  const owner = await pair(trust.setupCode()!.code, 'owner-phone', 'Alice')
  const before = trust.members()
  assert.equal(trust.members(), before, 'no change: the same list, not read again')

  // Pairing.
  const invite = async (role: 'resident' | 'guest'): Promise<string> => (await trust.invite(owner.member, { kind: 'viewer', role }, 'https://hub.local/')).code
  const bob = await pair(await invite('resident'), 'kitchen', 'Bob')
  assert.notEqual(trust.members(), before)
  assert.deepEqual(trust.members().map((m) => m.name).sort(), ['Alice', 'Bob'])

  // A rights change.
  await trust.setRights(owner.member, bob.member.id, { door: false })
  assert.equal(byId(bob.member.id)?.door, false)

  // The same browser pairing again: its old member revoked and a new one stored, in one transaction.
  const again = await pair(await invite('guest'), 'kitchen', 'Bob', bob.key)
  assert.equal(byId(bob.member.id)?.revokedAt, T0)
  assert.equal(byId(again.member.id)?.role, 'guest')

  // An integration, and its door right.
  const { member: ha } = await trust.createIntegration(owner.member, 'Home Assistant')
  assert.equal(byId(ha.id)?.door, false)
  await trust.setIntegrationDoor(owner.member, ha.id, true)
  assert.equal(byId(ha.id)?.door, true)

  // Revocation.
  await trust.revoke(owner.member, again.member.id)
  assert.equal(byId(again.member.id)?.revokedAt, T0)
  const after = trust.members()
  assert.equal(trust.members(), after)
})

test('the cached list is frozen: a caller cannot change what the next caller reads', async () => {
  await pair(trust.setupCode()!.code, 'owner-phone', 'Alice')
  const list = trust.members() as Member[]
  assert.throws(() => { list.push({ ...list[0]!, id: 'x' }) }, TypeError)
  assert.throws(() => { (list[0] as { role: string }).role = 'guest' }, TypeError)
  assert.throws(() => { list[0]!.zones.push('lobby') }, TypeError)
  assert.deepEqual(trust.members().map((m) => [m.name, m.role, m.zones]), [['Alice', 'owner', []]])
})

test('a member written in a transaction that rolls back is not in the list, even if the list was read inside it', async () => {
  const storeDir = await mkdtemp(join(tmpdir(), 'doorbell-members-rollback-'))
  const store = new TrustStore(storeDir)
  try {
    assert.deepEqual(store.members(), [])
    const m = { id: 'ghost', kind: 'viewer' as const, subject: 'ghost', name: 'Ghost', role: 'resident' as const, door: true, zones: [], talk: true, talkZones: [], key: null, secretHash: new Uint8Array(32), createdAt: T0, expiresAt: null, revokedAt: null }
    assert.throws(() => store.transaction(() => {
      store.insertMember(m)
      assert.deepEqual(store.members().map((x) => x.id), ['ghost'], 'inside: the uncommitted row')
      throw new Error('pairing failed after the insert')
    }), /pairing failed/)
    assert.deepEqual(store.members(), [], 'the rolled-back row is gone from the list')
    store.transaction(() => { store.insertMember(m) })
    assert.deepEqual(store.members().map((x) => x.id), ['ghost'])
  } finally {
    store.close()
    await rm(storeDir, { recursive: true, force: true })
  }
})
