import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { fromCallback, type EventObject } from 'xstate'
import {
  DeviceState, Listeners, memoryLogger,
  type CallRecord, type DeviceTransport, type LockState, type RingEvent, type SignalToDevice, type SignalToViewer, type TransportPath
} from '@doorbell/core'
import { startAnswering, type SessionInput, type SessionRouting } from '../src/index'

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A path as the answering side sees it: what it sent, and a way to deliver a viewer's message. */
class FakePath implements DeviceTransport {
  readonly sent: Array<{ viewerId: string, sessionId: string, message: SignalToViewer }> = []
  readonly states: DeviceState[] = []
  readonly rings: RingEvent[] = []
  readonly calls: CallRecord[] = []
  private readonly listeners = new Listeners<{ signal: (viewerId: string, m: SignalToDevice) => void }>()
  constructor (readonly path: TransportPath) {}
  publishRing (ring: RingEvent): void { this.rings.push(ring) }
  publishState (state: DeviceState): void { this.states.push(state) }
  publishCall (record: CallRecord): void { this.calls.push(record) }
  sendToViewer (viewerId: string, sessionId: string, message: SignalToViewer): void { this.sent.push({ viewerId, sessionId, message }) }
  onSignal (listener: (viewerId: string, m: SignalToDevice) => void): () => void { return this.listeners.on('signal', listener) }
  deliver (viewerId: string, m: SignalToDevice): void { this.listeners.emit('signal', viewerId, m) }
  async stop (): Promise<void> {}
}

/**
 * A guard that admits credentials named `ok-<member>` and refuses the rest; revocation by member id.
 * It records the proof and session each admission was asked with (core's DoorGuard checks them).
 */
function fakeGuard () {
  const revoked = new Set<string>()
  const asked: Array<{ proof: string, session: string }> = []
  return {
    revoked,
    asked,
    isRevoked: (memberId: string) => revoked.has(memberId),
    admit: async (credential: string, viewerId: string, possession: { proof: string, session: string }) => {
      asked.push(possession)
      return credential.startsWith('ok-')
        ? { ok: true as const, grant: { id: credential.slice(3), name: `Viewer ${viewerId}`, role: 'resident' } as never }
        : { ok: false as const, reason: 'bad-signature' as const, message: 'the credential is not signed by this home', grant: null }
    }
  }
}

const LOCK: LockState = { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null }

/** A session that answers at once through the routing it was given, and records that it was stopped. */
function setUp (o: { lock?: LockState | null | (() => LockState | null), maxViewers?: number } = {}) {
  const stopped: string[] = []
  const guard = fakeGuard()
  let routing: SessionRouting | null = null
  const answering = startAnswering({
    deviceId: 'gate-cam',
    deviceName: 'Gate camera',
    ringTimeoutMs: 30_000,
    maxCallMs: 600_000,
    maxViewers: o.maxViewers ?? 4,
    guard,
    lock: () => typeof o.lock === 'function' ? o.lock() : o.lock === undefined ? LOCK : o.lock,
    log: memoryLogger([], 'test'),
    session: (r) => {
      routing = r
      return fromCallback<EventObject, SessionInput>(({ input }) => {
        r.signal(input.viewerId, input.sessionId, { type: 'answer', sessionId: input.sessionId, sdp: 'v=0 answer' })
        // As the real sessions do: stopped by the machine, they say so to their viewer.
        return () => {
          stopped.push(input.sessionId)
          r.signal(input.viewerId, input.sessionId, { type: 'bye', sessionId: input.sessionId, reason: 'device-ended' })
        }
      })
    }
  })
  return { answering, guard, stopped, routing: () => routing! }
}

const offer = (sessionId: string, credential: string, viewerId = 'kitchen'): SignalToDevice =>
  ({ type: 'offer', sessionId, viewerId, viewerName: 'Kitchen', sdp: 'v=0 offer', credential, proof: `proof-of-${sessionId}` })

describe('the answering side', () => {
  test('an offer is admitted, answered on the path it came on only, and the state on every path names the viewer', async () => {
    const { answering, routing, guard } = setUp()
    const lan = new FakePath('lan')
    const cloud = new FakePath('cloud')
    answering.attach(lan)
    answering.attach(cloud)
    cloud.deliver('kitchen', offer('s1', 'ok-m1'))
    await settle()
    // Admission checks the offer's proof of possession against the offer's own session id.
    assert.deepEqual(guard.asked, [{ proof: 'proof-of-s1', session: 's1' }])
    assert.deepEqual(cloud.sent.map((s) => s.message.type), ['answer'])
    assert.equal(lan.sent.length, 0)
    assert.equal(routing().pathOf('s1'), 'cloud')
    for (const path of [lan, cloud]) {
      const last = path.states.at(-1)!
      assert.ok(DeviceState.safeParse(last).success)
      assert.equal(last.call.status, 'in-call')
      assert.deepEqual(last.participants.map((p) => p.viewerName), ['Viewer kitchen'])
    }
    answering.stop()
  })

  test('a credential that is not a live member gets a bye with the reason and no session', async () => {
    const { answering, stopped } = setUp()
    const lan = new FakePath('lan')
    answering.attach(lan)
    lan.deliver('kitchen', offer('s1', 'forged'))
    await settle()
    assert.deepEqual(lan.sent.map((s) => s.message), [{ type: 'bye', sessionId: 's1', reason: 'rejected', message: 'the credential is not signed by this home' }])
    assert.equal(answering.sessions(), 0)
    assert.equal(answering.state().call.status, 'idle')
    assert.deepEqual(stopped, [])
    answering.stop()
  })

  test('a second offer for a live session and a bye from another viewer change nothing', async () => {
    const { answering, stopped } = setUp()
    const lan = new FakePath('lan')
    answering.attach(lan)
    lan.deliver('kitchen', offer('s1', 'ok-m1'))
    await settle()
    lan.deliver('intruder', offer('s1', 'ok-m2', 'intruder'))
    lan.deliver('intruder', { type: 'bye', sessionId: 's1', reason: 'hang-up' })
    await settle()
    assert.equal(answering.sessions(), 1)
    assert.deepEqual(stopped, [])
    lan.deliver('kitchen', { type: 'bye', sessionId: 's1', reason: 'hang-up' })
    await settle()
    assert.deepEqual(stopped, ['s1'])
    assert.equal(answering.state().call.status, 'idle')
    answering.stop()
  })

  test('a revoked member\'s call ends at once, with a bye on every path', async () => {
    const { answering, guard, stopped } = setUp()
    const lan = new FakePath('lan')
    const direct = new FakePath('direct')
    answering.attach(lan)
    answering.attach(direct)
    lan.deliver('kitchen', offer('s1', 'ok-m1'))
    await settle()
    guard.revoked.add('m1')
    answering.endRevokedSessions()
    await settle()
    assert.deepEqual(stopped, ['s1'])
    for (const path of [lan, direct]) {
      // The reason comes first; the session's own bye as it stops, second.
      assert.deepEqual(path.sent.filter((s) => s.message.type === 'bye').map((s) => s.message), [
        { type: 'bye', sessionId: 's1', reason: 'rejected', message: 'you have been removed from this home' },
        { type: 'bye', sessionId: 's1', reason: 'device-ended' }
      ])
    }
    answering.stop()
  })

  test('a ring and the call record go out on every attached path; a detached path hears nothing more', async () => {
    const { answering } = setUp()
    const lan = new FakePath('lan')
    const cloud = new FakePath('cloud')
    answering.attach(lan)
    answering.attach(cloud)
    answering.detach(cloud)
    answering.ring('r1')
    await settle()
    assert.deepEqual(lan.rings.map((r) => r.ringId), ['r1'])
    assert.equal(cloud.rings.length, 0)
    cloud.deliver('kitchen', offer('s1', 'ok-m1'))
    await settle()
    assert.equal(answering.sessions(), 0)
    answering.stop()
  })

  test('a device without a door (a camera node) publishes lock null; the state parses', async () => {
    const { answering } = setUp({ lock: null })
    const lan = new FakePath('lan')
    answering.attach(lan)
    const s = lan.states.at(-1)!
    assert.equal(s.lock, null)
    assert.ok(DeviceState.safeParse(s).success)
    answering.stop()
  })

  test('the state is published again only when what it says changes', async () => {
    const { answering } = setUp()
    const lan = new FakePath('lan')
    answering.attach(lan)
    const before = lan.states.length
    answering.publishState()
    answering.publishState()
    const after = lan.states.length
    answering.ring('r1')
    await settle()
    assert.equal(after, before, 'nothing changed: nothing published (attach published the state already)')
    assert.ok(lan.states.length > after, 'the ring changed the state')
    answering.stop()
  })

  test('told of a lock change a turn late, the state carries the lock it was told of, in order, whatever the lock says now', () => {
    const { answering } = setUp()
    const lan = new FakePath('lan')
    answering.attach(lan)
    const unlocking: LockState = { ...LOCK, status: 'unlocking', version: 2 }
    const unlocked: LockState = { ...LOCK, status: 'unlocked', relockAt: 5000, version: 3 }
    answering.publishState(unlocking)
    answering.publishState(unlocked)
    assert.deepEqual(lan.states.slice(-2).map((st) => st.lock?.status), ['unlocking', 'unlocked'])
    answering.stop()
  })

  test('a call change while the lock\'s report waits for its turn publishes the lock as last told, never a newer one the report would take back', () => {
    let now: LockState = { ...LOCK, status: 'locked', version: 1 }
    const { answering } = setUp({ lock: () => now })
    const lan = new FakePath('lan')
    answering.attach(lan)
    answering.publishState(now)
    // The lock has moved on (unlocking), but its listeners are told a turn later: a ring comes first.
    now = { ...LOCK, status: 'unlocking', version: 2 }
    answering.ring('r-between')
    assert.equal(lan.states.at(-1)?.lock?.status, 'locked', 'the ring is published with the lock as last told')
    answering.publishState(now)
    assert.deepEqual(lan.states.map((st) => st.lock?.version).filter((v, i, a) => i === 0 || v !== a[i - 1]), [1, 2], 'the lock only moves forward')
    answering.stop()
  })
})
