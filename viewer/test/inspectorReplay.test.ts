import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeMachine, lockMachine, deviceCallMachine, viewerCallMachine } from '@doorbell/machines'
import type { InspectBatch, InspectEvent } from '@doorbell/core'
import { entriesBetween, modelAt, Recording, stepTimes } from '../src/inspector/recording'
import { filterSequence, firedNow, lifelinesFor, shownActors } from '../src/inspector/view'
import { valueText } from '../src/inspector/model'
import { traceOf } from '../src/inspector/traceFile'

const device = { kind: 'device' as const, id: 'front-door', name: 'Front door' }
const screen = { kind: 'viewer' as const, id: 'viewer-kitchen-t1', name: 'Kitchen' }
const CALL = 'fd/x:0'
const LOCK = 'fd/x:1'
const VIEW = 'vk/x:0'

/** A ring, an answer, an unlock and a hang-up, as the device and a screen report them. */
function aCall (): InspectBatch[] {
  const d = (events: InspectEvent[]): InspectBatch => ({ source: device, events })
  const v = (events: InspectEvent[]): InspectBatch => ({ source: screen, events })
  const snap = (actor: string, at: number, event: string, value: string | Record<string, unknown>): InspectEvent => ({ type: 'snapshot', at, actor, event, status: 'active', value: value as never })
  return [
    d([
      { type: 'actor', at: 1, actor: CALL, name: 'deviceCall', parent: null, machine: describeMachine(deviceCallMachine) },
      snap(CALL, 1, 'xstate.init', 'idle'),
      { type: 'actor', at: 1, actor: LOCK, name: 'lock', parent: null, machine: describeMachine(lockMachine) },
      snap(LOCK, 1, 'xstate.init', 'locked')
    ]),
    v([
      { type: 'actor', at: 2, actor: VIEW, name: 'viewerCall:front-door', parent: null, machine: describeMachine(viewerCallMachine) },
      snap(VIEW, 2, 'xstate.init', 'idle')
    ]),
    d([{ type: 'event', at: 10, from: null, to: CALL, event: 'PRESS', payload: { ringId: 'r1', at: 10 } }, snap(CALL, 10, 'PRESS', 'ringing')]),
    v([{ type: 'event', at: 11, from: null, to: VIEW, event: 'RING' }, snap(VIEW, 11, 'RING', 'incoming')]),
    d([
      { type: 'event', at: 20, from: CALL, to: CALL, event: 'OFFER', payload: { sessionId: 's1', viewerId: 'kitchen', path: 'lan', credential: '[redacted]' } },
      snap(CALL, 20, 'xstate.done.actor.admit:s1', 'inCall')
    ]),
    // The roster re-sent: nothing new.
    d([{ type: 'actor', at: 1, actor: CALL, name: 'deviceCall', parent: null, machine: describeMachine(deviceCallMachine) }, snap(CALL, 20, 'xstate.done.actor.admit:s1', 'inCall')]),
    d([{ type: 'event', at: 30, from: null, to: LOCK, event: 'UNLOCK', payload: { by: 'Kitchen' } }, snap(LOCK, 30, 'UNLOCK', 'unlocking')]),
    d([{ type: 'event', at: 40, from: null, to: CALL, event: 'BYE', payload: { sessionId: 's1' } }, snap(CALL, 40, 'BYE', 'idle')])
  ]
}

const record = (): Recording => {
  const r = new Recording()
  for (const b of aCall()) r.add(b)
  return r
}

test('the recording drops the rosters\' repeats', () => {
  const r = record()
  assert.equal(r.entries.filter((e) => e.event.type === 'actor').length, 3)
  assert.equal(r.entries.filter((e) => e.event.type === 'snapshot' && e.event.actor === CALL).length, 4)
})

test('scrubbing to a time shows the states of that time, and the arrows that fired then', () => {
  const r = record()
  const states = (t: number): Record<string, string> => Object.fromEntries(shownActors(modelAt(r.entries, t)).map((a) => [a.name, valueText(a.value)]))
  assert.deepEqual(states(5), { deviceCall: 'idle', lock: 'locked', 'viewerCall:front-door': 'idle' })
  assert.deepEqual(states(25), { deviceCall: 'inCall', lock: 'locked', 'viewerCall:front-door': 'incoming' })
  assert.deepEqual(states(40), { deviceCall: 'idle', lock: 'unlocking', 'viewerCall:front-door': 'incoming' })
  assert.deepEqual(stepTimes(r.entries), [10, 11, 20, 30, 40])
  const at20 = modelAt(r.entries, 20)
  const call = [...at20.actors.values()].find((a) => a.name === 'deviceCall')!
  // ringing's OFFER transitions: preview off, a cloud preview over KVS's share, preview with room, preview over the cap, then the answer (4).
  assert.deepEqual([...firedNow(call, 20).ids], ['|xstate.done.actor.*|0', 'ringing|OFFER|4'])
  assert.deepEqual(call.fired.map((f) => f.transition.id), ['idle|PRESS|0', '|xstate.done.actor.*|0', 'ringing|OFFER|4'])
})

test('the sequence runs between lifelines: a screen\'s events to the doorbell come from its call machine', () => {
  const m = modelAt(record().entries)
  const seq = filterSequence(m, { actor: null, call: null })
  const name = (k: string): string => m.lifelines.get(k)!.name
  assert.deepEqual(seq.map((s) => `${s.event}: ${name(s.from)} → ${name(s.to)}`), [
    'PRESS: Front door · outside → Front door · deviceCall',
    'RING: Kitchen · outside → Kitchen · viewerCall:front-door',
    'OFFER: Front door · deviceCall → Front door · deviceCall',
    'UNLOCK: Kitchen · viewerCall:front-door → Front door · lock',
    'BYE: Front door · outside → Front door · deviceCall'
  ])
  const offer = seq[2]!
  assert.equal(offer.path, 'lan')
  assert.equal(offer.before, 'ringing')
  assert.equal(offer.after, 'inCall')
  assert.deepEqual(lifelinesFor(m, seq).map((l) => l.name), ['Front door · outside', 'Front door · deviceCall', 'Front door · lock', 'Kitchen · outside', 'Kitchen · viewerCall:front-door'])
  assert.deepEqual(filterSequence(m, { actor: LOCK, call: null }).map((s) => s.event), ['UNLOCK'])
  assert.deepEqual(m.calls, [{ n: 1, source: 'front-door', from: 10, to: 40 }])
  assert.equal(filterSequence(m, { actor: null, call: 1 }).length, 5)
})

test('a time range replays on its own: the states at its start, then its events', () => {
  const r = record()
  const part = entriesBetween(r.entries, 25, 45)
  const states = (entries: typeof r.entries, t: number): string[] => shownActors(modelAt(entries, t)).map((a) => `${a.name}=${valueText(a.value)}`)
  for (const t of [25, 30, 40, 45]) assert.deepEqual(states(part, t), states(r.entries, t), `at ${t}`)
  const trace = traceOf(r.entries, { kind: 'call', call: modelAt(r.entries).calls[0]! }, 99)
  assert.equal(trace.range.from, 10)
  assert.equal(trace.entries.filter((e) => e.event.type === 'event').length, 5)
})
