/**
 * Model-based tests of the live preview (issue 21), both sides: the paths are generated from the
 * machine definitions (modelKit.ts: xstate/graph, replayed on a real actor on a SimulatedClock),
 * and in every state reached on every path:
 * - no preview session outlives the ring: on the device a preview exists only while it rings; on
 *   the viewer a preview call actor runs only in the ring banner, or as the call it became;
 * - never audio before answer: the device opens a session's audio only when its viewer answers
 *   on it, and only into the call; the viewer asks for audio only on Answer, on the same actor
 *   (no second connection);
 * - previews count against the viewer cap; a preview over the cap, with preview off, or with no
 *   ring is refused, and said why.
 *
 * Each invariant was seen to fail: dropping `stopPreviews` from the ring's timeout, letting
 * `hasRoom` ignore previews, opening audio in `addSession` for previews, or spawning a new call
 * actor on Answer from the preview each failed a path here.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromCallback, type AnyEventObject, type EventObject, type SnapshotFrom } from 'xstate'
import { deviceCallMachine, type DeviceCallInput, type PreviewsEnd, type RejectReason, type SessionInput } from '../src/deviceCall'
import { viewerCallMachine, type CallActorInput, type ViewerCallInput } from '../src/viewerCall'
import { deviceState, ringEvent } from './fixtures'
import { TICK, Timers, buildModel, internalEvents, replay, sorted, type Harness, type ModelEvent, type ModelSnapshot, type ModelSpec } from './modelKit'

// ------------------------------------------------------------------ the device

type DeviceSnap = SnapshotFrom<typeof deviceCallMachine>
const DEVICE_INPUT = { ringTimeoutMs: 30_000, maxCallMs: 600_000, maxViewers: 2 } satisfies DeviceCallInput
const SDP = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n'
/** p1..p3: three screens' previews (p3 is over the cap of 2); a1: a screen that answers without one; s2: one that joins. */
const SCREENS: Record<string, [string, string]> = { p1: ['kitchen', 'Kitchen'], p2: ['hall', 'Hall'], p3: ['office', 'Office'], a1: ['phone', 'Phone'], s2: ['tablet', 'Tablet'] }
const offer = (sessionId: string, preview: boolean): ModelEvent => ({
  type: 'OFFER', sessionId, viewerId: SCREENS[sessionId]![0], viewerName: SCREENS[sessionId]![1], sdp: SDP, at: 2000, ...(preview ? { preview: true } : {})
})
const isPreview = (s: DeviceSnap, id: string): boolean => s.context.sessions[id]?.preview === true

const deviceSpec: ModelSpec<DeviceSnap> = {
  name: 'deviceCall preview',
  machine: deviceCallMachine,
  input: DEVICE_INPUT,
  key: (s) => JSON.stringify([
    s.value,
    s.context.ring?.ringId ?? null,
    sorted(Object.entries(s.context.sessions).map(([id, x]) => `${id}${x.preview ? ':preview' : ''}`)),
    s.context.lastRing?.outcome ?? null
  ]),
  events: (s) => {
    const ids = sorted(Object.keys(s.context.sessions))
    const timers = internalEvents(s as unknown as ModelSnapshot, null)
    switch (s.value) {
      case 'idle':
        return [{ type: 'PRESS', ringId: 'r1', at: 1000 }, offer('p1', true), offer('s2', false)]
      case 'ringing':
        return [
          offer('p1', true), offer('p2', true), offer('p3', true), offer('a1', false),
          // Answer on a preview (from the session itself), and a TAKE_CALL for a session that is not one.
          ...ids.map((sessionId) => ({ type: 'TAKE_CALL', sessionId, at: 2500 })), { type: 'TAKE_CALL', sessionId: 'a1', at: 2500 },
          ...ids.slice(0, 1).map((sessionId) => ({ type: 'BYE', sessionId })),
          ...ids.slice(-1).map((sessionId) => ({ type: 'SESSION_ENDED', sessionId, reason: 'closed' })),
          { type: 'PRESS', ringId: 'r1', at: 1500 }, ...timers, TICK
        ]
      case 'inCall':
        return [
          offer('p3', true), offer('s2', false),
          ...ids.map((sessionId) => ({ type: 'BYE', sessionId })),
          ...ids.map((sessionId) => ({ type: 'TAKE_CALL', sessionId, at: 3000 })),
          { type: 'END_CALL', at: 4000 }, ...timers, TICK
        ]
      default:
        return []
    }
  },
  // Three screens preview, one answers on its preview; or the ring is missed with previews up.
  depth: 5,
  maxSelfLoops: 1
}

interface SessionDouble { input: SessionInput, stopped: boolean, audio: boolean, sendBack: (e: AnyEventObject) => void }
interface DeviceDoubles { sessions: SessionDouble[], rejected: Array<{ sessionId: string, reason: RejectReason }>, ended: PreviewsEnd[] }
let device: DeviceDoubles = { sessions: [], rejected: [], ended: [] }
const deviceUnderTest = deviceCallMachine.provide({
  actions: {
    rejectOffer: (_, p) => { device.rejected.push({ sessionId: p.sessionId, reason: p.reason }) },
    endPreviews: (_, p) => {
      // Told before the session stops (its own bye follows).
      for (const { sessionId } of p.previews) assert.ok(device.sessions.some((d) => d.input.sessionId === sessionId && !d.stopped), `${sessionId} told why while still running`)
      if (p.previews.length > 0) device.ended.push(structuredClone(p))
    }
  },
  actors: {
    session: fromCallback<EventObject, SessionInput>(({ input, sendBack, receive }) => {
      const d: SessionDouble = { input, stopped: false, audio: !input.preview, sendBack }
      receive((e) => { if (e.type === 'OPEN_AUDIO') d.audio = true })
      device.sessions.push(d)
      return () => { d.stopped = true }
    })
  }
})

function deviceHarness (): Harness<DeviceSnap> {
  const d: DeviceDoubles = device = { sessions: [], rejected: [], ended: [] }
  const clock = new SimulatedClock()
  const timers = new Timers(clock, { ringTimeout: DEVICE_INPUT.ringTimeoutMs, maxCall: DEVICE_INPUT.maxCallMs })
  const actor = createActor(deviceUnderTest, { input: DEVICE_INPUT, clock })
  const violations: string[] = []
  const expected = { rejected: [] as Array<{ sessionId: string, reason: RejectReason }>, ended: 0 }

  const inspect = (s: DeviceSnap): void => {
    timers.observe(s.value as string)
    const fail = (m: string): void => { const v = `[${String(s.value)}] ${m}`; if (!violations.includes(v)) violations.push(v) }
    const running = d.sessions.filter((x) => !x.stopped)
    const ids = sorted(Object.keys(s.context.sessions))
    if (JSON.stringify(sorted(running.map((x) => x.input.sessionId))) !== JSON.stringify(ids)) fail(`sessions ${ids}, running ${running.map((x) => x.input.sessionId)}`)
    if (running.length > DEVICE_INPUT.maxViewers) fail(`${running.length} sessions over the cap of ${DEVICE_INPUT.maxViewers}`)
    // No preview outlives the ring: previews only while it rings, and nothing else then.
    if (s.value !== 'ringing' && Object.values(s.context.sessions).some((x) => x.preview)) fail('a preview session outside the ring')
    if (s.value === 'ringing' && running.some((x) => !x.input.preview)) fail('a call session while it still rings')
    // Never audio before answer: no session hears or is heard while it rings; in the call, every one does.
    if (s.value === 'ringing' && running.some((x) => x.audio)) fail('audio opened while it rings')
    if (s.value === 'inCall' && running.some((x) => !x.audio)) fail('a session in the call without audio')
    if (s.value === 'inCall' && s.context.answeredBy.length === 0) fail('a call answered by nobody')
    if (s.value === 'ringing' && s.context.answeredBy.length > 0) fail('a preview among the answerers')
  }
  actor.subscribe(inspect)
  actor.start()
  inspect(actor.getSnapshot())

  return {
    exec ({ event, from, to }) {
      const previewsBefore = Object.values(from.context.sessions).filter((x) => x.preview).length
      if (event.type === 'OFFER') {
        const id = event.sessionId as string
        const count = Object.keys(from.context.sessions).length
        if (event.preview === true && from.value !== 'ringing') expected.rejected.push({ sessionId: id, reason: 'ring-over' })
        else if (event.preview === true && !(id in from.context.sessions) && count >= DEVICE_INPUT.maxViewers) expected.rejected.push({ sessionId: id, reason: 'busy' })
        else if (event.preview !== true && from.value === 'inCall' && !(id in from.context.sessions) && count >= DEVICE_INPUT.maxViewers) expected.rejected.push({ sessionId: id, reason: 'busy' })
      }
      if (from.value === 'ringing' && to.value !== 'ringing' && previewsBefore > Object.values(to.context.sessions).filter((x) => x.preview).length) {
        const kept = event.type === 'TAKE_CALL' ? 1 : 0
        if (previewsBefore - kept > 0) expected.ended++
      }
      if (timers.step(event, from)) return
      if (event.type === 'TAKE_CALL' || event.type === 'SESSION_ENDED') {
        const d0 = d.sessions.find((x) => x.input.sessionId === event.sessionId && !x.stopped)
        if (d0) d0.sendBack(event)
        else actor.send(event as never)
        if (event.type === 'TAKE_CALL' && isPreview(from, event.sessionId as string)) {
          // Answered on the preview: the same session, no new one.
          assert.equal(d.sessions.filter((x) => x.input.sessionId === event.sessionId && !x.stopped).length, 1, 'answered on the preview: no second session')
          assert.ok(d.sessions.find((x) => x.input.sessionId === event.sessionId && !x.stopped)?.audio, 'its audio opened at Answer')
        }
        return
      }
      actor.send(event as never)
    },
    check (model) {
      const s = actor.getSnapshot()
      inspect(s)
      assert.deepEqual(violations, [])
      assert.equal(deviceSpec.key(s), deviceSpec.key(model), 'the device call is in the model\'s state')
      assert.deepEqual(d.rejected, expected.rejected, 'previews refused exactly over the cap or outside the ring, and said why')
      assert.equal(d.ended.length, expected.ended, 'the previews a ring\'s end closes are told why, once')
      for (const e of d.ended) if (e.why === 'answered') assert.ok(e.by !== null, 'answered: says by whom')
    },
    finish () {
      // However the path ends, ending the ring and the call leaves no session behind.
      actor.send({ type: 'END_CALL', at: 9000 })
      if (actor.getSnapshot().value === 'ringing') clock.increment(DEVICE_INPUT.ringTimeoutMs)
      assert.equal(actor.getSnapshot().value, 'idle')
      assert.equal(d.sessions.filter((x) => !x.stopped).length, 0, 'no session outlives the ring or the call')
      assert.deepEqual(violations, [])
    },
    stop: () => { actor.stop() }
  }
}

// ------------------------------------------------------------------ the viewer

type ViewerSnap = SnapshotFrom<typeof viewerCallMachine>
const VIEWER_INPUT = { deviceId: 'front-door', connectTimeoutMs: 10_000, commandTimeoutMs: 3000, preview: true } satisfies ViewerCallInput
const STATES = {
  ringing: deviceState({ call: { status: 'ringing', ringId: 'r1', since: 1000 }, at: 1100 }),
  answeredElsewhere: deviceState({ call: { status: 'in-call', ringId: 'r1', since: 2000 }, participants: [{ sessionId: 'x1', viewerId: 'hall', viewerName: 'Hall', since: 2000 }], lastRing: { ringId: 'r1', at: 1000, outcome: 'answered' }, at: 2100 }),
  missed: deviceState({ lastRing: { ringId: 'r1', at: 1000, outcome: 'missed' }, at: 31_000 })
}
const stateEvent = (name: keyof typeof STATES): ModelEvent => ({ type: 'DEVICE_STATE', state: STATES[name] })

const viewerSpec: ModelSpec<ViewerSnap> = {
  name: 'viewerCall preview',
  machine: viewerCallMachine,
  input: VIEWER_INPUT,
  key: (s) => JSON.stringify([s.value, s.context.ring?.ringId ?? null, s.context.device?.at ?? null, s.context.sessionId, s.context.previewing, s.context.previewNote, s.context.endReason, s.context.fallbackSessionId]),
  events: (s) => {
    const timers = internalEvents(s as unknown as ModelSnapshot, null)
    if (s.matches('idle')) return [{ type: 'RING', ring: ringEvent() }, { type: 'RING', ring: ringEvent({ ringId: 'r2', at: 50_000, livePreview: false }) }]
    if (s.matches({ incoming: 'snapshot' })) {
      return [{ type: 'PREVIEW', sessionId: 'p1' }, { type: 'ANSWER', sessionId: 'a1' }, { type: 'DISMISS' }, stateEvent('answeredElsewhere'), stateEvent('missed')]
    }
    if (s.matches('incoming')) {
      return [
        { type: 'CONNECTED' }, { type: 'ANSWER', sessionId: 'a1' }, { type: 'DISMISS' }, { type: 'RING', ring: ringEvent({ count: 2 }) },
        { type: 'REMOTE_BYE', reason: 'busy', message: 'over the cap: Front door already has 2 viewers' }, { type: 'FAILED', message: 'ICE failed' },
        { type: 'PREVIEW', sessionId: 'p2' }, stateEvent('ringing'), stateEvent('answeredElsewhere'), stateEvent('missed'), ...timers, TICK
      ]
    }
    if (s.matches('active')) return [{ type: 'CONNECTED' }, { type: 'CALL_TAKEN' }, { type: 'HANGUP' }, { type: 'REMOTE_BYE', reason: 'device-ended' }, ...timers]
    if (s.matches('ended')) return [{ type: 'DISMISS' }, { type: 'WATCH', sessionId: 'w1' }]
    return []
  },
  depth: 5,
  maxSelfLoops: 1
}

interface CallDouble { input: CallActorInput, received: string[], stopped: boolean, sendBack: (e: AnyEventObject) => void }
let calls: CallDouble[] = []
const viewerUnderTest = viewerCallMachine.provide({
  actors: {
    call: fromCallback<EventObject, CallActorInput>(({ input, receive, sendBack }) => {
      const c: CallDouble = { input, received: [], stopped: false, sendBack }
      receive((e) => { c.received.push(e.type) })
      calls.push(c)
      return () => { c.stopped = true }
    })
  }
})

function viewerHarness (): Harness<ViewerSnap> {
  const all: CallDouble[] = calls = []
  const clock = new SimulatedClock()
  const timers = new Timers(clock, { connectTimeout: VIEWER_INPUT.connectTimeoutMs, commandTimeout: VIEWER_INPUT.commandTimeoutMs })
  const actor = createActor(viewerUnderTest, { input: VIEWER_INPUT, clock })
  const violations: string[] = []

  const inspect = (s: ViewerSnap): void => {
    timers.observe(JSON.stringify(s.value))
    const fail = (m: string): void => { const v = `[${JSON.stringify(s.value)}] ${m}`; if (!violations.includes(v)) violations.push(v) }
    const running = all.filter((c) => !c.stopped)
    if (running.length > 1) fail(`${running.length} call actors at once`)
    const c = running[0]
    if (s.matches({ incoming: 'preview' })) {
      if (!c?.input.preview || c.input.sessionId !== s.context.sessionId) fail('the banner shows a preview with no preview actor')
      // Never audio before answer.
      if (c?.received.includes('TAKE_CALL')) fail('audio asked for before Answer')
    } else if (s.matches('active')) {
      if (!c || c.input.sessionId !== s.context.sessionId) fail('a call without its actor')
      if (c?.input.preview && !c.received.includes('TAKE_CALL')) fail('a call on a preview that was never taken')
    } else if (c) {
      // No preview outlives the ring: outside the banner's preview and the call, nothing runs.
      fail(`a call actor (${c.input.sessionId}) runs outside the preview and the call`)
    }
    if (s.matches('incoming') && s.context.ring?.livePreview === false && all.some((x) => x.input.preview && x.input.sessionId !== 'none' && !x.stopped)) fail('a preview although the doorbell has it off')
  }
  actor.subscribe(inspect)
  actor.start()
  inspect(actor.getSnapshot())

  return {
    exec ({ event, from }) {
      const before = all.length
      if (timers.step(event, from)) return
      const child = ['CONNECTED', 'FAILED', 'REMOTE_BYE', 'CALL_TAKEN'].includes(event.type)
      const live = all.find((x) => !x.stopped)
      // These come from the running call actor (or not at all).
      if (child) { if (live) live.sendBack(event) } else actor.send(event as never)
      if (event.type === 'ANSWER' && from.matches({ incoming: 'preview' })) {
        // Answer on the preview: no second connection, and audio asked for on the one that is up.
        assert.equal(all.length, before, 'Answer on the preview makes no new connection')
        assert.deepEqual(live?.received, ['TAKE_CALL'], 'Answer asks the preview\'s actor for audio, once')
      }
      if (event.type === 'PREVIEW' && from.context.ring?.livePreview === false) assert.equal(all.length, before, 'no preview when the doorbell has it off')
      if (event.type === 'REMOTE_BYE' && from.matches('active') && from.context.fallbackSessionId !== null) {
        // The take came too late: the screen joins on a new session (a new connection, without preview).
        assert.equal(all.length, before + 1, 'a refused take joins on a new session')
        assert.deepEqual(all.at(-1)?.input, { deviceId: VIEWER_INPUT.deviceId, sessionId: 'a1', preview: false })
      }
    },
    check (model) {
      const s = actor.getSnapshot()
      inspect(s)
      assert.deepEqual(violations, [])
      assert.equal(viewerSpec.key(s), viewerSpec.key(model), 'the viewer call is in the model\'s state')
    },
    finish () {
      // Dismissing or hanging up leaves nothing running.
      actor.send({ type: 'HANGUP' })
      actor.send({ type: 'DISMISS' })
      assert.equal(all.filter((c) => !c.stopped).length, 0, 'no call actor outlives the ring or the call')
      assert.deepEqual(violations, [])
    },
    stop: () => { actor.stop() }
  }
}

const deviceModel = buildModel(deviceSpec)
const viewerModel = buildModel(viewerSpec)

describe('model-based: live preview (issue 21), every path, invariants in every state', () => {
  test(`deviceCall preview: ${deviceModel.paths.length} paths`, async (t) => {
    t.diagnostic(`${deviceModel.stats.states} abstract states, ${deviceModel.stats.transitions} transitions`)
    await replay(deviceModel, deviceHarness, deviceSpec.key)
  })
  test(`viewerCall preview: ${viewerModel.paths.length} paths`, async (t) => {
    t.diagnostic(`${viewerModel.stats.states} abstract states, ${viewerModel.stats.transitions} transitions`)
    await replay(viewerModel, viewerHarness, viewerSpec.key)
  })
})
