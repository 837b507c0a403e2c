import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CallRecord, RingEvent } from '@doorbell/core'
import { HistoryStore } from '../src/history/store'

/** "Dismissed by everyone" per screen: a member's two screens (tabs) are two screens; each shown one must have dismissed (docs/history.md). */

const ring = (ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId, at, count: 1 })
const missed = (ringId: string, at: number): CallRecord => ({ deviceId: 'front', ringId, startedAt: at, endedAt: at + 5000, outcome: 'missed', answeredBy: [], unlocks: [] })
const all = { memberId: 'owner', devices: null }

test('a member with two screens shown a ring: dismissed on one only is not everyone; on both, or by a dismissal naming no screen, it is', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-shown-screens-'))
  const store = new HistoryStore(dir)
  t.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }) })
  const ann = { id: 'm-ann', name: 'Ann' }
  const bob = { id: 'm-bob', name: 'Bob' }
  const shown = [{ memberId: ann.id, screen: 'viewer-va-tab1' }, { memberId: ann.id, screen: 'viewer-va-tab2' }, { memberId: bob.id, screen: 'viewer-vb-tab1' }]
  const add = (ringId: string, at: number): void => { store.addShown(store.addRing(ring(ringId, at)), [ann.id, bob.id], shown) }

  // r1: Ann dismisses on her first screen, Bob on his: Ann's second screen did not.
  add('r1', 1000)
  store.dismiss('front', 'r1', { ...ann, screen: 'viewer-va-tab1' })
  store.dismiss('front', 'r1', { ...bob, screen: 'viewer-vb-tab1' })
  store.endRing(missed('r1', 1000), 'Front door')
  // r2: every screen dismissed (Ann on both of hers).
  add('r2', 2000)
  store.dismiss('front', 'r2', { ...ann, screen: 'viewer-va-tab1' })
  store.dismiss('front', 'r2', { ...ann, screen: 'viewer-va-tab2' })
  store.dismiss('front', 'r2', { ...bob, screen: 'viewer-vb-tab1' })
  store.endRing(missed('r2', 2000), 'Front door')
  // r3: Ann's dismissal names no screen (an older page, or the doorbell's kept copy): all of hers.
  add('r3', 3000)
  store.endRing(missed('r3', 3000), 'Front door')
  store.dismiss('front', 'r3', ann)
  store.dismiss('front', 'r3', { ...bob, screen: 'viewer-vb-tab1' })
  // r4: recorded before screens were noted (members only): the member rule, as before.
  store.addShown(store.addRing(ring('r4', 4000)), [ann.id, bob.id])
  store.dismiss('front', 'r4', { ...ann, screen: 'viewer-va-tab1' })
  store.dismiss('front', 'r4', bob)
  store.endRing(missed('r4', 4000), 'Front door')

  const byRing = new Map(store.list({ limit: 10 }, all).events.map((e) => [e.ringId, e]))
  assert.deepEqual(byRing.get('r1')?.who, ['Ann', 'Bob'], 'the wording names members, once each')
  assert.equal(byRing.get('r1')?.outcome, 'dismissed')
  assert.equal(byRing.get('r1')?.everyoneDismissed, false, 'Ann\'s second screen was shown it and did not dismiss it')
  assert.deepEqual(byRing.get('r2')?.who, ['Ann', 'Bob'])
  assert.equal(byRing.get('r2')?.everyoneDismissed, true)
  assert.equal(byRing.get('r3')?.everyoneDismissed, true)
  assert.equal(byRing.get('r4')?.everyoneDismissed, true)
  // One event read alone says the same.
  assert.equal(store.get(byRing.get('r1')!.id, all)?.everyoneDismissed, false)
  assert.equal(store.get(byRing.get('r2')!.id, all)?.everyoneDismissed, true)
})
