import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, type CallRecord, type DoorAttempt, type RingEvent } from '@doorbell/core'
import { DatabaseSync } from 'node:sqlite'
import { HistoryStore } from '../src/history/store'
import { historyIngest } from '../src/history/ingest'
import { startHub } from '../src/hub'

/** The history's store on a real node:sqlite file and real files: paging, filters, scopes, seen marks, retention, restarts, a full disk. */

const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 7), Buffer.from([0xff, 0xd9])])
const ring = (deviceId: string, ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId, deviceName: `${deviceId} door`, ringId, at, count: 1 })
const ended = (deviceId: string, ringId: string, at: number, answeredBy: string[] = []): CallRecord => ({
  deviceId, ringId, startedAt: at, endedAt: at + 12_000, outcome: answeredBy.length ? 'answered' : 'missed',
  answeredBy: answeredBy.map((n, i) => ({ viewerId: `v${i}`, viewerName: n })), unlocks: []
})
const door = (id: string, deviceId: string, at: number, outcome: 'allowed' | 'denied'): DoorAttempt => ({
  id, deviceId, at, outcome, reason: outcome === 'allowed' ? 'ok' : 'no-door-right', message: outcome === 'allowed' ? 'opened' : 'guests cannot open the door',
  memberId: 'm1', viewerId: 'v1', viewerName: 'Kitchen tablet', role: 'resident', path: 'lan'
})
const all = { memberId: 'owner', devices: null }

function tempStore (t: { after: (fn: () => void) => void }): HistoryStore {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-'))
  const store = new HistoryStore(dir)
  t.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }) })
  return store
}

test('rings (missed, answered by whom and how long) and door attempts, newest first, a page at a time, by filter and device', (t) => {
  const store = tempStore(t)
  const base = 1_700_000_000_000
  for (let i = 0; i < 25; i++) {
    const device = i % 2 ? 'front' : 'back'
    store.addRing(ring(device, `r${i}`, base + i * 1000))
    store.endRing(ended(device, `r${i}`, base + i * 1000, i % 3 ? [] : ['Kitchen tablet']), `${device} door`)
  }
  store.addDoor(door('a1', 'front', base + 30_000, 'allowed'), 'front door')
  store.addDoor(door('a1', 'front', base + 30_000, 'allowed'), 'front door') // delivered twice, stored once
  store.addDoor(door('a2', 'front', base + 31_000, 'denied'), 'front door')

  const first = store.list({ limit: 10 }, all)
  assert.equal(first.events.length, 10)
  assert.deepEqual(first.events.slice(0, 2).map((e) => [e.kind, e.outcome, e.detail]), [['door', 'denied', 'guests cannot open the door'], ['door', 'allowed', null]])
  const seen = new Set<number>()
  let page = first
  let pages = 1
  for (const e of page.events) seen.add(e.id)
  while (page.next) {
    page = store.list({ limit: 10, before: page.next }, all)
    pages++
    for (const e of page.events) { assert.ok(!seen.has(e.id), 'no event on two pages'); seen.add(e.id) }
  }
  assert.equal(pages, 3)
  assert.equal(seen.size, 27)

  const answered = store.list({ limit: 50, filter: 'answered' }, all).events
  assert.equal(answered.length, 9)
  assert.deepEqual(answered[0]!.who, ['Kitchen tablet'])
  assert.equal(answered[0]!.durationMs, 12_000)
  assert.equal(store.list({ limit: 50, filter: 'missed' }, all).events.length, 16)
  assert.equal(store.list({ limit: 50, filter: 'door' }, all).events.length, 2)
  assert.ok(store.list({ limit: 50, device: 'back' }, all).events.every((e) => e.deviceId === 'back'))
  // An operator's scope: only the devices of their zones.
  assert.ok(store.list({ limit: 50 }, { memberId: 'op', devices: ['back'] }).events.every((e) => e.deviceId === 'back'))
  assert.equal(store.list({ limit: 50 }, { memberId: 'op', devices: [] }).events.length, 0)
})

test('missed rings are unseen per member until that member marks them seen; others still see them unseen', (t) => {
  const store = tempStore(t)
  const id = store.addRing(ring('front', 'r1', 1000))
  store.endRing(ended('front', 'r1', 1000), 'front door')
  store.addRing(ring('front', 'r2', 2000)) // still ringing: not unseen yet
  assert.equal(store.list({ limit: 10 }, { memberId: 'alice', devices: null }).unseen, 1)
  assert.equal(store.markSeen({ memberId: 'alice', devices: null }, [id]), 1)
  assert.equal(store.list({ limit: 10 }, { memberId: 'alice', devices: null }).unseen, 0)
  assert.equal(store.get(id, { memberId: 'alice', devices: null })?.unseen, false)
  assert.equal(store.get(id, { memberId: 'bob', devices: null })?.unseen, true)
  // Out of scope: an operator cannot mark (or see) another zone's ring.
  assert.equal(store.markSeen({ memberId: 'op', devices: ['back'] }, [id]), 0)
  assert.equal(store.get(id, { memberId: 'op', devices: ['back'] }), null)
})

test('pictures: a later one replaces an earlier one, a late earlier one and "no picture" never replace it', (t) => {
  const store = tempStore(t)
  const id = store.addRing(ring('front', 'r1', 1000))
  assert.equal(store.setSnapshot(id, 1, null, 'the camera holds no keyframe'), false)
  assert.equal(store.get(id, all)?.noPicture, 'the camera holds no keyframe')
  assert.equal(store.setSnapshot(id, 2, JPEG), true)
  assert.equal(store.setSnapshot(id, 1, Buffer.from([0xff, 0xd8, 0xff, 1])), false)
  assert.equal(store.setSnapshot(id, 3, null, 'camera down'), false)
  assert.deepEqual(store.snapshot(id), JPEG)
  assert.equal(store.get(id, all)?.noPicture, null)
  assert.equal(store.delete(id), true)
  assert.equal(existsSync(store.snapshotPath(id)), false)
  assert.equal(store.delete(id), false)
})

test('retention: events older than the days go with their pictures; then the oldest pictures until the cap; nothing else', (t) => {
  const store = tempStore(t)
  const day = 86_400_000
  const now = 100 * day
  const ids = [0, 1, 2, 3].map((i) => {
    const id = store.addRing(ring('front', `r${i}`, now - (40 - i * 10) * day)) // 40, 30, 20, 10 days old
    store.setSnapshot(id, 1, JPEG)
    return id
  })
  store.addDoor(door('a1', 'front', now - 35 * day, 'allowed'), 'front door')
  assert.deepEqual(store.prune({ now, days: 30, maxBytes: 1 << 20 }), { events: 2, files: 1 })
  assert.equal(existsSync(store.snapshotPath(ids[0]!)), false)
  assert.deepEqual(store.list({ limit: 10 }, all).events.map((e) => e.id), [ids[3], ids[2], ids[1]].map(Number))
  // A cap of two pictures: the oldest one left goes.
  assert.deepEqual(store.prune({ now, days: 30, maxBytes: JPEG.length * 2 }), { events: 1, files: 1 })
  assert.deepEqual(readdirSync(store.snapshotDir).sort(), [`${ids[2]}.jpg`, `${ids[3]}.jpg`].sort())
})

test('a hub restart keeps the history; retention at start never touches the audit log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-hub-'))
  try {
    const config = { host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off' as const, dataDir: dir, mesh: { enabled: false }, history: { retentionDays: 1, maxMegabytes: 1 } }
    const hub = await startHub(config, { log: memoryLogger() })
    const id = await hub.history.store.addRing(ring('front', 'r1', Date.now()))
    // Not awaited: stopping the hub writes what was sent (the history's thread: threadStore.ts).
    const pictured = hub.history.store.setSnapshot(id, 1, JPEG)
    const old = await hub.history.store.addRing(ring('front', 'r0', Date.now() - 3 * 86_400_000))
    hub.trust.recordDoorAttempt(door('a1', 'front', Date.now() - 3 * 86_400_000, 'denied'))
    await hub.stop()
    assert.equal(await pictured, true)
    const again = await startHub(config, { log: memoryLogger() })
    try {
      assert.deepEqual(await again.history.store.snapshot(id), JPEG)
      assert.equal(await again.history.store.get(old, all), null, 'the 3-day-old ring went at start (1 day kept)')
      assert.ok(again.trust.audit.all().some((r) => JSON.stringify(r).includes('guests cannot open the door')), 'the audit log keeps its 3-day-old line')
    } finally {
      await again.stop()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a full disk (ENOSPC) when a picture is written: a clear logged error, the ring kept and marked without its picture', async (t) => {
  const store = tempStore(t)
  // A real full file system: a 64 KB tmpfs over the pictures' folder, filled up.
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', store.snapshotDir])
  assert.equal(mounted.status, 0, `mount a tmpfs (this test runs as root, as the suite does): ${mounted.stderr.toString()}`)
  try {
    await fullDisk(store)
  } finally {
    spawnSync('umount', [store.snapshotDir])
  }
})

async function fullDisk (store: HistoryStore): Promise<void> {
  try { writeFileSync(join(store.snapshotDir, 'filler'), Buffer.alloc(128 * 1024)) } catch { /* full now */ }
  const lines: string[] = []
  const ingest = historyIngest({ store, deviceName: () => 'front door', log: memoryLogger(lines, 'history') })
  const client = { id: 'device-front' } as never
  const publish = (topic: string, payload: unknown): void => { ingest({ topic, payload: Buffer.from(JSON.stringify(payload)) } as never, client) }
  publish('doorbell/home/front/ring', ring('front', 'r1', 1000))
  publish('doorbell/home/front/snapshot', { type: 'snapshot', deviceId: 'front', ringId: 'r1', at: 1001, seq: 1, jpeg: JPEG.toString('base64') })
  assert.ok(lines.some((l) => /^error .*the disk is full: the ring is kept in the history without its picture.*ENOSPC/.test(l)), lines.join('\n'))
  const [event] = store.list({ limit: 5 }, all).events
  assert.equal(event?.ringId, 'r1')
  assert.equal(event?.snapshot, false)
  assert.equal(event?.noPicture, 'the hub could not store the picture')
}

test('a request to talk is its own event (not a door opening): who, allowed or refused, its own filter; ingested from the audit topic', (t) => {
  const store = tempStore(t)
  const lines: string[] = []
  const ingest = historyIngest({ store, deviceName: () => 'front door', log: memoryLogger(lines, 'history') })
  const base = Date.now() - 60_000
  const talk = (id: string, at: number, outcome: 'allowed' | 'denied'): DoorAttempt => ({ ...door(id, 'front', at, outcome), kind: 'talk', message: outcome === 'allowed' ? 'talking' : 'guests may not talk' })
  const publish = (attempt: DoorAttempt): void => {
    ingest({ cmd: 'publish', topic: `doorbell/home/front/audit`, payload: Buffer.from(JSON.stringify(attempt)), qos: 1, retain: false, dup: false } as never, { id: 'device-front' } as never)
  }
  publish(talk('t1', base, 'allowed'))
  publish(talk('t1', base, 'allowed')) // delivered twice, stored once
  publish(talk('t2', base + 1000, 'denied'))
  publish(door('d1', 'front', base + 2000, 'allowed'))
  // A quick reply played is a talk event that names the reply, never a door opening.
  publish({ ...door('r1', 'front', base + 3000, 'allowed'), kind: 'reply', message: 'played "Leave it at the door"' })
  const talks = store.list({ limit: 50, filter: 'talk' }, all).events
  assert.deepEqual(talks.map((e) => [e.kind, e.outcome, e.who, e.detail]), [['talk', 'allowed', ['Kitchen tablet'], 'played "Leave it at the door"'], ['talk', 'denied', ['Kitchen tablet'], 'guests may not talk'], ['talk', 'allowed', ['Kitchen tablet'], null]])
  assert.deepEqual(store.list({ limit: 50, filter: 'door' }, all).events.map((e) => e.kind), ['door'])
})

test('a history written by schema 1 (no talk kind) is migrated in place: ids, seen marks and pictures kept, talk then stored', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-v1-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  // Schema 1 exactly as the earlier hub wrote it, with a ring, its picture and a seen mark.
  // (the store's own module keeps its database private)
  const old = new DatabaseSync(join(dir, 'history.db'), { enableForeignKeyConstraints: true })
  old.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL CHECK (kind IN ('ring', 'door')), source TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL, device_name TEXT NOT NULL, at INTEGER NOT NULL, outcome TEXT NOT NULL, who TEXT NOT NULL DEFAULT '[]', duration_ms INTEGER,
    detail TEXT, ring_id TEXT, snapshot_bytes INTEGER, snapshot_seq INTEGER, no_picture TEXT);
    CREATE TABLE seen (member_id TEXT NOT NULL, event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE, PRIMARY KEY (member_id, event_id)) WITHOUT ROWID;
    INSERT INTO events (id, kind, source, device_id, device_name, at, outcome, ring_id) VALUES (7, 'ring', 'ring:front:r1', 'front', 'front door', 1000, 'missed', 'r1');
    INSERT INTO seen (member_id, event_id) VALUES ('owner', 7);
    PRAGMA user_version = 1;`)
  assert.throws(() => old.exec(`INSERT INTO events (kind, source, device_id, device_name, at, outcome) VALUES ('talk', 'talk:x', 'front', 'f', 1, 'allowed')`), /CHECK/)
  old.close()
  const store = new HistoryStore(dir)
  t.after(() => { store.close() })
  store.setSnapshot(7, 1, JPEG)
  store.addTalk({ ...door('t1', 'front', 2000, 'allowed'), kind: 'talk' }, 'front door')
  const events = store.list({ limit: 50 }, all).events
  assert.deepEqual(events.map((e) => [e.id, e.kind, e.unseen]), [[8, 'talk', false], [7, 'ring', false]])
  assert.deepEqual(store.snapshot(7), JPEG)
  // The seen mark survived, and still goes with its event.
  assert.equal(store.list({ limit: 50, filter: 'missed' }, { memberId: 'owner', devices: null }).unseen, 0)
  assert.ok(store.delete(7))
  assert.equal(store.list({ limit: 50 }, all).events.length, 1)
})

test('dismissed: a ring nobody answered that a screen dismissed (while ringing or after) is dismissed by whom; answered and unknown rings refused, unchanged', (t) => {
  const store = tempStore(t)
  const kitchen = { id: 'm-kitchen', name: 'Kitchen tablet' }
  const phone = { id: 'm-phone', name: 'Phone' }
  // Dismissed while it rang, by two screens (one twice): recorded when the ring ends unanswered.
  store.addRing(ring('front', 'r1', 1000))
  assert.deepEqual(store.dismiss('front', 'r1', kitchen, 1100), { ok: true, outcome: 'ringing' })
  assert.deepEqual(store.dismiss('front', 'r1', phone, 1200), { ok: true, outcome: 'ringing' })
  assert.deepEqual(store.dismiss('front', 'r1', kitchen, 1300), { ok: true, outcome: 'ringing' })
  assert.equal(store.list({ limit: 50 }, all).events[0]!.outcome, 'ringing')
  store.endRing(ended('front', 'r1', 1000), 'front door')
  // A ring nobody dismissed stays missed; a dismissal arriving after the ring was missed turns it.
  store.addRing(ring('front', 'r2', 2000))
  store.endRing(ended('front', 'r2', 2000), 'front door')
  store.addRing(ring('back', 'r3', 3000))
  store.endRing(ended('back', 'r3', 3000), 'back door')
  assert.deepEqual(store.dismiss('back', 'r3', phone, 4000), { ok: true, outcome: 'dismissed' })
  // Dismissed on one screen, answered on another: answered (the dismissal does not count).
  store.addRing(ring('front', 'r4', 5000))
  store.dismiss('front', 'r4', kitchen, 5100)
  store.endRing(ended('front', 'r4', 5000, ['Phone']), 'front door')

  const before = store.list({ limit: 50 }, all)
  assert.deepEqual(before.events.map((e) => [e.ringId, e.outcome, e.who]), [
    ['r4', 'answered', ['Phone']], ['r3', 'dismissed', ['Phone']], ['r2', 'missed', []], ['r1', 'dismissed', ['Kitchen tablet', 'Phone']]
  ])
  // Someone dismissed it: not unseen (a missed ring is, until seen).
  assert.deepEqual(before.events.map((e) => e.unseen), [false, false, true, false])
  assert.deepEqual(store.list({ limit: 50, filter: 'dismissed' }, all).events.map((e) => e.ringId), ['r3', 'r1'])
  assert.deepEqual(store.list({ limit: 50, filter: 'missed' }, all).events.map((e) => e.ringId), ['r2'])

  // Refused, and nothing changes: an answered ring, a ring of another device, an unknown ring.
  assert.deepEqual(store.dismiss('front', 'r4', phone), { ok: false, status: 409, error: 'this ring was answered; it cannot be dismissed' })
  assert.equal(store.dismiss('back', 'r1', phone).ok, false)
  assert.equal(store.dismiss('front', 'nope', phone).ok, false)
  assert.deepEqual(store.list({ limit: 50 }, all), before)
  // The same record delivered again (the doorbell's kept copy): still dismissed, by the same.
  store.endRing(ended('front', 'r1', 1000), 'front door')
  assert.deepEqual(store.list({ limit: 50, filter: 'dismissed' }, all).events.map((e) => e.who), [['Phone'], ['Kitchen tablet', 'Phone']])
})
