import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  DoorGuard, Grant, GrantsMessage, MAX_REISSUED, MemberRightsRequest, ReissueList, decodeTopicMessage, exportPublicKey, generateSigningKey,
  isGrantReplaced, parseTopic, sign, signDoorCommand, signTalkCommand, topics, type Grant as GrantT
} from '../src/index'

const HOME = 'home'
const DEVICE = 'front-door'
const T0 = 1_800_000_000_000
const ctx = { sessionId: 's1', viewerId: 'v1' }

/** A home key, one member's key, and grants for that member signed at any `iat`. */
async function setup () {
  const homeKeys = await generateSigningKey(true)
  const viewerKeys = await generateSigningKey(false)
  const key = await exportPublicKey(viewerKeys.publicKey)
  const grant = async (over: Partial<GrantT> = {}): Promise<string> => await sign(Grant, {
    v: 1, id: 'm1', home: HOME, sub: 'v1', name: 'Kitchen', role: 'resident', door: true, zones: [], talk: true, key, iat: T0, exp: null, ...over
  }, homeKeys.privateKey)
  const list = async (seq: number, floors: Array<{ id: string, from: number }>, signer = homeKeys.privateKey, home = HOME): Promise<string> =>
    await sign(ReissueList, { home, seq, at: T0, floors }, signer)
  let now = T0 + 10_000
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey), now: () => now })
  let n = 0
  const talk = async (credential: string) => await guard.checkTalk(await signTalkCommand({ type: 'talk', credential, key: viewerKeys.privateKey, home: HOME, device: DEVICE, session: 's1', command: `c${++n}`, now }), ctx)
  const door = async (credential: string) => await guard.check(await signDoorCommand({ credential, key: viewerKeys.privateKey, home: HOME, device: DEVICE, session: 's1', command: `d${++n}`, now }), ctx)
  return { guard, grant, list, talk, door, setNow: (t: number) => { now = t } }
}

const reason = (v: { ok: true } | { ok: false, reason: string }): string => v.ok ? 'allowed' : v.reason

describe('replaced grants (a member\'s rights changed without pairing again)', () => {
  it('a grant issued before the member\'s floor is refused as superseded on every command; the new grant is checked on its own rights', async () => {
    const s = await setup()
    const old = await s.grant({ talk: true })
    assert.equal(reason(await s.talk(old)), 'allowed')
    // The owner withdrew talk at T0 + 5 s: the hub signs a new grant then, and lists the floor.
    const renewed = await s.grant({ talk: false, iat: T0 + 5000 })
    const taken = await s.guard.takeReissues(await s.list(1, [{ id: 'm1', from: T0 + 5000 }]))
    assert.ok(taken.ok && taken.changed)
    const refused = await s.talk(old)
    assert.equal(reason(refused), 'superseded')
    assert.match(!refused.ok ? refused.message : '', /rights were changed by the owner/)
    assert.equal(reason(await s.door(old)), 'superseded', 'the door too: the whole grant is void, not one right')
    assert.equal(reason(await s.talk(renewed)), 'no-talk-right')
    assert.equal(reason(await s.door(renewed)), 'allowed')
    // Given back: a third grant, a later floor; the second is void now too.
    const back = await s.grant({ talk: true, iat: T0 + 8000 })
    assert.ok((await s.guard.takeReissues(await s.list(2, [{ id: 'm1', from: T0 + 8000 }]))).ok)
    assert.equal(reason(await s.talk(renewed)), 'superseded')
    assert.equal(reason(await s.talk(back)), 'allowed')
  })

  it('admission (offers, hellos) refuses a replaced grant too', async () => {
    const s = await setup()
    const old = await s.grant()
    await s.guard.takeReissues(await s.list(1, [{ id: 'm1', from: T0 + 1 }]))
    const v = await s.guard.admit(old, 'v1', { proof: 'x.y', session: 's1' })
    assert.equal(reason(v), 'superseded', 'refused before the proof is even looked at')
  })

  it('other members\' grants are untouched', async () => {
    const s = await setup()
    await s.guard.takeReissues(await s.list(1, [{ id: 'm2', from: T0 + 9000 }]))
    assert.equal(reason(await s.talk(await s.grant())), 'allowed')
  })

  it('keeps the highest seq: an older or equal list changes nothing; a forged or foreign list is refused and changes nothing', async () => {
    const s = await setup()
    const old = await s.grant()
    assert.ok((await s.guard.takeReissues(await s.list(3, [{ id: 'm1', from: T0 + 1 }]))).ok)
    const older = await s.guard.takeReissues(await s.list(2, []))
    assert.ok(older.ok && !older.changed)
    assert.equal(reason(await s.talk(old)), 'superseded')
    const forger = await generateSigningKey(true)
    const forged = await s.guard.takeReissues(await s.list(9, [], forger.privateKey))
    assert.ok(!forged.ok && /replaced grants/.test(forged.message))
    const foreign = await s.guard.takeReissues(await s.list(9, [], undefined, 'other-home'))
    assert.ok(!foreign.ok && /another home/.test(foreign.message))
    const garbage = await s.guard.takeReissues('not a token')
    assert.equal(garbage.ok, false)
    assert.equal(reason(await s.talk(old)), 'superseded', 'the list held stays')
  })

  it('the list is bounded, and the message and topic parse', async () => {
    const s = await setup()
    const tooMany = Array.from({ length: MAX_REISSUED + 1 }, (_, i) => ({ id: `m${i}`, from: T0 }))
    await assert.rejects(s.list(1, tooMany))
    assert.deepEqual(parseTopic(topics.grants(HOME)), { kind: 'grants', home: HOME })
    const payload = new TextEncoder().encode(JSON.stringify({ list: await s.list(1, []) }))
    const decoded = decodeTopicMessage(topics.grants(HOME), payload)
    assert.ok(decoded.ok && decoded.value.kind === 'grants')
    assert.equal(GrantsMessage.safeParse({ list: await s.list(1, []), extra: 1 }).success, false)
  })

  it('the rights request names at least one right, and a screen knows when its grant was replaced', () => {
    assert.equal(MemberRightsRequest.safeParse({}).success, false)
    assert.equal(MemberRightsRequest.safeParse({ talk: 'no' }).success, false)
    assert.equal(MemberRightsRequest.safeParse({ talk: false }).success, true)
    assert.equal(isGrantReplaced({ iat: T0 }, null), false)
    assert.equal(isGrantReplaced({ iat: T0 }, T0), false)
    assert.equal(isGrantReplaced({ iat: T0 }, T0 + 1), true)
  })
})
