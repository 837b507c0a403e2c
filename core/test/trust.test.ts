import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  DoorGuard, Grant, HELLO_SESSION, RevocationList, ViewClaim, exportPublicKey, fromB64url, generateSigningKey, newNonce, open, peek,
  sign, signDoorCommand, signViewClaim, toB64url, type Grant as GrantT, type SigningKeyPair
} from '../src/index'

const HOME = 'home'
const DEVICE = 'front-door'
const T0 = 1_800_000_000_000

async function setup (grant: Partial<GrantT> = {}) {
  const homeKeys = await generateSigningKey(true)
  const viewerKeys = await generateSigningKey(false)
  const g: GrantT = {
    v: 1, id: 'm1', home: HOME, sub: 'v1', name: 'Kitchen', role: 'resident', door: true, zones: [],
    key: await exportPublicKey(viewerKeys.publicKey), iat: T0, exp: null, ...grant
  }
  const credential = await sign(Grant, g, homeKeys.privateKey)
  let now = T0
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey), now: () => now })
  const command = async (o: { key?: SigningKeyPair, device?: string, session?: string, ts?: number } = {}) =>
    await signDoorCommand({ credential, key: (o.key ?? viewerKeys).privateKey, home: HOME, device: o.device ?? DEVICE, session: o.session ?? 's1', command: 'c1', now: o.ts ?? now })
  const proof = async (o: { key?: SigningKeyPair, home?: string, device?: string, session?: string, ts?: number } = {}) =>
    await signViewClaim({ key: (o.key ?? viewerKeys).privateKey, home: o.home ?? HOME, device: o.device ?? DEVICE, session: o.session ?? 's1', now: o.ts ?? now })
  return { homeKeys, viewerKeys, credential, guard, command, proof, setNow: (t: number) => { now = t } }
}

const ctx = { sessionId: 's1', viewerId: 'v1' }

async function reasonOf (v: Promise<{ ok: true } | { ok: false, reason: string }>): Promise<string> {
  const r = await v
  return r.ok ? 'admitted' : r.reason
}

describe('base64url', () => {
  it('round-trips every byte value and refuses other alphabets', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
    assert.deepEqual(fromB64url(toB64url(bytes)), bytes)
    assert.throws(() => fromB64url('a+b/'), /base64url/)
    assert.throws(() => fromB64url('abcde'), /base64url/)
  })
})

describe('signed tokens', () => {
  it('open() accepts the signer and refuses another key or a changed payload', async () => {
    const { homeKeys, credential } = await setup()
    const other = await generateSigningKey(false)
    assert.equal((await open(Grant, credential, homeKeys.publicKey)).ok, true)
    assert.deepEqual(await open(Grant, credential, other.publicKey), { ok: false, problem: 'bad-signature', message: 'the signature does not match' })
    const [body, sig] = credential.split('.') as [string, string]
    const changed = toB64url(new TextEncoder().encode(new TextDecoder().decode(fromB64url(body)).replace('"resident"', '"owner"')))
    assert.equal((await open(Grant, `${changed}.${sig}`, homeKeys.publicKey)).ok, false)
    assert.equal(peek(Grant, 'not.a.token').ok, false)
  })

  it('a viewer key made non-extractable cannot be exported', async () => {
    const { viewerKeys } = await setup()
    await assert.rejects(globalThis.crypto.subtle.exportKey('pkcs8', viewerKeys.privateKey as never))
  })
})

describe('DoorGuard', () => {
  it('admits an operator only on a device of one of its zones, on every path; other roles whatever the zone', async () => {
    const op = await setup({ role: 'operator', door: false, zones: ['CBD-TRAFFIC-01'] })
    const homeKey = await exportPublicKey(op.homeKeys.publicKey)
    const inZone = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey, zone: 'CBD-TRAFFIC-01', now: () => T0 })
    const otherZone = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey, zone: 'HARBOUR-02', now: () => T0 })
    const beforeZones = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey, now: () => T0 })
    const as = async () => ({ proof: await op.proof(), session: 's1' })
    assert.equal((await inZone.admit(op.credential, 'v1', await as())).ok, true)
    const refused = await otherZone.admit(op.credential, 'v1', await as())
    assert.equal(refused.ok, false)
    assert.equal(!refused.ok && refused.reason, 'wrong-zone')
    assert.match(!refused.ok ? refused.message : '', /other zones, not HARBOUR-02/)
    // A doorbell paired before zones is in the default zone: an operator of the city's zones does not see it.
    assert.equal((await beforeZones.admit(op.credential, 'v1', await as())).ok, false)
    const resident = await setup()
    const residentGuard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(resident.homeKeys.publicKey), zone: 'HARBOUR-02', now: () => T0 })
    assert.equal((await residentGuard.admit(resident.credential, 'v1', { proof: await resident.proof(), session: 's1' })).ok, true)
  })

  it('admits an offer whose proof is signed by the grant\'s key for this device and session, once', async () => {
    const { guard, credential, proof } = await setup()
    const p = await proof()
    assert.deepEqual(await reasonOf(guard.admit(credential, 'v1', { proof: p, session: 's1' })), 'admitted')
    // The same offer again (a replay by whoever saw it): refused.
    assert.equal(await reasonOf(guard.admit(credential, 'v1', { proof: p, session: 's1' })), 'replay')
    // A direct-path hello names HELLO_SESSION.
    assert.equal(await reasonOf(guard.admit(credential, 'v1', { proof: await proof({ session: HELLO_SESSION }), session: HELLO_SESSION })), 'admitted')
  })

  it('refuses a borrowed grant: a proof signed by another member\'s key or by no member', async () => {
    const alice = await setup()
    // Bob is a member of the same home with his own key and grant.
    const bobKeys = await generateSigningKey(false)
    const bobGrant = await sign(Grant, { v: 1, id: 'm2', home: HOME, sub: 'v2', name: 'Bob', role: 'resident', door: true, zones: [], key: await exportPublicKey(bobKeys.publicKey), iat: T0, exp: null }, alice.homeKeys.privateKey)
    const stranger = await generateSigningKey(false)
    // Bob replays Alice's grant (seen in one of her offers) with a proof of his own key, as Alice's viewer.
    assert.equal(await reasonOf(alice.guard.admit(alice.credential, 'v1', { proof: await alice.proof({ key: bobKeys }), session: 's1' })), 'bad-signature')
    assert.equal(await reasonOf(alice.guard.admit(alice.credential, 'v1', { proof: await alice.proof({ key: stranger }), session: 's1' })), 'bad-signature')
    // His own grant with his own key is fine; with Alice's viewer id it is not his.
    assert.equal(await reasonOf(alice.guard.admit(bobGrant, 'v2', { proof: await alice.proof({ key: bobKeys }), session: 's1' })), 'admitted')
    assert.equal(await reasonOf(alice.guard.admit(bobGrant, 'v1', { proof: await alice.proof({ key: bobKeys }), session: 's2' })), 'wrong-viewer')
  })

  it('refuses a proof for another home, device or session, off the clock, or that is not a view claim', async () => {
    const { guard, credential, proof, viewerKeys, setNow } = await setup()
    const admit = async (p: string, session = 's1') => await reasonOf(guard.admit(credential, 'v1', { proof: p, session }))
    assert.equal(await admit(await proof({ home: 'other-home' })), 'wrong-device')
    assert.equal(await admit(await proof({ device: 'back-door' })), 'wrong-device')
    assert.equal(await admit(await proof({ session: 's2' })), 'wrong-session')
    // A hello's proof does not open a session, nor an offer's proof an events stream.
    assert.equal(await admit(await proof({ session: HELLO_SESSION })), 'wrong-session')
    assert.equal(await admit(await proof(), HELLO_SESSION), 'wrong-session')
    assert.equal(await admit(await proof({ ts: T0 - 31_000 })), 'stale')
    assert.equal(await admit(await proof({ ts: T0 + 31_000 })), 'stale')
    // An open-door command's proof is not a view claim (and the reverse: DoorGuard.check refuses a view claim).
    const door = await signDoorCommand({ credential, key: viewerKeys.privateKey, home: HOME, device: DEVICE, session: 's1', command: 'c1', now: T0 })
    assert.equal(await admit(door.proof), 'bad-signature')
    assert.equal((await guard.check({ ...door, proof: await proof() }, ctx)).ok, false)
    for (const junk of ['', 'x.y', 'e30.' + 'A'.repeat(86)]) assert.equal(await admit(junk), 'bad-signature')
    // Within the window either way: admitted.
    setNow(T0 + 29_000)
    assert.equal(await admit(await proof({ ts: T0 })), 'admitted')
  })

  it('checks the grant before the proof: a stranger\'s or a revoked member\'s grant is refused as such', async () => {
    const a = await setup()
    const b = await setup()
    assert.equal(await reasonOf(a.guard.admit(b.credential, 'v1', { proof: await b.proof(), session: 's1' })), 'bad-credential')
    await a.guard.takeRevocations(await sign(RevocationList, { home: HOME, seq: 1, at: T0, ids: ['m1'] }, a.homeKeys.privateKey))
    assert.equal(await reasonOf(a.guard.admit(a.credential, 'v1', { proof: await a.proof(), session: 's1' })), 'revoked')
  })

  it('remembers a nonce until its proof could no longer be fresh, then forgets it', async () => {
    const { guard, credential, viewerKeys, setNow } = await setup()
    const nonce = newNonce()
    const claim = async (ts: number) => await sign(ViewClaim, { home: HOME, device: DEVICE, session: 's1', ts, nonce }, viewerKeys.privateKey)
    assert.equal(await reasonOf(guard.admit(credential, 'v1', { proof: await claim(T0), session: 's1' })), 'admitted')
    // The same nonce in a newly signed, fresh claim: still a replay.
    setNow(T0 + 20_000)
    assert.equal(await reasonOf(guard.admit(credential, 'v1', { proof: await claim(T0 + 20_000), session: 's1' })), 'replay')
    // Once the first claim is far past its window, its nonce is forgotten (bounded memory).
    setNow(T0 + 61_000)
    assert.equal(await reasonOf(guard.admit(credential, 'v1', { proof: await claim(T0 + 61_000), session: 's1' })), 'admitted')
  })

  it('lets a resident open once, and refuses the same command again', async () => {
    const { guard, command } = await setup()
    const c = await command()
    const first = await guard.check(c, ctx)
    assert.equal(first.ok, true)
    const again = await guard.check(c, ctx)
    assert.equal(again.ok === false && again.reason, 'replay')
  })

  const cases: Array<[string, Partial<GrantT>, string]> = [
    ['guest without the door right', { role: 'guest', door: false }, 'no-door-right'],
    ["operator of the doorbell's zone, even with door: true", { role: 'operator', door: true, zones: ['home'] }, 'no-door-right'],
    ['expired grant', { exp: T0 - 1 }, 'expired'],
    ['grant for another viewer', { sub: 'v2' }, 'wrong-viewer']
  ]
  for (const [what, grant, reason] of cases) {
    it(`refuses a ${what}: ${reason}`, async () => {
      const { guard, command } = await setup(grant)
      const v = await guard.check(await command(), ctx)
      assert.equal(v.ok, false)
      assert.equal(!v.ok && v.reason, reason)
    })
  }

  it('says in words why a guest may not open', async () => {
    const { guard, command } = await setup({ role: 'guest', door: false })
    const v = await guard.check(await command(), ctx)
    assert.equal(!v.ok && v.message, 'guests cannot open the door')
  })

  it('refuses a command signed by another key, for another device or session, or off the clock', async () => {
    const { guard, command, setNow } = await setup()
    const stranger = await generateSigningKey(false)
    const reasons = []
    for (const c of [await command({ key: stranger }), await command({ device: 'back-door' }), await command({ session: 's2' }), await command({ ts: T0 - 31_000 })]) {
      const v = await guard.check(c, ctx)
      reasons.push(!v.ok && v.reason)
    }
    assert.deepEqual(reasons, ['bad-signature', 'wrong-device', 'wrong-session', 'stale'])
    setNow(T0 + 10_000)
    assert.equal((await guard.check(await command({ ts: T0 }), ctx)).ok, true)
  })

  it('refuses a credential signed by another home key', async () => {
    const a = await setup()
    const b = await setup()
    const v = await a.guard.check(await b.command(), ctx)
    assert.equal(!v.ok && v.reason, 'bad-credential')
  })

  it('rate-limits one viewer after a burst, and refills with time', async () => {
    const { guard, command, setNow } = await setup()
    const results = []
    for (let i = 0; i < 7; i++) results.push((await guard.check(await command(), ctx)).ok)
    assert.deepEqual(results, [true, true, true, true, true, false, false])
    setNow(T0 + 4000)
    assert.equal((await guard.check(await command(), ctx)).ok, true)
  })

  it('takes a newer revocation list from the home and refuses the revoked member; ignores forged or older lists', async () => {
    const { guard, command, homeKeys } = await setup()
    const forger = await generateSigningKey(true)
    const forged = await guard.takeRevocations(await sign(RevocationList, { home: HOME, seq: 9, at: T0, ids: [] }, forger.privateKey))
    assert.equal(forged.ok, false)
    const list = await guard.takeRevocations(await sign(RevocationList, { home: HOME, seq: 2, at: T0, ids: ['m1'] }, homeKeys.privateKey))
    assert.equal(list.ok && list.changed, true)
    const v = await guard.check(await command(), ctx)
    assert.equal(!v.ok && v.reason, 'revoked')
    const older = await guard.takeRevocations(await sign(RevocationList, { home: HOME, seq: 1, at: T0, ids: [] }, homeKeys.privateKey))
    assert.equal(older.ok && older.changed, false)
    assert.equal(guard.isRevoked('m1'), true)
  })

  it('a credential verified once is not verified again, yet a revocation, its expiry or a forged copy still refuse it at once', async () => {
    const { guard, command, homeKeys, credential, setNow } = await setup({ exp: T0 + 60_000 })
    // Accepted, then accepted again from the kept verification.
    assert.equal((await guard.check(await command(), ctx)).ok, true)
    assert.equal((await guard.check(await command(), ctx)).ok, true)
    // A credential with one character of its signature changed is not the kept one: verified, refused.
    const dot = credential.indexOf('.')
    const flipped = credential.slice(0, dot + 1) + (credential[dot + 1] === 'A' ? 'B' : 'A') + credential.slice(dot + 2)
    const forged = await guard.check({ ...(await command()), credential: flipped }, ctx)
    assert.equal(!forged.ok && forged.reason, 'bad-credential')
    // Another viewer presenting the kept credential is still refused.
    assert.equal(await reasonOf(guard.check(await command(), { ...ctx, viewerId: 'v2' })), 'wrong-viewer')
    // Expiry is read every time.
    setNow(T0 + 61_000)
    assert.equal(await reasonOf(guard.check(await command({ ts: T0 + 61_000 }), ctx)), 'expired')
    setNow(T0 + 1000)
    // A revocation applies to the very next command.
    await guard.takeRevocations(await sign(RevocationList, { home: HOME, seq: 1, at: T0, ids: ['m1'] }, homeKeys.privateKey))
    assert.equal(await reasonOf(guard.check(await command({ ts: T0 + 1000 }), ctx)), 'revoked')
  })

  it('refuses malformed input without throwing', async () => {
    const { guard } = await setup()
    for (const bad of [null, 42, 'unlock', {}, { type: 'unlock', id: 'c1' }, { type: 'unlock', id: 'c1', credential: 'x.y', proof: 'x.y' }]) {
      const v = await guard.check(bad, ctx)
      assert.equal(v.ok, false)
    }
  })
})

describe('DoorGuard: one member\'s flood of offers', () => {
  it('spends only that member\'s budget: the owner still watches and opens the door', async () => {
    const homeKeys = await generateSigningKey(true)
    const member = async (id: string, role: GrantT['role']) => {
      const keys = await generateSigningKey(false)
      const grant: GrantT = { v: 1, id, home: HOME, sub: `v-${id}`, name: id, role, door: role !== 'guest', zones: [], key: await exportPublicKey(keys.publicKey), iat: T0, exp: null }
      return { keys, viewerId: `v-${id}`, credential: await sign(Grant, grant, homeKeys.privateKey) }
    }
    const guest = await member('guest', 'guest')
    const owner = await member('owner', 'owner')
    const now = T0
    // A small memory makes the point without 20,000 signatures: the guest may hold 3 proofs at once.
    const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey), now: () => now, viewRate: { burst: 3, refillMs: 60_000 } })
    const offer = async (m: typeof guest, session: string) =>
      await reasonOf(guard.admit(m.credential, m.viewerId, { proof: await signViewClaim({ key: m.keys.privateKey, home: HOME, device: DEVICE, session, now }), session }))
    const flood: string[] = []
    for (let i = 0; i < 8; i++) flood.push(await offer(guest, `g${i}`))
    assert.deepEqual(flood, ['admitted', 'admitted', 'admitted', 'rate-limited', 'rate-limited', 'rate-limited', 'rate-limited', 'rate-limited'])
    assert.equal(await offer(owner, 'o1'), 'admitted', 'another member still watches')
    const command = await signDoorCommand({ credential: owner.credential, key: owner.keys.privateKey, home: HOME, device: DEVICE, session: 'o1', command: 'c1', now })
    assert.equal(await reasonOf(guard.check(command, { sessionId: 'o1', viewerId: owner.viewerId })), 'admitted', 'and opens the door')
  })
})
