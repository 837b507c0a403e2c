import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  DoorGuard, Grant, TalkReply, exportPublicKey, generateSigningKey, mayTalk, sign, signTalkCommand,
  type Grant as GrantT, type SigningKeyPair
} from '../src/index'

const HOME = 'home'
const DEVICE = 'front-door'
const T0 = 1_800_000_000_000
const ctx = { sessionId: 's1', viewerId: 'v1' }

/** A grant as the hub signs it (with `talk` unless left out: a grant from before the talk right). */
async function setup (grant: Partial<GrantT> & { omitTalk?: boolean } = {}, zone?: string) {
  const homeKeys = await generateSigningKey(true)
  const viewerKeys = await generateSigningKey(false)
  const { omitTalk, ...fields } = grant
  if (!omitTalk && fields.role !== 'operator' && fields.talk === undefined) fields.talk = (fields.role ?? 'resident') !== 'guest'
  const g: GrantT = {
    v: 1, id: 'm1', home: HOME, sub: 'v1', name: 'Kitchen', role: 'resident', door: true, zones: [],
    key: await exportPublicKey(viewerKeys.publicKey), iat: T0, exp: null, ...fields
  }
  const credential = await sign(Grant, g, homeKeys.privateKey)
  let now = T0
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey), now: () => now, ...(zone ? { zone } : {}) })
  const command = async (o: { type?: 'talk' | 'renew', key?: SigningKeyPair, device?: string, session?: string, ts?: number, id?: string } = {}) =>
    await signTalkCommand({ type: o.type ?? 'talk', credential, key: (o.key ?? viewerKeys).privateKey, home: HOME, device: o.device ?? DEVICE, session: o.session ?? 's1', command: o.id ?? 'c1', now: o.ts ?? now })
  return { guard, command, credential, setNow: (t: number) => { now = t } }
}

const reasonOf = async (v: Promise<{ ok: true } | { ok: false, reason: string }>): Promise<string> => {
  const r = await v
  return r.ok ? 'allowed' : r.reason
}

describe('the talk right', () => {
  it('an owner always; residents unless turned off; guests only if turned on; operators only in their talk zones', () => {
    assert.equal(mayTalk({ role: 'owner', talk: false }, 'home'), true)
    assert.equal(mayTalk({ role: 'resident' }, 'home'), true)
    assert.equal(mayTalk({ role: 'resident', talk: false }, 'home'), false)
    assert.equal(mayTalk({ role: 'guest' }, 'home'), false)
    assert.equal(mayTalk({ role: 'guest', talk: true }, 'home'), true)
    assert.equal(mayTalk({ role: 'operator', talk: true }, 'gate'), false)
    assert.equal(mayTalk({ role: 'operator', talkZones: ['gate'] }, 'gate'), true)
    assert.equal(mayTalk({ role: 'operator', talkZones: ['gate'] }, 'harbour'), false)
  })

  it('a grant signed before the talk right (no field) still verifies and gets its role\'s default', async () => {
    const resident = await setup({ omitTalk: true })
    assert.equal(await reasonOf(resident.guard.checkTalk(await resident.command(), ctx)), 'allowed')
    const guest = await setup({ role: 'guest', door: false })
    assert.equal(await reasonOf(guest.guard.checkTalk(await guest.command(), ctx)), 'no-talk-right')
  })
})

describe('DoorGuard.checkTalk', () => {
  it('takes a fresh talk and renew signed by the grant\'s key, for this device and session, once', async () => {
    const s = await setup()
    const talk = await s.command()
    const v = await s.guard.checkTalk(talk, ctx)
    assert.equal(v.ok, true)
    assert.equal(v.ok && v.claim.action, 'talk')
    assert.equal(await reasonOf(s.guard.checkTalk(talk, ctx)), 'replay')
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ type: 'renew', id: 'c2' }), ctx)), 'allowed')
  })

  it('refuses a guest without the right, with a message the screen can show', async () => {
    const s = await setup({ role: 'guest', door: false, talk: false })
    const v = await s.guard.checkTalk(await s.command(), ctx)
    assert.equal(!v.ok && v.reason, 'no-talk-right')
    assert.match(!v.ok ? v.message : '', /Kitchen may not talk/)
  })

  it('lets an operator talk only on a device of its talk zones', async () => {
    const inZone = await setup({ role: 'operator', door: false, zones: ['gate', 'harbour'], talkZones: ['gate'] }, 'gate')
    assert.equal(await reasonOf(inZone.guard.checkTalk(await inZone.command(), ctx)), 'allowed')
    const watchOnly = await setup({ role: 'operator', door: false, zones: ['gate', 'harbour'], talkZones: ['gate'] }, 'harbour')
    assert.equal(await reasonOf(watchOnly.guard.checkTalk(await watchOnly.command(), ctx)), 'no-talk-right')
  })

  it('refuses forged, misdirected, stale and malformed commands', async () => {
    const s = await setup()
    const stranger = await generateSigningKey(false)
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ key: stranger }), ctx)), 'bad-signature')
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ device: 'back-door' }), ctx)), 'wrong-device')
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ session: 's2' }), ctx)), 'wrong-session')
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ ts: T0 - 60_000 }), ctx)), 'stale')
    // A talk proof presented as a renew (or the other way) is another command: refused.
    const talk = await s.command({ id: 'c9' })
    assert.equal(await reasonOf(s.guard.checkTalk({ ...talk, type: 'renew' }, ctx)), 'wrong-session')
    assert.equal(await reasonOf(s.guard.checkTalk({ type: 'talk', id: 'c1' }, ctx)), 'malformed')
    assert.equal(await reasonOf(s.guard.checkTalk({ ...talk, credential: talk.proof }, ctx)), 'bad-credential')
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ id: 'c10' }), { ...ctx, viewerId: 'v2' })), 'wrong-viewer')
  })

  it('has a budget per member of its own: a burst of talk leaves the door\'s untouched', async () => {
    const s = await setup()
    for (let i = 0; i < 10; i++) assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ id: `t${i}` }), ctx)), 'allowed')
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ id: 't10' }), ctx)), 'rate-limited')
    s.setNow(T0 + 1000)
    assert.equal(await reasonOf(s.guard.checkTalk(await s.command({ id: 't11', ts: T0 + 1000 }), ctx)), 'allowed')
  })
})

describe('TalkReply', () => {
  it('parses what the device sends and refuses what it does not', () => {
    assert.equal(TalkReply.safeParse({ type: 'talker', talker: { session: 's1', viewerId: 'v1', name: 'Kitchen' }, ended: null }).success, true)
    assert.equal(TalkReply.safeParse({ type: 'talk-nack', id: 'c1', error: { code: 'busy', message: 'Sam is talking' }, holder: 'Sam' }).success, true)
    assert.equal(TalkReply.safeParse({ type: 'talk-ack', id: 'c1', leaseMs: 0 }).success, false)
    assert.equal(TalkReply.safeParse({ type: 'talk-nack', id: 'c1', error: { code: 'loud', message: '' }, holder: null }).success, false)
  })
})
