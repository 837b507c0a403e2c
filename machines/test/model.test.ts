/**
 * Model-based tests: the paths are generated from the machine definitions with xstate's graph
 * utilities and replayed, step by step, on a real actor (provided with test doubles, on a
 * SimulatedClock); invariants are checked in every state reached on every path.
 *
 * How the paths are made, per machine:
 * - `getAdjacencyMap` explores the machine with pure transitions, from a finite set of
 *   representative events per state, over an abstraction of the snapshot (`key`: the state
 *   value and the context that guards and invariants depend on). Delayed transitions and the
 *   results of invoked actors are events too (`xstate.after.*`, `xstate.done.actor.*`,
 *   `xstate.error.actor.*`, read off each state's own events), plus a synthetic `TICK`: time
 *   passes without reaching any deadline. The pure model ignores `TICK`.
 * - Every walk of the abstract graph up to `depth` steps (at most `maxSelfLoops` steps that
 *   leave the abstract state unchanged: ignored events, re-alerts, refused offers...).
 * - Then, for every abstract transition no walk took, the shortest path to its source
 *   (`getShortestPaths`) followed by that transition, so every transition is taken once.
 *
 * How a path is replayed: external events are sent to the actor; events that come from child
 * actors (sessions, the call, the lock driver) are produced by the test double of that child;
 * `xstate.after.<delay>` advances the clock to the deadline of the current state's timer, whose
 * length is the configured delay (not read from the actor), counted from when the actor entered
 * the state; `TICK` advances it to 1 ms before that deadline (60 s where no timer runs). After
 * each step the actor's abstract state must equal the model's, and the invariants must hold.
 *
 * Every invariant was seen to fail: each was broken in a copy of src/ (or of this file) and
 * the copy's run failed on it, e.g. an error while opening going to `unlocked`, a relock delay
 * twice too long or missing, END_CALL or maxCall not stopping sessions, a BYE of the last session
 * staying in the call, `<=` instead of `<` for maxViewers, a missing or doubled recordCall, a
 * HANGUP without a reason or keeping the pending command, a call actor invoked in `ended`, the
 * link's hub actor not invoked for the machine's whole life.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromCallback, fromPromise, type AnyEventObject, type EventObject, type SnapshotFrom } from 'xstate'
import type { DeviceState, LockState, Reply, RingEvent, TransportPath } from '@doorbell/core'
import { lockMachine, type LockInput } from '../src/lock'
import { admitActorId, deviceCallMachine, type Admission, type AdmitInput, type CallSummary, type DeviceCallInput, type RingInfo, type SessionInput } from '../src/deviceCall'
import { viewerCallMachine, type CallActorInput, type ViewerCallInput } from '../src/viewerCall'
import { backoffMs, linkMachine, pathOf, type LinkInput } from '../src/link'
import { deviceState, lockState, ringEvent } from './fixtures'
import { TICK, Timers, buildModel, internalEvents, replay, settle, sorted, type Harness, type Model, type ModelEvent, type ModelSnapshot, type ModelSpec } from './modelKit'

// ------------------------------------------------------------------ lock

type LockSnap = SnapshotFrom<typeof lockMachine>
const LOCK_INPUT = { relockAfterMs: 5000, faultRetryMs: 2000 } satisfies LockInput
const DRIVER_ERROR = 'relay stuck'

const lockSpec: ModelSpec<LockSnap> = {
  name: 'lock',
  machine: lockMachine,
  input: LOCK_INPUT,
  key: (s) => JSON.stringify([s.value, s.context.error]),
  // Commands in every state (ignored where they do not apply), the driver's answers, timers, time passing.
  events: (s) => [
    { type: 'UNLOCK', by: 'v1' },
    { type: 'RETRY' },
    ...internalEvents(s as unknown as ModelSnapshot, DRIVER_ERROR),
    TICK
  ],
  // Locked, opened, relocked and opened again; up to 3 steps that leave the state as it is (e.g. TICK, UNLOCK, TICK while open).
  depth: 7,
  maxSelfLoops: 3
}

interface Drive {
  open: boolean
  state: 'pending' | 'confirmed' | 'failed' | 'aborted'
  confirm: () => void
  fail: (error: unknown) => void
}

/** The doubles of the path being replayed (the machine is provided once: provide() builds a new machine). */
let lockDrives: Drive[] = []
const lockUnderTest = lockMachine.provide({
  actors: {
    driveLock: fromPromise<void, { open: boolean }>(({ input, signal }) => new Promise<void>((resolve, reject) => {
      const drive: Drive = {
        open: input.open,
        state: 'pending',
        confirm: () => { drive.state = 'confirmed'; resolve() },
        fail: (error) => { drive.state = 'failed'; reject(error) }
      }
      signal.addEventListener('abort', () => { if (drive.state === 'pending') drive.state = 'aborted' })
      lockDrives.push(drive)
    }))
  }
})

function lockHarness (): Harness<LockSnap> {
  const drives: Drive[] = lockDrives = []
  const clock = new SimulatedClock()
  const timers = new Timers(clock, { relockDelay: LOCK_INPUT.relockAfterMs, faultRetry: LOCK_INPUT.faultRetryMs })
  const actor = createActor(lockUnderTest, { input: LOCK_INPUT, clock })
  const violations: string[] = []
  let unlockedSince: number | null = null
  let seenVersion = -1

  /** The invariants, on every snapshot the actor emits. */
  const inspect = (s: LockSnap): void => {
    const status = s.value
    const entered = s.context.version !== seenVersion // every (re)entry of a state grows the version
    seenVersion = s.context.version
    timers.observe(`${status}:${s.context.version}`)
    if (status === 'unlocked') {
      if (entered) unlockedSince = clock.now()
    } else {
      unlockedSince = null
    }
    const pending = drives.filter((d) => d.state === 'pending')
    const settled = drives.filter((d) => d.state === 'confirmed' || d.state === 'failed').at(-1)
    const fail = (m: string) => { const v = `[${status} at ${clock.now()} ms] ${m}`; if (!violations.includes(v)) violations.push(v) }
    if (status === 'unlocked') {
      if (!(settled?.state === 'confirmed' && settled.open)) fail(`unlocked, but the driver's last answer was ${settled ? `${settled.state} ${settled.open ? 'open' : 'closed'}` : 'none'}`)
      if (unlockedSince !== null && clock.now() - unlockedSince >= LOCK_INPUT.relockAfterMs) {
        fail(`unlocked for ${clock.now() - unlockedSince} ms (relockAfterMs ${LOCK_INPUT.relockAfterMs})`)
      }
    }
    if (status === 'locked' && !(settled?.state === 'confirmed' && !settled.open)) {
      fail(`locked, but the driver's last answer was ${settled ? `${settled.state} ${settled.open ? 'open' : 'closed'}` : 'none'}`)
    }
    if (settled?.state === 'failed' && status !== 'fault' && status !== 'relocking') fail('after a driver error the lock is neither in fault nor relocking')
    if (status === 'fault' && s.context.error === null) fail('fault without an error')
    const moving = status === 'unlocking' || status === 'relocking'
    if (pending.length !== (moving ? 1 : 0)) fail(`${pending.length} drives in progress`)
    if (moving && pending[0]?.open !== (status === 'unlocking')) fail(`driving ${pending[0]?.open ? 'open' : 'closed'} while ${status}`)
  }
  actor.subscribe(inspect)
  actor.start()
  inspect(actor.getSnapshot())

  const pendingDrive = (): Drive => {
    const pending = drives.filter((d) => d.state === 'pending')
    assert.equal(pending.length, 1, 'one drive in progress')
    return pending[0]!
  }
  return {
    async exec ({ event, from, to }) {
      const before = actor.getSnapshot().context.version
      if (timers.step(event, from)) {
        // time passed
      } else if (event.type === 'UNLOCK' || event.type === 'RETRY') {
        actor.send(event as never)
      } else if (event.type.startsWith('xstate.done.actor.')) {
        const drive = pendingDrive()
        assert.equal(drive.open, from.value === 'unlocking', 'the driver moves the relay the way the state says')
        drive.confirm()
        await settle()
      } else if (event.type.startsWith('xstate.error.actor.')) {
        pendingDrive().fail(new Error(DRIVER_ERROR))
        await settle()
        assert.equal(actor.getSnapshot().value, 'fault', 'after a driver error, status is fault')
      } else {
        assert.fail(`unknown step ${event.type}`)
      }
      assert.equal(actor.getSnapshot().context.version - before, to.context.version - from.context.version, 'version grows once per change of state')
    },
    check (model) {
      const s = actor.getSnapshot()
      inspect(s) // again: time may have passed without a new snapshot
      assert.deepEqual(violations, [])
      assert.equal(lockSpec.key(s), lockSpec.key(model), 'the lock is in the model\'s state')
    },
    async finish () {
      // Open at the end of the path: it must relock exactly relockAfterMs after it was (last) opened.
      if (actor.getSnapshot().value === 'unlocked') {
        assert.ok(unlockedSince !== null)
        clock.increment(unlockedSince + LOCK_INPUT.relockAfterMs - 1 - clock.now())
        assert.equal(actor.getSnapshot().value, 'unlocked', 'still open 1 ms before relockAfterMs')
        clock.increment(1)
        assert.equal(actor.getSnapshot().value, 'relocking', 'no longer unlocked relockAfterMs after opening')
        assert.equal(pendingDrive().open, false)
      }
      await settle()
      assert.deepEqual(violations, [])
    },
    stop: () => actor.stop()
  }
}

// ------------------------------------------------------------------ device call

type DeviceSnap = SnapshotFrom<typeof deviceCallMachine>
const DEVICE_INPUT = { ringTimeoutMs: 30_000, maxCallMs: 600_000, maxViewers: 2 } satisfies DeviceCallInput
const SDP = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
/** Three sessions for two viewers: s3 is Alice's second device. */
const VIEWERS = { s1: ['alice', 'Alice'], s2: ['bob', 'Bob'], s3: ['alice', 'Alice'] } as const
type SessionId = keyof typeof VIEWERS
const offer = (sessionId: SessionId): ModelEvent => ({
  type: 'OFFER', sessionId, viewerId: VIEWERS[sessionId][0], viewerName: VIEWERS[sessionId][1], sdp: SDP, at: 2000
})

const deviceSpec: ModelSpec<DeviceSnap> = {
  name: 'deviceCall',
  machine: deviceCallMachine,
  input: DEVICE_INPUT,
  key: (s) => JSON.stringify([
    s.value,
    s.context.ring?.ringId ?? null,
    sorted(Object.keys(s.context.sessions)),
    s.context.lastRing && [s.context.lastRing.ringId, s.context.lastRing.outcome]
  ]),
  events: (s) => {
    const ids = sorted(Object.keys(s.context.sessions))
    switch (s.value) {
      case 'idle':
        return [{ type: 'PRESS', ringId: 'r1', at: 1000 }, offer('s1')]
      case 'ringing':
        return [{ type: 'PRESS', ringId: 'r2', at: 1500 }, offer('s1'), ...internalEvents(s as unknown as ModelSnapshot, null), TICK]
      case 'inCall':
        return [
          offer('s1'), offer('s2'), offer('s3'),
          { type: 'PRESS', ringId: 'r2', at: 3000 },
          ...ids.slice(0, 1).map((sessionId) => ({ type: 'UNLOCKED', sessionId, at: 3500 })),
          // BYE from signaling, for sessions in the call and not; SESSION_ENDED from a running session.
          ...(['s1', 's2', 's3'] as const).map((sessionId) => ({ type: 'BYE', sessionId })),
          ...ids.map((sessionId) => ({ type: 'SESSION_ENDED', sessionId, reason: 'closed' })),
          { type: 'END_CALL', at: 4000 },
          ...internalEvents(s as unknown as ModelSnapshot, null),
          TICK
        ]
      default:
        return []
    }
  },
  // A call filled, refused a third offer and emptied; or two calls in a row.
  depth: 6,
  maxSelfLoops: 1
}

interface SessionRecord {
  input: SessionInput
  stopped: boolean
  sendBack: (event: AnyEventObject) => void
}

interface RecordedCall {
  summary: CallSummary
  /** The viewers of the sessions started since the previous record, in order, once each. */
  viewers: string[]
  /** UNLOCKED events sent by running sessions since the previous record. */
  unlocks: number
}

interface DeviceDoubles {
  rings: RingInfo[]
  records: RecordedCall[]
  rejected: string[]
  sessions: SessionRecord[]
  /** Since the previous record: the viewers of the sessions started (in order, once each) and the unlocks sent. */
  viewers: string[]
  unlocks: number
}
const newDeviceDoubles = (): DeviceDoubles => ({ rings: [], records: [], rejected: [], sessions: [], viewers: [], unlocks: 0 })
let device = newDeviceDoubles()
const deviceUnderTest = deviceCallMachine.provide({
  actions: {
    announceRing: (_, params) => { device.rings.push({ ...params }) },
    recordCall: (_, params) => {
      device.records.push({ summary: structuredClone(params), viewers: device.viewers, unlocks: device.unlocks })
      device.viewers = []
      device.unlocks = 0
    },
    rejectOffer: (_, params) => { device.rejected.push(params.sessionId) }
  },
  actors: {
    session: fromCallback<EventObject, SessionInput>(({ input, sendBack }) => {
      const record: SessionRecord = { input, stopped: false, sendBack }
      device.sessions.push(record)
      if (!device.viewers.includes(input.viewerId)) device.viewers.push(input.viewerId)
      return () => { record.stopped = true }
    })
  }
})

function deviceHarness (): Harness<DeviceSnap> {
  const d = device = newDeviceDoubles()
  const { rings, records, rejected, sessions } = d
  const clock = new SimulatedClock()
  const timers = new Timers(clock, { ringTimeout: DEVICE_INPUT.ringTimeoutMs, maxCall: DEVICE_INPUT.maxCallMs })
  const actor = createActor(deviceUnderTest, { input: DEVICE_INPUT, clock })
  const violations: string[] = []
  const expected = { records: [] as Array<{ outcome: CallSummary['outcome'], ringId: string | null }>, rings: 0, rejected: 0, spawned: 0 }

  const inspect = (s: DeviceSnap): void => {
    timers.observe(s.value)
    const fail = (m: string) => { const v = `[${s.value}] ${m}`; if (!violations.includes(v)) violations.push(v) }
    const ids = sorted(Object.keys(s.context.sessions))
    const running = sorted(sessions.filter((r) => !r.stopped).map((r) => r.input.sessionId))
    const children = sorted(Object.keys(s.children))
    if (ids.length > DEVICE_INPUT.maxViewers || running.length > DEVICE_INPUT.maxViewers) {
      fail(`${ids.length} participants, ${running.length} sessions running (maxViewers ${DEVICE_INPUT.maxViewers})`)
    }
    if (s.value === 'inCall') {
      if (ids.length === 0) fail('in a call without sessions')
      if (JSON.stringify(running) !== JSON.stringify(ids) || JSON.stringify(children) !== JSON.stringify(ids)) {
        fail(`sessions ${ids} but running ${running}, children ${children}`)
      }
      if (s.context.callStartedAt === null) fail('in a call without a start')
    } else {
      if (ids.length > 0 || running.length > 0 || children.length > 0) fail(`sessions ${ids}, running ${running}, children ${children} outside a call`)
      if (s.context.answeredBy.length > 0 || s.context.unlocks.length > 0) fail('a call\'s answerers or unlocks outside a call')
    }
  }
  actor.subscribe(inspect)
  actor.start()
  inspect(actor.getSnapshot())

  const running = (sessionId: string): SessionRecord => {
    const found = sessions.filter((r) => r.input.sessionId === sessionId && !r.stopped)
    assert.equal(found.length, 1, `one running session ${sessionId}`)
    return found[0]!
  }
  return {
    exec ({ event, from, to }) {
      // What the model says the step must cause.
      if (from.value === 'inCall' && to.value !== 'inCall') expected.records.push({ outcome: from.context.ring === null ? 'live-view' : 'answered', ringId: from.context.ring?.ringId ?? null })
      if (from.value === 'ringing' && to.value !== 'ringing' && to.value !== 'inCall') expected.records.push({ outcome: 'missed', ringId: from.context.ring?.ringId ?? null })
      if (event.type === 'PRESS') expected.rings++
      let spawns = false
      if (event.type === 'OFFER') {
        const id = event.sessionId as string
        const known = id in from.context.sessions
        spawns = id in to.context.sessions && !known
        if (spawns) expected.spawned++
        if (from.value === 'inCall' && !known && Object.keys(from.context.sessions).length >= DEVICE_INPUT.maxViewers) expected.rejected++
      }
      if (timers.step(event, from)) {
        // time passed
      } else if (event.type === 'SESSION_ENDED' || event.type === 'UNLOCKED') {
        // These come from the session itself.
        running(event.sessionId as string).sendBack(event)
        if (event.type === 'UNLOCKED') d.unlocks++
      } else {
        actor.send(event as never)
      }
      if (spawns) {
        assert.deepEqual(sessions.at(-1)?.input, { sessionId: event.sessionId, viewerId: event.viewerId, viewerName: event.viewerName, since: event.at, sdp: event.sdp, preview: false }, 'the session is given the offer')
      }
    },
    check (model) {
      const s = actor.getSnapshot()
      inspect(s)
      assert.deepEqual(violations, [])
      assert.equal(deviceSpec.key(s), deviceSpec.key(model), 'the device call is in the model\'s state')
      assert.equal(sessions.length, expected.spawned, 'one session started per accepted offer')
      assert.equal(rejected.length, expected.rejected, 'offers refused exactly when the call is full')
      assert.equal(rings.length, expected.rings, 'every press is announced')
      // Every call that ended produced exactly one record, with its outcome.
      assert.deepEqual(records.map((r) => ({ outcome: r.summary.outcome, ringId: r.summary.ringId })), expected.records, 'one record per ended call')
      const last = records.at(-1)
      if (last) {
        const { summary } = last
        assert.deepEqual(summary.answeredBy.map((a) => a.viewerId), last.viewers, 'answeredBy: everyone who joined, once')
        assert.equal(summary.unlocks.length, last.unlocks, 'every unlock in the call is in its record')
        if (summary.outcome === 'missed') assert.equal(summary.endedAt, summary.startedAt + DEVICE_INPUT.ringTimeoutMs)
        else assert.equal(summary.endedAt, null)
      }
    },
    finish () {
      // The last call, if any, still ends with one record and leaves no session behind.
      const s = actor.getSnapshot()
      if (s.value === 'inCall') {
        const outcome = s.context.ring === null ? 'live-view' : 'answered'
        actor.send({ type: 'END_CALL', at: 9000 })
        assert.equal(actor.getSnapshot().value, 'idle')
        assert.equal(records.at(-1)?.summary.outcome, outcome)
        assert.equal(records.length, expected.records.length + 1)
      }
      assert.deepEqual(violations, [])
    },
    stop: () => actor.stop()
  }
}

// ------------------------------------------------------------------ device call: admission

/**
 * The answering side's rules, in the call machine: each offer is admitted by an `admit` actor of
 * its own; a session id is used once (while admitted or live); only the session's own viewer
 * ends it (or withdraws its offer, which stops the admission); a revoked member's sessions end,
 * the reason said first. The admission's verdict is the model's choice (the double resolves with it).
 */
const ADMISSION_INPUT = { ringTimeoutMs: 30_000, maxCallMs: 600_000, maxViewers: 2 } satisfies DeviceCallInput
/** Who offers which session, on which path; mallory reuses alice's session id. */
const OFFERS = {
  aliceS1: { viewerId: 'alice', sessionId: 's1', path: 'lan' },
  bobS2: { viewerId: 'bob', sessionId: 's2', path: 'cloud' },
  malloryS1: { viewerId: 'mallory', sessionId: 's1', path: 'direct' }
} as const satisfies Record<string, { viewerId: string, sessionId: string, path: TransportPath }>
const MEMBERS: Record<string, { memberId: string, name: string }> = {
  alice: { memberId: 'm-alice', name: 'Alice' }, bob: { memberId: 'm-bob', name: 'Bob' }, mallory: { memberId: 'm-mallory', name: 'Mallory' }
}
const offerReceived = (o: { viewerId: string, sessionId: string, path: TransportPath }): ModelEvent => ({
  type: 'OFFER_RECEIVED',
  viewerId: o.viewerId,
  path: o.path,
  at: 2000,
  offer: { type: 'offer', sessionId: o.sessionId, viewerId: o.viewerId, viewerName: o.viewerId, sdp: SDP, credential: `grant-${o.viewerId}` }
})
const admitted = (sessionId: string, viewerId: string): ModelEvent =>
  ({ type: `xstate.done.actor.${admitActorId(sessionId)}`, actorId: admitActorId(sessionId), output: { ok: true, ...MEMBERS[viewerId]! } satisfies Admission })
const refused = (sessionId: string): ModelEvent =>
  ({ type: `xstate.done.actor.${admitActorId(sessionId)}`, actorId: admitActorId(sessionId), output: { ok: false, reason: 'bad-signature', message: 'the credential is not signed by this home' } satisfies Admission })
const admissionFailed = (sessionId: string): ModelEvent =>
  ({ type: `xstate.error.actor.${admitActorId(sessionId)}`, actorId: admitActorId(sessionId), error: new Error('no key') })
const viewerBye = (sessionId: string, viewerId: string): ModelEvent => ({ type: 'VIEWER_BYE', sessionId, viewerId, reason: 'hang-up', path: 'lan' })

const admissionSpec: ModelSpec<DeviceSnap> = {
  name: 'deviceCall admission',
  machine: deviceCallMachine,
  input: ADMISSION_INPUT,
  key: (s) => JSON.stringify([
    s.value,
    sorted(Object.values(s.context.sessions).map((x) => `${x.sessionId}:${x.viewerId}:${x.memberId}:${x.path}`)),
    sorted(Object.entries(s.context.admitting).map(([id, a]) => `${id}:${a.viewerId}:${a.path}`))
  ]),
  events: (s) => {
    const admitting = Object.entries(s.context.admitting)
    const live = sorted(Object.keys(s.context.sessions))
    return [
      ...Object.values(OFFERS).map(offerReceived),
      ...admitting.flatMap(([id, a]) => [admitted(id, a.viewerId), refused(id), admissionFailed(id)]),
      viewerBye('s1', 'alice'), viewerBye('s1', 'mallory'), viewerBye('s2', 'bob'),
      ...live.map((sessionId) => ({ type: 'SESSION_ENDED', sessionId, reason: 'closed' })),
      { type: 'REVOKED', memberIds: ['m-alice'] },
      ...(s.value === 'idle' ? [{ type: 'PRESS', ringId: 'r1', at: 1000 }] : [])
    ]
  },
  // Two offers admitted or refused, a foreign bye, a revocation, and what follows.
  depth: 5,
  maxSelfLoops: 1
}

interface AdmitRecord {
  input: AdmitInput
  signal: AbortSignal
  settle: (a: Admission) => void
  fail: (e: unknown) => void
  done: boolean
}
interface AdmissionDoubles {
  admits: AdmitRecord[]
  sessions: SessionRecord[]
  /** What the machine told the device to do, in order. */
  said: string[]
}
let admission: AdmissionDoubles = { admits: [], sessions: [], said: [] }
const admissionUnderTest = deviceCallMachine.provide({
  actions: {
    rejectOffer: (_, p) => { admission.said.push(`busy ${p.sessionId} to ${p.viewerId}`) },
    refuseOffer: (_, p) => { admission.said.push(`refused ${p.sessionId} to ${p.viewerId} on ${p.path}`) },
    sayRevoked: (_, p) => { admission.said.push(`revoked ${p.sessionId} to ${p.viewerId}`) },
    ignoreReusedSession: (_, p) => { admission.said.push(`reused ${p.sessionId} by ${p.viewerId}`) },
    ignoreForeignBye: (_, p) => { admission.said.push(`foreign bye ${p.sessionId} by ${p.viewerId}`) }
  },
  actors: {
    admit: fromPromise<Admission, AdmitInput>(async ({ input, signal }) => await new Promise<Admission>((resolve, reject) => {
      const record: AdmitRecord = {
        input,
        signal,
        settle: (a) => { record.done = true; resolve(a) },
        fail: (e) => { record.done = true; reject(e) },
        done: false
      }
      admission.admits.push(record)
    })),
    session: fromCallback<EventObject, SessionInput>(({ input, sendBack }) => {
      const record: SessionRecord = { input, stopped: false, sendBack }
      admission.sessions.push(record)
      return () => {
        record.stopped = true
        admission.said.push(`session ${input.sessionId} stopped`)
      }
    })
  }
})

function admissionHarness (): Harness<DeviceSnap> {
  const d: AdmissionDoubles = admission = { admits: [], sessions: [], said: [] }
  const clock = new SimulatedClock()
  const actor = createActor(admissionUnderTest, { input: ADMISSION_INPUT, clock })
  const violations: string[] = []
  const inspect = (s: DeviceSnap): void => {
    const fail = (m: string) => { const v = `[${JSON.stringify(s.value)}] ${m}`; if (!violations.includes(v)) violations.push(v) }
    // One admission actor per offer being admitted, and none left once it is decided or withdrawn.
    const admitting = sorted(Object.keys(s.context.admitting))
    const pending = sorted(d.admits.filter((a) => !a.done && !a.signal.aborted).map((a) => a.input.offer.sessionId))
    const admitChildren = sorted(Object.keys(s.children).filter((id) => id.startsWith('admit:')).map((id) => id.slice('admit:'.length)))
    if (JSON.stringify(admitting) !== JSON.stringify(pending) || JSON.stringify(admitting) !== JSON.stringify(admitChildren)) {
      fail(`admitting ${admitting}, admissions pending ${pending}, admit children ${admitChildren}`)
    }
    // A session exists only for an admitted offer, with the member and path of its admission.
    for (const x of Object.values(s.context.sessions)) {
      const offer = Object.values(OFFERS).find((o) => o.sessionId === x.sessionId && o.viewerId === x.viewerId)
      if (!offer || x.memberId !== MEMBERS[x.viewerId]!.memberId || x.path !== offer.path || x.viewerName !== MEMBERS[x.viewerId]!.name) {
        fail(`session ${JSON.stringify(x)} is not its admission's`)
      }
    }
    const running = sorted(d.sessions.filter((r) => !r.stopped).map((r) => r.input.sessionId))
    if (JSON.stringify(running) !== JSON.stringify(sorted(Object.keys(s.context.sessions)))) fail(`sessions running ${running}`)
  }
  actor.subscribe(inspect)
  actor.start()
  inspect(actor.getSnapshot())

  return {
    async exec ({ event, from, to }) {
      const said = d.said.length
      const expected: string[] = []
      const type = event.type
      if (type === 'OFFER_RECEIVED') {
        const offer = event.offer as { sessionId: string }
        const admitsBefore = d.admits.length
        actor.send(event as never)
        const used = offer.sessionId in from.context.admitting || offer.sessionId in from.context.sessions
        // A session id is used once: while it is admitted or live, another offer for it starts nothing.
        assert.equal(d.admits.length - admitsBefore, used ? 0 : 1, 'an admission starts exactly for an unused session id')
        if (used) expected.push(`reused ${offer.sessionId} by ${event.viewerId as string}`)
        else assert.deepEqual(d.admits.at(-1)!.input, { viewerId: event.viewerId, offer: event.offer }, 'the admission is given the offer')
      } else if (type.startsWith('xstate.done.actor.') || type.startsWith('xstate.error.actor.')) {
        const sessionId = (event.actorId as string).slice('admit:'.length)
        const record = d.admits.filter((a) => a.input.offer.sessionId === sessionId && !a.done && !a.signal.aborted)
        assert.equal(record.length, 1, `one admission pending for ${sessionId}`)
        const pending = from.context.admitting[sessionId]!
        const output = event.output as Admission | undefined
        if (output?.ok === true) {
          const full = Object.keys(from.context.sessions).length >= ADMISSION_INPUT.maxViewers
          if (full && from.value === 'inCall') expected.push(`busy ${sessionId} to ${pending.viewerId}`)
          record[0]!.settle(output)
        } else {
          expected.push(`refused ${sessionId} to ${pending.viewerId} on ${pending.path}`)
          if (output) record[0]!.settle(output)
          else record[0]!.fail(event.error)
        }
        await settle()
      } else if (type === 'VIEWER_BYE') {
        const sessionId = event.sessionId as string
        const owner = from.context.admitting[sessionId]?.viewerId ?? from.context.sessions[sessionId]?.viewerId
        const withdrawn = from.context.admitting[sessionId] !== undefined && owner === event.viewerId
        const admission = d.admits.find((a) => a.input.offer.sessionId === sessionId && !a.done && !a.signal.aborted)
        actor.send(event as never)
        if (owner !== undefined && owner !== event.viewerId) {
          // Only the owner ends a session: a foreign bye changes nothing.
          expected.push(`foreign bye ${sessionId} by ${event.viewerId as string}`)
          assert.equal(to.context.sessions[sessionId]?.viewerId ?? to.context.admitting[sessionId]?.viewerId, owner, 'the owner\'s session stays')
        } else if (from.context.sessions[sessionId]) {
          expected.push(`session ${sessionId} stopped`)
        }
        if (withdrawn) assert.equal(admission?.signal.aborted, true, 'a withdrawn offer\'s admission is aborted')
      } else if (type === 'SESSION_ENDED') {
        const record = d.sessions.filter((r) => r.input.sessionId === event.sessionId && !r.stopped)
        assert.equal(record.length, 1)
        record[0]!.sendBack(event)
        expected.push(`session ${event.sessionId as string} stopped`)
      } else if (type === 'REVOKED') {
        actor.send(event as never)
        const gone = Object.values(from.context.sessions).filter((x) => x.memberId === 'm-alice')
        // The reason first, then each session stops (and says its own bye).
        for (const x of gone) expected.push(`revoked ${x.sessionId} to ${x.viewerId}`)
        for (const x of gone) expected.push(`session ${x.sessionId} stopped`)
        for (const x of gone) assert.equal(x.sessionId in to.context.sessions, false, 'a revoked member\'s session ends')
      } else {
        actor.send(event as never)
      }
      assert.deepEqual(d.said.slice(said), expected, 'what the machine told the device')
    },
    check (model) {
      const s = actor.getSnapshot()
      inspect(s)
      assert.deepEqual(violations, [])
      assert.equal(admissionSpec.key(s), admissionSpec.key(model), 'the device call is in the model\'s state')
    },
    finish () {
      assert.deepEqual(violations, [])
    },
    stop: () => actor.stop()
  }
}

// ------------------------------------------------------------------ viewer call

type ViewerSnap = SnapshotFrom<typeof viewerCallMachine>
const VIEWER_INPUT = { deviceId: 'front-door', connectTimeoutMs: 10_000, commandTimeoutMs: 3000 } satisfies ViewerCallInput

const inCall = (ringId: string): DeviceState => deviceState({
  call: { status: 'in-call', ringId }, participants: [{ sessionId: 'x1', viewerId: 'carol', viewerName: 'Carol', since: 1500 }]
})
/** Retained device states: a new ring, the ring over (missed, answered elsewhere), a call on the same ring. */
const DEVICE_STATES: Record<string, DeviceState> = {
  ringingR2: deviceState({ call: { status: 'ringing', ringId: 'r2', since: 5000 } }),
  idleMissed: deviceState({ lastRing: { ringId: 'r1', at: 1000, outcome: 'missed' } }),
  idleAnswered: deviceState({ lastRing: { ringId: 'r1', at: 1000, outcome: 'answered' }, lock: lockState({ version: 9 }) }),
  inCallR1: inCall('r1')
}
const deviceStateEvents = (names: string[]): ModelEvent[] => names.map((name) => ({ type: 'DEVICE_STATE', state: DEVICE_STATES[name]! }))
const reply = (r: Reply): ModelEvent => ({ type: 'REPLY', reply: r })
const ACK_C1 = reply({ type: 'ack', id: 'c1', lock: lockState({ status: 'unlocking', version: 11 }) })
const NACK_C1 = reply({ type: 'nack', id: 'c1', error: { code: 'lock-fault', message: 'The lock is not answering.' } })
const ACK_OTHER = reply({ type: 'ack', id: 'c0', lock: lockState({ status: 'unlocked', version: 12 }) })
const LOCK_REPORT = reply({ type: 'lock', lock: lockState({ status: 'relocking', version: 13 }) })

const viewerSpec: ModelSpec<ViewerSnap> = {
  name: 'viewerCall',
  machine: viewerCallMachine,
  input: VIEWER_INPUT,
  key: (s) => {
    const c = s.context
    return JSON.stringify([s.value, c.ring?.ringId ?? null, c.sessionId, c.endReason, c.error, c.pendingCommand, c.commandError, c.dismissedRingId])
  },
  events: (s) => {
    const timers = internalEvents(s as unknown as ModelSnapshot, null)
    const ending: ModelEvent[] = [{ type: 'HANGUP' }, { type: 'FAILED', message: 'ICE failed' }]
    if (s.matches('idle')) {
      return [{ type: 'RING', ring: ringEvent() }, ...deviceStateEvents(Object.keys(DEVICE_STATES)), { type: 'WATCH', sessionId: 'w1' }]
    }
    if (s.matches('incoming')) {
      return [
        { type: 'RING', ring: ringEvent({ count: 2 }) }, { type: 'ANSWER', sessionId: 'a1' }, { type: 'DISMISS' },
        ...deviceStateEvents(Object.keys(DEVICE_STATES))
      ]
    }
    if (s.matches('ended')) {
      return [{ type: 'RING', ring: ringEvent() }, ...deviceStateEvents(Object.keys(DEVICE_STATES)), { type: 'WATCH', sessionId: 'w1' }, { type: 'DISMISS' }]
    }
    if (s.matches({ active: 'connecting' })) {
      return [
        { type: 'CONNECTED' }, ...ending, { type: 'REMOTE_BYE', reason: 'busy', message: 'The call is full.' }, { type: 'REMOTE_BYE', reason: 'rejected' },
        { type: 'UNLOCK', commandId: 'c1' }, ...timers, TICK
      ]
    }
    if (s.matches({ active: { connected: 'ready' } })) {
      return [
        { type: 'UNLOCK', commandId: 'c1' }, ...ending, { type: 'REMOTE_BYE', reason: 'hang-up' },
        LOCK_REPORT, ...deviceStateEvents(['inCallR1']), TICK
      ]
    }
    if (s.matches({ active: { connected: 'commandPending' } })) {
      return [
        ACK_C1, NACK_C1, ACK_OTHER, { type: 'UNLOCK', commandId: 'c2' }, ...ending, { type: 'REMOTE_BYE', reason: 'device-ended' },
        ...timers, TICK
      ]
    }
    return []
  },
  // Ring, answer, connect, open the door, its reply; every other transition by the shortest way there.
  depth: 5,
  maxSelfLoops: 1
}

interface CallRecord {
  input: CallActorInput
  received: EventObject[]
  stopped: boolean
  sendBack: (event: AnyEventObject) => void
}

interface ViewerDoubles { alerts: Array<RingEvent | null>, silences: number, calls: CallRecord[] }
let viewer: ViewerDoubles = { alerts: [], silences: 0, calls: [] }
const viewerUnderTest = viewerCallMachine.provide({
  actions: {
    alert: (_, params) => { viewer.alerts.push(params.ring) },
    silence: () => { viewer.silences++ }
  },
  actors: {
    call: fromCallback<EventObject, CallActorInput>(({ input, receive, sendBack }) => {
      const record: CallRecord = { input, received: [], stopped: false, sendBack }
      receive((event) => { record.received.push(event) })
      viewer.calls.push(record)
      return () => { record.stopped = true }
    })
  }
})

/** `dismissed`: also check that a ring the resident dismissed never alerts again. */
function viewerHarness (options: { dismissed: boolean } = { dismissed: false }): Harness<ViewerSnap> {
  const v: ViewerDoubles = viewer = { alerts: [], silences: 0, calls: [] }
  const { alerts, calls } = v
  const clock = new SimulatedClock()
  const timers = new Timers(clock, { connectTimeout: VIEWER_INPUT.connectTimeoutMs, commandTimeout: VIEWER_INPUT.commandTimeoutMs })
  const actor = createActor(viewerUnderTest, { input: VIEWER_INPUT, clock })
  const violations: string[] = []
  let door: LockState | null = null

  const inspect = (s: ViewerSnap): void => {
    timers.observe(JSON.stringify(s.value))
    const where = JSON.stringify(s.value)
    const fail = (m: string) => { const v = `[${where}] ${m}`; if (!violations.includes(v)) violations.push(v) }
    const c = s.context
    const running = calls.filter((r) => !r.stopped)
    if (s.matches('ended') && c.endReason === null) fail('ended without a reason')
    if (s.matches('active')) {
      if (running.length !== 1 || running[0]!.input.sessionId !== c.sessionId || !('call' in s.children)) {
        fail(`${running.length} call actors running (${running.map((r) => r.input.sessionId)}) for session ${c.sessionId}`)
      }
    } else if (running.length > 0 || 'call' in s.children) {
      fail(`${running.length} call actors running outside a call`)
    }
    const pendingState = s.matches({ active: { connected: 'commandPending' } })
    if ((c.pendingCommand !== null) !== pendingState) fail(`pendingCommand ${c.pendingCommand}`)
    // The alert sounds exactly while the call is incoming.
    if (alerts.length - v.silences !== (s.matches('incoming') ? 1 : 0)) fail(`${alerts.length} alerts, ${v.silences} silences`)
    // The door only moves forward within one boot of the device.
    if (door !== null && c.door !== null && c.door.boot === door.boot && c.door.version < door.version) {
      fail(`door went back from version ${door.version} to ${c.door.version}`)
    }
    door = c.door
    if (options.dismissed && s.matches('incoming') && c.ring !== null && c.ring.ringId === c.dismissedRingId) {
      fail(`alerting for ring ${c.ring.ringId}, which the resident dismissed`)
    }
  }
  actor.subscribe(inspect)
  actor.start()
  inspect(actor.getSnapshot())

  const call = (): CallRecord => {
    const running = calls.filter((r) => !r.stopped)
    assert.equal(running.length, 1, 'one call actor running')
    return running[0]!
  }
  return {
    exec ({ event, from, to }) {
      if (timers.step(event, from)) {
        // time passed
      } else if (['CONNECTED', 'FAILED', 'REMOTE_BYE', 'REPLY'].includes(event.type)) {
        // These come from the call actor.
        call().sendBack(event)
      } else if (event.type === 'UNLOCK') {
        const sent = from.matches('active') ? call().received.length : 0
        actor.send(event as never)
        const expectSend = to.matches({ active: { connected: 'commandPending' } }) && !from.matches({ active: { connected: 'commandPending' } })
        if (from.matches('active')) {
          assert.deepEqual(call().received.slice(sent), expectSend ? [{ type: 'SEND_COMMAND', command: { type: 'unlock', id: event.commandId } }] : [], 'an unlock is sent exactly when it starts a command')
        }
      } else {
        actor.send(event as never)
      }
      if (to.matches('active') && !from.matches('active')) {
        assert.deepEqual(call().input, { deviceId: VIEWER_INPUT.deviceId, sessionId: event.sessionId, preview: false }, 'the call actor is given the session')
      }
    },
    check (model) {
      inspect(actor.getSnapshot())
      assert.deepEqual(violations, [])
      assert.equal(viewerSpec.key(actor.getSnapshot()), viewerSpec.key(model), 'the viewer call is in the model\'s state')
    },
    finish () {
      assert.deepEqual(violations, [])
    },
    stop: () => actor.stop()
  }
}

// ------------------------------------------------------------------ link

type LinkSnap = SnapshotFrom<typeof linkMachine>
const LINK_INPUT = { lanGraceMs: 3000, cloudTimeoutMs: 15_000, backoffMinMs: 1000, backoffMaxMs: 8000 } satisfies LinkInput
/** From this many rounds on, the backoff is at its cap: more rounds change nothing the model can see. */
const LINK_ATTEMPT_CAP = 4
const linkPath = (s: LinkSnap): 'lan' | 'direct' | 'cloud' | null => {
  const v = s.value
  return typeof v === 'object' ? Object.keys(v)[0] as 'lan' | 'direct' | 'cloud' : null
}

const linkSpec: ModelSpec<LinkSnap> = {
  name: 'link',
  machine: linkMachine,
  input: LINK_INPUT,
  key: (s) => JSON.stringify([s.value, Math.min(s.context.attempt, LINK_ATTEMPT_CAP), s.context.lastError]),
  // The hub's actor lives in every state; direct's and the cloud's speak only while their state (and so their actor) does.
  events: (s) => [
    { type: 'LAN_UP' },
    { type: 'LAN_DOWN' },
    ...(linkPath(s) === 'direct' ? [{ type: 'DIRECT_UP' }, { type: 'DIRECT_DOWN' }, { type: 'DIRECT_FAILED', message: 'no doorbell answered' }] : []),
    ...(linkPath(s) === 'cloud' ? [{ type: 'CLOUD_UP' }, { type: 'CLOUD_DOWN' }, { type: 'CLOUD_FAILED', message: 'credentials refused' }] : []),
    ...internalEvents(s as unknown as ModelSnapshot, null),
    TICK
  ],
  depth: 5,
  maxSelfLoops: 1
}

/** One invoked path actor of the machine under test: how often it was started and stopped, and its sendBack while it lives. */
interface PathDouble { started: number, stopped: number, sendBack: ((e: AnyEventObject) => void) | null }

let linkDoubles: Record<'lan' | 'direct' | 'cloud', PathDouble> = { lan: newDouble(), direct: newDouble(), cloud: newDouble() }
function newDouble (): PathDouble { return { started: 0, stopped: 0, sendBack: null } }
const pathDouble = (name: 'lan' | 'direct' | 'cloud') => fromCallback(({ sendBack }) => {
  const d = linkDoubles[name]
  d.started++
  d.sendBack = sendBack
  return () => { d.stopped++; d.sendBack = null }
})
const linkUnderTest = linkMachine.provide({ actors: { lan: pathDouble('lan'), direct: pathDouble('direct'), cloud: pathDouble('cloud') } })

function linkHarness (): Harness<LinkSnap> {
  const doubles = linkDoubles = { lan: newDouble(), direct: newDouble(), cloud: newDouble() }
  const clock = new SimulatedClock()
  const delays = { lanGrace: LINK_INPUT.lanGraceMs, cloudTimeout: LINK_INPUT.cloudTimeoutMs, backoff: 0 }
  const timers = new Timers(clock, delays)
  const actor = createActor(linkUnderTest, { input: LINK_INPUT, clock })
  const violations: string[] = []
  let lastValue = ''
  let enteredAt = 0
  /** Entries into each path's state, counted from the snapshots. */
  const entries = { lan: 0, direct: 0, cloud: 0 }
  let lastPath: string | null = null

  const inspect = (s: LinkSnap): void => {
    const value = JSON.stringify(s.value)
    if (value !== lastValue) {
      lastValue = value
      enteredAt = clock.now()
      const path = linkPath(s)
      if (path !== null && path !== lastPath) entries[path]++
      lastPath = path
    }
    timers.observe(`${value}:${entries.lan + entries.direct + entries.cloud}:${enteredAt}`)
    const fail = (m: string) => { const v = `[${value} at ${clock.now()} ms] ${m}`; if (!violations.includes(v)) violations.push(v) }
    const path = linkPath(s)
    const up = path !== null && s.matches({ [path]: 'up' } as never)
    // One source of truth: the path in use is the one whose state is up, and nothing else.
    if (pathOf(s.value) !== (up ? path : null)) fail(`pathOf says ${pathOf(s.value)}`)
    if (up && (s.context.attempt !== 0 || s.context.lastError !== null)) fail(`up with attempt ${s.context.attempt}, lastError ${s.context.lastError}`)
    if (s.value === 'offline' && s.context.attempt < 1) fail('offline without counting the round')
    // The hub's actor: started once, alive in every state.
    if (doubles.lan.started !== 1 || doubles.lan.stopped !== 0) fail(`the hub's actor started ${doubles.lan.started} times, stopped ${doubles.lan.stopped}`)
    // Direct's and the cloud's: alive exactly in their state, a fresh one on each entry.
    for (const p of ['direct', 'cloud'] as const) {
      const alive = doubles[p].started - doubles[p].stopped
      if (alive !== (path === p ? 1 : 0)) fail(`${alive} ${p} actors alive`)
      if (doubles[p].started !== entries[p]) fail(`${p} started ${doubles[p].started} times for ${entries[p]} entries`)
    }
    const deadline = s.matches({ lan: 'connecting' }) ? LINK_INPUT.lanGraceMs
      : s.matches({ cloud: 'connecting' }) ? LINK_INPUT.cloudTimeoutMs
        : s.value === 'offline' ? backoffMs(s.context.attempt, LINK_INPUT.backoffMinMs, LINK_INPUT.backoffMaxMs) : null
    if (deadline !== null && clock.now() - enteredAt >= deadline) fail(`still here ${clock.now() - enteredAt} ms after entering (deadline ${deadline} ms)`)
  }
  actor.subscribe(inspect)
  actor.start()
  inspect(actor.getSnapshot())

  return {
    async exec ({ event }) {
      delays.backoff = backoffMs(actor.getSnapshot().context.attempt, LINK_INPUT.backoffMinMs, LINK_INPUT.backoffMaxMs)
      if (timers.step(event, actor.getSnapshot())) return
      const from = event.type.startsWith('LAN_') ? 'lan' : event.type.startsWith('DIRECT_') ? 'direct' : event.type.startsWith('CLOUD_') ? 'cloud' : null
      assert.ok(from !== null, `unknown step ${event.type}`)
      const sendBack = doubles[from].sendBack
      assert.ok(sendBack, `the ${from} actor is alive to send ${event.type}`)
      sendBack(event)
      await settle()
    },
    check (model) {
      const s = actor.getSnapshot()
      inspect(s)
      assert.deepEqual(violations, [])
      assert.equal(linkSpec.key(s), linkSpec.key(model), 'the link is in the model\'s state')
    },
    finish () {
      // Every timed state leaves at its deadline exactly: not 1 ms before, and by then.
      const s = actor.getSnapshot()
      const deadline = s.matches({ lan: 'connecting' }) ? LINK_INPUT.lanGraceMs
        : s.matches({ cloud: 'connecting' }) ? LINK_INPUT.cloudTimeoutMs
          : s.value === 'offline' ? backoffMs(s.context.attempt, LINK_INPUT.backoffMinMs, LINK_INPUT.backoffMaxMs) : null
      if (deadline !== null) {
        const before = JSON.stringify(s.value)
        clock.increment(enteredAt + deadline - 1 - clock.now())
        assert.equal(JSON.stringify(actor.getSnapshot().value), before, `still ${before} 1 ms before its deadline`)
        clock.increment(1)
        assert.notEqual(JSON.stringify(actor.getSnapshot().value), before, `left ${before} at its deadline`)
      }
      assert.deepEqual(violations, [])
      actor.stop()
      assert.deepEqual([doubles.lan.stopped, doubles.direct.started - doubles.direct.stopped, doubles.cloud.started - doubles.cloud.stopped], [1, 0, 0], 'stopping the machine stops every path\'s actor')
    },
    stop: () => actor.stop()
  }
}

// ------------------------------------------------------------------ the tests

const lockModel = buildModel(lockSpec)
const deviceModel = buildModel(deviceSpec)
const admissionModel = buildModel(admissionSpec)
const viewerModel = buildModel(viewerSpec)
const linkModel = buildModel(linkSpec)

const summary = (name: string, m: Model<unknown>, depth: number): string =>
  `${name}: ${m.paths.length} paths (${m.stats.walks} walks of up to ${depth} steps + ${m.stats.extra} to reach the rest of the ` +
  `${m.stats.transitions} transitions between ${m.stats.states} abstract states; longest ${m.stats.longest} steps)`

describe('model-based: every path of each machine, invariants in every state', () => {
  test(`lock: ${lockModel.paths.length} paths`, async (t) => {
    t.diagnostic(summary('lock', lockModel, lockSpec.depth))
    await replay(lockModel, lockHarness, lockSpec.key)
  })

  test(`deviceCall: ${deviceModel.paths.length} paths`, async (t) => {
    t.diagnostic(summary('deviceCall', deviceModel, deviceSpec.depth))
    await replay(deviceModel, deviceHarness, deviceSpec.key)
  })

  test(`deviceCall admission: ${admissionModel.paths.length} paths`, async (t) => {
    t.diagnostic(summary('deviceCall admission', admissionModel, admissionSpec.depth))
    await replay(admissionModel, admissionHarness, admissionSpec.key)
  })

  test(`viewerCall: ${viewerModel.paths.length} paths`, async (t) => {
    t.diagnostic(summary('viewerCall', viewerModel, viewerSpec.depth))
    await replay(viewerModel, () => viewerHarness(), viewerSpec.key)
  })

  test(`link: ${linkModel.paths.length} paths`, async (t) => {
    t.diagnostic(summary('link', linkModel, linkSpec.depth))
    await replay(linkModel, linkHarness, linkSpec.key)
  })

  // Regression, found by this model: `incoming` took any RING, without the `isNotDismissed` guard that idle
  // and ended have. Dismiss ring r1, let ring r2 come in, then a late RING for r1 (its re-press, count 2)
  // replaced r2 and alerted for r1 again, although the resident had dismissed it.
  test(`viewerCall: ${viewerModel.paths.length} paths, a dismissed ring never alerts again`, async () => {
    await replay(viewerModel, () => viewerHarness({ dismissed: true }), viewerSpec.key)
  })
})
