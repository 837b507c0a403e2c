import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeptRing, MAX_KEPT_DISMISSALS, memoryLogger, type CallRecord, type KeptDismissal, type RingEvent } from '@doorbell/core'
import { RingKeep } from '../src/camera/snapshotKeep'

/** Dismissals told to the doorbell (the direct path, the hub down), on its kept rings: a real folder, the hub a recorded `send`. */

const ring = (ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front', ringId, at, count: 1 })
const ended = (ringId: string, at: number, outcome: 'missed' | 'answered'): CallRecord => ({
  deviceId: 'front', ringId, startedAt: at, endedAt: at + 1000, outcome,
  answeredBy: outcome === 'answered' ? [{ viewerId: 'v-hall', viewerName: 'Hall' }] : [], unlocks: []
})
const by = (memberId: string, at: number): KeptDismissal => ({ memberId, memberName: `Name of ${memberId}`, viewerId: `v-${memberId}`, at })

function setup () {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-keep-dismiss-'))
  const sent: Array<{ kept: KeptRing, done: (error?: Error) => void }> = []
  let connected = false
  const made: RingKeep[] = []
  const make = (): RingKeep => { const k = new RingKeep({ dir, log: memoryLogger([], 'kept'), connected: () => connected, send: (kept, done) => { sent.push({ kept, done }) }, now: () => 100_000 }); made.push(k); return k }
  // Each keep's settle timers stop with the test.
  return { dir, sent, make, connect: () => { connected = true }, cleanup: () => { for (const k of made) void k.stop(); rmSync(dir, { recursive: true, force: true }) } }
}

test('a dismissal is noted on the kept ring (who, from which screen, when), on disk, and goes to the hub with it', () => {
  const s = setup()
  try {
    const keep = s.make()
    keep.publishRing(ring('r-1', 1000))
    assert.deepEqual(keep.dismiss('r-1', by('m-ann', 2000)), { ok: true, outcome: 'ringing' })
    keep.publishCall(ended('r-1', 1000, 'missed'))
    assert.deepEqual(keep.dismiss('r-1', by('m-bob', 3000)), { ok: true, outcome: 'dismissed' })
    // A member's second dismissal (another screen, or told again) changes nothing: the first stays.
    assert.deepEqual(keep.dismiss('r-1', by('m-ann', 4000)), { ok: true, outcome: 'dismissed' })
    const onDisk = KeptRing.parse(JSON.parse(readFileSync(join(s.dir, 'r-1.json'), 'utf8')))
    assert.deepEqual(onDisk.dismissals, [by('m-ann', 2000), by('m-bob', 3000)])
    // A restart keeps them; a repeat press keeps them.
    const again = s.make()
    again.publishRing({ ...ring('r-1', 1500), count: 2 })
    assert.deepEqual(again.pending()[0]?.dismissals?.map((d) => d.memberId), ['m-ann', 'm-bob'])
    s.connect()
    again.handOver()
    assert.equal(s.sent.length, 1)
    assert.deepEqual(s.sent[0]!.kept.dismissals?.map((d) => d.memberId), ['m-ann', 'm-bob'])
  } finally { s.cleanup() }
})

test('a ring never dismissed carries no dismissals field (an older hub refuses one it does not know)', () => {
  const s = setup()
  try {
    const keep = s.make()
    keep.publishRing(ring('r-1', 1000))
    keep.publishCall(ended('r-1', 1000, 'missed'))
    assert.equal('dismissals' in JSON.parse(readFileSync(join(s.dir, 'r-1.json'), 'utf8')), false)
  } finally { s.cleanup() }
})

test('an unknown ring, an answered ring, or one past the bound: refused with why, and nothing changes', () => {
  const s = setup()
  try {
    const keep = s.make()
    assert.deepEqual(keep.dismiss('r-none', by('m-ann', 1)), { ok: false, error: 'no such ring: the doorbell keeps only the rings the hub has not taken' })
    keep.publishRing(ring('r-2', 1000))
    keep.publishCall(ended('r-2', 1000, 'answered'))
    const before = readFileSync(join(s.dir, 'r-2.json'), 'utf8')
    assert.deepEqual(keep.dismiss('r-2', by('m-ann', 2000)), { ok: false, error: 'this ring was answered; it cannot be dismissed' })
    assert.equal(readFileSync(join(s.dir, 'r-2.json'), 'utf8'), before)
    keep.publishRing(ring('r-3', 2000))
    for (let i = 0; i < MAX_KEPT_DISMISSALS; i++) assert.equal(keep.dismiss('r-3', by(`m-${i}`, 3000 + i)).ok, true)
    const full = readFileSync(join(s.dir, 'r-3.json'), 'utf8')
    assert.deepEqual(keep.dismiss('r-3', by('m-late', 9000)), { ok: false, error: `this ring has ${MAX_KEPT_DISMISSALS} dismissals already` })
    assert.equal(readFileSync(join(s.dir, 'r-3.json'), 'utf8'), full)
  } finally { s.cleanup() }
})

test('a dismissal that comes while the kept ring is on its way to the hub goes right after the acknowledgement', () => {
  const s = setup()
  try {
    s.connect()
    const keep = s.make()
    keep.publishRing(ring('r-1', 1000))
    keep.publishCall(ended('r-1', 1000, 'missed'))
    keep.handOver()
    assert.equal(s.sent.length, 1)
    assert.equal(keep.dismiss('r-1', by('m-ann', 2000)).ok, true)
    s.sent[0]!.done()
    assert.equal(s.sent.length, 2, 'the copy with the dismissal is sent at once')
    assert.deepEqual(s.sent[1]!.kept.dismissals?.map((d) => d.memberId), ['m-ann'])
    s.sent[1]!.done()
    assert.deepEqual(keep.pending(), [])
  } finally { s.cleanup() }
})
