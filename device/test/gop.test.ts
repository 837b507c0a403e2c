import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { GopCache, isKeyframePacket, rtpPayload } from '../src/camera/gop'
import { Camera } from '../src/camera/camera'
import { memoryLogger } from '@doorbell/core'

let seq = 0
/** An RTP datagram with a 12-byte header, version 2, payload type 96. */
function rtp (timestamp: number, payload: number[], extra: { csrcs?: number, extension?: number[] } = {}): Buffer {
  const csrcs = extra.csrcs ?? 0
  const head = Buffer.alloc(12 + 4 * csrcs)
  head[0] = 0x80 | csrcs | (extra.extension ? 0x10 : 0)
  head[1] = 96
  head.writeUInt16BE(seq++ & 0xffff, 2)
  head.writeUInt32BE(timestamp >>> 0, 4)
  head.writeUInt32BE(1, 8)
  const ext = extra.extension ? Buffer.concat([Buffer.from([0xbe, 0xde, 0, extra.extension.length / 4]), Buffer.from(extra.extension)]) : Buffer.alloc(0)
  return Buffer.concat([head, ext, Buffer.from(payload)])
}

// H.264 payloads (RFC 6184)
const sps = [0x67, 0x42, 0xe0, 0x1f]
const stapSpsPps = [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]
const fuIdrStart = [0x7c, 0x85, 0xaa]
const fuIdrMiddle = [0x7c, 0x05, 0xaa]
const pSlice = [0x41, 0x9a]
const fuPStart = [0x7c, 0x81, 0xbb]

describe('keyframe detection', () => {
  test('H.264: SPS, STAP-A with SPS, and the first fragment of an IDR start a keyframe', () => {
    assert.equal(isKeyframePacket('h264', rtp(0, sps)), true)
    assert.equal(isKeyframePacket('h264', rtp(0, stapSpsPps)), true)
    assert.equal(isKeyframePacket('h264', rtp(0, fuIdrStart)), true)
    assert.equal(isKeyframePacket('h264', rtp(0, [0x65, 0x88])), true, 'a single-NAL IDR slice')
  })
  test('H.264: P slices, later IDR fragments and a STAP-A without SPS/IDR do not', () => {
    assert.equal(isKeyframePacket('h264', rtp(0, pSlice)), false)
    assert.equal(isKeyframePacket('h264', rtp(0, fuIdrMiddle)), false)
    assert.equal(isKeyframePacket('h264', rtp(0, fuPStart)), false)
    assert.equal(isKeyframePacket('h264', rtp(0, [0x78, 0, 2, 0x68, 0xce, 0, 2, 0x06, 0x05])), false, 'PPS + SEI')
  })
  test('VP8: a partition-0 start with P = 0, with and without the extended descriptor', () => {
    assert.equal(isKeyframePacket('vp8', rtp(0, [0x10, 0x50, 0x01])), true)
    assert.equal(isKeyframePacket('vp8', rtp(0, [0x90, 0x80, 0x81, 0x23, 0x50])), true, '15-bit picture id')
    assert.equal(isKeyframePacket('vp8', rtp(0, [0x10, 0x51])), false, 'an interframe (P = 1)')
    assert.equal(isKeyframePacket('vp8', rtp(0, [0x00, 0x50])), false, 'not a partition start')
  })
  test('the payload is found past CSRCs and a header extension; short or non-RTP data is no keyframe', () => {
    assert.deepEqual([...rtpPayload(rtp(0, sps, { csrcs: 2, extension: [1, 2, 3, 4] }))!], sps)
    assert.equal(isKeyframePacket('h264', rtp(0, sps, { csrcs: 1, extension: [0x10, 0xff, 0, 0] })), true)
    assert.equal(isKeyframePacket('h264', Buffer.from([0x80, 96, 0])), false)
    assert.equal(isKeyframePacket('h264', Buffer.alloc(20)), false, 'version 0')
  })
})

describe('the group of pictures', () => {
  /** Frames at 30 fps (3000 ticks): a keyframe of [STAP-A, FU-A start, FU-A middle], then P frames. */
  function keyframe (ts: number): Buffer[] { return [rtp(ts, stapSpsPps), rtp(ts, fuIdrStart), rtp(ts, fuIdrMiddle)] }

  test('nothing to replay before the first keyframe', () => {
    const gop = new GopCache('h264')
    gop.push(rtp(0, pSlice))
    gop.push(rtp(3000, pSlice))
    assert.deepEqual(gop.replay(), [])
    assert.equal(gop.size.frames, 1, 'only the current frame is held')
  })

  test('the replay starts at the newest keyframe and holds every packet after it, in order', () => {
    const gop = new GopCache('h264')
    for (const p of [...keyframe(0), rtp(3000, pSlice)]) gop.push(p)
    const second = keyframe(6000)
    const after = [rtp(9000, pSlice), rtp(12000, fuPStart), rtp(12000, [0x7c, 0x41, 0xbb])]
    for (const p of [...second, ...after]) gop.push(p)
    const replay = gop.replay()
    const sent = [...second, ...after]
    assert.equal(replay.length, sent.length)
    assert.deepEqual(replay.map((p) => p.readUInt16BE(2)), sent.map((p) => p.readUInt16BE(2)), 'sequence numbers unchanged')
    assert.equal(isKeyframePacket('h264', replay[0]!), true)
    replay.forEach((p, i) => { assert.deepEqual(p.subarray(12), sent[i]!.subarray(12), 'payloads unchanged') })
  })

  test('cached frames are pulled forward to just before the newest frame, which keeps its timestamp', () => {
    const gop = new GopCache('h264')
    for (const p of [...keyframe(90_000), rtp(93_000, pSlice), rtp(96_000, pSlice), rtp(99_000, fuPStart)]) gop.push(p)
    const timestamps = gop.replay().map((p) => p.readUInt32BE(4))
    assert.deepEqual(timestamps, [98_997, 98_997, 98_997, 98_998, 98_999, 99_000])
  })

  test('timestamps pulled forward wrap around 2^32', () => {
    const gop = new GopCache('h264')
    for (const p of [...keyframe(2 ** 32 - 6000), rtp(2 ** 32 - 3000, pSlice), rtp(0, pSlice)]) gop.push(p)
    assert.deepEqual([...new Set(gop.replay().map((p) => p.readUInt32BE(4)))], [2 ** 32 - 2, 2 ** 32 - 1, 0])
  })

  test('the replay is a copy: changing it does not change the cache', () => {
    const gop = new GopCache('h264')
    for (const p of keyframe(0)) gop.push(p)
    gop.replay()[0]!.fill(0)
    assert.equal(isKeyframePacket('h264', gop.replay()[0]!), true)
  })

  test('a group past its limit is dropped until the next keyframe', () => {
    const gop = new GopCache('h264', { maxPackets: 10, maxBytes: 1 << 20 })
    for (const p of keyframe(0)) gop.push(p)
    for (let i = 1; i <= 10; i++) gop.push(rtp(i * 3000, pSlice))
    assert.deepEqual(gop.replay(), [])
    for (const p of keyframe(40 * 3000)) gop.push(p)
    assert.equal(gop.replay().length, 3)
  })

  /** The last packet of a frame carries the RTP marker (RFC 6184 §5.1). */
  const marked = (p: Buffer): Buffer => { p[1] = p[1]! | 0x80; return p }
  const wholeKeyframe = (ts: number): Buffer[] => { const k = keyframe(ts); marked(k[k.length - 1]!); return k }

  test('the whole keyframe: none until its marked last packet arrives; while the next one arrives, the one before', () => {
    const gop = new GopCache('h264')
    const first = wholeKeyframe(0)
    gop.push(first[0]!)
    gop.push(first[1]!)
    assert.deepEqual(gop.keyframe(), [], 'half a keyframe is no keyframe')
    gop.push(first[2]!)
    assert.deepEqual(gop.keyframe().map((p) => p.readUInt16BE(2)), first.map((p) => p.readUInt16BE(2)))
    gop.push(marked(rtp(3000, pSlice)))
    const second = wholeKeyframe(6000)
    gop.push(second[0]!)
    gop.push(second[1]!)
    assert.deepEqual(gop.keyframe().map((p) => p.readUInt32BE(4)), [0, 0, 0], 'the one before, while the newest is half here')
    assert.equal(gop.replay()[0]!.readUInt32BE(4), 6000, 'a joining viewer still gets the newest group (the live packets finish it)')
    gop.push(second[2]!)
    assert.deepEqual(gop.keyframe().map((p) => p.readUInt32BE(4)), [6000, 6000, 6000])
    gop.keyframe()[0]!.fill(0)
    assert.equal(isKeyframePacket('h264', gop.keyframe()[0]!), true, 'a copy')
    gop.clear()
    assert.deepEqual(gop.keyframe(), [], 'a cleared cache (the encoder stopped) holds no old keyframe')
  })

  test('a keyframe with a packet lost in the middle is not whole: the one before stays the picture', () => {
    const gop = new GopCache('h264')
    for (const p of wholeKeyframe(0)) gop.push(p)
    gop.push(marked(rtp(3000, pSlice)))
    const second = wholeKeyframe(6000)
    gop.push(second[0]!)
    gop.push(second[2]!) // second[1] lost: the marked last packet still arrives
    assert.deepEqual(gop.keyframe().map((p) => p.readUInt32BE(4)), [0, 0, 0])
  })
})

test('a real camera: a late subscriber gets a keyframe first, then a gapless live stream', { timeout: 20_000 }, async (t) => {
  for (const codec of ['h264', 'vp8'] as const) {
    await t.test(codec, async () => {
      const camera = new Camera({ source: { kind: 'test-pattern', width: 320, height: 240, fps: 30 }, codec, keyframeInterval: 30, bitrateKbps: 500 }, memoryLogger([], 'camera'))
      await camera.start()
      try {
        // Wait for the encoder's output, then past a keyframe so the group has P frames.
        const start = Date.now()
        while (camera.packets < 60 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 20))
        const got: Buffer[] = []
        const stop = camera.subscribe((p) => { got.push(Buffer.from(p)) }, { fromKeyframe: true })
        const replayed = got.length
        while (got.length < replayed + 30 && Date.now() - start < 15_000) await new Promise((r) => setTimeout(r, 20))
        stop()
        assert.ok(replayed > 0, 'the cached group was replayed at once')
        assert.equal(isKeyframePacket(codec, got[0]!), true, 'the first packet starts a keyframe')
        for (let i = 1; i < got.length; i++) {
          assert.equal(got[i]!.readUInt16BE(2), (got[i - 1]!.readUInt16BE(2) + 1) & 0xffff, `packet ${i} follows packet ${i - 1}`)
          assert.ok(((got[i]!.readUInt32BE(4) - got[i - 1]!.readUInt32BE(4)) >>> 0) < 2 ** 31, `timestamp of packet ${i} does not go back`)
        }
      } finally {
        await camera.stop()
      }
    })
  }
})
