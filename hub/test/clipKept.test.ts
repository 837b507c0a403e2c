import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AedesPublishPacket, Client } from 'aedes'
import { CLIP_PART_BYTES, ClipMessage, encode, memoryLogger, topics, type ClipContainer, type ClipPart, type RingEvent } from '@doorbell/core'
import { HistoryStore } from '../src/history/store'
import { ClipStore, type ClipBackend } from '../src/history/clipStore'
import { clipIngest, containerProblem } from '../src/history/clipIngest'

/**
 * A clip the doorbell kept while the hub was down, handed over when it is back: taken as the
 * hub's own clips are; the same clip twice changes nothing; bytes that are not the video they
 * claim are refused with the reason, and the ring stays as it was.
 */

const ring = (ringId: string): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId, at: 1000, count: 1 })
const all = { memberId: 'owner', devices: null }
const DEVICE = { id: 'device-front' } as unknown as Client
const MP4_HEAD = Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('ftypisom', 'latin1'), Buffer.from([0, 0, 2, 0])])
const WEBM_HEAD = Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01])

function partsOf (ringId: string, video: Buffer, container: ClipContainer = 'mp4'): ClipPart[] {
  const sha256 = createHash('sha256').update(video).digest('hex')
  const parts = Math.ceil(video.length / CLIP_PART_BYTES)
  return Array.from({ length: parts }, (_, part) => ({
    type: 'clip', deviceId: 'front', ringId, container, seconds: 6, bytes: video.length, sha256, part, parts,
    data: video.subarray(part * CLIP_PART_BYTES, (part + 1) * CLIP_PART_BYTES).toString('base64')
  }))
}
const packet = (m: ClipMessage): AedesPublishPacket => ({ topic: topics.clip('home', 'front'), payload: Buffer.from(encode(ClipMessage, m)) } as unknown as AedesPublishPacket)

function setup (t: { after: (fn: () => void) => void }): { store: HistoryStore, clips: ClipStore, puts: number[], lines: string[], ingest: ReturnType<typeof clipIngest> } {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-clip-kept-'))
  const store = new HistoryStore(dir)
  const clips = new ClipStore(dir)
  const puts: number[] = []
  const counted: ClipBackend = {
    failed: (id, reason) => { clips.failed(id, reason) },
    state: (id) => clips.state(id),
    states: (ids) => clips.states(ids),
    video: (id) => clips.video(id),
    bytes: () => clips.bytes(),
    remove: (id) => clips.remove(id),
    sweep: (exists) => clips.sweep(exists),
    put: (id, container, seconds, video) => { puts.push(id); clips.put(id, container, seconds, video) }
  }
  const lines: string[] = []
  const ingest = clipIngest({ clips: counted, eventOf: (d, r) => store.ringEventId(d, r), log: memoryLogger(lines, 'hub') })
  t.after(() => { ingest.stop(); store.close(); rmSync(dir, { recursive: true, force: true }) })
  return { store, clips, puts, lines, ingest }
}

test('what a clip must open with: an MP4 its ftyp box, a WebM its EBML header', () => {
  assert.equal(containerProblem('mp4', Buffer.concat([MP4_HEAD, Buffer.alloc(100)])), null)
  assert.equal(containerProblem('webm', Buffer.concat([WEBM_HEAD, Buffer.alloc(100)])), null)
  assert.match(containerProblem('mp4', Buffer.alloc(100, 7)) ?? '', /not an MP4 file/)
  assert.match(containerProblem('mp4', Buffer.concat([WEBM_HEAD, Buffer.alloc(100)])) ?? '', /not an MP4 file/)
  assert.match(containerProblem('mp4', Buffer.from('\0\0\0\x08fty', 'latin1')) ?? '', /not an MP4 file/, 'too short')
  // A box that says it is longer than the file.
  assert.match(containerProblem('mp4', Buffer.concat([Buffer.from([0, 0, 1, 0]), Buffer.from('ftyp', 'latin1'), Buffer.alloc(20)])) ?? '', /not an MP4 file/)
  assert.match(containerProblem('webm', Buffer.concat([MP4_HEAD, Buffer.alloc(100)])) ?? '', /not a WebM file/)
  assert.match(containerProblem('webm', Buffer.alloc(3)) ?? '', /not a WebM file/)
})

test('a kept clip handed over twice is stored once; another clip for the ring replaces it', (t) => {
  const { store, clips, puts, lines, ingest } = setup(t)
  const id = store.addRing(ring('r1'))
  const video = Buffer.concat([MP4_HEAD, Buffer.alloc(CLIP_PART_BYTES + 500, 3)])
  for (const p of partsOf('r1', video)) ingest.listener(packet(p), DEVICE)
  assert.deepEqual(clips.state(id), { type: 'video/mp4', bytes: video.length, seconds: 6 })
  for (const p of partsOf('r1', video)) ingest.listener(packet(p), DEVICE)
  assert.deepEqual(puts, [id], 'stored once')
  assert.ok(lines.some((l) => l.includes('the hub has this clip already') && l.includes('ringId=r1')))
  assert.ok(clips.video(id))
  const other = Buffer.concat([MP4_HEAD, Buffer.alloc(900, 4)])
  for (const p of partsOf('r1', other)) ingest.listener(packet(p), DEVICE)
  assert.deepEqual(puts, [id, id])
  assert.deepEqual(clips.state(id), { type: 'video/mp4', bytes: other.length, seconds: 6 })
})

test('a clip that is not the video it claims is refused with the reason; the ring is untouched; a good clip kept stays', (t) => {
  const { store, clips, puts, lines, ingest } = setup(t)
  const id = store.addRing(ring('r1'))
  const before = store.get(id, all)
  for (const p of partsOf('r1', Buffer.alloc(CLIP_PART_BYTES + 10, 9))) ingest.listener(packet(p), DEVICE)
  assert.deepEqual(puts, [])
  assert.deepEqual(clips.state(id), { failed: 'the doorbell\'s clip was refused: not an MP4 file (no ftyp box first)' })
  assert.ok(lines.some((l) => l.includes('refused a clip: it is not a video') && l.includes('not an MP4 file')))
  assert.deepEqual(store.get(id, all), before, 'the ring is as it was')
  // WebM that is not one.
  const webmRing = store.addRing(ring('r2'))
  for (const p of partsOf('r2', Buffer.concat([MP4_HEAD, Buffer.alloc(50)]), 'webm')) ingest.listener(packet(p), DEVICE)
  assert.deepEqual(clips.state(webmRing), { failed: 'the doorbell\'s clip was refused: not a WebM file (no EBML header)' })
  // A good clip, then a malformed one for the same ring: the good one stays.
  const good = store.addRing(ring('r3'))
  const video = Buffer.concat([WEBM_HEAD, Buffer.alloc(700, 1)])
  for (const p of partsOf('r3', video, 'webm')) ingest.listener(packet(p), DEVICE)
  for (const p of partsOf('r3', Buffer.alloc(700, 2), 'webm')) ingest.listener(packet(p), DEVICE)
  assert.deepEqual(clips.state(good), { type: 'video/webm', bytes: video.length, seconds: 6 })
  assert.deepEqual(puts, [good])
})
