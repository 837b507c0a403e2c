import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import {
  DoorGuard, Grant, PairingCode, RevocationList, exportPublicKey, generateSigningKey, importPublicKey, memoryLogger, open,
  signDoorCommand, type InviteRequest, type Member, type PairResponse
} from '@doorbell/core'
import { loadOrCreateHomeKey } from '../src/trust/homeKey'
import { startTrust, TrustError, type Trust } from '../src/trust/trust'
import { TrustStore, TRUST_DB_FILE } from '../src/trust/store'

type ViewerKeys = Awaited<ReturnType<typeof generateSigningKey>>

const HOME = 'home-1'
const DEVICE = 'front-door'
const BASE_URL = 'https://hub.local:8443/'
const T0 = 1_750_000_000_000
const HOUR = 60 * 60 * 1000

let dir: string
let clock: { t: number }
let trust: Trust

const start = async (): Promise<Trust> =>
  await startTrust({ dir, homeId: HOME, hubName: 'Home hub', now: () => clock.t, log: memoryLogger() })

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-trust-'))
  clock = { t: T0 }
  trust = await start()
})

afterEach(async () => {
  trust.stop()
  await rm(dir, { recursive: true, force: true })
})

/** A browser: its own key pair, the private half not extractable. */
async function newViewer (): Promise<{ keys: ViewerKeys, key: string }> {
  const keys = await generateSigningKey(false)
  return { keys, key: await exportPublicKey(keys.publicKey) }
}

async function pairViewer (code: string, id: string, name: string): Promise<PairResponse & { keys: ViewerKeys }> {
  const v = await newViewer()
  return { ...await trust.pair({ kind: 'viewer', code, id, name, key: v.key }), keys: v.keys }
}

async function pairOwner (): Promise<PairResponse & { keys: ViewerKeys }> {
  const setup = trust.setupCode()
  assert.ok(setup, 'a home without an owner has a setup code')
  return await pairViewer(setup.code, 'owner-phone', 'Alice')
}

async function invited (by: Member, req: InviteRequest): Promise<string> {
  return (await trust.invite(by, req, BASE_URL)).code
}

async function grantOf (res: PairResponse): Promise<Grant> {
  assert.ok(res.credential, 'a viewer gets a credential')
  const opened = await open(Grant, res.credential, await importPublicKey(trust.homeKey))
  assert.ok(opened.ok, 'the credential opens with the home key')
  return opened.value
}

async function rejects (p: Promise<unknown>, code: TrustError['code']): Promise<TrustError> {
  let caught: unknown
  await p.catch((err: unknown) => { caught = err })
  assert.ok(caught instanceof TrustError, `throws a TrustError (got ${String(caught)})`)
  assert.equal(caught.name, 'TrustError')
  assert.equal(caught.code, code)
  return caught
}

describe('home key', () => {
  test('made once, private (0600 in a 0700 folder), then reused', async () => {
    const first = await loadOrCreateHomeKey(join(dir, 'k'))
    assert.match(first.publicText, /^[A-Za-z0-9_-]{43}$/)
    assert.equal((await stat(join(dir, 'k'))).mode & 0o777, 0o700)
    assert.equal((await stat(join(dir, 'k', 'home.key'))).mode & 0o777, 0o600)
    assert.match(await readFile(join(dir, 'k', 'home.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/)
    const again = await loadOrCreateHomeKey(join(dir, 'k'))
    assert.equal(again.publicText, first.publicText)
  })

  test('an unreadable key file is an error naming the file, and is left as it was', async () => {
    const file = join(dir, 'home.key')
    await writeFile(file, 'not a key')
    await assert.rejects(loadOrCreateHomeKey(dir), (err: Error) => err.message.includes(file))
    assert.equal(await readFile(file, 'utf8'), 'not a key')
  })
})

describe('setup code and owner', () => {
  test('a home without an owner prints a code; pairing with it gives an owner whose grant the home key signed', async () => {
    const setup = trust.setupCode()
    assert.ok(setup)
    assert.match(setup.code, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}$/)
    assert.equal(setup.expiresAt, T0 + 24 * HOUR)

    const owner = await pairOwner()
    assert.equal(owner.homeId, HOME)
    assert.equal(owner.homeKey, trust.homeKey)
    assert.equal(owner.member.role, 'owner')
    assert.equal(owner.member.door, true)
    const grant = await grantOf(owner)
    assert.deepEqual(
      { v: grant.v, id: grant.id, home: grant.home, sub: grant.sub, role: grant.role, door: grant.door, exp: grant.exp, iat: grant.iat },
      { v: 1, id: owner.member.id, home: HOME, sub: 'owner-phone', role: 'owner', door: true, exp: null, iat: T0 }
    )
    assert.equal(grant.key, await exportPublicKey(owner.keys.publicKey))
    // Signed by this home's key, not just any key.
    const other = await generateSigningKey(false)
    assert.equal((await open(Grant, owner.credential!, other.publicKey)).ok, false)

    assert.equal(trust.setupCode(), null, 'no setup code once there is an owner')
    trust.stop()
    trust = await start()
    assert.equal(trust.setupCode(), null, 'nor after a restart')
  })

  test('each start without an owner prints a fresh code, and the earlier one stops working', async () => {
    const first = trust.setupCode()!
    trust.stop()
    trust = await start()
    const second = trust.setupCode()!
    assert.notEqual(second.code, first.code)
    const v = await newViewer()
    await rejects(trust.pair({ kind: 'viewer', code: first.code, id: 'v1', name: 'Early', key: v.key }), 'bad-code')
    assert.equal((await trust.pair({ kind: 'viewer', code: second.code, id: 'v1', name: 'Alice', key: v.key })).member.role, 'owner')
  })

  test('a revoked owner does not count: the next start prints a setup code again', async () => {
    const owner = await pairOwner()
    trust.stop()
    // The way back for a home whose only owner lost their phone: revoke them in the database, restart.
    const db = new DatabaseSync(join(dir, 'trust.db'))
    db.prepare('UPDATE members SET revoked_at = ? WHERE id = ?').run(T0, owner.member.id)
    db.close()
    trust = await start()
    assert.ok(trust.setupCode())
    assert.equal((await pairOwner()).member.role, 'owner')
  })

  test('the setup code expires after 24 hours', async () => {
    const setup = trust.setupCode()!
    clock.t += 24 * HOUR
    assert.equal(trust.setupCode(), null)
    const v = await newViewer()
    await rejects(trust.pair({ kind: 'viewer', code: setup.code, id: 'v1', name: 'Late', key: v.key }), 'bad-code')
  })
})

describe('one-time codes', () => {
  test('an invite is a code, a pairing URL and its QR code', async () => {
    const owner = await pairOwner()
    const res = await trust.invite(owner.member, { kind: 'viewer', role: 'resident' }, BASE_URL)
    assert.match(res.code, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}$/)
    assert.equal(res.url, `${BASE_URL}pair#code=${res.code.replace('-', '')}`)
    assert.equal(res.expiresAt, T0 + 15 * 60_000)
    assert.match(res.qrSvg, /^<svg[^>]*>[\s\S]*<\/svg>\s*$/)
    assert.ok(PairingCode.safeParse(res.code).success)
  })

  test('a code works once; unknown, used and expired codes get the same error', async () => {
    const owner = await pairOwner()
    const code = await invited(owner.member, { kind: 'viewer', role: 'resident' })
    await pairViewer(code.toLowerCase(), 'kitchen', 'Bob')
    const used = await rejects(pairViewer(code, 'hall', 'Carol'), 'bad-code')
    const unknown = await rejects(pairViewer('ABCDE-FGHJK', 'hall', 'Carol'), 'bad-code')

    const late = await invited(owner.member, { kind: 'viewer', role: 'guest', codeMinutes: 10 })
    clock.t += 10 * 60_000
    const expired = await rejects(pairViewer(late, 'hall', 'Carol'), 'bad-code')
    assert.equal(used.message, unknown.message)
    assert.equal(expired.message, unknown.message)
  })

  test('one code raced by two pairings makes one member', async () => {
    const owner = await pairOwner()
    const code = await invited(owner.member, { kind: 'viewer', role: 'resident' })
    const results = await Promise.allSettled([pairViewer(code, 'a', 'A'), pairViewer(code, 'b', 'B')])
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'])
    assert.equal(trust.members().length, 2)
  })

  test('only an owner may invite or revoke', async () => {
    const owner = await pairOwner()
    const resident = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'resident' }), 'kitchen', 'Bob')
    await rejects(trust.invite(resident.member, { kind: 'viewer', role: 'guest' }, BASE_URL), 'forbidden')
    await rejects(trust.revoke(resident.member, owner.member.id), 'forbidden')
    // A Member object claiming to be an owner is checked against the store.
    await rejects(trust.invite({ ...resident.member, role: 'owner' }, { kind: 'viewer', role: 'guest' }, BASE_URL), 'forbidden')
    assert.equal(trust.members().find((m) => m.id === owner.member.id)?.revokedAt, null)
    const denied = trust.audit.all().filter((r) => r.outcome === 'denied')
    assert.deepEqual(denied.map((r) => [r.kind, r.reason, r.actor]), [['invite', 'forbidden', 'Bob'], ['revocation', 'forbidden', 'Bob'], ['invite', 'forbidden', 'Bob']])
  })

  test('the door: residents by default, guests only if granted, operators never', async () => {
    const owner = await pairOwner()
    const door = async (id: string, req: InviteRequest): Promise<[boolean, boolean]> => {
      const res = await pairViewer(await invited(owner.member, req), id, id)
      return [res.member.door, (await grantOf(res)).door]
    }
    assert.deepEqual(await door('resident', { kind: 'viewer', role: 'resident' }), [true, true])
    assert.deepEqual(await door('resident-no', { kind: 'viewer', role: 'resident', door: false }), [false, false])
    assert.deepEqual(await door('guest', { kind: 'viewer', role: 'guest' }), [false, false])
    assert.deepEqual(await door('guest-yes', { kind: 'viewer', role: 'guest', door: true }), [true, true])
    assert.deepEqual(await door('operator', { kind: 'viewer', role: 'operator', door: true, zones: ['lobby'] }), [false, false])
  })

  test('talk: residents by default, guests only if granted, operators in their talk zones; the grant carries it', async () => {
    const owner = await pairOwner()
    assert.equal((await grantOf(owner)).talk, true)
    const talk = async (id: string, req: InviteRequest): Promise<[boolean | undefined, string[] | undefined, boolean | undefined, string[] | undefined]> => {
      const res = await pairViewer(await invited(owner.member, req), id, id)
      const g = await grantOf(res)
      return [res.member.talk, res.member.talkZones, g.talk, g.talkZones]
    }
    assert.deepEqual(await talk('resident', { kind: 'viewer', role: 'resident' }), [true, [], true, []])
    assert.deepEqual(await talk('resident-no', { kind: 'viewer', role: 'resident', talk: false }), [false, [], false, []])
    assert.deepEqual(await talk('guest', { kind: 'viewer', role: 'guest' }), [false, [], false, []])
    assert.deepEqual(await talk('guest-yes', { kind: 'viewer', role: 'guest', talk: true }), [true, [], true, []])
    assert.deepEqual(await talk('operator', { kind: 'viewer', role: 'operator', talk: true, zones: ['lobby', 'gate'], talkZones: ['gate'] }), [false, ['gate'], false, ['gate']])
    // Bad terms are refused before any code is made: talk zones outside the watched ones, or for a resident.
    await assert.rejects(invited(owner.member, { kind: 'viewer', role: 'operator', zones: ['lobby'], talkZones: ['gate'] }), /talkZones must be among the zones/)
    await assert.rejects(invited(owner.member, { kind: 'viewer', role: 'resident', talkZones: ['gate'] }), /talkZones are for operators/)
    assert.ok(trust.audit.all().some((r) => r.kind === 'invite' && /talk: gate/.test(r.message)), 'the invite\'s audit line says where an operator may talk')
  })

  test('members stored before the talk right read their role\'s default', async () => {
    const owner = await pairOwner()
    const guest = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'guest' }), 'g', 'Gus')
    trust.stop()
    // What a hub of the previous version left: no talk columns' values.
    const db = new DatabaseSync(join(dir, 'trust.db'))
    db.exec('UPDATE members SET talk = NULL, talk_zones = NULL')
    db.close()
    trust = await start()
    const byId = new Map(trust.members().map((m) => [m.id, m]))
    assert.equal(byId.get(owner.member.id)?.talk, true)
    assert.equal(byId.get(guest.member.id)?.talk, false)
    assert.deepEqual(byId.get(guest.member.id)?.talkZones, [])
  })

  test('a guest given access hours gets a grant that ends by itself', async () => {
    const owner = await pairOwner()
    const guest = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'guest', accessHours: 3 }), 'guest-phone', 'Dana')
    assert.equal(guest.member.expiresAt, T0 + 3 * HOUR)
    assert.equal((await grantOf(guest)).exp, T0 + 3 * HOUR)
    const resident = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'resident' }), 'kitchen', 'Bob')
    assert.equal((await grantOf(resident)).exp, null)
  })

  test('a device invite pairs only that device, with a token and no grant', async () => {
    const owner = await pairOwner()
    const code = await invited(owner.member, { kind: 'device', deviceId: DEVICE, zones: ['entrance'] })
    await rejects(trust.pair({ kind: 'device', code, id: 'back-door', name: 'Back door' }), 'bad-code')
    await rejects(pairViewer(code, DEVICE, 'Sneaky'), 'bad-code')
    const res = await trust.pair({ kind: 'device', code, id: DEVICE, name: 'Front door' })
    assert.deepEqual(
      { kind: res.member.kind, subject: res.member.subject, role: res.member.role, door: res.member.door, zones: res.member.zones, credential: res.credential },
      { kind: 'device', subject: DEVICE, role: null, door: false, zones: ['entrance'], credential: null }
    )
    assert.equal(res.homeKey, trust.homeKey)
    assert.equal(trust.authenticate(res.member.id, res.token)?.id, res.member.id)
  })

  test('a code cannot take over another member\'s viewer id; the same browser (same key) pairing again replaces its member', async () => {
    const owner = await pairOwner()
    const revoked: Member[] = []
    trust.onRevoked((m) => revoked.push(m))
    const first = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'resident' }), 'kitchen', 'Bob')
    const thief = await invited(owner.member, { kind: 'viewer', role: 'guest' })
    await rejects(pairViewer(thief, 'kitchen', 'Mallory'), 'bad-code')
    assert.equal(trust.authenticate(first.member.id, first.token)?.role, 'resident', 'the member is untouched')
    const key = await exportPublicKey(first.keys.publicKey)
    const second = await trust.pair({ kind: 'viewer', code: thief, id: 'kitchen', name: 'Bob', key })
    assert.equal(trust.authenticate(first.member.id, first.token), null)
    assert.equal(trust.authenticate(second.member.id, second.token)?.role, 'guest')
    assert.deepEqual(revoked.map((m) => [m.id, m.revokedAt]), [[first.member.id, T0]])
    const list = await open(RevocationList, await trust.revocationList(), await importPublicKey(trust.homeKey))
    assert.ok(list.ok)
    assert.deepEqual(list.value.ids, [first.member.id])
  })

  test('the owner\'s viewer cannot be re-paired into a lesser role', async () => {
    const owner = await pairOwner()
    const code = await invited(owner.member, { kind: 'viewer', role: 'resident' })
    await rejects(pairViewer(code, 'owner-phone', 'Alice'), 'last-owner')
    assert.ok(trust.authenticate(owner.member.id, owner.token))
    assert.equal((await pairViewer(code, 'alice-laptop', 'Alice')).member.role, 'resident', 'the code was not spent')
  })
})

describe('authentication', () => {
  test('member id and token: right, wrong, revoked, expired', async () => {
    const owner = await pairOwner()
    assert.match(owner.token, new RegExp(`^${owner.member.id}\\.[A-Za-z0-9_-]{43}$`))
    assert.deepEqual(trust.authenticate(owner.member.id, owner.token), owner.member)
    assert.deepEqual(trust.memberByToken(owner.token), owner.member)

    const secret = owner.token.slice(owner.token.indexOf('.') + 1)
    const flipped = `${owner.member.id}.${secret[0] === 'A' ? 'B' : 'A'}${secret.slice(1)}`
    assert.equal(trust.authenticate(owner.member.id, flipped), null, 'wrong secret')
    assert.equal(trust.authenticate('someone-else', owner.token), null, 'user name not the token\'s member')
    assert.equal(trust.authenticate(owner.member.id, 'password'), null, 'not a token')
    assert.equal(trust.memberByToken('garbage'), null)

    const resident = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'resident' }), 'kitchen', 'Bob')
    assert.ok(trust.authenticate(resident.member.id, resident.token))
    const bobSecret = resident.token.slice(resident.token.indexOf('.') + 1)
    assert.equal(trust.authenticate(resident.member.id, `${owner.member.id}.${bobSecret}`), null, 'the token names another member')
    await trust.revoke(owner.member, resident.member.id)
    assert.equal(trust.authenticate(resident.member.id, resident.token), null, 'revoked')
    assert.equal(trust.memberByToken(resident.token), null, 'revoked')

    const guest = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'guest', accessHours: 1 }), 'guest', 'Dana')
    clock.t += HOUR - 1
    assert.ok(trust.authenticate(guest.member.id, guest.token))
    clock.t += 1
    assert.equal(trust.authenticate(guest.member.id, guest.token), null, 'expired')
  })
})

describe('revocation', () => {
  test('revoking bumps the list, which is signed, names the member, and makes the doorbell refuse them', async () => {
    const owner = await pairOwner()
    const bob = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'resident' }), 'kitchen', 'Bob')
    const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: trust.homeKey, now: () => clock.t })
    const unlock = async (command: string) => await guard.check(
      await signDoorCommand({ credential: bob.credential!, key: bob.keys.privateKey, home: HOME, device: DEVICE, session: 's1', command, now: clock.t }),
      { sessionId: 's1', viewerId: 'kitchen' })

    const before = await trust.revocationList()
    assert.equal((await guard.takeRevocations(before)).ok, true)
    assert.equal((await unlock('c1')).ok, true, 'Bob may open the door before')

    const heard: Member[] = []
    trust.onRevoked((m) => heard.push(m))
    const { member, list } = await trust.revoke(owner.member, bob.member.id)
    assert.equal(member.revokedAt, T0)
    assert.deepEqual(heard.map((m) => m.id), [bob.member.id])

    const opened = await open(RevocationList, list, await importPublicKey(trust.homeKey))
    assert.ok(opened.ok)
    const old = await open(RevocationList, before, await importPublicKey(trust.homeKey))
    assert.ok(old.ok)
    assert.equal(opened.value.seq, old.value.seq + 1)
    assert.deepEqual({ home: opened.value.home, ids: opened.value.ids }, { home: HOME, ids: [bob.member.id] })
    assert.equal(await trust.revocationList(), list, 'the same list until it changes')

    const taken = await guard.takeRevocations(list)
    assert.ok(taken.ok && taken.changed)
    const verdict = await unlock('c2')
    assert.equal(verdict.ok, false)
    assert.equal(!verdict.ok && verdict.reason, 'revoked')
  })

  test('revoking an unknown member is not-found; revoking twice changes nothing', async () => {
    const owner = await pairOwner()
    await rejects(trust.revoke(owner.member, 'm-nobody'), 'not-found')
    const bob = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'resident' }), 'kitchen', 'Bob')
    const first = await trust.revoke(owner.member, bob.member.id)
    clock.t += 1000
    const second = await trust.revoke(owner.member, bob.member.id)
    assert.equal(second.list, first.list)
    assert.equal(second.member.revokedAt, T0)
    assert.equal(trust.audit.all().filter((r) => r.kind === 'revocation').length, 1)
  })

  test('the last owner cannot be revoked', async () => {
    const owner = await pairOwner()
    await rejects(trust.revoke(owner.member, owner.member.id), 'last-owner')
    assert.ok(trust.authenticate(owner.member.id, owner.token))
    assert.equal(trust.setupCode(), null)
  })
})

describe('audit log', () => {
  const attempt = (id: string, outcome: 'allowed' | 'denied' = 'allowed') => ({
    id, deviceId: DEVICE, at: T0 + 5, outcome, reason: outcome === 'allowed' ? 'ok' : 'revoked', message: outcome === 'allowed' ? 'door opened' : 'Bob has been removed',
    memberId: 'm1', viewerId: 'kitchen', viewerName: 'Bob', role: 'resident', path: 'lan'
  } as const)

  test('rows can be neither changed nor deleted, whoever tries', () => {
    trust.audit.append({ at: T0, kind: 'open-door', outcome: 'denied', reason: 'stale', actor: 'Bob', deviceId: DEVICE, message: 'late' })
    const db = new DatabaseSync(join(dir, 'trust.db'))
    try {
      assert.throws(() => db.exec("UPDATE audit SET outcome = 'allowed'"), /append-only/)
      assert.throws(() => db.exec('DELETE FROM audit'), /append-only/)
      assert.throws(() => db.prepare('DELETE FROM audit WHERE seq = ?').run(1), /append-only/)
    } finally {
      db.close()
    }
    assert.equal(trust.audit.all().at(-1)?.outcome, 'denied')
  })

  test('a door attempt delivered twice is stored once', () => {
    const first = trust.recordDoorAttempt(attempt('a1', 'denied'))
    assert.deepEqual(first && { ...first, seq: 0 }, {
      seq: 0, at: T0 + 5, kind: 'open-door', outcome: 'denied', reason: 'revoked', actor: 'Bob', deviceId: DEVICE, message: 'Bob has been removed', path: 'lan'
    })
    assert.equal(trust.recordDoorAttempt(attempt('a1', 'denied')), null)
    assert.equal(trust.recordDoorAttempt({ ...attempt('a2'), viewerName: '' })?.actor, '(unknown)')
    const answered = { deviceId: DEVICE, viewerName: 'Bob', at: T0 + 9, ringId: 'r1', sourceId: 'r1-kitchen' }
    assert.equal(trust.recordAnswered(answered)?.kind, 'call-answered')
    assert.equal(trust.recordAnswered(answered), null)
    assert.deepEqual(trust.audit.all().map((r) => r.kind), ['invite', 'open-door', 'open-door', 'call-answered'])
  })

  test('a record that breaks the schema is refused before it is stored', () => {
    const count = trust.audit.all().length
    assert.throws(() => trust.audit.append({ at: T0, kind: 'open-door', outcome: 'allowed', reason: 'ok', actor: 'x', deviceId: 'bad id/+', message: 'm' }))
    assert.equal(trust.audit.all().length, count)
  })

  test('in order of arrival, paged by seq', () => {
    for (let i = 0; i < 1005; i++) trust.recordDoorAttempt({ ...attempt(`a${i}`), at: T0 - i })
    const all = trust.audit.all()
    assert.equal(all.length, 1006)
    assert.deepEqual(all.map((r) => r.seq), [...all.map((r) => r.seq)].sort((a, b) => a - b))
    assert.equal(all[1]!.at, T0, 'ordered by arrival, not by the device\'s clock')
    assert.equal(trust.audit.list().length, 200)
    assert.equal(trust.audit.list({ limit: 5000 }).length, 1000)
    const page = trust.audit.list({ afterSeq: all[9]!.seq, limit: 3 })
    assert.deepEqual(page, all.slice(10, 13))
    assert.deepEqual(trust.audit.list({ afterSeq: all.at(-1)!.seq }), [])
  })
})

describe('restart', () => {
  test('members, home key, audit log and revocation seq survive stop and start', async () => {
    const owner = await pairOwner()
    const bob = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'resident' }), 'kitchen', 'Bob')
    await trust.revoke(owner.member, bob.member.id)
    const list = await trust.revocationList()
    const before = { key: trust.homeKey, members: trust.members(), audit: trust.audit.all() }
    trust.stop()

    trust = await start()
    assert.equal(trust.homeKey, before.key)
    assert.deepEqual(trust.members(), before.members)
    assert.deepEqual(trust.audit.all(), before.audit)
    assert.equal(await trust.revocationList(), list, 'the same seq, the same signed list')
    assert.ok(trust.authenticate(owner.member.id, owner.token))
    assert.equal(trust.authenticate(bob.member.id, bob.token), null)

    clock.t += 1000
    const carol = await pairViewer(await invited(owner.member, { kind: 'viewer', role: 'guest' }), 'hall', 'Carol')
    const { list: next } = await trust.revoke(owner.member, carol.member.id)
    const opened = await open(RevocationList, next, await importPublicKey(trust.homeKey))
    assert.ok(opened.ok)
    assert.deepEqual({ seq: opened.value.seq, at: opened.value.at }, { seq: 2, at: T0 + 1000 })
    assert.deepEqual(opened.value.ids, [bob.member.id, carol.member.id], 'in the order they were revoked')
    assert.ok(trust.audit.all().at(-1)!.seq > before.audit.at(-1)!.seq)
  })
})

test('a trust database from before audit paths opens: old lines read no path, new lines keep theirs, and the log stays append-only', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-trust-v1-'))
  try {
    // The version-1 audit table, as the first hubs with a trust database wrote it.
    const old = new DatabaseSync(join(dir, TRUST_DB_FILE))
    old.exec(`CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL,
      outcome TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied')), reason TEXT NOT NULL, actor TEXT NOT NULL,
      device_id TEXT, message TEXT NOT NULL, source_id TEXT UNIQUE);
      INSERT INTO audit (at, kind, outcome, reason, actor, device_id, message, source_id) VALUES (1, 'open-door', 'allowed', 'ok', 'Ann', 'front-door', 'opened', 'a1');
      PRAGMA user_version = 1;`)
    old.close()
    const store = new TrustStore(dir)
    const added = store.appendAudit({ at: 2, kind: 'open-door', outcome: 'denied', reason: 'stale', actor: 'Bob', deviceId: 'front-door', message: 'late', path: 'cloud', sourceId: 'a2' })
    assert.equal(added?.path, 'cloud')
    assert.deepEqual(store.auditAll().map((r) => [r.actor, r.path]), [['Ann', null], ['Bob', 'cloud']])
    assert.throws(() => { (store as unknown as { db: DatabaseSync }).db.exec('DELETE FROM audit') }, /append-only/)
    store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a trust database from before integrations opens: its members stay, and an integration member can be stored', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-trust-v2-'))
  try {
    // The version-2 members table, whose CHECK knew viewers and devices only.
    const old = new DatabaseSync(join(dir, TRUST_DB_FILE))
    old.exec(`CREATE TABLE members (id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('viewer', 'device')), subject TEXT NOT NULL,
      name TEXT NOT NULL, role TEXT CHECK (role IN ('owner', 'resident', 'guest', 'operator')), door INTEGER NOT NULL CHECK (door IN (0, 1)),
      zones TEXT NOT NULL, key TEXT, secret_hash BLOB NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER);
      INSERT INTO members VALUES ('m1', 'device', 'front-door', 'Front door', NULL, 0, '["home"]', NULL, x'00', 1, NULL, NULL);
      PRAGMA user_version = 2;`)
    old.close()
    const store = new TrustStore(dir)
    store.insertMember({ id: 'm2', kind: 'integration', subject: 'ha1', name: 'Home Assistant', role: null, door: false, zones: [], createdAt: 2, expiresAt: null, revokedAt: null, key: null, secretHash: new Uint8Array([1]) })
    assert.deepEqual(store.members().map((m) => [m.id, m.kind, m.subject]), [['m1', 'device', 'front-door'], ['m2', 'integration', 'ha1']])
    assert.throws(() => { (store as unknown as { db: DatabaseSync }).db.exec("INSERT INTO members (id, kind, subject, name, role, door, zones, key, secret_hash, created_at, expires_at, revoked_at) VALUES ('m3', 'robot', 'x', 'x', NULL, 0, '[]', NULL, x'00', 3, NULL, NULL)") }, /CHECK/)
    store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('an integration credential: owners only, never the door, signs in to MQTT, revocable like any member', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-trust-ha-'))
  const trust = await startTrust({ dir, homeId: HOME, hubName: 'Hub', log: memoryLogger([], 'trust') })
  try {
    const code = trust.setupCode()!.code
    const keys = await generateSigningKey(false)
    const owner = await trust.pair({ kind: 'viewer', code, id: 'v-owner', name: 'Owner', key: await exportPublicKey(keys.publicKey) })
    const paired: string[] = []
    trust.onPaired((m) => { paired.push(m.kind) })
    const { member, token } = await trust.createIntegration(owner.member, 'Home Assistant')
    assert.deepEqual([member.kind, member.role, member.door, member.name], ['integration', null, false, 'Home Assistant'])
    assert.deepEqual(trust.authenticate(member.id, token)?.id, member.id)
    await assert.rejects(trust.createIntegration(member, 'Sneaky'), (err: TrustError) => err.code === 'forbidden')
    await trust.revoke(owner.member, member.id)
    assert.equal(trust.authenticate(member.id, token), null)
    assert.deepEqual(paired, [], 'an integration is made by the owner, not paired')
    assert.ok(trust.audit.all().some((r) => r.kind === 'pairing' && r.message.includes('integration credential Home Assistant')))
  } finally {
    trust.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
