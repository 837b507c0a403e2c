import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { InspectBatch } from '@doorbell/core'
import { applyBatch, emptyModel, valueText } from '../src/inspector/model'

const source = { kind: 'device' as const, id: 'front-door', name: 'Front door' }
const machine = { key: 'deviceCall', path: '', type: 'compound' as const, initial: 'idle', states: [], on: [] }

test('an actor\'s trail lists the states it went through, repeats collapsed; re-sent rosters change nothing', () => {
  const model = emptyModel()
  const batch = (events: InspectBatch['events']): InspectBatch => ({ source, events })
  applyBatch(model, batch([
    { type: 'actor', at: 1, actor: 'fd/x:0', name: 'deviceCall', parent: null, machine },
    { type: 'snapshot', at: 1, actor: 'fd/x:0', event: 'xstate.init', status: 'active', value: 'idle' },
    { type: 'event', at: 2, from: null, to: 'fd/x:0', event: 'PRESS' },
    { type: 'snapshot', at: 2, actor: 'fd/x:0', event: 'PRESS', status: 'active', value: 'ringing' },
    { type: 'snapshot', at: 3, actor: 'fd/x:0', event: 'PRESS', status: 'active', value: 'ringing' }
  ]))
  // The roster re-sent later: the actor again, and an older snapshot.
  applyBatch(model, batch([
    { type: 'actor', at: 1, actor: 'fd/x:0', name: 'deviceCall', parent: null, machine },
    { type: 'snapshot', at: 2, actor: 'fd/x:0', event: 'PRESS', status: 'active', value: 'ringing' }
  ]))
  const a = model.actors.get('fd/x:0')!
  assert.deepEqual(a.trail, ['idle', 'ringing'])
  assert.deepEqual(model.timeline, [{ at: 2, from: '(outside)', to: 'Front door · deviceCall', event: 'PRESS' }])
})

test('state values read as paths', () => {
  assert.equal(valueText('idle'), 'idle')
  assert.equal(valueText({ active: { connected: 'ready' } }), 'active.connected.ready')
  assert.equal(valueText({ a: 'x', b: 'y' }), 'a.x | b.y')
  assert.equal(valueText(null), '')
})
