import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLIP_PART_BYTES, ClipMessage, memoryLogger, type CallRecord, type ClipPart, type KeptRing, type RingEvent } from '@doorbell/core'
import { ClipKeep } from '../src/camera/clipKeep'
import { RingKeep } from '../src/camera/snapshotKeep'
import type { Clip } from '../src/camera/clip'

/** The doorbell's copy of the clips the hub could not take, on a real folder; the hub's side is a recorded `send`. */

const clip = (bytes: number, fill: number, seconds = 10): Clip => ({ container: 'mp4', seconds, bytes: Buffer.alloc(bytes, fill) })

interface Sent { message: ClipPart, ack: (error?: Error) => void }

function setup (o: { connected?: boolean, maxClips?: number, maxBytes?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-clip-keep-'))
  const logs: string[] = []
  const sent: Sent[] = []
  let connected = o.connected ?? false
  const held = new Set<string>()
  let now = 1000
  const make = (): ClipKeep => new ClipKeep({
    dir,
    deviceId: 'front',
    log: memoryLogger(logs, 'kept'),
    connected: () => connected,
    ringHeld: (ringId) => held.has(ringId),
    now: () => now++,
    // Each part waits for its acknowledgement, as mqtt.js's PUBACK.
    send: async (m) => { await new Promise<void>((resolve, reject) => { sent.push({ message: ClipMessage.parse(m) as ClipPart, ack: (e) => { if (e) reject(e); else resolve() } }) }) },
    ...(o.maxClips !== undefined ? { maxClips: o.maxClips } : {}),
    ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {})
  })
  return { dir, logs, sent, held, make, connect: (up: boolean) => { connected = up }, cleanup: () => { rmSync(dir, { recursive: true, force: true }) } }
}

const turns = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve)) }

/** Acknowledges every part as it comes, until `ringId`'s last one. */
async function ackAll (s: { sent: Sent[] }, from = 0): Promise<ClipPart[]> {
  const got: ClipPart[] = []
  for (let i = from; ; i++) {
    await turns()
    const p = s.sent[i]
    if (!p) return got
    got.push(p.message)
    p.ack()
  }
}

test('a clip kept while the hub is away goes once the hub has its ring, every part acknowledged; then its files go', async () => {
  const s = setup()
  try {
    const keep = s.make()
    const video = clip(CLIP_PART_BYTES * 2 + 100, 7)
    s.held.add('r-1')
    keep.keep('r-1', video)
    assert.deepEqual(readdirSync(s.dir).sort(), ['r-1.json', 'r-1.mp4'])
    assert.ok(s.logs.some((l) => l.includes('kept a ring\'s clip for the hub') && l.includes('r-1')))
    keep.handOver()
    await turns()
    assert.equal(s.sent.length, 0, 'nothing while the hub is away')
    s.connect(true)
    keep.handOver()
    await turns()
    assert.equal(s.sent.length, 0, 'nothing while the hub does not have the ring')
    s.held.delete('r-1')
    keep.handOver()
    const parts = await ackAll(s)
    assert.equal(parts.length, 3)
    const whole = Buffer.concat(parts.map((p) => Buffer.from(p.data, 'base64')))
    assert.ok(whole.equals(video.bytes))
    assert.equal(parts[0]!.sha256, createHash('sha256').update(video.bytes).digest('hex'))
    assert.deepEqual(parts.map((p) => [p.ringId, p.part, p.parts, p.container, p.seconds]), [0, 1, 2].map((n) => ['r-1', n, 3, 'mp4', 10]))
    await turns()
    assert.deepEqual(readdirSync(s.dir), [])
    assert.deepEqual(keep.pending(), [])
    assert.ok(s.logs.some((l) => l.includes('the hub has a kept clip')))
    await keep.stop()
  } finally { s.cleanup() }
})

test('a hand-over the hub did not finish keeps the clip, and the next one sends it again from its first part', async () => {
  const s = setup({ connected: true })
  try {
    const keep = s.make()
    keep.keep('r-2', clip(CLIP_PART_BYTES + 10, 2))
    await turns()
    assert.equal(s.sent.length, 1, 'the hub is up: it goes at once')
    s.sent[0]!.ack()
    await turns()
    keep.handOver() // asked again while on its way: one more pass after this one
    s.sent[1]!.ack(new Error('the hub link closed before the hub had the clip'))
    await turns()
    assert.deepEqual(readdirSync(s.dir).sort(), ['r-2.json', 'r-2.mp4'])
    assert.ok(s.logs.some((l) => l.includes('the hub did not take a kept clip')))
    const again = await ackAll(s, 2)
    assert.deepEqual(again.map((p) => p.part), [0, 1])
    await turns()
    assert.deepEqual(readdirSync(s.dir), [])
    await keep.stop()
  } finally { s.cleanup() }
})

test('the bound: past the size or the count the oldest clip is dropped, logged; a clip over 16 MB is not kept', async () => {
  const s = setup({ maxClips: 3, maxBytes: 25_000 })
  try {
    const keep = s.make()
    keep.keep('r-a', clip(10_000, 1))
    keep.keep('r-b', clip(10_000, 2))
    keep.keep('r-c', clip(8_000, 3))
    assert.deepEqual(keep.pending().map((r) => r.ringId), ['r-b', 'r-c'], 'the size: 28,000 bytes, the oldest went')
    assert.ok(s.logs.some((l) => l.includes('the doorbell\'s copy of its clips is full') && l.includes('ringId=r-a')))
    keep.keep('r-d', clip(1_000, 4))
    keep.keep('r-e', clip(1_000, 5))
    assert.deepEqual(keep.pending().map((r) => r.ringId), ['r-c', 'r-d', 'r-e'], 'the count: four clips, the oldest went')
    assert.ok(s.logs.some((l) => l.includes('the doorbell\'s copy of its clips is full') && l.includes('ringId=r-b')))
    assert.deepEqual(readdirSync(s.dir).sort(), ['r-c.json', 'r-c.mp4', 'r-d.json', 'r-d.mp4', 'r-e.json', 'r-e.mp4'])
    keep.keep('r-big', { container: 'mp4', seconds: 10, bytes: Buffer.alloc(16 * 1024 * 1024 + 1) })
    assert.equal(keep.pending().some((r) => r.ringId === 'r-big'), false)
    assert.ok(s.logs.some((l) => l.includes('a clip over its bound is not kept')))
    assert.equal(readdirSync(s.dir).length, 6, 'nothing else changed')
  } finally { s.cleanup() }
})

test('after a restart the kept clips are read back; a video that does not match its record, a stray file and a half-written one are dropped', async () => {
  const s = setup()
  try {
    const first = s.make()
    first.keep('r-1', clip(2000, 1))
    first.keep('r-2', clip(3000, 2))
    first.keep('r-3', clip(4000, 3))
    await first.stop()
    // r-2's video changed on the disk (one byte), r-3's record is gone, and a write died half-way.
    const damaged = readFileSync(join(s.dir, 'r-2.mp4'))
    damaged[10] = 0xff
    writeFileSync(join(s.dir, 'r-2.mp4'), damaged)
    rmSync(join(s.dir, 'r-3.json'))
    writeFileSync(join(s.dir, 'r-4.mp4.tmp'), 'half')
    writeFileSync(join(s.dir, 'r-1.json.tmp'), '{"half')
    writeFileSync(join(s.dir, 'r-5.json'), '{not json')
    const again = s.make()
    assert.deepEqual(again.pending().map((r) => [r.ringId, r.bytes]), [['r-1', 2000]])
    assert.deepEqual(readdirSync(s.dir).sort(), ['r-1.json', 'r-1.mp4'])
    assert.ok(s.logs.some((l) => l.includes('a kept clip could not be read') && l.includes('r-2.json') && l.includes('does not match')))
    assert.ok(s.logs.some((l) => l.includes('a kept clip could not be read') && l.includes('r-5.json')))
  } finally { s.cleanup() }
})

test('with the doorbell\'s copy of its rings: the clip goes only after the hub acknowledged the kept ring', async () => {
  const s = setup({ connected: true })
  const ringsDir = mkdtempSync(join(tmpdir(), 'doorbell-keep-'))
  try {
    const ringsSent: Array<{ kept: KeptRing, done: (error?: Error) => void }> = []
    let clips: ClipKeep | null = null
    const rings = new RingKeep({ dir: ringsDir, log: memoryLogger(s.logs, 'kept'), connected: () => true, send: (kept, done) => { ringsSent.push({ kept, done }) }, now: () => 100_000, afterHandOver: () => { clips?.handOver() } })
    clips = new ClipKeep({ dir: s.dir, deviceId: 'front', log: memoryLogger(s.logs, 'kept'), connected: () => true, ringHeld: (id) => rings.holds(id), send: async (m) => { await new Promise<void>((resolve) => { s.sent.push({ message: ClipMessage.parse(m) as ClipPart, ack: () => { resolve() } }) }) } })
    const ring: RingEvent = { type: 'ring', deviceId: 'front', deviceName: 'Front', ringId: 'r-9', at: 1000, count: 1 }
    const record: CallRecord = { deviceId: 'front', ringId: 'r-9', startedAt: 1000, endedAt: 2000, outcome: 'missed', answeredBy: [], unlocks: [] }
    rings.publishRing(ring)
    rings.publishCall(record)
    clips.keep('r-9', clip(500, 9))
    await turns()
    assert.equal(s.sent.length, 0, 'the ring is still held')
    rings.handOver()
    assert.equal(ringsSent.length, 1)
    await turns()
    assert.equal(s.sent.length, 0, 'the ring is on its way, not yet acknowledged')
    ringsSent[0]!.done()
    assert.equal(rings.holds('r-9'), false)
    const parts = await ackAll(s)
    assert.deepEqual(parts.map((p) => p.ringId), ['r-9'])
    await rings.stop()
    await clips.stop()
  } finally { s.cleanup(); rmSync(ringsDir, { recursive: true, force: true }) }
})
