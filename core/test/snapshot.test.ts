import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_SNAPSHOT_BYTES, SnapshotEvent, base64Bytes, decodeTopicMessage, topics } from '../src/index'

const jpeg = (bytes: number): string => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(bytes - 3, 9)]).toString('base64')
const snapshot = (extra: Record<string, unknown>): Record<string, unknown> => ({ type: 'snapshot', deviceId: 'front', ringId: 'r1', at: 1, seq: 1, ...extra })

test('a snapshot: a JPEG up to 64 KB, or no picture with the reason', () => {
  assert.ok(SnapshotEvent.safeParse(snapshot({ jpeg: jpeg(MAX_SNAPSHOT_BYTES) })).success)
  assert.ok(SnapshotEvent.safeParse(snapshot({ jpeg: null, reason: 'the camera is down' })).success)
  assert.equal(base64Bytes(jpeg(1000)), 1000)
  assert.equal(base64Bytes(jpeg(1001)), 1001)
})

test('refused: not a JPEG, one byte over 64 KB, not base64, no picture without a reason, an unknown field', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [snapshot({ jpeg: Buffer.from('GIF89a....').toString('base64') }), /is a JPEG/],
    [snapshot({ jpeg: jpeg(MAX_SNAPSHOT_BYTES + 1) }), /at most 65536 bytes/],
    [snapshot({ jpeg: '/9j/####' }), /base64/],
    [snapshot({ jpeg: null }), /says why/],
    [snapshot({ jpeg: null, reason: 'x', extra: 1 }), /extra|unrecognized/i]
  ]
  for (const [value, why] of cases) {
    const r = SnapshotEvent.safeParse(value)
    assert.equal(r.success, false, JSON.stringify(value).slice(0, 80))
    assert.match(r.error!.issues.map((i) => i.message).join('; '), why)
  }
})

test('on its topic: bigger than other messages may be, bound all the same, and the device must be the topic\'s', () => {
  const topic = topics.snapshot('home', 'front')
  assert.equal(decodeTopicMessage(topic, JSON.stringify(snapshot({ jpeg: jpeg(60 * 1024) }))).ok, true)
  const huge = decodeTopicMessage(topic, JSON.stringify(snapshot({ jpeg: jpeg(200 * 1024) })))
  assert.equal(huge.ok, false)
  assert.match(!huge.ok ? huge.error.message : '', /exceeds/)
  assert.equal(decodeTopicMessage(topics.snapshot('home', 'back'), JSON.stringify(snapshot({ jpeg: jpeg(100) }))).ok, false)
  // The ring topic keeps its own bound: a picture-sized ring is refused.
  assert.equal(decodeTopicMessage(topics.ring('home', 'front'), JSON.stringify({ pad: 'x'.repeat(70 * 1024) })).ok, false)
})
