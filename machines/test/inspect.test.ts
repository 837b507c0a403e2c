import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createActor, fromPromise, raise, setup } from 'xstate'
import { InspectEvent, type MachineNode } from '@doorbell/core'
import { activePaths, describeMachine, inspectionRecorder, lockMachine, viewerCallMachine } from '../src/index'

test('a machine is described from its definition: nested states, initial states, events', () => {
  const d = describeMachine(viewerCallMachine)
  assert.equal(d.path, '')
  assert.deepEqual(d.states.map((s) => s.key), ['idle', 'incoming', 'active', 'ended'])
  const active = d.states.find((s) => s.key === 'active')!
  assert.equal(active.initial, 'connecting')
  const connected = active.states.find((s) => s.key === 'connected')!
  assert.deepEqual(connected.states.map((s) => s.path), ['active.connected.ready', 'active.connected.commandPending'])
  assert.ok(connected.states[1]!.on.includes('after commandTimeout'), 'delayed transitions are named by their delay')
  const lock = describeMachine(lockMachine)
  assert.ok(lock.states.find((s) => s.key === 'unlocked')!.on.includes('after relockDelay'))
  // The description is exactly what the schema lets through.
  const parsed = InspectEvent.safeParse({ type: 'actor', at: 1, actor: 'a/x:0', name: 'lock', parent: null, machine: lock })
  assert.ok(parsed.success)
})

test('active paths of a nested state value', () => {
  assert.deepEqual(activePaths('idle'), ['idle'])
  assert.deepEqual(activePaths({ active: { connected: 'ready' } }), ['active', 'active.connected', 'active.connected.ready'])
  assert.deepEqual(activePaths({ a: 'x', b: 'y' }), ['a', 'a.x', 'b', 'b.y'])
})

test('the recorder turns a running actor into actor, event and snapshot records', async () => {
  const events: InspectEvent[] = []
  const inspect = inspectionRecorder({ source: 'front-door', now: () => 42, emit: (e) => { events.push(e) } })
  const machine = lockMachine.provide({ actors: { driveLock: fromPromise(async () => {}) } })
  const actor = createActor(machine, { input: { relockAfterMs: 1000 }, id: 'lock', systemId: 'lock', inspect })
  actor.start()
  await new Promise((r) => setImmediate(r))
  actor.send({ type: 'UNLOCK', by: 'v1' })
  await new Promise((r) => setImmediate(r))
  actor.stop()
  for (const e of events) assert.ok(InspectEvent.safeParse(e).success, `schema-valid: ${JSON.stringify(e).slice(0, 120)}`)
  const root = events.find((e) => e.type === 'actor' && e.name === 'lock') as Extract<InspectEvent, { type: 'actor' }>
  assert.ok(root, 'the lock actor is announced by name')
  assert.equal((root.machine as MachineNode).initial, 'relocking')
  const values = events.filter((e) => e.type === 'snapshot' && e.actor === root.actor).map((e) => (e as { value: unknown }).value)
  assert.deepEqual(values.filter((v, i) => v !== values[i - 1]), ['relocking', 'locked', 'unlocking', 'unlocked'])
  assert.ok(events.some((e) => e.type === 'event' && e.event === 'UNLOCK' && e.to === root.actor))
  assert.ok(!events.some((e) => e.type === 'event' && e.event.startsWith('xstate.') && e.event !== 'xstate.init'), 'internal events stay out of the timeline')
})

test('an event a machine raises to itself is on the timeline once, from the machine itself', () => {
  const events: InspectEvent[] = []
  const inspect = inspectionRecorder({ source: 'front-door', now: () => 42, emit: (e) => { events.push(e) } })
  const machine = setup({ types: { events: {} as { type: 'CHECKED' } | { type: 'ADMITTED' } } }).createMachine({
    id: 'admission',
    initial: 'checking',
    states: {
      checking: { on: { CHECKED: { actions: raise({ type: 'ADMITTED' }) }, ADMITTED: 'admitted' } },
      admitted: {}
    }
  })
  const actor = createActor(machine, { inspect }).start()
  actor.send({ type: 'CHECKED' })
  assert.equal(actor.getSnapshot().value, 'admitted')
  const root = events.find((e) => e.type === 'actor')!.actor
  const timeline = events.filter((e) => e.type === 'event' && e.to === root).map((e) => e as Extract<InspectEvent, { type: 'event' }>)
  assert.deepEqual(timeline.map((e) => e.event), ['xstate.init', 'CHECKED', 'ADMITTED'])
  assert.equal(timeline[2]!.from, root, 'a raised event comes from the machine itself')
})

test('every transition of a machine is described from its definition: event, target, guard, delay', async () => {
  const { describeTransitions, deviceCallMachine } = await import('../src/index')
  const lock = describeTransitions(lockMachine)
  const arrow = (source: string, label: string) => lock.find((t) => t.source === source && t.label === label)
  assert.deepEqual(arrow('locked', 'UNLOCK'), { id: 'locked|UNLOCK|0', source: 'locked', target: 'unlocking', eventType: 'UNLOCK', label: 'UNLOCK', guard: null, delay: null, internal: false })
  assert.equal(arrow('unlocked', 'after relockDelay')?.target, 'relocking')
  assert.equal(arrow('unlocking', 'done: lock.unlocking')?.target, 'unlocked')
  assert.equal(arrow('unlocking', 'error: lock.unlocking')?.target, 'fault')
  // One per transition in the definition, counted here straight from XState's state nodes.
  let count = 0
  const walk = (node: typeof deviceCallMachine.root): void => {
    for (const defs of node.transitions.values()) count += defs.length
    count += node.always?.length ?? 0
    for (const child of Object.values(node.states)) walk(child)
  }
  walk(deviceCallMachine.root)
  const call = describeTransitions(deviceCallMachine)
  assert.equal(call.length, count)
  assert.ok(call.some((t) => t.source === 'ringing' && t.label === 'OFFER' && t.guard === 'isAnswerOffer' && t.target === 'inCall'))
  assert.ok(call.some((t) => t.eventType === '' && t.label === 'always'), 'an eventless transition is drawn as "always"')
  const offerReceived = call.filter((t) => t.source === '' && t.eventType === 'OFFER_RECEIVED')
  assert.deepEqual(offerReceived.map((t) => [t.guard, t.internal]), [['isUnusedSessionId', true], [null, true]])
  assert.equal(new Set(call.map((t) => t.id)).size, call.length, 'ids are unique')
})

test('the recorder keeps an event\'s fields, without its secrets', () => {
  const events: InspectEvent[] = []
  const inspect = inspectionRecorder({ source: 'front-door', now: () => 1, emit: (e) => { events.push(e) } })
  const machine = lockMachine.provide({ actors: { driveLock: fromPromise(async () => {}) } })
  const actor = createActor(machine, { input: { relockAfterMs: 1000 }, inspect })
  actor.start()
  actor.send({ type: 'UNLOCK', by: 'kitchen', token: 'tok_0123456789abcdef0123456789abcdef0123456789' } as never)
  actor.stop()
  const unlock = events.find((e) => e.type === 'event' && e.event === 'UNLOCK') as Extract<InspectEvent, { type: 'event' }>
  assert.deepEqual(unlock.payload, { by: 'kitchen', token: '[redacted]' })
})
