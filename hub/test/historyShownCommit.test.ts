import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import type { RingEvent } from '@doorbell/core'
import { HISTORY_DB_FILE, HistoryStore } from '../src/history/store'

/**
 * Who was shown a ring is written in one commit (docs/performance.md: 200 commits of their own
 * held the broker's thread about 6 ms per ring shown to 100 screens): all its rows or none.
 */

const ring = (ringId: string): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId, at: 1000, count: 1 })

function open (): { store: HistoryStore, rows: (table: 'ring_shown' | 'ring_shown_screens') => number, close: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-shown-commit-'))
  const store = new HistoryStore(dir)
  // A second connection, as another reader of the file: it sees only what was committed.
  const reader = new DatabaseSync(join(dir, HISTORY_DB_FILE), { readOnly: true })
  return {
    store,
    rows: (table) => Number((reader.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n),
    close: () => { reader.close(); store.close(); rmSync(dir, { recursive: true, force: true }) }
  }
}

test('a ring shown to 100 screens of 50 members: every row is there once committed', (t) => {
  const s = open()
  t.after(s.close)
  const members = Array.from({ length: 50 }, (_, i) => `m-${i}`)
  const screens = members.flatMap((m) => [{ memberId: m, screen: `viewer-${m}-a` }, { memberId: m, screen: `viewer-${m}-b` }])
  s.store.addShown(s.store.addRing(ring('r1')), members, screens)
  assert.equal(s.rows('ring_shown'), 50)
  assert.equal(s.rows('ring_shown_screens'), 100)
  // The same again (a copy delivered twice) changes nothing.
  s.store.addShown(s.store.addRing(ring('r1')), members, screens)
  assert.equal(s.rows('ring_shown_screens'), 100)
})

test('a row that cannot be written (an unknown ring, a screen with no id) throws and leaves none of the ring\'s rows', (t) => {
  const s = open()
  t.after(s.close)
  const id = s.store.addRing(ring('r1'))
  const screens = [{ memberId: 'm-a', screen: 'viewer-a-1' }, { memberId: 'm-b', screen: null as unknown as string }]
  assert.throws(() => { s.store.addShown(id, ['m-a', 'm-b'], screens) }, /NOT NULL/)
  assert.equal(s.rows('ring_shown'), 0, 'the members written before the bad screen are rolled back')
  assert.equal(s.rows('ring_shown_screens'), 0)
  assert.throws(() => { s.store.addShown(id + 1000, ['m-a'], [{ memberId: 'm-a', screen: 'viewer-a-1' }]) }, /FOREIGN KEY/)
  assert.equal(s.rows('ring_shown'), 0)
  // The store is usable afterwards (no transaction left open).
  s.store.addShown(id, ['m-a'], [{ memberId: 'm-a', screen: 'viewer-a-1' }])
  assert.equal(s.rows('ring_shown'), 1)
})

test('inside a transaction already open on the store\'s connection, it joins it instead of opening another', (t) => {
  const s = open()
  t.after(s.close)
  const db = (s.store as unknown as { db: DatabaseSync }).db
  const id = s.store.addRing(ring('r1'))
  db.exec('BEGIN')
  s.store.addShown(id, ['m-a'], [{ memberId: 'm-a', screen: 'viewer-a-1' }])
  assert.equal(s.rows('ring_shown'), 0, 'not committed yet: the caller\'s transaction decides')
  db.exec('COMMIT')
  assert.equal(s.rows('ring_shown'), 1)
})

test('the lists as they cross from the broker\'s thread (JSON arrays): written the same; one that is not a JSON array writes none of the ring\'s rows', (t) => {
  const s = open()
  t.after(s.close)
  const id = s.store.addRing(ring('r1'))
  assert.throws(() => { s.store.addShownEncoded(id, '["m-a"]', '[{"memberId":"m-a","screen":"viewer-a-1"},') }, /JSON/)
  assert.equal(s.rows('ring_shown'), 0, 'the members, written first, are rolled back')
  s.store.addShownEncoded(id, '["m-a","m-b"]', '[{"memberId":"m-a","screen":"viewer-a-1"},{"memberId":"m-b","screen":"viewer-b-1"}]')
  assert.equal(s.rows('ring_shown'), 2)
  assert.equal(s.rows('ring_shown_screens'), 2)
})
