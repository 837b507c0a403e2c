import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AedesPublishPacket, Client } from 'aedes'
import { CLIP_PART_BYTES, ClipMessage, encode, memoryLogger, topics, type ClipPart, type RingEvent } from '@doorbell/core'
import { HistoryStore } from '../src/history/store'
import { ClipStore, type ClipBackend } from '../src/history/clipStore'
import { clipIngest } from '../src/history/clipIngest'
import { parseRange } from '../src/history/clipRoutes'

/** The rings' clips at the hub: parts put together and checked, kept beside the history, counted by retention, served by ranges. */

const ring = (ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId, at, count: 1 })
const all = { memberId: 'owner', devices: null }

function temp (t: { after: (fn: () => void) => void }): { dir: string, store: HistoryStore, clips: ClipStore } {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-clip-'))
  const store = new HistoryStore(dir)
  t.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }) })
  return { dir, store, clips: new ClipStore(dir) }
}

/** A clip as the doorbell sends it: its parts, each a message on `…/clip`. */
function partsOf (ringId: string, video: Buffer, o: { seconds?: number } = {}): ClipPart[] {
  const sha256 = createHash('sha256').update(video).digest('hex')
  const parts = Math.ceil(video.length / CLIP_PART_BYTES)
  return Array.from({ length: parts }, (_, part) => ({
    type: 'clip', deviceId: 'front', ringId, container: 'mp4', seconds: o.seconds ?? 10, bytes: video.length, sha256, part, parts,
    data: video.subarray(part * CLIP_PART_BYTES, (part + 1) * CLIP_PART_BYTES).toString('base64')
  }))
}
/** Bytes that open as an MP4 does (a 16-byte `ftyp` box first), the rest as given: the hub refuses a clip that is not. */
function asMp4 (video: Buffer): Buffer {
  const head = Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('ftypisom', 'latin1'), Buffer.from([0, 0, 2, 0])])
  return Buffer.concat([head, video.subarray(head.length)])
}
const packet = (m: ClipMessage | string): AedesPublishPacket => ({ topic: topics.clip('home', 'front'), payload: Buffer.from(typeof m === 'string' ? m : encode(ClipMessage, m)) } as unknown as AedesPublishPacket)
const DEVICE = { id: 'device-front' } as unknown as Client

test('a clip\'s parts, in any order and some twice, are kept with the ring\'s event once they add up to its hash', (t) => {
  const { store, clips } = temp(t)
  const lines: string[] = []
  const ingest = clipIngest({ clips, eventOf: (d, r) => store.ringEventId(d, r), log: memoryLogger(lines, 'hub') })
  t.after(ingest.stop)
  const id = store.addRing(ring('r1', 1000))
  const video = asMp4(Buffer.from(Array.from({ length: CLIP_PART_BYTES * 2 + 777 }, (_, i) => i % 251)))
  const parts = partsOf('r1', video)
  assert.equal(parts.length, 3)
  for (const p of [parts[2]!, parts[0]!, parts[0]!]) ingest.listener(packet(p), DEVICE)
  assert.equal(clips.state(id), undefined, 'not until every part is there')
  ingest.listener(packet(parts[1]!), DEVICE)
  assert.deepEqual(clips.state(id), { type: 'video/mp4', bytes: video.length, seconds: 10 })
  assert.ok(clips.video(id))
  assert.ok(lines.some((l) => l.includes('kept a ring\'s clip')))
  // A restart of the hub reads it back.
  assert.deepEqual(new ClipStore(store.dir).state(id), { type: 'video/mp4', bytes: video.length, seconds: 10 })
})

test('bad clips change nothing: a wrong hash, parts that disagree, a ring the history does not have, a malformed message; a failure keeps the ring and says why', (t) => {
  const { store, clips } = temp(t)
  const lines: string[] = []
  const ingest = clipIngest({ clips, eventOf: (d, r) => store.ringEventId(d, r), log: memoryLogger(lines, 'hub') })
  t.after(ingest.stop)
  const id = store.addRing(ring('r1', 1000))
  const video = Buffer.alloc(CLIP_PART_BYTES + 10, 3)
  // The parts say one hash, the bytes are another's.
  const forged = partsOf('r1', video).map((p) => ({ ...p, sha256: 'a'.repeat(64) }))
  for (const p of forged) ingest.listener(packet(p), DEVICE)
  assert.equal(clips.state(id), undefined)
  assert.ok(lines.some((l) => l.includes('does not match its hash')))
  // Two clips' parts mixed: the first is dropped when the second's part comes.
  const [a] = partsOf('r1', video)
  const [, b2] = partsOf('r1', Buffer.alloc(CLIP_PART_BYTES + 10, 4))
  ingest.listener(packet(a!), DEVICE)
  ingest.listener(packet(b2!), DEVICE)
  assert.equal(clips.state(id), undefined)
  assert.ok(lines.some((l) => l.includes('parts disagree')))
  // A clip of a ring the hub never had.
  for (const p of partsOf('r-unknown', Buffer.alloc(100, 1))) ingest.listener(packet(p), DEVICE)
  assert.ok(lines.some((l) => l.includes('a ring the history does not have')))
  assert.deepEqual(readdirSync(clips.dir), [])
  // Malformed: not JSON, a part whose data is not its share of the bytes, no client.
  ingest.listener(packet('{"type":"clip"'), DEVICE)
  ingest.listener(packet(JSON.stringify({ ...partsOf('r1', Buffer.alloc(10, 1))[0], data: 'AAAA' })), DEVICE)
  ingest.listener(packet(partsOf('r1', Buffer.alloc(10, 1))[0]!), null)
  assert.equal(clips.state(id), undefined)
  // The doorbell could not make it: the ring is as it was, and says why.
  const before = store.get(id, all)
  ingest.listener(packet({ type: 'clip-failed', deviceId: 'front', ringId: 'r1', reason: 'the camera sent no picture to record (is it running?)' }), DEVICE)
  assert.deepEqual(clips.state(id), { failed: 'the camera sent no picture to record (is it running?)' })
  assert.deepEqual(store.get(id, all), before)
  assert.equal(clips.video(id), null)
})

test('a store whose put is asynchronous (a cluster\'s pool): kept when the put resolves; a put that rejects leaves the ring without its clip and says why', async (t) => {
  const { store, clips } = temp(t)
  const lines: string[] = []
  // The real file store behind a put that resolves or rejects when the test lets it.
  let release!: (fail: boolean) => void
  let gate = new Promise<boolean>((resolve) => { release = resolve })
  const later: ClipBackend = {
    failed: (id, reason) => { clips.failed(id, reason) },
    state: (id) => clips.state(id),
    states: (ids) => clips.states(ids),
    video: (id) => clips.video(id),
    bytes: () => clips.bytes(),
    remove: (id) => clips.remove(id),
    sweep: (exists) => clips.sweep(exists),
    put: async (id, container, seconds, video) => {
      if (await gate) throw new Error('PostgreSQL: Connection terminated unexpectedly')
      clips.put(id, container, seconds, video)
    }
  }
  const ingest = clipIngest({ clips: later, eventOf: (d, r) => store.ringEventId(d, r), log: memoryLogger(lines, 'hub') })
  t.after(ingest.stop)
  const turns = async (): Promise<void> => { for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve)) }
  const id = store.addRing(ring('r1', 1000))
  const video = asMp4(Buffer.alloc(CLIP_PART_BYTES + 10, 5))
  for (const p of partsOf('r1', video)) ingest.listener(packet(p), DEVICE)
  await turns()
  assert.equal(clips.state(id), undefined, 'not while the put is under way')
  assert.ok(!lines.some((l) => l.includes('kept a ring\'s clip')))
  release(false)
  await turns()
  assert.deepEqual(clips.state(id), { type: 'video/mp4', bytes: video.length, seconds: 10 })
  assert.ok(lines.some((l) => l.includes('kept a ring\'s clip') && l.includes(`event=${id}`)))

  const other = store.addRing(ring('r2', 2000))
  gate = new Promise<boolean>((resolve) => { release = resolve })
  for (const p of partsOf('r2', video)) ingest.listener(packet(p), DEVICE)
  release(true)
  await turns()
  assert.deepEqual(clips.state(other), { failed: 'the hub could not store the clip' })
  assert.ok(lines.some((l) => l.includes('could not store a ring\'s clip') && l.includes('Connection terminated')))
  assert.notEqual(store.get(other, all), null, 'the ring stays')
})

test('a store whose failure record is asynchronous (a cluster\'s pool): "no clip" is logged once recorded; a record that rejects is logged as an error and nothing else changes', async (t) => {
  const { store, clips } = temp(t)
  const lines: string[] = []
  let release!: (fail: boolean) => void
  let gate = new Promise<boolean>((resolve) => { release = resolve })
  const later: ClipBackend = {
    failed: async (id, reason) => {
      if (await gate) throw new Error('PostgreSQL: Connection terminated unexpectedly')
      clips.failed(id, reason)
    },
    state: async (id) => clips.state(id),
    states: async (ids) => clips.states(ids),
    video: async (id) => clips.video(id),
    remove: async (id) => clips.remove(id),
    sweep: (exists) => clips.sweep(exists),
    put: (id, container, seconds, video) => { clips.put(id, container, seconds, video) }
  }
  const ingest = clipIngest({ clips: later, eventOf: (d, r) => store.ringEventId(d, r), log: memoryLogger(lines, 'hub') })
  t.after(ingest.stop)
  const turns = async (): Promise<void> => { for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve)) }
  const id = store.addRing(ring('r1', 1000))
  ingest.listener(packet({ type: 'clip-failed', deviceId: 'front', ringId: 'r1', reason: 'no camera' }), DEVICE)
  await turns()
  assert.ok(!lines.some((l) => l.includes('a ring has no clip')), 'not said before it is recorded')
  release(false)
  await turns()
  assert.deepEqual(clips.state(id), { failed: 'no camera' })
  assert.ok(lines.some((l) => l.includes('a ring has no clip') && l.includes('reason=no camera')))

  const other = store.addRing(ring('r2', 2000))
  gate = new Promise<boolean>((resolve) => { release = resolve })
  ingest.listener(packet({ type: 'clip-failed', deviceId: 'front', ringId: 'r2', reason: 'late' }), DEVICE)
  release(true)
  await turns()
  assert.equal(clips.state(other), undefined, 'nothing recorded')
  assert.ok(lines.some((l) => l.includes('could not take a clip') && l.includes('Connection terminated')))
  assert.ok(!lines.some((l) => l.includes('a ring has no clip') && l.includes('reason=late')))
  assert.deepEqual(await later.states([id, other, 999]), new Map([[id, { failed: 'no camera' }]]), 'a page\'s clips at once: only those recorded')
})

test('retention counts clips in the size cap with the pictures, and a clip goes with its event (retention or deletion)', (t) => {
  const { store, clips } = temp(t)
  const day = 86_400_000
  const now = 100 * day
  const ids = [1, 2, 3].map((n) => store.addRing(ring(`r${n}`, now - (4 - n) * 1000)))
  for (const id of ids) clips.put(id, 'mp4', 10, Buffer.alloc(400_000, id))
  // Without the clips the (picture-less) events are nothing: the cap would keep them all.
  assert.equal(store.prune({ now, days: 30, maxBytes: 1_000_000 }).events, 0)
  // With them: 1.2 MB over 1 MB, the oldest goes, then its clip.
  const r = store.prune({ now, days: 30, maxBytes: 1_000_000, extraBytes: clips.bytes() })
  assert.equal(r.events, 1)
  assert.equal(clips.sweep((id) => store.get(id, all) !== null), 1)
  assert.equal(store.get(ids[0]!, all), null)
  assert.equal(clips.video(ids[0]!), null)
  assert.ok(!existsSync(join(clips.dir, `${ids[0]}.mp4`)))
  assert.ok(clips.video(ids[1]!) && clips.video(ids[2]!))
  // Older than the retention days: gone with its clip whatever the cap.
  assert.equal(store.prune({ now: now + 31 * day, days: 30, maxBytes: 1e12, extraBytes: clips.bytes() }).events, 2)
  assert.equal(clips.sweep((id) => store.get(id, all) !== null), 2)
  assert.deepEqual(readdirSync(clips.dir), [])
})

test('a clip whose video is missing or whose note is unreadable is dropped at start', (t) => {
  const { store, clips } = temp(t)
  const id = store.addRing(ring('r1', 1000))
  clips.put(id, 'mp4', 4, Buffer.alloc(1000, 1))
  rmSync(join(clips.dir, `${id}.mp4`))
  writeFileSync(join(clips.dir, '77.json'), '{not json')
  const again = new ClipStore(store.dir)
  assert.equal(again.state(id), undefined)
  assert.deepEqual(readdirSync(again.dir), [])
})

test('Range headers (RFC 9110): one range clipped to the file, a suffix, open-ended; past the end unsatisfiable; others the whole file', () => {
  assert.equal(parseRange(undefined, 1000), null)
  assert.deepEqual(parseRange('bytes=0-99', 1000), { start: 0, end: 99 })
  assert.deepEqual(parseRange('bytes=900-', 1000), { start: 900, end: 999 })
  assert.deepEqual(parseRange('bytes=900-5000', 1000), { start: 900, end: 999 })
  assert.deepEqual(parseRange('bytes=-100', 1000), { start: 900, end: 999 })
  assert.deepEqual(parseRange('bytes=-5000', 1000), { start: 0, end: 999 })
  assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable')
  assert.equal(parseRange('bytes=-0', 1000), 'unsatisfiable')
  assert.equal(parseRange('bytes=0-1,5-9', 1000), null)
  assert.equal(parseRange('items=0-1', 1000), null)
  assert.equal(parseRange('bytes=9-1', 1000), null)
  assert.equal(parseRange('bytes=-', 1000), null)
})
