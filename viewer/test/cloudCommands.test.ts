import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CommandTimeoutError } from '@doorbell/core'
import { CloudCommandError, CloudCommands } from '../src/lib/paths/cloud/cloudCommands'

/** The answers to dismissals sent on a KVS channel (cloudCommands.ts): matched by id, apart from commands' results and signaling. */

const answer = (id: string | null, a: unknown): string => JSON.stringify({ type: 'dismiss-result', id, answer: a })

test('a dismissal\'s answer settles the dismissal with its id, and only it', async () => {
  const c = new CloudCommands()
  const logs: string[] = []
  const one = c.expectDismissal('d-1', 10_000)
  const two = c.expectDismissal('d-2', 10_000)
  assert.equal(c.waitingCount, 2)
  assert.equal(c.take(answer('d-2', { kind: 'refused', message: 'no such ring' }), (m) => logs.push(m)), true)
  assert.deepEqual(await two, { kind: 'refused', message: 'no such ring' })
  assert.equal(c.take(answer('d-1', { kind: 'dismissed', outcome: 'ringing' }), (m) => logs.push(m)), true)
  assert.deepEqual(await one, { kind: 'dismissed', outcome: 'ringing' })
  assert.equal(c.waitingCount, 0)
  assert.deepEqual(logs, [])
})

test('an answer nobody waits for, or that fails its schema, is taken and logged; signaling is not taken', () => {
  const c = new CloudCommands()
  const logs: string[] = []
  assert.equal(c.take(answer('d-9', { kind: 'dismissed', outcome: 'ringing' }), (m) => logs.push(m)), true)
  assert.equal(c.take(answer(null, { kind: 'refused', message: 'x' }), (m) => logs.push(m)), true)
  assert.equal(c.take(answer('d-1', { kind: 'dismissed', outcome: 'later' }), (m) => logs.push(m)), true)
  assert.equal(c.take(JSON.stringify({ type: 'answer', sessionId: 's-1', sdp: 'v=0' }), (m) => logs.push(m)), false)
  assert.match(logs[0]!, /dropped an answer for dismissal d-9: nothing waits for it/)
  assert.match(logs[1]!, /dropped an answer for dismissal \(unreadable\)/)
  assert.match(logs[2]!, /rejected a dismissal's answer: answer/)
})

test('no answer in time is a CommandTimeoutError; a failed send or a closed client says why', async () => {
  const c = new CloudCommands()
  await assert.rejects(c.expectDismissal('d-1', 20), CommandTimeoutError)
  const failed = c.expectDismissal('d-2', 10_000)
  c.fail('d-2', new CloudCommandError('could not send the dismissal: closed'))
  await assert.rejects(failed, /could not send the dismissal: closed/)
  const closed = c.expectDismissal('d-3', 10_000)
  const command = c.expect('c-1', 10_000)
  c.clear('the cloud path closed')
  await assert.rejects(closed, /the cloud path closed/)
  await assert.rejects(command, /the cloud path closed/)
  assert.equal(c.waitingCount, 0)
})

test('a replies read\'s answer settles that read, apart from dismissals; a bad one is logged; a closed client fails it', async () => {
  const c = new CloudCommands()
  const logs: string[] = []
  const read = c.expectReplies('q-1', 10_000)
  const dismissal = c.expectDismissal('q-2', 10_000)
  assert.equal(c.waitingCount, 2)
  assert.equal(c.take(JSON.stringify({ type: 'replies-result', id: 'q-1', answer: { kind: 'replies', replies: ['Leave it at the door'] } }), (m) => logs.push(m)), true)
  assert.deepEqual(await read, { kind: 'replies', replies: ['Leave it at the door'] })
  assert.equal(c.take(JSON.stringify({ type: 'replies-result', id: 'q-2', answer: { kind: 'replies', replies: ['x'] } }), (m) => logs.push(m)), true)
  assert.match(logs[0]!, /dropped an answer for replies read q-2: nothing waits for it/)
  assert.equal(c.take(JSON.stringify({ type: 'replies-result', id: 'q-3', answer: { kind: 'replies', replies: ['\u0007'] } }), (m) => logs.push(m)), true)
  assert.match(logs[1]!, /rejected a replies read's answer: answer/)
  const later = c.expectReplies('q-4', 10_000)
  c.clear('the cloud path closed')
  await assert.rejects(later, /the cloud path closed/)
  await assert.rejects(dismissal, /the cloud path closed/)
})
