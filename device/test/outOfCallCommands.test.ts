import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DoorGuard, Grant, MAX_COMMAND_BYTES, NO_CALL_SESSION, exportPublicKey, generateSigningKey, memoryLogger, newId, sign, signDoorCommand,
  signOutOfCallDoorCommand, type CommandResult, type DoorAttempt
} from '@doorbell/core'
import { LockControl, SimulatedLock } from '../src/index'
import { lockDoor, outOfCallCommands } from '../src/answering'

/**
 * Commands outside a call as the hub's MQTT hands them to the device (`outOfCallCommands`), with
 * the doorbell's own door kind (`lockDoor(...).commands`), a real guard and a lock machine on a
 * simulated relay: checked and audited exactly as on a call's data channel, answered by id.
 */

const HOME = 'home'
const DEVICE = 'front-door'
const VIEWER = 'v-kitchen'

async function until (what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function setUp (door = true) {
  const homeKeys = await generateSigningKey(false)
  const viewerKeys = await generateSigningKey(false)
  const credential = await sign(Grant, {
    v: 1, id: 'm-kitchen', home: HOME, sub: VIEWER, name: 'Kitchen', role: 'resident', door, zones: [],
    key: await exportPublicKey(viewerKeys.publicKey), iat: Date.now(), exp: null
  }, homeKeys.privateKey)
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey) })
  const printed: string[] = []
  const lock = new LockControl(new SimulatedLock((line) => { printed.push(line) }), 50, memoryLogger([], 'lock'))
  lock.start()
  await until('the lock to start locked', () => lock.state().status === 'locked')
  const audit: DoorAttempt[] = []
  const lines: string[] = []
  const kinds = lockDoor({ lock, guard, audit: (a) => { audit.push(a) }, deviceId: DEVICE }).commands ?? {}
  const channel = outOfCallCommands({ kinds, path: 'lan', log: memoryLogger(lines, 'commands') })
  const sign1 = async (o: { device?: string, now?: number } = {}) => await signOutOfCallDoorCommand({ credential, key: viewerKeys.privateKey, home: HOME, device: o.device ?? DEVICE, command: newId('c'), ...(o.now !== undefined ? { now: o.now } : {}) })
  return { guard, lock, printed, audit, lines, channel, credential, viewerKeys, sign: sign1 }
}

const denied = (r: CommandResult): [string | null, string, string | undefined] => r.ok ? [r.id, 'ok', undefined] : [r.id, r.error.code, r.reason]

describe('outOfCallCommands: the door outside a call', () => {
  test('a signed command for no call opens the door once checked, answered by id and audited with its path', async (t) => {
    const s = await setUp()
    t.after(() => { s.lock.stop() })
    const c = await s.sign()
    const r = await s.channel.take(VIEWER, new TextEncoder().encode(JSON.stringify(c)))
    assert.ok(r.ok, JSON.stringify(r))
    assert.equal(r.id, c.id)
    assert.equal(r.type, 'unlock')
    assert.equal(r.lock?.status, 'unlocked')
    // The simulated relay's line comes a turn after the move (simulated.ts).
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(s.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1)
    assert.deepEqual(s.audit.map((a) => [a.kind, a.outcome, a.reason, a.path, a.memberId, a.viewerId, a.viewerName]), [['open-door', 'allowed', 'ok', 'lan', 'm-kitchen', VIEWER, 'Kitchen']])
  })

  test('replayed, for another device, stale, signed for a call, from another screen, malformed, oversized or of an unknown kind: refused by id, audited, the door locked', async (t) => {
    const s = await setUp()
    t.after(() => { s.lock.stop() })
    const ok = await s.sign()
    assert.ok((await s.channel.take(VIEWER, JSON.stringify(ok))).ok)
    await until('the door to relock', () => s.lock.state().status === 'locked')
    s.audit.length = 0
    const inCall = await signDoorCommand({ credential: s.credential, key: s.viewerKeys.privateKey, home: HOME, device: DEVICE, session: 's-call', command: newId('c') })
    const otherDevice = await s.sign({ device: 'back-door' })
    const stale = await s.sign({ now: Date.now() - 60_000 })
    const fresh = await s.sign()
    const results = [
      await s.channel.take(VIEWER, JSON.stringify(ok)),
      await s.channel.take(VIEWER, JSON.stringify(otherDevice)),
      await s.channel.take(VIEWER, JSON.stringify(stale)),
      await s.channel.take(VIEWER, JSON.stringify(inCall)),
      await s.channel.take('v-other', JSON.stringify(fresh)),
      await s.channel.take(VIEWER, '{"type":"unlock","id":"c-bad"'),
      await s.channel.take(VIEWER, JSON.stringify({ ...fresh, id: 'c-big', pad: 'x'.repeat(MAX_COMMAND_BYTES) })),
      await s.channel.take(VIEWER, JSON.stringify({ ...fresh, type: 'launch', id: 'c-launch' }))
    ]
    assert.deepEqual(results.map(denied), [
      [ok.id, 'denied', 'replay'],
      [otherDevice.id, 'denied', 'wrong-device'],
      [stale.id, 'denied', 'stale'],
      [inCall.id, 'denied', 'wrong-session'],
      [fresh.id, 'denied', 'wrong-viewer'],
      [null, 'invalid-command', 'malformed'],
      ['c-big', 'invalid-command', 'malformed'],
      ['c-launch', 'invalid-command', 'malformed']
    ])
    assert.match(results[6]!.ok ? '' : results[6]!.error.message, new RegExp(`exceeds ${MAX_COMMAND_BYTES}`))
    assert.deepEqual(s.audit.map((a) => [a.outcome, a.reason]), results.map((r) => ['denied', r.ok ? 'ok' : r.reason]))
    assert.equal(s.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1, 'only the first, checked command moved the relay')
    assert.equal(s.lines.filter((l) => l.includes('open-door refused')).length, 5)
    assert.equal(s.lines.filter((l) => l.includes('rejected a command')).length, 3)
  })

  test('a member without the door right is refused and audited as such', async (t) => {
    const s = await setUp(false)
    t.after(() => { s.lock.stop() })
    const r = await s.channel.take(VIEWER, JSON.stringify(await s.sign()))
    assert.deepEqual(denied(r).slice(1), ['denied', 'no-door-right'])
    assert.deepEqual(s.audit.map((a) => [a.outcome, a.reason, a.memberId]), [['denied', 'no-door-right', 'm-kitchen']])
    assert.equal(s.printed.filter((l) => l === 'DOOR UNLOCKED').length, 0)
  })

  test('a device with no door (a camera node) answers no-door, and a kind it does not take, unknown-command', async () => {
    const channel = outOfCallCommands({ kinds: {}, path: 'lan', log: memoryLogger([], 'commands') })
    const unlock = await channel.take(VIEWER, JSON.stringify({ type: 'unlock', id: 'c1' }))
    const reply = await channel.take(VIEWER, JSON.stringify({ type: 'reply', id: 'c2' }))
    assert.deepEqual([denied(unlock), denied(reply)], [['c1', 'no-door', 'malformed'], ['c2', 'unknown-command', 'malformed']])
    assert.equal(NO_CALL_SESSION, 'no-call')
  })
})

describe('outOfCallCommands: more kinds', () => {
  test('a kind added beside the door gets its own commands, with the no-call session; the door still gets everything unreadable', async () => {
    const seen: Array<[string, string, string]> = []
    const kind = (name: string) => ({
      run: async (raw: string, ctx: { sessionId: string, viewerId: string }) => {
        seen.push([name, ctx.sessionId, ctx.viewerId])
        let id = 'unreadable'
        try { id = (JSON.parse(raw) as { id: string }).id } catch { /* the door's to audit */ }
        return { ok: true as const, id, type: name, at: 0 }
      }
    })
    const channel = outOfCallCommands({ kinds: { unlock: kind('unlock'), chime: kind('chime') }, path: 'lan', log: memoryLogger([], 'commands') })
    const chime = await channel.take(VIEWER, JSON.stringify({ type: 'chime', id: 'c1' }))
    assert.deepEqual(chime, { ok: true, id: 'c1', type: 'chime' })
    await channel.take(VIEWER, '{"type":"unlock","id":"c2"}')
    await channel.take(VIEWER, 'not json')
    assert.deepEqual(seen, [['chime', NO_CALL_SESSION, VIEWER], ['unlock', NO_CALL_SESSION, VIEWER], ['unlock', NO_CALL_SESSION, VIEWER]])
    // Not an own property of the kinds: never a prototype's.
    const proto = await channel.take(VIEWER, JSON.stringify({ type: 'toString', id: 'c3' }))
    assert.equal(seen.length, 4, 'an inherited name is the door\'s, as anything unknown')
    assert.ok(proto.ok)
  })
})
