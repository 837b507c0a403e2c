import { describe, it } from 'node:test'
import { z } from 'zod'
import assert from 'node:assert/strict'
import {
  DoorGuard, Grant, QuickReplies, RepliesStamp, RevocationList, TalkReply, exportPublicKey, generateSigningKey, sign, signReplyCommand, signReplyList, signatureOf,
  type Grant as GrantT, type SignedReplies, type SigningKey
} from '../src/index'

const HOME = 'home'
const DEVICE = 'front-door'
const T0 = 1_800_000_000_000
const ctx = { sessionId: 's1', viewerId: 'v1' }

/** A home with one member of `role`: its guard, its credential and key. */
async function home (grant: Partial<GrantT> = {}) {
  const homeKeys = await generateSigningKey(true)
  const keys = await generateSigningKey(false)
  const g: GrantT = { v: 1, id: 'm1', home: HOME, sub: 'v1', name: 'Owner', role: 'owner', door: true, zones: [], key: await exportPublicKey(keys.publicKey), iat: T0, exp: null, ...grant }
  const credential = await sign(Grant, g, homeKeys.privateKey)
  let now = T0
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey), now: () => now })
  // What the hub adds when it keeps a list: its sequence, signed by the home key over the list's signature.
  const stamped = async (signed: SignedReplies, seq: number, o: { key?: SigningKey, list?: string } = {}): Promise<SignedReplies> =>
    ({ ...signed, stamp: await sign(RepliesStamp, { home: HOME, seq, list: o.list ?? signatureOf(signed.list) }, o.key ?? homeKeys.privateKey) })
  return { guard, credential, keys, homeKeys, stamped, setNow: (t: number) => { now = t } }
}

describe('the quick replies list', () => {
  it('at most 8, each 1-120 characters on one line, no two alike (case aside)', () => {
    assert.equal(QuickReplies.safeParse(['Leave it at the door', 'We will be right there']).success, true)
    assert.equal(QuickReplies.safeParse([]).success, true)
    assert.equal(QuickReplies.safeParse(Array.from({ length: 8 }, (_, i) => `r${i}`)).success, true)
    for (const bad of [Array.from({ length: 9 }, (_, i) => `r${i}`), ['x'.repeat(121)], [''], ['   '], ['a\nb'], ['tab\there'], ['Hi', 'hi'], [42]]) {
      assert.equal(QuickReplies.safeParse(bad).success, false, JSON.stringify(bad))
    }
    assert.equal(QuickReplies.parse(['  padded  '])[0], 'padded')
  })
})

describe('DoorGuard.takeReplies', () => {
  it('takes a list signed by a live owner of this home and stamped by the hub, and only a later stamp after it, whatever the owner\'s clock said', async () => {
    const h = await home()
    const first = await h.stamped(await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: HOME, replies: ['One'], now: T0 }), 1)
    const r1 = await h.guard.takeReplies(first)
    assert.ok(r1.ok && r1.changed && r1.list.replies[0] === 'One')
    const again = await h.guard.takeReplies(first)
    assert.ok(again.ok && !again.changed, 'the same list again changes nothing')
    // Stamped before the one held (a late retained copy): not taken, even with a later clock.
    const older = await h.stamped(await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: HOME, replies: ['Old'], now: T0 + 60_000 }), 1)
    const r2 = await h.guard.takeReplies(older)
    assert.ok(r2.ok && !r2.changed && r2.list.replies[0] === 'One', 'a list the hub stamped no later is not taken')
    // Saved from a browser whose clock is an hour behind, stamped after: taken.
    const newer = await h.stamped(await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: HOME, replies: ['Two', 'Three'], now: T0 - 3_600_000 }), 2)
    const r3 = await h.guard.takeReplies(newer)
    assert.ok(r3.ok && r3.changed && r3.list.replies.length === 2)
  })

  it('refuses a list without the hub\'s stamp, with a stamp of another list, and with a stamp not signed by the home; the list held stays', async () => {
    const h = await home()
    const list = await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: HOME, replies: ['One'], now: T0 })
    const unstamped = await h.guard.takeReplies(list)
    assert.ok(!unstamped.ok && /not stamped by the hub/.test(unstamped.message))
    const other = await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: HOME, replies: ['Other'], now: T0 })
    const borrowed = await h.guard.takeReplies(await h.stamped(list, 5, { list: signatureOf(other.list) }))
    assert.ok(!borrowed.ok && /another list/.test(borrowed.message))
    const forger = await generateSigningKey(true)
    const forged = await h.guard.takeReplies(await h.stamped(list, 5, { key: forger.privateKey }))
    assert.ok(!forged.ok && /the hub's stamp/.test(forged.message))
    assert.equal((await h.guard.takeReplies({ ...list, stamp: 'x.y' })).ok, false)
    const taken = await h.guard.takeReplies(await h.stamped(list, 1))
    assert.ok(taken.ok && taken.changed, 'the same list, properly stamped, is taken')
  })

  it('refuses a resident\'s list, another key\'s, another home\'s, a removed owner\'s, and a malformed one', async () => {
    const resident = await home({ role: 'resident', name: 'Kitchen' })
    const byResident = await resident.guard.takeReplies(await signReplyList({ credential: resident.credential, key: resident.keys.privateKey, home: HOME, replies: ['Hi'] }))
    assert.ok(!byResident.ok && /only an owner keeps them, not Kitchen \(resident\)/.test(byResident.message))

    const h = await home()
    const stranger = await generateSigningKey(false)
    const foreign = await h.guard.takeReplies(await signReplyList({ credential: h.credential, key: stranger.privateKey, home: HOME, replies: ['Hi'] }))
    assert.ok(!foreign.ok && /not signed by Owner's key/.test(foreign.message))
    const elsewhere = await h.guard.takeReplies(await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: 'other', replies: ['Hi'] }))
    assert.ok(!elsewhere.ok && /another home/.test(elsewhere.message))
    // A list of nine, signed correctly, is still refused (the device checks the limits too).
    const loose = z.strictObject({ home: z.string(), at: z.number(), replies: z.array(z.string()) })
    const nine = await h.guard.takeReplies({ credential: h.credential, list: await sign(loose, { home: HOME, at: T0, replies: Array.from({ length: 9 }, (_, i) => `r${i}`) }, h.keys.privateKey) })
    assert.ok(!nine.ok && /at most 8/.test(nine.message), 'nine replies, signed by the owner, are still refused')
    assert.equal((await h.guard.takeReplies({ credential: h.credential, list: 'x.y' })).ok, false)
    assert.equal((await h.guard.takeReplies({ credential: h.credential })).ok, false)
    assert.equal((await h.guard.takeReplies('nonsense')).ok, false)

    // The owner removed: the list is refused.
    const revoked = await sign(RevocationList, { home: HOME, seq: 1, at: T0, ids: ['m1'] }, h.homeKeys.privateKey)
    assert.ok((await h.guard.takeRevocations(revoked)).ok)
    const gone = await h.guard.takeReplies(await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: HOME, replies: ['Hi'] }))
    assert.ok(!gone.ok && /removed/.test(gone.message))
  })
})

describe('DoorGuard.checkReply', () => {
  it('checked like talk: the talk right, the reply\'s text in the signed claim, freshness, once', async () => {
    const h = await home({ role: 'resident', name: 'Kitchen' })
    const command = async (o: { reply?: string, claimed?: string, ts?: number, id?: string } = {}) => {
      const c = await signReplyCommand({ credential: h.credential, key: h.keys.privateKey, home: HOME, device: DEVICE, session: 's1', command: o.id ?? 'c1', reply: o.claimed ?? o.reply ?? 'Hello', now: o.ts ?? T0 })
      return { ...c, reply: o.reply ?? c.reply }
    }
    const ok = await command()
    assert.equal((await h.guard.checkReply(ok, ctx)).ok, true)
    const replay = await h.guard.checkReply(ok, ctx)
    assert.ok(!replay.ok && replay.reason === 'replay')
    // The text sent is not the text signed: refused.
    const swapped = await h.guard.checkReply(await command({ reply: 'Go away', claimed: 'Hello', id: 'c2' }), ctx)
    assert.ok(!swapped.ok && swapped.reason === 'wrong-session')
    const stale = await h.guard.checkReply(await command({ ts: T0 - 60_000, id: 'c3' }), ctx)
    assert.ok(!stale.ok && stale.reason === 'stale')
    const malformed = await h.guard.checkReply({ type: 'reply', id: 'c4', reply: 'x'.repeat(121), credential: h.credential, proof: 'a.b' }, ctx)
    assert.ok(!malformed.ok && malformed.reason === 'malformed')

    const guest = await home({ role: 'guest', name: 'Visitor' })
    const byGuest = await guest.guard.checkReply(await signReplyCommand({ credential: guest.credential, key: guest.keys.privateKey, home: HOME, device: DEVICE, session: 's1', command: 'c1', reply: 'Hello', now: T0 }), ctx)
    assert.ok(!byGuest.ok && byGuest.reason === 'no-talk-right')
  })

  it('refused once the owner who saved the list held is no longer a member: an owner saves them again', async () => {
    const h = await home()
    const list = await h.stamped(await signReplyList({ credential: h.credential, key: h.keys.privateKey, home: HOME, replies: ['Hello'], now: T0 }), 1)
    assert.ok((await h.guard.takeReplies(list)).ok)
    // A resident of the same home plays it.
    const keys = await generateSigningKey(false)
    const resident = await sign(Grant, { v: 1, id: 'm2', home: HOME, sub: 'v2', name: 'Kitchen', role: 'resident', door: true, zones: [], talk: true, key: await exportPublicKey(keys.publicKey), iat: T0, exp: null }, h.homeKeys.privateKey)
    const play = async (id: string) => await h.guard.checkReply(await signReplyCommand({ credential: resident, key: keys.privateKey, home: HOME, device: DEVICE, session: 's1', command: id, reply: 'Hello', now: T0 }), { sessionId: 's1', viewerId: 'v2' })
    assert.equal((await play('c1')).ok, true)
    assert.ok((await h.guard.takeRevocations(await sign(RevocationList, { home: HOME, seq: 1, at: T0, ids: ['m1'] }, h.homeKeys.privateKey))).ok)
    const refused = await play('c2')
    assert.ok(!refused.ok && refused.reason === 'replies-owner-gone', JSON.stringify(refused))
    assert.match(!refused.ok ? refused.message : '', /saved by an owner no longer in the home.*an owner saves them again/)
  })

  it('the device\'s answer to a reply is a TalkReply the viewer parses', () => {
    assert.equal(TalkReply.safeParse({ type: 'reply-ack', id: 'c1', durationMs: 1200 }).success, true)
    assert.equal(TalkReply.safeParse({ type: 'talk-nack', id: 'c1', error: { code: 'no-reply', message: 'not in the list' }, holder: null }).success, true)
  })
})
