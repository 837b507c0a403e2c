import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DoorAttempt, DoorGuard, Grant, TalkReply, exportPublicKey, generateSigningKey, memoryLogger, sign, signTalkCommand,
  type Grant as GrantT, type SigningKeyPair
} from '@doorbell/core'
import { noSpeaker, talkLease, type TalkFloor } from '../src/answering'

const HOME = 'home'
const DEVICE = 'front-door'

/** A home with members whose grants the home key signed, and a device guard that pins that key. */
async function home () {
  const homeKeys = await generateSigningKey(true)
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey) })
  const member = async (name: string, viewerId: string, grant: Partial<GrantT> = {}) => {
    const keys: SigningKeyPair = await generateSigningKey(false)
    const credential = await sign(Grant, {
      v: 1, id: `m-${viewerId}`, home: HOME, sub: viewerId, name, role: 'resident', door: true, zones: [], talk: true,
      key: await exportPublicKey(keys.publicKey), iat: Date.now(), exp: null, ...grant
    }, homeKeys.privateKey)
    let n = 0
    const command = async (type: 'talk' | 'renew', session: string, o: { key?: SigningKeyPair, ts?: number } = {}) =>
      JSON.stringify(await signTalkCommand({ type, credential, key: (o.key ?? keys).privateKey, home: HOME, device: DEVICE, session, command: `c${++n}`, ...(o.ts ? { now: o.ts } : {}) }))
    return { name, viewerId, command }
  }
  return { guard, member }
}

/** One screen's session on the floor: what it was told, in order. */
function screen (floor: TalkFloor, sessionId: string, viewerId: string) {
  const told: TalkReply[] = []
  const s = floor.session({ sessionId, viewerId, viewerName: viewerId, log: memoryLogger([], sessionId), send: (m) => { told.push(TalkReply.parse(m)) }, path: () => 'lan' })
  s.opened()
  const last = <T extends TalkReply['type']>(type: T): Extract<TalkReply, { type: T }> | undefined =>
    told.filter((m): m is Extract<TalkReply, { type: T }> => m.type === type).at(-1)
  return { ...s, told, last, sessionId }
}

const wait = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('the talk lease on the device', () => {
  test('one talker: the second is refused with who holds it; the lease passes on release, hang-up and connection loss; every screen is told', async () => {
    const { guard, member } = await home()
    const audit: DoorAttempt[] = []
    const floor = talkLease({ guard, audit: (a) => { audit.push(a) }, deviceId: DEVICE, log: memoryLogger([], 'talk'), maxMs: 60_000 })
    const kitchen = await member('Kitchen tablet', 'v-kitchen')
    const sam = await member('Sam', 'v-sam')
    const a = screen(floor, 's-a', kitchen.viewerId)
    const b = screen(floor, 's-b', sam.viewerId)
    assert.deepEqual(a.told, [], 'no one is talking: nothing to tell a screen whose channel opens')

    assert.equal(floor.mayTalk('s-a'), false, 'no audio is played before the lease is taken')
    await a.command(await kitchen.command('talk', 's-a'))
    assert.equal(a.last('talk-ack')?.leaseMs, 60_000)
    assert.equal(floor.mayTalk('s-a'), true)
    for (const s of [a, b]) assert.deepEqual(s.last('talker')?.talker, { session: 's-a', viewerId: 'v-kitchen', name: 'Kitchen tablet' })
    const late = screen(floor, 's-late', 'v-late')
    assert.deepEqual(late.told, [{ type: 'talker', talker: { session: 's-a', viewerId: 'v-kitchen', name: 'Kitchen tablet' }, ended: null }], 'a screen joining is told who is talking')
    late.stop()
    floor.left('s-late')

    await b.command(await sam.command('talk', 's-b'))
    assert.deepEqual(b.last('talk-nack'), { type: 'talk-nack', id: 'c1', error: { code: 'busy', message: 'Kitchen tablet is talking' }, holder: 'Kitchen tablet' })
    assert.equal(floor.mayTalk('s-b'), false, 'the refused screen\'s audio is not played')
    // A renew needs the lease.
    await b.command(await sam.command('renew', 's-b'))
    assert.equal(b.last('talk-nack')?.error.code, 'not-holder')

    // Release: the lease is free, every screen is told why, and the other may talk.
    await a.command(JSON.stringify({ type: 'talk-release', id: 'r1' }))
    for (const s of [a, b]) assert.deepEqual(s.last('talker'), { type: 'talker', talker: null, ended: 'released' })
    assert.equal(floor.mayTalk('s-a'), false)
    await b.command(await sam.command('talk', 's-b'))
    assert.equal(floor.mayTalk('s-b'), true)
    // A release from a screen that does not hold it changes nothing.
    await a.command(JSON.stringify({ type: 'talk-release', id: 'r2' }))
    assert.equal(floor.mayTalk('s-b'), true)

    // Hang-up.
    floor.left('s-b')
    assert.equal(a.last('talker')?.ended, 'left')
    await a.command(await kitchen.command('talk', 's-a'))
    assert.equal(floor.mayTalk('s-a'), true)
    // Connection (ICE) loss.
    floor.lost('s-a')
    assert.equal(a.last('talker')?.ended, 'connection-lost')
    assert.equal(floor.mayTalk('s-a'), false)

    const talk = audit.filter((r) => r.kind === 'talk' && !r.lease)
    assert.deepEqual(talk.map((r) => [r.viewerName, r.outcome, r.reason]), [
      ['Kitchen tablet', 'allowed', 'ok'], ['Sam', 'denied', 'busy'], ['Sam', 'allowed', 'ok'], ['Kitchen tablet', 'allowed', 'ok']
    ])
    // Each allowed talk's end (release, hang-up, connection loss) is its own record naming the request, with how long it lasted.
    const ends = audit.filter((r) => r.lease)
    assert.deepEqual(ends.map((r) => r.lease!.attemptId), talk.filter((r) => r.outcome === 'allowed').map((r) => r.id))
    for (const e of ends) {
      assert.equal(DoorAttempt.parse(e).id, `${e.lease!.attemptId}-end`)
      assert.match(e.message, /stopped talking after \d+ s$/)
    }
    floor.stop()
  })

  test('how long a talk lasted: the lease\'s end names the allowed request and its duration, on the injected clock; a renew or a second request while holding does not end it', async () => {
    const { guard, member } = await home()
    const audit: DoorAttempt[] = []
    let clock = 1_000_000
    const floor = talkLease({ guard, audit: (a) => { audit.push(a) }, deviceId: DEVICE, log: memoryLogger([], 'talk'), maxMs: 60_000, now: () => clock })
    const kitchen = await member('Kitchen tablet', 'v-kitchen')
    const a = screen(floor, 's-a', kitchen.viewerId)
    await a.command(await kitchen.command('talk', 's-a'))
    clock += 4000
    await a.command(await kitchen.command('renew', 's-a'))
    await a.command(await kitchen.command('talk', 's-a'))
    clock += 8400
    assert.equal(audit.filter((r) => r.lease).length, 0, 'still talking')
    await a.command(JSON.stringify({ type: 'talk-release', id: 'r1' }))
    const [end, ...more] = audit.filter((r) => r.lease)
    assert.equal(more.length, 0)
    assert.deepEqual(end!.lease, { attemptId: audit[0]!.id, durationMs: 12_400 })
    assert.deepEqual([end!.kind, end!.outcome, end!.viewerName, end!.at], ['talk', 'allowed', 'Kitchen tablet', clock])
    // A refused request has no end.
    const sam = await member('Sam', 'v-sam', { talk: false })
    const b = screen(floor, 's-b', sam.viewerId)
    await b.command(await sam.command('talk', 's-b'))
    b.stop()
    floor.left('s-b')
    assert.equal(audit.filter((r) => r.lease).length, 1)
    floor.stop()
  })

  test('the lease ends after the holder\'s silence, and at the maximum unless renewed', async () => {
    const { guard, member } = await home()
    const floor = talkLease({ guard, audit: () => {}, deviceId: DEVICE, log: memoryLogger([], 'talk'), maxMs: 600, silenceMs: 150 })
    const kitchen = await member('Kitchen tablet', 'v-kitchen')
    const a = screen(floor, 's-a', kitchen.viewerId)
    await a.command(await kitchen.command('talk', 's-a'))
    await wait(250)
    assert.equal(a.last('talker')?.ended, 'silence')
    assert.equal(floor.mayTalk('s-a'), false)

    // Talking all along (a packet every 50 ms) still ends at the maximum, unless renewed.
    await a.command(await kitchen.command('talk', 's-a'))
    const talking = setInterval(() => { floor.mayTalk('s-a') }, 50)
    try {
      await wait(350)
      await a.command(await kitchen.command('renew', 's-a'))
      await wait(400)
      assert.equal(a.last('talker')?.talker?.session, 's-a', 'renewed: still held past the first maximum')
      await wait(400)
      assert.equal(a.last('talker')?.ended, 'max')
    } finally {
      clearInterval(talking)
      floor.stop()
    }
  })

  test('refused before the lease: a guest without the talk right, forged, replayed, stale and malformed commands, all audited', async () => {
    const { guard, member } = await home()
    const audit: DoorAttempt[] = []
    const floor = talkLease({ guard, audit: (a) => { audit.push(a) }, deviceId: DEVICE, log: memoryLogger([], 'talk') })
    const guest = await member('Gus', 'v-gus', { role: 'guest', door: false, talk: false })
    const kitchen = await member('Kitchen tablet', 'v-kitchen')
    const g = screen(floor, 's-g', guest.viewerId)
    const a = screen(floor, 's-a', kitchen.viewerId)
    await g.command(await guest.command('talk', 's-g'))
    assert.equal(g.last('talk-nack')?.error.code, 'denied')
    assert.match(g.last('talk-nack')?.error.message ?? '', /Gus may not talk/)
    const stranger = await generateSigningKey(false)
    await a.command(await kitchen.command('talk', 's-a', { key: stranger }))
    await a.command(await kitchen.command('talk', 's-a', { ts: Date.now() - 120_000 }))
    const once = await kitchen.command('talk', 's-g')
    await a.command(once)
    await a.command('{"type":"talk","id":"x"}')
    await a.command('{"type":"talk-release"}')
    assert.equal(floor.mayTalk('s-a'), false, 'nothing refused took the lease')
    assert.deepEqual(audit.map((r) => r.reason), ['no-talk-right', 'bad-signature', 'stale', 'wrong-session', 'malformed'])
    // A good command, then the same again: a replay.
    const good = await kitchen.command('talk', 's-a')
    await a.command(good)
    floor.left('s-a')
    await a.command(good)
    assert.equal(a.last('talk-nack')?.error.message, 'this command was already used')
    floor.stop()
  })

  test('a device without a speaker refuses talk with no-speaker', async () => {
    const floor = noSpeaker()
    const s = screen(floor, 's-a', 'v')
    await s.command('{"type":"talk","id":"c1"}')
    assert.equal(s.last('talk-nack')?.error.code, 'no-speaker')
    assert.equal(floor.mayTalk('s-a'), false)
  })
})
