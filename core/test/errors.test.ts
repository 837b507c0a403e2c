import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RefusedError, describeError, refusedCredentials, type Refusal } from '../src/errors'

test('describeError: never empty, whatever was thrown (Errors, DOMException-likes, events, aggregates, plain values)', () => {
  assert.equal(describeError(new Error('bad sdp')), 'bad sdp')
  assert.equal(describeError(new TypeError('')), 'TypeError')
  assert.equal(describeError({ name: 'OperationError', message: '' }), 'OperationError')
  assert.equal(describeError({ message: 'socket hang up' }), 'socket hang up', 'an object with a message but no name')
  assert.equal(describeError({ type: 'error' }), 'WebSocket error', 'a WebSocket error event carries no message')
  const all = new AggregateError([new Error('dial 1 refused'), new Error(''), new Error('dial 2 timed out')], 'All multiaddr dials failed')
  assert.equal(describeError(all), 'All multiaddr dials failed: dial 1 refused / dial 2 timed out', 'the errors inside, empty ones left out')
  assert.equal(describeError('boom'), 'boom')
  assert.equal(describeError(''), 'an empty error')
  assert.equal(describeError(undefined), 'undefined')
})

test('refusedCredentials: CONNACK 4/5 (MQTT 3.1.1) and 0x86/0x87 (5.0) only; a hub that is away refuses nothing', () => {
  for (const code of [4, 5, 134, 135]) assert.equal(refusedCredentials(Object.assign(new Error('refused'), { code })), true, String(code))
  for (const err of [Object.assign(new Error('server unavailable'), { code: 3 }), Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), new Error('timeout'), null, undefined]) {
    assert.equal(refusedCredentials(err), false, String(err))
  }
})

test('RefusedError: a stable name, the refusal\'s reason and message', () => {
  const refusal: Refusal<'credentials'> = { ok: false, reason: 'credentials', message: 'the hub refused this screen\'s credentials' }
  const err = new RefusedError(refusal)
  assert.ok(err instanceof Error)
  assert.equal(err.name, 'RefusedError')
  assert.equal(err.reason, 'credentials')
  assert.equal(err.message, refusal.message)
})
