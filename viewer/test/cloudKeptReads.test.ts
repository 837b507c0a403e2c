import { test } from 'node:test'
import assert from 'node:assert/strict'
import { keptAnswerParts, type KeptReadFrame, type KeptRing } from '@doorbell/core'
import { CloudKeptReads } from '../src/lib/paths/cloud/cloudKeptReads'
import { KeptReadError } from '../src/lib/paths/keptRings'

/** The answers to reads of the kept rings sent on a KVS channel (cloudKeptReads.ts): parts matched by id and doorbell, joined, read by the direct path's check. */

const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(20_000, 3)]).toString('base64')
const kept = (deviceId: string, ringId: string): KeptRing => ({
  type: 'kept',
  deviceId,
  ring: { type: 'ring', deviceId, deviceName: 'Front door', ringId, at: 1000, count: 1 },
  snapshot: { type: 'snapshot', deviceId, ringId, at: 1000, seq: 1, jpeg },
  record: null
})
const answer = (rings: KeptRing[], more = false): KeptReadFrame[] => [...rings.map((k): KeptReadFrame => ({ kind: 'ring', kept: k })), { kind: 'end', count: rings.length, more }]

test('a read\'s parts, in any order, give its rings; parts of another read or doorbell are not taken for it', async () => {
  const r = new CloudKeptReads()
  const logs: string[] = []
  const one = r.expect('k-1', 'front-door', 10_000)
  const parts = keptAnswerParts('k-1', answer([kept('front-door', 'r-1')], true))
  assert.ok(parts.length > 2)
  // A part of this read from another doorbell's channel: dropped, logged.
  assert.equal(r.take('back-door', parts[0], (m) => logs.push(m)), true)
  for (const p of [...parts].reverse()) assert.equal(r.take('front-door', p, (m) => logs.push(m)), true)
  const read = await one
  assert.deepEqual(read.rings.map((k) => k.ring.ringId), ['r-1'])
  assert.equal(read.more, true)
  assert.equal(r.waitingCount, 0)
  assert.equal(logs.length, 1)
  assert.match(logs[0]!, /nothing waits for it/)
  // Signaling and other envelopes are not taken.
  assert.equal(r.take('front-door', JSON.stringify({ type: 'answer', sessionId: 's-1', sdp: 'v=0' }), () => {}), false)
  assert.equal(r.take('front-door', JSON.stringify({ type: 'dismiss-result', id: 'k-1', answer: { kind: 'refused', message: 'x' } }), () => {}), false)
})

test('a refusal, another doorbell\'s ring, or a part that fails its schema rejects the read with why', async () => {
  const r = new CloudKeptReads()
  const refused = r.expect('k-1', 'front-door', 10_000)
  for (const p of keptAnswerParts('k-1', [{ kind: 'refused', message: 'the history is for the home\'s owner, residents and operators' }])) r.take('front-door', p, () => {})
  await assert.rejects(refused, (e: Error) => e instanceof KeptReadError && /the doorbell refused: the history is for/.test(e.message))
  const foreign = r.expect('k-2', 'front-door', 10_000)
  for (const p of keptAnswerParts('k-2', answer([kept('back-door', 'r-2')]))) r.take('front-door', p, () => {})
  await assert.rejects(foreign, /front-door sent another doorbell's ring/)
  const logs: string[] = []
  assert.equal(r.take('front-door', JSON.stringify({ type: 'kept-part', id: 'k-3', part: 3, parts: 2, data: '' }), (m) => logs.push(m)), true)
  assert.match(logs[0] ?? '', /rejected a part of the kept rings/)
  assert.equal(r.waitingCount, 0)
})

test('no next part in time, or the client closing, rejects the read', async () => {
  const r = new CloudKeptReads(50)
  const silent = r.expect('k-1', 'front-door', 50)
  await assert.rejects(silent, /no answer from front-door/)
  const stalled = r.expect('k-2', 'front-door', 10_000)
  const parts = keptAnswerParts('k-2', answer([kept('front-door', 'r-1')]))
  r.take('front-door', parts[0], () => {})
  await assert.rejects(stalled, /no answer from front-door/)
  const closing = r.expect('k-3', 'front-door', 10_000)
  r.clear('the cloud path closed')
  await assert.rejects(closing, /the cloud path closed/)
})
