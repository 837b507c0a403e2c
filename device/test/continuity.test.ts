import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RtpContinuity } from '../src/camera/continuity'

const rtp = (seq: number, ts: number): Buffer => {
  const b = Buffer.alloc(20)
  b[0] = 0x80
  b[1] = 96
  b.writeUInt16BE(seq, 2)
  b.writeUInt32BE(ts, 4)
  return b
}
const seqTs = (b: Buffer): [number, number] => [b.readUInt16BE(2), b.readUInt32BE(4)]

test('the first encoder\'s packets go out as they are', () => {
  const c = new RtpContinuity(90_000, () => 0)
  const p = rtp(40_000, 123_456)
  c.rewrite(p)
  assert.deepEqual(seqTs(p), [40_000, 123_456])
})

test('a restarted encoder (the camera dropped and came back) continues the numbers: next sequence number, timestamp advanced by the time that passed', () => {
  let now = 1000
  const c = new RtpContinuity(90_000, () => now)
  for (const [seq, ts] of [[65_534, 4_294_960_000], [65_535, 4_294_963_000]] as const) c.rewrite(rtp(seq, ts))
  // 2 s later a new ffmpeg starts at a random place, here behind the old one: a jitter buffer would drop it.
  now = 3000
  c.restart()
  const first = rtp(12, 5000)
  const second = rtp(13, 8000)
  c.rewrite(first)
  c.rewrite(second)
  assert.deepEqual(seqTs(first), [0, (4_294_963_000 + 180_000) >>> 0], 'wraps like RTP does')
  assert.deepEqual(seqTs(second), [1, (4_294_963_000 + 180_000 + 3000) >>> 0], 'the new stream\'s own spacing is kept')
})

test('a runt datagram is left alone', () => {
  const c = new RtpContinuity()
  const b = Buffer.from([1, 2, 3])
  c.rewrite(b)
  assert.deepEqual([...b], [1, 2, 3])
})
