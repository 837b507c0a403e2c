import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { HistoryEvent, KeptRing } from '@doorbell/core'
import { describeEvent, describeKept, mergeEvents, unseenIds } from '../src/components/history/eventHistory'

const event = (o: Partial<HistoryEvent>): HistoryEvent => ({
  id: 1, kind: 'ring', deviceId: 'front', deviceName: 'Front door', at: 1000, outcome: 'missed', who: [], durationMs: null,
  detail: null, ringId: 'r1', snapshot: true, noPicture: null, unseen: false, ...o
})

test('events read in the doorbell\'s words', () => {
  assert.equal(describeEvent(event({})), 'missed ring')
  assert.equal(describeEvent(event({ outcome: 'answered', who: ['Kitchen tablet', 'Phone'], durationMs: 42_400 })), 'answered by Kitchen tablet, Phone, 42 s')
  assert.equal(describeEvent(event({ kind: 'door', outcome: 'allowed', who: ['Phone'] })), 'door opened by Phone')
  assert.equal(describeEvent(event({ kind: 'door', outcome: 'denied', who: ['Visitor'], detail: 'guests cannot open the door' })), 'door refused to Visitor (guests cannot open the door)')
  assert.equal(describeEvent(event({ outcome: 'ringing' })), 'ringing')
  assert.equal(describeEvent(event({ outcome: 'dismissed', who: ['Kitchen tablet', 'Phone'] })), 'dismissed by Kitchen tablet, Phone')
  assert.equal(describeEvent(event({ outcome: 'dismissed', who: ['Kitchen tablet', 'Phone'], everyoneDismissed: true })), 'dismissed by Kitchen tablet, Phone (everyone it was shown to)')
  assert.equal(describeEvent(event({ outcome: 'dismissed', who: ['Phone'], everyoneDismissed: false })), 'dismissed by Phone')
  assert.equal(describeEvent(event({ kind: 'talk', outcome: 'allowed', who: ['Phone'] })), 'Phone talked')
  assert.equal(describeEvent(event({ kind: 'talk', outcome: 'allowed', who: ['Phone'], durationMs: 12_400 })), 'Phone talked for 12 s')
  assert.equal(describeEvent(event({ kind: 'talk', outcome: 'denied', who: ['Visitor'], detail: 'guests may not talk' })), 'talk refused to Visitor (guests may not talk)')
})

test('pages join newest first, each event once, its newest copy kept', () => {
  const shown = [event({ id: 3, at: 3000 }), event({ id: 2, at: 2000, unseen: true })]
  const merged = mergeEvents(shown, [event({ id: 2, at: 2000, unseen: false }), event({ id: 1, at: 2000 }), event({ id: 4, at: 4000 })])
  assert.deepEqual(merged.map((e) => e.id), [4, 3, 2, 1])
  assert.equal(merged.find((e) => e.id === 2)?.unseen, false)
  assert.deepEqual(unseenIds([event({ id: 5, unseen: true }), event({ id: 6 })]), [5])
})

test('a ring the doorbell kept reads as the doorbell knows it: not over yet, missed, answered by whom and how long', () => {
  const ring = { type: 'ring' as const, deviceId: 'front', deviceName: 'Front door', ringId: 'r1', at: 1000, count: 1 }
  const kept = (record: KeptRing['record']): KeptRing => ({ type: 'kept', deviceId: 'front', ring, snapshot: null, record })
  assert.equal(describeKept(kept(null)), 'rang (how it ended is not known yet)')
  assert.equal(describeKept(kept({ deviceId: 'front', ringId: 'r1', startedAt: 1000, endedAt: 31_000, outcome: 'missed', answeredBy: [], unlocks: [] })), 'missed ring')
  assert.equal(describeKept(kept({ deviceId: 'front', ringId: 'r1', startedAt: 1000, endedAt: 13_400, outcome: 'answered', answeredBy: [{ viewerId: 'v1', viewerName: 'Kitchen' }, { viewerId: 'v1', viewerName: 'Kitchen' }, { viewerId: 'v2', viewerName: 'Hall' }], unlocks: [] })), 'answered by Kitchen, Hall, 12 s')
})

test('a kept ring dismissed on the doorbell reads as the hub will record it: dismissed by whom (unless answered)', () => {
  const ring = { type: 'ring' as const, deviceId: 'front', deviceName: 'Front door', ringId: 'r1', at: 1000, count: 1 }
  const dismissals = [{ memberId: 'm1', memberName: 'Ann', viewerId: 'v1', at: 2000 }, { memberId: 'm2', memberName: 'Bob', viewerId: 'v2', at: 3000 }]
  const kept = (record: KeptRing['record']): KeptRing => ({ type: 'kept', deviceId: 'front', ring, snapshot: null, record, dismissals })
  assert.equal(describeKept(kept(null)), 'dismissed by Ann, Bob (still ringing)')
  assert.equal(describeKept(kept({ deviceId: 'front', ringId: 'r1', startedAt: 1000, endedAt: 31_000, outcome: 'missed', answeredBy: [], unlocks: [] })), 'dismissed by Ann, Bob')
  assert.equal(describeKept(kept({ deviceId: 'front', ringId: 'r1', startedAt: 1000, endedAt: 5000, outcome: 'answered', answeredBy: [{ viewerId: 'v3', viewerName: 'Hall' }], unlocks: [] })), 'answered by Hall, 4 s')
})
