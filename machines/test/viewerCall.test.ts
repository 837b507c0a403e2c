import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromCallback, type AnyEventObject, type EventObject } from 'xstate'
import type { RingEvent } from '@doorbell/core'
import { viewerCallMachine, type CallActorInput, type ViewerCallInput } from '../src/index'
import { deviceState, lockState, ringEvent } from './fixtures'

interface CallRecord {
  input: CallActorInput
  received: EventObject[]
  stopped: boolean
  sendBack: (event: AnyEventObject) => void
}

/** A viewer's call machine for one doorbell, with alerts and call actors recorded, on a simulated clock. */
function startViewer (input: Partial<ViewerCallInput> = {}) {
  const alerts: Array<RingEvent | null> = []
  let silences = 0
  const calls: CallRecord[] = []
  const machine = viewerCallMachine.provide({
    actions: {
      alert: (_, params) => { alerts.push(params.ring) },
      silence: () => { silences++ }
    },
    actors: {
      call: fromCallback<EventObject, CallActorInput>(({ input, receive, sendBack }) => {
        const record: CallRecord = { input, received: [], stopped: false, sendBack }
        receive((event) => { record.received.push(event) })
        calls.push(record)
        return () => { record.stopped = true }
      })
    }
  })
  const clock = new SimulatedClock()
  const actor = createActor(machine, {
    input: { deviceId: 'front-door', connectTimeoutMs: 10_000, commandTimeoutMs: 3000, ...input },
    clock
  })
  actor.start()
  const snap = () => actor.getSnapshot()
  const call = (): CallRecord => {
    const c = calls.at(-1)
    assert.ok(c, 'no call actor was started')
    return c
  }
  return { actor, clock, alerts, calls, snap, call, silences: () => silences }
}

/** A viewer that answered ring r1 and whose call connected. */
function connectedViewer (input: Partial<ViewerCallInput> = {}) {
  const v = startViewer(input)
  v.actor.send({ type: 'RING', ring: ringEvent() })
  v.actor.send({ type: 'ANSWER', sessionId: 's1' })
  v.call().sendBack({ type: 'CONNECTED' })
  assert.ok(v.snap().matches({ active: { connected: 'ready' } }))
  return v
}

describe('viewerCall: a ring', () => {
  test('starts idle, without a ring', () => {
    const { snap, alerts } = startViewer()
    assert.ok(snap().matches('idle'))
    assert.equal(snap().context.ring, null)
    assert.deepEqual(alerts, [])
  })

  test('RING shows the incoming call and alerts with the ring', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    assert.ok(snap().matches('incoming'))
    assert.deepEqual(snap().context.ring, ringEvent())
    assert.deepEqual(alerts, [ringEvent()])
  })

  test('a second press re-alerts', () => {
    const { actor, alerts, silences, snap } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'RING', ring: ringEvent({ count: 2 }) })
    assert.ok(snap().matches('incoming'))
    assert.deepEqual(alerts.map((r) => r?.count), [1, 2])
    assert.equal(silences(), 1)
    assert.equal(snap().context.ring?.count, 2)
  })

  test('answering silences the alert and starts a call actor for the session', () => {
    const { actor, snap, calls, silences } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'ANSWER', sessionId: 's1' })
    assert.ok(snap().matches({ active: 'connecting' }))
    assert.equal(silences(), 1)
    assert.deepEqual(calls.map((c) => c.input), [{ deviceId: 'front-door', sessionId: 's1', preview: false }])
    assert.equal(snap().context.sessionId, 's1')
  })

  test('CONNECTED from the call actor shows the call, ready for commands', () => {
    const { actor, snap, call } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'ANSWER', sessionId: 's1' })
    call().sendBack({ type: 'CONNECTED' })
    assert.ok(snap().matches({ active: { connected: 'ready' } }))
  })
})

describe('viewerCall: opening the door', () => {
  test('UNLOCK sends the command to the call actor and waits for the reply', () => {
    const { actor, snap, call } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    assert.ok(snap().matches({ active: { connected: 'commandPending' } }))
    assert.deepEqual(call().received, [{ type: 'SEND_COMMAND', command: { type: 'unlock', id: 'c1' } }])
    assert.equal(snap().context.pendingCommand, 'c1')
  })

  test('a hold asks the call actor to sign the command at once; its end sends that command; a released hold sends nothing', () => {
    const { actor, snap, call } = connectedViewer()
    actor.send({ type: 'HOLD_OPEN', commandId: 'c1' })
    assert.ok(snap().matches({ active: { connected: 'ready' } }), 'holding is not yet opening')
    assert.equal(snap().context.pendingCommand, null)
    actor.send({ type: 'RELEASE_OPEN' })
    assert.deepEqual(call().received, [{ type: 'PREPARE_COMMAND', command: { type: 'unlock', id: 'c1' } }, { type: 'DROP_COMMAND' }])
    assert.ok(!call().received.some((e) => e.type === 'SEND_COMMAND'), 'a released hold sends no command')
    assert.equal(snap().context.heldCommand, null, 'a released hold holds nothing')
    actor.send({ type: 'HOLD_OPEN', commandId: 'c2' })
    assert.equal(snap().context.heldCommand, 'c2')
    // The hold's end: whatever id the caller made up, the held (signed) command is the one sent.
    actor.send({ type: 'UNLOCK', commandId: 'c-fresh' })
    assert.deepEqual(call().received.slice(2), [{ type: 'PREPARE_COMMAND', command: { type: 'unlock', id: 'c2' } }, { type: 'SEND_COMMAND', command: { type: 'unlock', id: 'c2' } }])
    assert.equal(snap().context.pendingCommand, 'c2')
    assert.equal(snap().context.heldCommand, null, 'sent: held no more')
    // The next opening without a hold is a new command under its own id.
    call().sendBack({ type: 'REPLY', reply: { type: 'ack', id: 'c2', lock: lockState({ status: 'unlocking', version: 3 }) } })
    actor.send({ type: 'UNLOCK', commandId: 'c3' })
    assert.deepEqual(call().received.at(-1), { type: 'SEND_COMMAND', command: { type: 'unlock', id: 'c3' } })
  })

  test('a hold whose call ends is forgotten: the next call opens with a new command', () => {
    const { actor, snap, call } = connectedViewer()
    actor.send({ type: 'HOLD_OPEN', commandId: 'c1' })
    call().sendBack({ type: 'REMOTE_BYE', reason: 'device-ended' })
    assert.equal(snap().context.heldCommand, null)
  })

  test('a hold before the call is connected prepares nothing', () => {
    const { actor, call } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'ANSWER', sessionId: 's1' })
    actor.send({ type: 'HOLD_OPEN', commandId: 'c1' })
    assert.deepEqual(call().received, [])
  })

  test('an ack ends the wait and shows the door state it carries', () => {
    const { actor, snap, call } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    const door = lockState({ status: 'unlocking', version: 11 })
    call().sendBack({ type: 'REPLY', reply: { type: 'ack', id: 'c1', lock: door } })
    assert.ok(snap().matches({ active: { connected: 'ready' } }))
    assert.deepEqual(snap().context.door, door)
    assert.equal(snap().context.pendingCommand, null)
    assert.equal(snap().context.commandError, null)
  })

  test('a nack ends the wait and shows why', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    actor.send({ type: 'REPLY', reply: { type: 'nack', id: 'c1', error: { code: 'denied', message: 'Your role may not open the door.' } } })
    assert.ok(snap().matches({ active: { connected: 'ready' } }))
    assert.equal(snap().context.commandError, 'Your role may not open the door.')
    assert.equal(snap().context.pendingCommand, null)
  })

  test('no reply within commandTimeoutMs ends the wait with an error', () => {
    const { actor, clock, snap } = connectedViewer({ commandTimeoutMs: 3000 })
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    clock.increment(2999)
    assert.ok(snap().matches({ active: { connected: 'commandPending' } }))
    clock.increment(1)
    assert.ok(snap().matches({ active: { connected: 'ready' } }))
    assert.equal(snap().context.commandError, 'The doorbell did not answer. Try again.')
    assert.equal(snap().context.pendingCommand, null)
  })

  test('a new UNLOCK clears the previous error', () => {
    const { actor, clock, snap } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    clock.increment(3000)
    actor.send({ type: 'UNLOCK', commandId: 'c2' })
    assert.equal(snap().context.commandError, null)
    assert.equal(snap().context.pendingCommand, 'c2')
  })

  test('a reply to another command does not end the wait', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c2' })
    actor.send({ type: 'REPLY', reply: { type: 'ack', id: 'c1', lock: lockState({ version: 11 }) } })
    assert.ok(snap().matches({ active: { connected: 'commandPending' } }))
    assert.equal(snap().context.pendingCommand, 'c2')
  })

  test('a second UNLOCK while one is pending sends nothing more', () => {
    const { actor, call } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    actor.send({ type: 'UNLOCK', commandId: 'c2' })
    assert.equal(call().received.length, 1)
  })

  test('UNLOCK before the call is connected sends nothing', () => {
    const { actor, snap, call } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'ANSWER', sessionId: 's1' })
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    assert.ok(snap().matches({ active: 'connecting' }))
    assert.deepEqual(call().received, [])
  })

  test('an unsolicited lock report on the data channel updates the door', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'REPLY', reply: { type: 'lock', lock: lockState({ status: 'relocking', version: 12 }) } })
    assert.equal(snap().context.door?.status, 'relocking')
  })
})

describe('viewerCall: the newest lock report wins', () => {
  test('after the device restarts, its lock reports count again from a new boot', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'REPLY', reply: { type: 'lock', lock: lockState({ status: 'unlocked', version: 12 }) } })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'in-call', ringId: 'r1' }, lock: lockState({ status: 'locked', version: 1, boot: 'b2' }) }) })
    assert.equal(snap().context.door?.status, 'locked')
    assert.equal(snap().context.door?.boot, 'b2')
  })

  test('a lock report with a lower version is ignored, from the data channel', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'REPLY', reply: { type: 'lock', lock: lockState({ status: 'unlocked', version: 12 }) } })
    actor.send({ type: 'REPLY', reply: { type: 'lock', lock: lockState({ status: 'locked', version: 11 }) } })
    assert.deepEqual(snap().context.door, lockState({ status: 'unlocked', version: 12 }))
  })

  test('a lock report with a lower version is ignored, from the state topic', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'REPLY', reply: { type: 'lock', lock: lockState({ status: 'unlocked', version: 12 }) } })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'in-call', ringId: 'r1' }, lock: lockState({ status: 'unlocking', version: 11 }) }) })
    assert.equal(snap().context.door?.status, 'unlocked')
    // The rest of the device state is still taken.
    assert.equal(snap().context.device?.call.status, 'in-call')
  })

  test('an ack older than the state already shown does not roll the door back', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'in-call', ringId: 'r1' }, lock: lockState({ status: 'unlocked', version: 13 }) }) })
    actor.send({ type: 'REPLY', reply: { type: 'ack', id: 'c1', lock: lockState({ status: 'unlocking', version: 12 }) } })
    assert.ok(snap().matches({ active: { connected: 'ready' } }))
    assert.equal(snap().context.door?.status, 'unlocked')
  })

  test('a newer report replaces the door, whichever path carried it', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lock: lockState({ version: 3 }) }) })
    assert.equal(snap().context.door?.version, 3)
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lock: lockState({ status: 'unlocked', version: 4 }) }) })
    assert.equal(snap().context.door?.status, 'unlocked')
  })
})

describe('viewerCall: how a call ends', () => {
  test('HANGUP ends as hung-up and stops the call actor', () => {
    const { actor, snap, call } = connectedViewer()
    actor.send({ type: 'HANGUP' })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'hung-up')
    assert.equal(snap().context.sessionId, null)
    assert.equal(call().stopped, true)
  })

  test('HANGUP while a command is pending forgets the command', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    actor.send({ type: 'HANGUP' })
    assert.equal(snap().context.pendingCommand, null)
  })

  test('a busy bye from the doorbell ends as busy', () => {
    const { snap, call } = connectedViewer()
    call().sendBack({ type: 'REMOTE_BYE', reason: 'busy', message: 'The call is full.' })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'busy')
    assert.equal(snap().context.error, 'The call is full.')
    assert.equal(call().stopped, true)
  })

  test('other byes map to device-ended or failed', () => {
    const cases = [['hang-up', 'device-ended'], ['device-ended', 'device-ended'], ['failed', 'failed'], ['rejected', 'failed']] as const
    for (const [reason, expected] of cases) {
      const { actor, snap } = connectedViewer()
      actor.send({ type: 'REMOTE_BYE', reason })
      assert.equal(snap().context.endReason, expected, reason)
      assert.equal(snap().context.error, null)
    }
  })

  test('FAILED ends as failed with the message', () => {
    const { snap, call } = connectedViewer()
    call().sendBack({ type: 'FAILED', message: 'ICE failed' })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'failed')
    assert.equal(snap().context.error, 'ICE failed')
    assert.equal(call().stopped, true)
  })

  test('no connection within connectTimeoutMs ends as failed and stops the call actor', () => {
    const { actor, clock, snap, call } = startViewer({ connectTimeoutMs: 10_000 })
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'ANSWER', sessionId: 's1' })
    clock.increment(9999)
    assert.ok(snap().matches({ active: 'connecting' }))
    clock.increment(1)
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'failed')
    assert.equal(snap().context.error, 'no answer from the doorbell')
    assert.equal(call().stopped, true)
  })

  test('a connected call is not ended by the connect timeout', () => {
    const { clock, snap } = connectedViewer({ connectTimeoutMs: 10_000 })
    clock.increment(60_000)
    assert.ok(snap().matches({ active: { connected: 'ready' } }))
  })

  test('a new ring after a call ended alerts again', () => {
    const { actor, snap, alerts } = connectedViewer()
    actor.send({ type: 'HANGUP' })
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2' }) })
    assert.ok(snap().matches('incoming'))
    assert.equal(snap().context.endReason, null)
    assert.equal(alerts.at(-1)?.ringId, 'r2')
  })

  test('a new call starts without the previous call\'s command error', () => {
    const { actor, snap, call } = connectedViewer()
    actor.send({ type: 'UNLOCK', commandId: 'c1' })
    actor.send({ type: 'REPLY', reply: { type: 'nack', id: 'c1', error: { code: 'lock-fault', message: 'The lock is faulty.' } } })
    actor.send({ type: 'HANGUP' })
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2' }) })
    actor.send({ type: 'ANSWER', sessionId: 's2' })
    assert.equal(snap().context.commandError, null)
    assert.deepEqual(call().input, { deviceId: 'front-door', sessionId: 's2', preview: false })
  })

  test('DISMISS after a call ended returns to idle', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'HANGUP' })
    actor.send({ type: 'DISMISS' })
    assert.ok(snap().matches('idle'))
  })

  test('WATCH starts a live view with a call actor for the session', () => {
    const { actor, snap, calls } = startViewer()
    actor.send({ type: 'WATCH', sessionId: 'w1' })
    assert.ok(snap().matches({ active: 'connecting' }))
    assert.deepEqual(calls.map((c) => c.input), [{ deviceId: 'front-door', sessionId: 'w1', preview: false }])
  })
})

describe('viewerCall: rings learned from the device state', () => {
  test('a state showing a new ring while idle brings the ring in (late joiner)', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r1', since: 5000 } }) })
    assert.ok(snap().matches('incoming'))
    assert.deepEqual(snap().context.ring, { type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId: 'r1', at: 5000, count: 1 })
    assert.equal(alerts.length, 1)
    assert.equal(snap().context.device?.call.status, 'ringing')
  })

  test('a state of an idle device while idle changes nothing but the device shown', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState() })
    assert.ok(snap().matches('idle'))
    assert.deepEqual(alerts, [])
    assert.equal(snap().context.device?.deviceId, 'front-door')
  })

  test('the state of the ring already alerted does not alert again', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r1' } }) })
    assert.ok(snap().matches('incoming'))
    assert.equal(alerts.length, 1)
  })

  test('the device back to idle with the ring missed ends the ring as missed', () => {
    const { actor, snap, silences } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lastRing: { ringId: 'r1', at: 1000, outcome: 'missed' } }) })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'missed')
    assert.equal(silences(), 1)
  })

  test('the device back to idle with the ring answered ends it as answered-elsewhere', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lastRing: { ringId: 'r1', at: 1000, outcome: 'answered' } }) })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'answered-elsewhere')
  })

  test('an answered lastRing of an older ring does not count as answered-elsewhere', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2' }) })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lastRing: { ringId: 'r1', at: 500, outcome: 'answered' } }) })
    assert.equal(snap().context.endReason, 'missed')
  })

  test('a ring another viewer answered stays incoming while that call goes on', () => {
    const { actor, snap, alerts, silences } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({
      type: 'DEVICE_STATE',
      state: deviceState({
        call: { status: 'in-call', ringId: 'r1' },
        participants: [{ sessionId: 'sx', viewerId: 'bob', viewerName: 'Bob', since: 2000 }],
        lastRing: { ringId: 'r1', at: 1000, outcome: 'answered' }
      })
    })
    assert.ok(snap().matches('incoming'))
    assert.equal(alerts.length, 1)
    assert.equal(silences(), 0)
    assert.equal(snap().context.device?.participants.length, 1)
  })

  test('a device that is idle ends the ring, even if its state still names the ring', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'idle', ringId: 'r1' } }) })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'missed')
  })

  test('a device in a call for a later ring ends the ring we were shown', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({
      type: 'DEVICE_STATE',
      state: deviceState({ call: { status: 'in-call', ringId: 'r2' }, lastRing: { ringId: 'r2', at: 3000, outcome: 'answered' } })
    })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'missed')
  })

  test('a new ring in the state while incoming switches to that ring and alerts', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r2', since: 9000 } }) })
    assert.ok(snap().matches('incoming'))
    assert.equal(snap().context.ring?.ringId, 'r2')
    assert.equal(alerts.length, 2)
  })

  test('a state showing a new ring after a call ended brings it in', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'HANGUP' })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r2' } }) })
    assert.ok(snap().matches('incoming'))
    assert.equal(snap().context.ring?.ringId, 'r2')
  })
})

describe('viewerCall: dismissing', () => {
  test('DISMISS silences and returns to idle', () => {
    const { actor, snap, silences } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DISMISS' })
    assert.ok(snap().matches('idle'))
    assert.equal(silences(), 1)
    assert.equal(snap().context.dismissedRingId, 'r1')
  })

  test('the dismissed ring in a later state does not alert again', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DISMISS' })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r1' } }) })
    assert.ok(snap().matches('idle'))
    assert.equal(alerts.length, 1)
  })

  test('the dismissed ring seen first in a state does not come back either', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r1' } }) })
    actor.send({ type: 'DISMISS' })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r1', since: 1000 }, at: 2000 }) })
    assert.ok(snap().matches('idle'))
    assert.equal(alerts.length, 1)
  })

  test('a re-press of the dismissed ring does not alert again', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DISMISS' })
    actor.send({ type: 'RING', ring: ringEvent({ count: 2 }) })
    assert.ok(snap().matches('idle'))
    assert.equal(alerts.length, 1)
  })

  test('a dismissed ring does not come back after a later ring was handled', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DISMISS' })
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2' }) })
    actor.send({ type: 'ANSWER', sessionId: 's2' })
    actor.send({ type: 'HANGUP' })
    // A late report of the dismissed ring (another path, say) must not ring again.
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ call: { status: 'ringing', ringId: 'r1' } }) })
    assert.ok(snap().matches('ended'))
    assert.equal(alerts.length, 2)
  })

  test('while another ring alerts, a late re-press of the dismissed ring does not take its place', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DISMISS' })
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2' }) })
    actor.send({ type: 'RING', ring: ringEvent({ count: 2 }) })
    assert.ok(snap().matches('incoming'))
    assert.equal(snap().context.ring?.ringId, 'r2')
    assert.equal(alerts.length, 2)
  })

  test('a new ring after a dismissed one alerts', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DISMISS' })
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2' }) })
    assert.ok(snap().matches('incoming'))
    assert.equal(alerts.length, 2)
  })
})

describe('viewerCall: two paths (LAN hub and direct)', () => {
  test('the same ring arriving twice alerts once; a second press (count + 1) alerts again', () => {
    const v = startViewer()
    v.actor.send({ type: 'RING', ring: ringEvent() })
    v.actor.send({ type: 'RING', ring: ringEvent() })
    assert.equal(v.alerts.length, 1)
    v.actor.send({ type: 'RING', ring: ringEvent({ count: 2, at: 2000 }) })
    assert.equal(v.alerts.length, 2)
  })

  test('a ring that arrives late, after its call ended, does not ring again', () => {
    const v = connectedViewer()
    v.actor.send({ type: 'HANGUP' })
    assert.ok(v.snap().matches('ended'))
    v.actor.send({ type: 'RING', ring: ringEvent() })
    assert.ok(v.snap().matches('ended'))
    assert.equal(v.alerts.length, 1)
  })

  test('a ring older than what the device said since (queued while the hub was down) does not alert', () => {
    const v = startViewer()
    v.actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 5000 }) })
    v.actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r0', at: 3000 }) })
    assert.ok(v.snap().matches('idle'))
    assert.equal(v.alerts.length, 0)
    v.actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2', at: 6000 }) })
    assert.ok(v.snap().matches('incoming'))
  })

  test('an older state never replaces a newer one', () => {
    const v = startViewer()
    v.actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 5000, lock: lockState({ status: 'unlocked', version: 12 }) }) })
    v.actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 4000, call: { status: 'ringing', ringId: 'r9', since: 4000 } }) })
    assert.equal(v.snap().context.device?.at, 5000)
    assert.ok(v.snap().matches('idle'), 'a stale ringing state does not alert')
    assert.equal(v.alerts.length, 0)
    // After a reboot with its clock behind (no RTC, no NTP), the device's new states still count.
    v.actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 100, lock: lockState({ boot: 'b2', version: 1 }), call: { status: 'ringing', ringId: 'r10', since: 100 } }) })
    assert.equal(v.snap().context.device?.at, 100)
    assert.ok(v.snap().matches('incoming'))
  })
})

describe('viewerCall: a doorbell that goes offline (fail-secure)', () => {
  test('offline while the door was open: the lock state is unknown, not "unlocked"', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'PRESENCE', online: true })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lock: lockState({ status: 'unlocked', version: 4 }) }) })
    assert.equal(snap().context.door?.status, 'unlocked')
    actor.send({ type: 'PRESENCE', online: false })
    assert.equal(snap().context.online, false)
    assert.equal(snap().context.door, null)
  })

  test('the name its presence gives is kept, for a screen that has no state from it', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'PRESENCE', online: false, deviceName: 'Front door' })
    assert.equal(snap().context.deviceName, 'Front door')
    actor.send({ type: 'PRESENCE', online: true })
    assert.equal(snap().context.deviceName, 'Front door', 'a presence without a name keeps the one known')
  })

  test('a state heard while offline (the retained one, say) does not bring the door back; the device is still known', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'PRESENCE', online: false })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 3000, lock: lockState({ status: 'unlocked', version: 4 }) }) })
    assert.equal(snap().context.door, null)
    assert.equal(snap().context.device?.at, 3000)
  })

  test('back online: the doorbell\'s own next report is shown at once, from its new boot', () => {
    const { actor, snap } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lock: lockState({ status: 'unlocked', version: 4, boot: 'b1' }) }) })
    actor.send({ type: 'PRESENCE', online: false })
    actor.send({ type: 'PRESENCE', online: true })
    assert.equal(snap().context.door, null, 'online again, but nothing reported yet')
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ lock: lockState({ status: 'locked', version: 1, boot: 'b2' }) }) })
    assert.deepEqual(snap().context.door, lockState({ status: 'locked', version: 1, boot: 'b2' }))
  })

  test('in a call, the doorbell\'s own word over the data channel still counts while the hub says offline', () => {
    const { actor, snap } = connectedViewer()
    actor.send({ type: 'PRESENCE', online: false })
    assert.equal(snap().context.door, null)
    actor.send({ type: 'REPLY', reply: { type: 'lock', lock: lockState({ status: 'relocking', version: 13 }) } })
    assert.equal(snap().context.door?.status, 'relocking')
    assert.ok(snap().matches({ active: { connected: 'ready' } }), 'presence does not end the call')
  })
})

describe('viewerCall: a ring that arrives after it ended (queued while the screen was away)', () => {
  test('a ring the state says was missed is shown as missed, never alerted', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 5000, lastRing: { ringId: 'r1', at: 1000, outcome: 'missed' } }) })
    actor.send({ type: 'RING', ring: ringEvent() })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.endReason, 'missed')
    assert.equal(snap().context.ring?.ringId, 'r1')
    assert.deepEqual(alerts, [])
  })

  test('a ring the state says another screen answered is shown as answered-elsewhere', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 5000, lastRing: { ringId: 'r1', at: 1000, outcome: 'answered' } }) })
    actor.send({ type: 'RING', ring: ringEvent() })
    assert.equal(snap().context.endReason, 'answered-elsewhere')
    assert.deepEqual(alerts, [])
  })

  test('two rings during the outage: the older is left out, the last one is shown as missed; neither alerts', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 9000, lastRing: { ringId: 'r2', at: 4000, outcome: 'missed' } }) })
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r1', at: 1000 }) })
    assert.ok(snap().matches('idle'))
    actor.send({ type: 'RING', ring: ringEvent({ ringId: 'r2', at: 4000 }) })
    assert.ok(snap().matches('ended'))
    assert.equal(snap().context.ring?.ringId, 'r2')
    assert.deepEqual(alerts, [])
  })

  test('a ring the state says is still on alerts; the same ring again (its queued copy) does nothing more', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 5000, call: { status: 'ringing', ringId: 'r1', since: 1000 } }) })
    actor.send({ type: 'RING', ring: ringEvent() })
    assert.ok(snap().matches('incoming'))
    assert.equal(alerts.length, 1)
  })

  test('a dismissed ring that arrives late stays dismissed', () => {
    const { actor, snap, alerts } = startViewer()
    actor.send({ type: 'RING', ring: ringEvent() })
    actor.send({ type: 'DISMISS' })
    actor.send({ type: 'DEVICE_STATE', state: deviceState({ at: 5000, lastRing: { ringId: 'r1', at: 1000, outcome: 'missed' } }) })
    actor.send({ type: 'RING', ring: ringEvent() })
    assert.ok(snap().matches('idle'))
    assert.equal(alerts.length, 1)
  })
})
