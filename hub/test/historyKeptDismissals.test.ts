import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, type CallRecord, type KeptRing, type RingEvent } from '@doorbell/core'
import { HistoryStore } from '../src/history/store'
import { historyIngest } from '../src/history/ingest'

/**
 * A kept ring that carries dismissals (told to the doorbell on the direct path while the hub was
 * down): the hub's history shows it dismissed, by whom, as if the screens had told the hub; taken
 * twice, it changes nothing. A real node:sqlite store; the broker's publish is the ingest's input.
 */

const ring = (ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId, at, count: 1 })
const ended = (ringId: string, at: number, answeredBy: string[] = []): CallRecord => ({
  deviceId: 'front', ringId, startedAt: at, endedAt: at + 5000, outcome: answeredBy.length ? 'answered' : 'missed',
  answeredBy: answeredBy.map((n, i) => ({ viewerId: `v${i}`, viewerName: n })), unlocks: []
})
const all = { memberId: 'owner', devices: null }

function setup (t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-kept-dismiss-'))
  const store = new HistoryStore(dir)
  t.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }) })
  const lines: string[] = []
  const ingest = historyIngest({ store, deviceName: () => 'Front door', log: memoryLogger(lines, 'history') })
  const publish = (kind: string, payload: unknown): void => {
    ingest({ cmd: 'publish', topic: `doorbell/home/front/${kind}`, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain: false, dup: false } as never, { id: 'device-front' } as never)
  }
  const event = (ringId: string) => store.list({ limit: 50 }, all).events.find((e) => e.ringId === ringId)
  return { store, lines, publish, event }
}

test('a kept ring with dismissals: dismissed by those members, in order, not unseen; taken again, unchanged', (t) => {
  const s = setup(t)
  const kept: KeptRing = {
    type: 'kept', deviceId: 'front', ring: ring('r1', 1000), snapshot: null, record: ended('r1', 1000),
    dismissals: [
      { memberId: 'm-ann', memberName: 'Ann', viewerId: 'v-ann', at: 2000 },
      { memberId: 'm-bob', memberName: 'Bob', viewerId: 'v-bob', at: 3000 }
    ]
  }
  s.publish('kept', kept)
  const first = s.event('r1')
  assert.equal(first?.outcome, 'dismissed')
  assert.deepEqual(first?.who, ['Ann', 'Bob'])
  assert.equal(first?.unseen, false, 'a dismissed ring was seen')
  assert.equal(first?.everyoneDismissed, false, 'the hub was down: nobody is known to have been shown it')
  s.publish('kept', kept)
  assert.deepEqual(s.event('r1'), first, 'handed over twice: nothing changes')
  assert.equal(s.store.list({ limit: 50 }, all).events.length, 1)
})

test('a ring the hub already had as missed becomes dismissed; a dismissal it already has is not added twice', (t) => {
  const s = setup(t)
  s.publish('ring', ring('r2', 1000))
  s.publish('calls', ended('r2', 1000))
  assert.equal(s.event('r2')?.outcome, 'missed')
  s.store.dismiss('front', 'r2', { id: 'm-ann', name: 'Ann' }, 1500)
  s.publish('kept', {
    type: 'kept', deviceId: 'front', ring: ring('r2', 1000), snapshot: null, record: ended('r2', 1000),
    dismissals: [{ memberId: 'm-ann', memberName: 'Ann', viewerId: 'v-ann2', at: 2500 }, { memberId: 'm-cy', memberName: 'Cy', viewerId: 'v-cy', at: 3000 }]
  } satisfies KeptRing)
  assert.deepEqual(s.event('r2')?.who, ['Ann', 'Cy'])
})

test('a kept ring that was answered stays answered (its dismissals are not taken, and that is logged); a bad kept message changes nothing', (t) => {
  const s = setup(t)
  s.publish('kept', {
    type: 'kept', deviceId: 'front', ring: ring('r3', 1000), snapshot: null, record: ended('r3', 1000, ['Hall']),
    dismissals: [{ memberId: 'm-ann', memberName: 'Ann', viewerId: 'v-ann', at: 2000 }]
  } satisfies KeptRing)
  assert.equal(s.event('r3')?.outcome, 'answered')
  assert.deepEqual(s.event('r3')?.who, ['Hall'])
  assert.ok(s.lines.some((l) => l.includes('a dismissal the doorbell kept was not taken') && l.includes('answered')), s.lines.join('\n'))
  // An empty list, or a dismissal with no member: refused by the schema, no ring recorded.
  s.publish('kept', { type: 'kept', deviceId: 'front', ring: ring('r4', 1000), snapshot: null, record: null, dismissals: [] })
  s.publish('kept', { type: 'kept', deviceId: 'front', ring: ring('r5', 1000), snapshot: null, record: null, dismissals: [{ memberName: 'Ann', viewerId: 'v', at: 1 }] })
  assert.equal(s.event('r4'), undefined)
  assert.equal(s.event('r5'), undefined)
})
