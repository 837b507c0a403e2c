import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeError } from '../src/peer/session'

test('an error is always described: its message, else its name, else what it is', () => {
  assert.equal(describeError(new Error('bad sdp')), 'bad sdp')
  assert.equal(describeError(new TypeError('')), 'TypeError')
  assert.equal(describeError('boom'), 'boom')
  assert.equal(describeError(''), 'an empty error')
  assert.equal(describeError(undefined), 'undefined')
})
