import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromCallback, type AnyEventObject, type EventObject } from 'xstate'
import { KVS_MAX_PREVIEWS, KVS_MAX_VIEWERS } from '@doorbell/core'
import { callStatusOf, deviceCallMachine, participantsOf, type CallSummary, type DeviceCallInput, type RejectReason, type RingInfo, type SessionInput } from '../src/index'

const SDP_A = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
const SDP_B = 'v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n'

interface SessionRecord {
  input: SessionInput
  stopped: boolean
  sendBack: (event: AnyEventObject) => void
}

const defaults: DeviceCallInput = { ringTimeoutMs: 30_000, maxCallMs: 600_000, maxViewers: 3 }

/** A device call machine whose side effects are recorded, on a simulated clock. */
function startCall (input: Partial<DeviceCallInput> = {}) {
  const rings: RingInfo[] = []
  const records: CallSummary[] = []
  const rejected: Array<{ sessionId: string, viewerId: string, reason: RejectReason }> = []
  const sessions: SessionRecord[] = []
  const machine = deviceCallMachine.provide({
    actions: {
      announceRing: (_, params) => { rings.push({ ...params }) },
      recordCall: (_, params) => { records.push(structuredClone(params)) },
      rejectOffer: (_, params) => { rejected.push({ ...params }) }
    },
    actors: {
      session: fromCallback<EventObject, SessionInput>(({ input, sendBack }) => {
        const record: SessionRecord = { input, stopped: false, sendBack }
        sessions.push(record)
        return () => { record.stopped = true }
      })
    }
  })
  const clock = new SimulatedClock()
  const actor = createActor(machine, { input: { ...defaults, ...input }, clock })
  actor.start()
  const snap = () => actor.getSnapshot()
  const session = (id: string): SessionRecord => {
    const found = sessions.filter((s) => s.input.sessionId === id)
    assert.equal(found.length, 1, `expected one session ${id}, found ${found.length}`)
    return found[0]!
  }
  const offer = (sessionId: string, viewerId: string, viewerName: string, at: number, sdp = SDP_A) =>
    actor.send({ type: 'OFFER', sessionId, viewerId, viewerName, sdp, at })
  return { actor, clock, rings, records, rejected, sessions, snap, session, offer }
}

/** A call answered by Alice (session s1) after a press at t=1000. */
function answeredCall (input: Partial<DeviceCallInput> = {}) {
  const call = startCall(input)
  call.actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
  call.offer('s1', 'alice', 'Alice', 4000)
  assert.ok(call.snap().matches('inCall'))
  return call
}

describe('deviceCall: ringing', () => {
  test('starts idle, with nothing to publish', () => {
    const { snap, rings, records } = startCall()
    assert.ok(snap().matches('idle'))
    assert.equal(callStatusOf(snap()), 'idle')
    assert.equal(snap().context.ring, null)
    assert.equal(snap().context.lastRing, null)
    assert.deepEqual([rings, records], [[], []])
  })

  test('a press rings and announces the ring', () => {
    const { actor, snap, rings } = startCall()
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    assert.ok(snap().matches('ringing'))
    assert.equal(callStatusOf(snap()), 'ringing')
    assert.deepEqual(rings, [{ ringId: 'r1', at: 1000, count: 1 }])
  })

  test('a second press re-alerts the same ring with count 2 and starts no second call', () => {
    const { actor, snap, rings, records, sessions } = startCall()
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    actor.send({ type: 'PRESS', ringId: 'r2', at: 3000 })
    assert.ok(snap().matches('ringing'))
    assert.deepEqual(rings, [{ ringId: 'r1', at: 1000, count: 1 }, { ringId: 'r1', at: 1000, count: 2 }])
    assert.deepEqual(snap().context.ring, { ringId: 'r1', at: 1000, count: 2 })
    assert.deepEqual([records, sessions], [[], []])
  })

  test('a ring nobody answers ends as missed after ringTimeoutMs and goes back to idle', () => {
    const { actor, clock, snap, records } = startCall({ ringTimeoutMs: 30_000 })
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    clock.increment(29_999)
    assert.ok(snap().matches('ringing'))
    assert.equal(records.length, 0)
    clock.increment(1)
    assert.ok(snap().matches('idle'))
    assert.deepEqual(records, [{
      ringId: 'r1', startedAt: 1000, endedAt: 31_000, outcome: 'missed', answeredBy: [], unlocks: []
    }])
    assert.deepEqual(snap().context.lastRing, { ringId: 'r1', at: 1000, outcome: 'missed' })
    assert.equal(snap().context.ring, null)
  })

  test('after a missed ring the next press is a new ring with count 1', () => {
    const { actor, clock, rings } = startCall({ ringTimeoutMs: 1000 })
    actor.send({ type: 'PRESS', ringId: 'r1', at: 0 })
    clock.increment(1000)
    actor.send({ type: 'PRESS', ringId: 'r2', at: 5000 })
    assert.deepEqual(rings.at(-1), { ringId: 'r2', at: 5000, count: 1 })
  })
})

describe('deviceCall: answering', () => {
  test('an offer while ringing starts the call with a session given the offer', () => {
    const { actor, snap, offer, sessions } = startCall()
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    offer('s1', 'alice', 'Alice', 4000, SDP_B)
    assert.ok(snap().matches('inCall'))
    assert.equal(callStatusOf(snap()), 'in-call')
    assert.equal(sessions.length, 1)
    assert.deepEqual(sessions[0]!.input, { sessionId: 's1', viewerId: 'alice', viewerName: 'Alice', since: 4000, sdp: SDP_B, preview: false })
    assert.equal(sessions[0]!.stopped, false)
    assert.deepEqual(participantsOf(snap()), [{ sessionId: 's1', viewerId: 'alice', viewerName: 'Alice', since: 4000 }])
  })

  test('the answered ring is recorded as lastRing answered', () => {
    const { snap } = answeredCall()
    assert.deepEqual(snap().context.lastRing, { ringId: 'r1', at: 1000, outcome: 'answered' })
    assert.equal(snap().context.callStartedAt, 4000)
  })

  test('the ring timeout no longer applies once answered', () => {
    const { clock, snap, records } = answeredCall({ ringTimeoutMs: 30_000 })
    clock.increment(60_000)
    assert.ok(snap().matches('inCall'))
    assert.equal(records.length, 0)
  })

  test('a second viewer joins with a session of its own', () => {
    const { offer, snap, sessions } = answeredCall()
    offer('s2', 'bob', 'Bob', 6000)
    assert.deepEqual(sessions.map((s) => s.input.sessionId), ['s1', 's2'])
    assert.deepEqual(participantsOf(snap()).map((p) => p.viewerId), ['alice', 'bob'])
    assert.deepEqual(snap().context.answeredBy, [{ viewerId: 'alice', viewerName: 'Alice' }, { viewerId: 'bob', viewerName: 'Bob' }])
  })

  test('the same viewer on two sessions (phone and laptop) is one answerer', () => {
    const { offer, snap } = answeredCall()
    offer('s2', 'alice', 'Alice', 6000)
    assert.equal(participantsOf(snap()).length, 2)
    assert.deepEqual(snap().context.answeredBy, [{ viewerId: 'alice', viewerName: 'Alice' }])
  })

  test('a repeated offer for a session already in the call is ignored', () => {
    const { offer, snap, sessions, rejected } = answeredCall()
    offer('s1', 'alice', 'Alice again', 9000)
    assert.equal(sessions.length, 1)
    assert.equal(sessions[0]!.stopped, false)
    assert.deepEqual(rejected, [])
    assert.equal(snap().context.sessions.s1!.viewerName, 'Alice')
    assert.equal(snap().context.sessions.s1!.since, 4000)
  })

  test('when the call is full, a new offer is refused as busy and spawns nothing', () => {
    const { offer, snap, sessions, rejected } = answeredCall({ maxViewers: 2 })
    offer('s2', 'bob', 'Bob', 5000)
    offer('s3', 'carol', 'Carol', 6000)
    assert.deepEqual(rejected, [{ sessionId: 's3', viewerId: 'carol', reason: 'busy' }])
    assert.equal(sessions.length, 2)
    assert.deepEqual(Object.keys(snap().context.sessions), ['s1', 's2'])
    assert.ok(!snap().context.answeredBy.some((a) => a.viewerId === 'carol'))
  })

  test('a press during the call re-alerts the same ring', () => {
    const { actor, snap, rings } = answeredCall()
    actor.send({ type: 'PRESS', ringId: 'r9', at: 8000 })
    assert.ok(snap().matches('inCall'))
    assert.deepEqual(rings.at(-1), { ringId: 'r1', at: 1000, count: 2 })
  })
})

describe('deviceCall: leaving', () => {
  test('BYE of one viewer stops that session and keeps the call', () => {
    const { actor, offer, snap, session, records } = answeredCall()
    offer('s2', 'bob', 'Bob', 6000)
    actor.send({ type: 'BYE', sessionId: 's1' })
    assert.ok(snap().matches('inCall'))
    assert.equal(session('s1').stopped, true)
    assert.equal(session('s2').stopped, false)
    assert.deepEqual(Object.keys(snap().context.sessions), ['s2'])
    assert.equal(records.length, 0)
  })

  test('BYE of the last viewer ends the call and records it as answered, by everyone who joined', () => {
    const { actor, offer, snap, session, records } = answeredCall()
    offer('s2', 'bob', 'Bob', 6000)
    actor.send({ type: 'BYE', sessionId: 's1' })
    actor.send({ type: 'BYE', sessionId: 's2' })
    assert.ok(snap().matches('idle'))
    assert.equal(session('s2').stopped, true)
    assert.deepEqual(records, [{
      ringId: 'r1',
      startedAt: 4000,
      endedAt: null,
      outcome: 'answered',
      answeredBy: [{ viewerId: 'alice', viewerName: 'Alice' }, { viewerId: 'bob', viewerName: 'Bob' }],
      unlocks: []
    }])
  })

  test('after the call the device is idle with a clean slate but remembers the last ring', () => {
    const { actor, snap } = answeredCall()
    actor.send({ type: 'BYE', sessionId: 's1' })
    const c = snap().context
    assert.deepEqual([c.ring, c.callStartedAt, c.sessions, c.answeredBy, c.unlocks], [null, null, {}, [], []])
    assert.deepEqual(c.lastRing, { ringId: 'r1', at: 1000, outcome: 'answered' })
  })

  test('a session that ends by itself (SESSION_ENDED from the session) is removed and stopped', () => {
    const { offer, snap, session } = answeredCall()
    offer('s2', 'bob', 'Bob', 6000)
    session('s2').sendBack({ type: 'SESSION_ENDED', sessionId: 's2', reason: 'ice-failed' })
    assert.ok(snap().matches('inCall'))
    assert.equal(session('s2').stopped, true)
    assert.deepEqual(Object.keys(snap().context.sessions), ['s1'])
  })

  test('SESSION_ENDED of the last session ends the call', () => {
    const { snap, session, records } = answeredCall()
    session('s1').sendBack({ type: 'SESSION_ENDED', sessionId: 's1', reason: 'closed' })
    assert.ok(snap().matches('idle'))
    assert.equal(records.length, 1)
    assert.equal(records[0]!.outcome, 'answered')
  })

  test('BYE or SESSION_ENDED for an unknown session changes nothing', () => {
    const { actor, snap, session, records } = answeredCall()
    actor.send({ type: 'BYE', sessionId: 'nope' })
    actor.send({ type: 'SESSION_ENDED', sessionId: 'nope', reason: 'x' })
    assert.ok(snap().matches('inCall'))
    assert.equal(session('s1').stopped, false)
    assert.equal(records.length, 0)
  })

  test('a call that runs past maxCallMs ends by itself and stops every session', () => {
    const { clock, offer, snap, sessions, records } = answeredCall({ maxCallMs: 120_000 })
    clock.increment(60_000)
    offer('s2', 'bob', 'Bob', 64_000)
    clock.increment(59_999)
    assert.ok(snap().matches('inCall'))
    clock.increment(1)
    assert.ok(snap().matches('idle'))
    assert.ok(sessions.every((s) => s.stopped))
    assert.deepEqual(snap().context.sessions, {})
    assert.equal(records.length, 1)
    assert.equal(records[0]!.outcome, 'answered')
    assert.equal(records[0]!.answeredBy.length, 2)
  })

  test('END_CALL ends the call and stops every session', () => {
    const { actor, offer, snap, sessions, records } = answeredCall()
    offer('s2', 'bob', 'Bob', 5000)
    actor.send({ type: 'END_CALL', at: 9000 })
    assert.ok(snap().matches('idle'))
    assert.ok(sessions.every((s) => s.stopped))
    assert.equal(records.length, 1)
  })
})

describe('deviceCall: unlocks', () => {
  test('an unlock from a session is recorded with its viewer in the call record', () => {
    const { actor, offer, session, records } = answeredCall()
    offer('s2', 'bob', 'Bob', 5000)
    session('s2').sendBack({ type: 'UNLOCKED', sessionId: 's2', at: 7000 })
    actor.send({ type: 'UNLOCKED', sessionId: 's1', at: 8000 })
    actor.send({ type: 'END_CALL', at: 9000 })
    assert.deepEqual(records[0]!.unlocks, [{ viewerId: 'bob', at: 7000 }, { viewerId: 'alice', at: 8000 }])
  })

  test('an unlock from an unknown session is not recorded', () => {
    const { actor, snap } = answeredCall()
    actor.send({ type: 'UNLOCKED', sessionId: 'ghost', at: 7000 })
    assert.deepEqual(snap().context.unlocks, [])
  })

  test('unlocks of one call do not leak into the next', () => {
    const { actor, offer, records } = answeredCall()
    actor.send({ type: 'UNLOCKED', sessionId: 's1', at: 7000 })
    actor.send({ type: 'BYE', sessionId: 's1' })
    offer('s2', 'bob', 'Bob', 20_000)
    actor.send({ type: 'BYE', sessionId: 's2' })
    assert.equal(records.length, 2)
    assert.deepEqual(records[1]!.unlocks, [])
    assert.deepEqual(records[1]!.answeredBy, [{ viewerId: 'bob', viewerName: 'Bob' }])
  })
})

describe('deviceCall: live view', () => {
  test('an offer while idle starts a live view without a ring', () => {
    const { offer, snap, sessions, rings } = startCall()
    offer('s1', 'alice', 'Alice', 2000)
    assert.ok(snap().matches('inCall'))
    assert.equal(snap().context.ring, null)
    assert.equal(snap().context.lastRing, null)
    assert.equal(sessions.length, 1)
    assert.deepEqual(rings, [])
  })

  test('a live view is recorded as live-view, with no ring', () => {
    const { actor, offer, records } = startCall()
    offer('s1', 'alice', 'Alice', 2000)
    actor.send({ type: 'BYE', sessionId: 's1' })
    assert.deepEqual(records, [{
      ringId: null, startedAt: 2000, endedAt: null, outcome: 'live-view',
      answeredBy: [{ viewerId: 'alice', viewerName: 'Alice' }], unlocks: []
    }])
  })

  test('a press during a live view announces a new ring', () => {
    const { actor, offer, snap, rings } = startCall()
    offer('s1', 'alice', 'Alice', 2000)
    actor.send({ type: 'PRESS', ringId: 'r1', at: 3000 })
    assert.ok(snap().matches('inCall'))
    assert.deepEqual(rings, [{ ringId: 'r1', at: 3000, count: 1 }])
  })

  test('a ring during a live view counts as answered by those already in the call', () => {
    const { actor, offer, snap, records } = startCall()
    offer('s1', 'alice', 'Alice', 2000)
    actor.send({ type: 'PRESS', ringId: 'r1', at: 3000 })
    assert.deepEqual(snap().context.lastRing, { ringId: 'r1', at: 3000, outcome: 'answered' })
    actor.send({ type: 'BYE', sessionId: 's1' })
    assert.equal(records.at(-1)?.outcome, 'answered')
    assert.equal(records.at(-1)?.ringId, 'r1')
  })
})

describe('deviceCall: the owner\'s live preview setting, from the next ring', () => {
  const previewOffer = (sessionId: string, at: number) => ({ type: 'OFFER' as const, sessionId, viewerId: 'alice', viewerName: 'Alice', sdp: SDP_A, at, preview: true })

  test('a press carrying "off" announces the ring without preview and refuses preview offers; a repeat press does not change it; the next ring takes "on"', () => {
    const { actor, clock, rings, rejected, sessions, snap } = startCall({ ringTimeoutMs: 1000 })
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000, livePreview: false })
    actor.send(previewOffer('p1', 1100))
    // Turned on while it rings: this ring keeps what it started with.
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000, livePreview: true })
    actor.send(previewOffer('p2', 1200))
    assert.deepEqual(rings, [{ ringId: 'r1', at: 1000, count: 1, livePreview: false }, { ringId: 'r1', at: 1000, count: 2, livePreview: false }])
    assert.deepEqual(rejected.map((r) => [r.sessionId, r.reason]), [['p1', 'preview-off'], ['p2', 'preview-off']])
    assert.equal(sessions.length, 0)
    clock.increment(1000)
    assert.ok(snap().matches('idle'))
    actor.send({ type: 'PRESS', ringId: 'r2', at: 5000, livePreview: true })
    actor.send(previewOffer('p3', 5100))
    assert.deepEqual(rings.at(-1), { ringId: 'r2', at: 5000, count: 1 })
    assert.equal(sessions.length, 1)
    assert.equal(sessions[0]!.input.preview, true)
  })

  test('a press without the setting keeps the input\'s value', () => {
    const { actor, rings, rejected } = startCall({ livePreview: false })
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    actor.send(previewOffer('p1', 1100))
    assert.deepEqual(rings, [{ ringId: 'r1', at: 1000, count: 1, livePreview: false }])
    assert.deepEqual(rejected.map((r) => r.reason), ['preview-off'])
  })
})

describe('deviceCall: previews on the cloud path within KVS\'s 10 viewers', () => {
  const previewOn = (path: 'cloud' | 'lan', sessionId: string, viewerId: string, at: number) =>
    ({ type: 'OFFER' as const, sessionId, viewerId, viewerName: viewerId, sdp: SDP_A, at, preview: true, path })

  test('cloud previews stop at KVS_MAX_PREVIEWS (9) by default, said as `cloud-full`; the home network\'s do not count; Answer on the cloud still gets in, and the previews end', () => {
    assert.equal(KVS_MAX_PREVIEWS, KVS_MAX_VIEWERS - 1)
    const { actor, snap, rejected, sessions } = startCall({ maxViewers: 20 })
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    for (let i = 0; i < 11; i++) actor.send(previewOn('cloud', `c${i}`, `cloud-${i}`, 1100 + i))
    actor.send(previewOn('lan', 'l1', 'lan-1', 1200))
    const held = Object.values(snap().context.sessions)
    assert.equal(held.filter((s) => s.path === 'cloud').length, 9)
    assert.equal(held.filter((s) => s.path === 'lan').length, 1, 'a home-network preview is not counted against KVS')
    assert.deepEqual(rejected.map((r) => [r.sessionId, r.reason]), [['c9', 'cloud-full'], ['c10', 'cloud-full']])
    // The 10th KVS slot: a screen without a preview answers over the cloud.
    actor.send({ type: 'OFFER', sessionId: 'a1', viewerId: 'cloud-10', viewerName: 'cloud-10', sdp: SDP_A, at: 2000, path: 'cloud' })
    assert.ok(snap().matches('inCall'))
    assert.deepEqual(Object.keys(snap().context.sessions), ['a1'], 'the previews ended as the call started')
    assert.ok(sessions.filter((s) => s.input.preview).every((s) => s.stopped))
  })

  test('a slot comes back when a cloud preview ends (its screen dismissed)', () => {
    const { actor, snap, rejected } = startCall({ maxViewers: 20, maxCloudPreviews: 2 })
    actor.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    for (const id of ['c0', 'c1', 'c2']) actor.send(previewOn('cloud', id, `v-${id}`, 1100))
    assert.deepEqual(rejected.map((r) => [r.sessionId, r.reason]), [['c2', 'cloud-full']])
    actor.send({ type: 'BYE', sessionId: 'c0' })
    actor.send(previewOn('cloud', 'c3', 'v-c3', 1300))
    assert.deepEqual(Object.keys(snap().context.sessions).sort(), ['c1', 'c3'])
    assert.equal(rejected.length, 1)
  })
})
