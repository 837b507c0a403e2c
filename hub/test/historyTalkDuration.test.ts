import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DoorAttempt } from '@doorbell/core'
import { HistoryStore } from '../src/history/store'

/** How long a talk lasted: the doorbell's lease-end record puts the duration on the request's talk event. */

test('a talk\'s lease end gives its request a duration; an end for an unknown request changes nothing; a malformed lease is refused by the schema', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-talk-'))
  const store = new HistoryStore(dir)
  t.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }) })
  const request: DoorAttempt = { id: 'a1', kind: 'talk', deviceId: 'front', at: 1000, outcome: 'allowed', reason: 'ok', message: 'Phone talked', memberId: 'm1', viewerId: 'v1', viewerName: 'Phone', role: 'resident', path: 'lan' }
  store.addTalk(request, 'Front door')
  const all = { memberId: 'm1', devices: null }
  assert.equal(store.list({ limit: 5, filter: 'talk' }, all).events[0]!.durationMs, null, 'not over yet')
  store.addTalk({ ...request, id: 'a1-end', at: 13_400, message: 'Phone stopped talking after 12 s', lease: { attemptId: 'a1', durationMs: 12_400 } }, 'Front door')
  const events = store.list({ limit: 5, filter: 'talk' }, all).events
  assert.equal(events.length, 1, 'the end is not an event of its own')
  assert.deepEqual([events[0]!.outcome, events[0]!.who, events[0]!.durationMs], ['allowed', ['Phone'], 12_400])
  store.addTalk({ ...request, id: 'zz-end', lease: { attemptId: 'zz', durationMs: 5 } }, 'Front door')
  assert.deepEqual(store.list({ limit: 5, filter: 'talk' }, all).events, events)
  for (const lease of [{ attemptId: 'a1', durationMs: -1 }, { attemptId: 'a/1', durationMs: 5 }, { attemptId: 'a1', durationMs: 5, extra: 1 }, { attemptId: 'a1', durationMs: 86_400_001 }]) {
    assert.equal(DoorAttempt.safeParse({ ...request, lease }).success, false, JSON.stringify(lease))
  }
})
