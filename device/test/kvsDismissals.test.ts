import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeCloudDismissResult, generateSigningKey, memoryLogger, signViewClaim, type DismissDirectAnswer, type DismissDirectRequest } from '@doorbell/core'
import { kvsCommands } from '../src/paths/cloud/kvsCommands'

/** Dismissals on the KVS channel (kvsCommands.ts): routed to the doorbell's one handler, answered to the sender alone under the request's id. */

// Well-formed signed tokens: the handler (here a recorder) is what checks them.
const key = (await generateSigningKey(false)).privateKey
const token = await signViewClaim({ key, home: 'home', device: 'front-door', session: 'r-1' })
const request = (viewerId: string): DismissDirectRequest => ({ homeId: 'home', viewerId, credential: token, proof: token, ringId: 'r-1' })
const payload = (id: string, r: unknown): string => JSON.stringify({ type: 'dismiss', id, request: r })

function setup (dismiss?: (r: DismissDirectRequest) => Promise<DismissDirectAnswer>) {
  const lines: string[] = []
  const sent: Array<{ viewerId: string, answer: ReturnType<typeof decodeCloudDismissResult> }> = []
  const taken: DismissDirectRequest[] = []
  const handler = kvsCommands({
    take: async () => { throw new Error('not a command') },
    ...(dismiss ? { dismiss: async (r: DismissDirectRequest) => { taken.push(r); return await dismiss(r) } } : {}),
    send: (viewerId, p) => { sent.push({ viewerId, answer: decodeCloudDismissResult(p) }); return true },
    log: memoryLogger(lines, 'kvs')
  })
  const answered = async (n: number): Promise<void> => { for (let i = 0; i < 100 && sent.length < n; i++) await new Promise((resolve) => setImmediate(resolve)) }
  return { handler, sent, taken, lines, answered }
}

test('a dismissal goes to the handler and its answer back to the sender under its id', async () => {
  const s = setup(async () => ({ kind: 'dismissed', outcome: 'ringing' }))
  s.handler.dismiss('v-kitchen', payload('d-1', request('v-kitchen')))
  await s.answered(1)
  assert.deepEqual(s.taken, [request('v-kitchen')])
  assert.equal(s.sent[0]?.viewerId, 'v-kitchen')
  assert.ok(s.sent[0]?.answer.ok)
  assert.deepEqual(s.sent[0].answer.ok && s.sent[0].answer.message, { type: 'dismiss-result', id: 'd-1', answer: { kind: 'dismissed', outcome: 'ringing' } })
})

test('a refusal from the handler is the answer', async () => {
  const s = setup(async () => ({ kind: 'refused', message: 'no such ring' }))
  s.handler.dismiss('v-kitchen', payload('d-2', request('v-kitchen')))
  await s.answered(1)
  assert.deepEqual(s.sent[0]?.answer.ok && s.sent[0].answer.message.answer, { kind: 'refused', message: 'no such ring' })
})

test('bad input is refused with a reason and reaches no handler: a schema failure, a request signed for another viewer, no sender id', async () => {
  const s = setup(async () => ({ kind: 'dismissed', outcome: 'ringing' }))
  s.handler.dismiss('v-kitchen', payload('d-3', { ringId: 'r-1' }))
  s.handler.dismiss('v-kitchen', JSON.stringify({ type: 'dismiss', id: 'not an id!', request: request('v-kitchen') }))
  s.handler.dismiss('v-owner', payload('d-4', request('v-kitchen')))
  s.handler.dismiss('', payload('d-5', request('v-kitchen')))
  await s.answered(3)
  assert.equal(s.taken.length, 0)
  const answers = s.sent.map((x) => x.answer.ok ? [x.viewerId, x.answer.message.id, x.answer.message.answer.kind === 'refused' ? x.answer.message.answer.message : 'dismissed'] : ['unreadable'])
  assert.equal(answers.length, 3, 'no answer without a sender')
  assert.deepEqual(answers[0]?.slice(0, 2), ['v-kitchen', 'd-3'])
  assert.match(String(answers[0]?.[2]), /^request\.homeId: /)
  assert.deepEqual(answers[1]?.slice(0, 2), ['v-kitchen', null], 'an unreadable id is answered without one')
  assert.deepEqual(answers[2], ['v-owner', 'd-4', 'this dismissal is signed for viewer v-kitchen, but KVS names its sender v-owner'])
  assert.ok(s.lines.some((l) => l.includes('dropped a KVS dismissal with no sender id')))
})

test('without a handler (no rings kept) a dismissal is refused', async () => {
  const s = setup()
  s.handler.dismiss('v-kitchen', payload('d-6', request('v-kitchen')))
  await s.answered(1)
  assert.deepEqual(s.sent[0]?.answer.ok && s.sent[0].answer.message.answer, { kind: 'refused', message: 'this doorbell keeps no rings' })
})
