import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HistoryEvent, type CallRecord, type RingEvent } from '@doorbell/core'
import { HistoryStore } from '../src/history/store'

/** "Dismissed by everyone": every member shown a ring (connected when it rang) dismissed it (docs/history.md). */

const ring = (ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId, at, count: 1 })
const missed = (ringId: string, at: number): CallRecord => ({ deviceId: 'front', ringId, startedAt: at, endedAt: at + 5000, outcome: 'missed', answeredBy: [], unlocks: [] })
const all = { memberId: 'owner', devices: null }

test('a ring every shown member dismissed is dismissed by everyone; one some ignored, or nobody was known to be shown, is not', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-shown-'))
  const store = new HistoryStore(dir)
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const a = { id: 'm-a', name: 'Kitchen' }
  const b = { id: 'm-b', name: 'Hall' }

  // r1: shown to A and B, both dismiss (one while it rings, one after it was missed).
  store.addShown(store.addRing(ring('r1', 1000)), [a.id, b.id])
  store.dismiss('front', 'r1', a)
  store.endRing(missed('r1', 1000), 'Front door')
  store.dismiss('front', 'r1', b)
  // r2: shown to A and B, only A dismisses.
  store.addShown(store.addRing(ring('r2', 2000)), [a.id, b.id])
  store.dismiss('front', 'r2', a)
  store.endRing(missed('r2', 2000), 'Front door')
  // r3: the hub does not know who was shown it (no screen connected; a dismissal told later).
  store.addRing(ring('r3', 3000))
  store.endRing(missed('r3', 3000), 'Front door')
  store.dismiss('front', 'r3', a)
  // r4: shown, nobody dismissed: missed, no such mark.
  store.addShown(store.addRing(ring('r4', 4000)), [a.id])
  store.endRing(missed('r4', 4000), 'Front door')

  const events = store.list({ limit: 10 }, all).events
  for (const e of events) HistoryEvent.parse(e)
  const by = new Map(events.map((e) => [e.ringId, e]))
  assert.deepEqual([by.get('r1')!.outcome, by.get('r1')!.who, by.get('r1')!.everyoneDismissed], ['dismissed', ['Kitchen', 'Hall'], true])
  assert.deepEqual([by.get('r2')!.outcome, by.get('r2')!.who, by.get('r2')!.everyoneDismissed], ['dismissed', ['Kitchen'], false])
  assert.deepEqual([by.get('r3')!.outcome, by.get('r3')!.everyoneDismissed], ['dismissed', false])
  assert.equal(by.get('r4')!.outcome, 'missed')
  assert.equal('everyoneDismissed' in by.get('r4')!, false)
  // One event at a time says the same; the mark survives a restart (the shown members are rows).
  assert.equal(store.get(by.get('r1')!.id, all)!.everyoneDismissed, true)
  store.close()
  const again = new HistoryStore(dir)
  assert.equal(again.list({ limit: 10, filter: 'dismissed' }, all).events.filter((e) => e.everyoneDismissed).map((e) => e.ringId).join(), 'r1')
  again.close()
})
