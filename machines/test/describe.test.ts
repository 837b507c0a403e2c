import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromCallback, fromPromise, type EventObject } from 'xstate'
import { DeviceState, LockState } from '@doorbell/core'
import { callStatusOf, deviceCallMachine, lockMachine, lockStateOf, participantsOf, type SessionInput } from '../src/index'

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function lockWithConfirmingDriver () {
  const machine = lockMachine.provide({ actors: { driveLock: fromPromise<void, { open: boolean }>(async () => {}) } })
  const actor = createActor(machine, { input: { relockAfterMs: 5000 }, clock: new SimulatedClock() })
  actor.start()
  return actor
}

describe('lockStateOf', () => {
  test('reports status, version and no relock time while locked', async () => {
    const lock = lockWithConfirmingDriver()
    await settle()
    const state = lockStateOf(lock.getSnapshot(), 123, 'b1')
    assert.deepEqual(state, { status: 'locked', relockAt: null, version: 2, boot: 'b1', error: null })
    assert.ok(LockState.safeParse(state).success)
  })

  test('reports the relock time only while unlocked', async () => {
    const lock = lockWithConfirmingDriver()
    await settle()
    lock.send({ type: 'UNLOCK', by: 'v1' })
    assert.equal(lockStateOf(lock.getSnapshot(), 9000, 'b1').relockAt, null) // unlocking
    await settle()
    assert.deepEqual(lockStateOf(lock.getSnapshot(), 9000, 'b1'), { status: 'unlocked', relockAt: 9000, version: 4, boot: 'b1', error: null })
  })

  test('reports a fault with its error, valid for the wire', async () => {
    const machine = lockMachine.provide({ actors: { driveLock: fromPromise<void, { open: boolean }>(async () => { throw new Error('relay stuck') }) } })
    const lock = createActor(machine, { input: { relockAfterMs: 5000 }, clock: new SimulatedClock() })
    lock.start()
    await settle()
    const state = lockStateOf(lock.getSnapshot(), null, 'b1')
    assert.deepEqual(state, { status: 'fault', relockAt: null, version: 2, boot: 'b1', error: 'relay stuck' })
    assert.ok(LockState.safeParse(state).success)
  })
})

describe('a device state built from the machines', () => {
  test('is valid for the state topic while in a call', async () => {
    const machine = deviceCallMachine.provide({
      actors: { session: fromCallback<EventObject, SessionInput>(() => () => {}) }
    })
    const call = createActor(machine, { input: { ringTimeoutMs: 30_000, maxCallMs: 600_000, maxViewers: 4 }, clock: new SimulatedClock() })
    call.start()
    call.send({ type: 'PRESS', ringId: 'r1', at: 1000 })
    call.send({ type: 'OFFER', sessionId: 's1', viewerId: 'alice', viewerName: 'Alice', sdp: 'v=0\r\nm=video 9 RTP 96\r\n', at: 2000 })
    const lock = lockWithConfirmingDriver()
    await settle()
    const s = call.getSnapshot()
    const state: DeviceState = {
      deviceId: 'front-door',
      deviceName: 'Front door',
      call: { status: callStatusOf(s), ringId: s.context.ring?.ringId ?? null, since: s.context.callStartedAt ?? 0 },
      participants: participantsOf(s),
      lock: lockStateOf(lock.getSnapshot(), null, 'b1'),
      lastRing: s.context.lastRing,
      at: 3000
    }
    const r = DeviceState.safeParse(state)
    assert.ok(r.success, r.success ? '' : JSON.stringify(r.error.issues))
    assert.equal(state.call.status, 'in-call')
    assert.deepEqual(state.participants, [{ sessionId: 's1', viewerId: 'alice', viewerName: 'Alice', since: 2000 }])
  })
})
