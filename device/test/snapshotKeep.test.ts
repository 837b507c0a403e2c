import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, type CallRecord, type KeptRing, type RingEvent, type SnapshotEvent } from '@doorbell/core'
import { RingKeep } from '../src/camera/snapshotKeep'

/** The doorbell's own copy of its rings, on a real folder; the hub's side is a recorded `send`. */

const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(1000, 1)]).toString('base64')
const ring = (ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front', ringId, at, count: 1 })
const picture = (ringId: string, seq: number, jpeg: string | null = JPEG): SnapshotEvent => jpeg === null
  ? { type: 'snapshot', deviceId: 'front', ringId, at: 1, seq, jpeg: null, reason: 'camera down' }
  : { type: 'snapshot', deviceId: 'front', ringId, at: 1, seq, jpeg }
const record = (ringId: string, at: number): CallRecord => ({ deviceId: 'front', ringId, startedAt: at, endedAt: at + 1000, outcome: 'missed', answeredBy: [], unlocks: [] })

function setup (o: { connected?: boolean, maxRings?: number, now?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-keep-'))
  const logs: string[] = []
  const sent: Array<{ kept: KeptRing, done: (error?: Error) => void }> = []
  let connected = o.connected ?? false
  const make = (): RingKeep => new RingKeep({ dir, log: memoryLogger(logs, 'kept'), connected: () => connected, send: (kept, done) => { sent.push({ kept, done }) }, now: () => o.now ?? 100_000, ...(o.maxRings ? { maxRings: o.maxRings } : {}) })
  return { dir, logs, sent, make, connect: (up: boolean) => { connected = up }, cleanup: () => { rmSync(dir, { recursive: true, force: true }) } }
}

test('a ring is kept whole (ring, the newest picture, its end) and handed over once settled; acknowledged, its file goes', async () => {
  const s = setup({ connected: false })
  try {
    const keep = s.make()
    keep.publishRing(ring('r-1', 1000))
    keep.publishSnapshot(picture('r-1', 1))
    keep.publishSnapshot(picture('r-1', 2, null)) // "no picture" never replaces a picture
    keep.publishCall(record('r-1', 1000))
    assert.deepEqual(readdirSync(s.dir), ['r-1.json'])
    const [k] = keep.pending()
    assert.equal(k!.snapshot?.seq, 1)
    assert.equal(k!.record?.outcome, 'missed')
    keep.handOver()
    assert.equal(s.sent.length, 0, 'nothing is sent while the hub is away')
    s.connect(true)
    keep.handOver()
    assert.equal(s.sent.length, 1)
    keep.handOver()
    assert.equal(s.sent.length, 1, 'not sent twice while on its way')
    s.sent[0]!.done(new Error('connection lost'))
    assert.deepEqual(readdirSync(s.dir), ['r-1.json'], 'kept when the hub did not take it')
    keep.handOver()
    s.sent[1]!.done()
    assert.deepEqual(readdirSync(s.dir), [])
    assert.deepEqual(keep.pending(), [])
    await keep.stop()
  } finally { s.cleanup() }
})

test('a picture that comes while the ring is on its way is sent at once after the acknowledgement, then the file goes', async () => {
  const s = setup({ connected: true })
  try {
    const keep = s.make()
    keep.publishRing(ring('r-3', 1000))
    keep.publishSnapshot(picture('r-3', 1))
    keep.publishCall(record('r-3', 1000))
    keep.handOver()
    assert.equal(s.sent.length, 1)
    keep.publishSnapshot(picture('r-3', 2)) // late: the second picture, taken under load
    s.sent[0]!.done()
    assert.equal(s.sent.length, 2, 'the newer copy goes without waiting for another connection')
    assert.equal(s.sent[1]!.kept.snapshot?.seq, 2)
    assert.deepEqual(readdirSync(s.dir), ['r-3.json'])
    s.sent[1]!.done()
    assert.deepEqual(readdirSync(s.dir), [])
    await keep.stop()
  } finally { s.cleanup() }
})

test('a ring still going is not handed over; after a restart, what the earlier run kept is, even unfinished', async () => {
  const s = setup({ connected: true })
  try {
    const keep = s.make()
    keep.publishRing(ring('r-2', 99_000))
    keep.handOver()
    assert.equal(s.sent.length, 0, 'the ring has not ended')
    await keep.stop()
    const again = s.make()
    again.handOver()
    assert.equal(s.sent.length, 1)
    assert.equal(s.sent[0]!.kept.record, null)
    await again.stop()
  } finally { s.cleanup() }
})

test('bounded: past the limit the oldest ring is dropped and logged; an unreadable file is dropped and logged', async () => {
  const s = setup({ maxRings: 2 })
  try {
    writeFileSync(join(s.dir, 'junk.json'), '{"type":"kept"')
    const keep = s.make()
    assert.ok(s.logs.some((l) => /^warn .*could not be read/.test(l)), s.logs.join('\n'))
    for (const [id, at] of [['r-a', 1], ['r-b', 2], ['r-c', 3]] as const) keep.publishRing(ring(id, at))
    assert.deepEqual(readdirSync(s.dir).sort(), ['r-b.json', 'r-c.json'])
    assert.ok(s.logs.some((l) => /^warn .*full: the oldest is dropped/.test(l)))
    await keep.stop()
  } finally { s.cleanup() }
})
