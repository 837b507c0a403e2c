import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  CloudDismiss, decodeCloudDismiss, decodeCloudDismissResult, generateSigningKey, isCloudCommand, isCloudCommandResult,
  isCloudDismiss, isCloudDismissResult, signViewClaim, toKvsPayload
} from '../src'

/** The cloud envelope's dismissal kind (cloudCommand.ts): the direct path's request as is, recognized apart from commands and signaling. */

const key = (await generateSigningKey(false)).privateKey
const token = await signViewClaim({ key, home: 'home', device: 'front-door', session: 'r-1' })
const request = { homeId: 'home', viewerId: 'v-1', credential: token, proof: token, ringId: 'r-1' }

test('a dismissal and its answer are told apart from commands, their results and signaling', () => {
  const dismiss = toKvsPayload(CloudDismiss.parse({ type: 'dismiss', id: 'd-1', request }))
  const result = JSON.stringify({ type: 'dismiss-result', id: 'd-1', answer: { kind: 'dismissed', outcome: 'ringing' } })
  assert.deepEqual([isCloudDismiss(dismiss), isCloudDismissResult(dismiss), isCloudCommand(dismiss), isCloudCommandResult(dismiss)], [true, false, false, false])
  assert.deepEqual([isCloudDismiss(result), isCloudDismissResult(result), isCloudCommand(result), isCloudCommandResult(result)], [false, true, false, false])
  // A session description or an offer that mentions the word is signaling.
  for (const other of [JSON.stringify({ type: 'offer', sdp: 'v=0 "dismiss"' }), '{"type":"dismiss"', 42, null]) {
    assert.equal(isCloudDismiss(other), false)
    assert.equal(isCloudDismissResult(other), false)
  }
})

test('a dismissal is parsed by the direct path\'s request schema; anything else in it is refused with a reason', () => {
  const ok = decodeCloudDismiss(JSON.stringify({ type: 'dismiss', id: 'd-1', request }))
  assert.ok(ok.ok)
  assert.deepEqual(ok.ok && ok.message.request, request)
  const extra = decodeCloudDismiss(JSON.stringify({ type: 'dismiss', id: 'd-1', request: { ...request, as: 'owner' } }))
  assert.ok(!extra.ok)
  assert.match(extra.ok ? '' : extra.error, /request/)
  const badId = decodeCloudDismiss(JSON.stringify({ type: 'dismiss', id: 'd/1', request }))
  assert.ok(!badId.ok)
  const answer = decodeCloudDismissResult(JSON.stringify({ type: 'dismiss-result', id: null, answer: { kind: 'refused', message: 'x'.repeat(201) } }))
  assert.ok(!answer.ok, 'a refusal\'s reason is at most 200 characters')
})
