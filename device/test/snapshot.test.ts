import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { memoryLogger, SnapshotEvent, SNAPSHOT_TARGET_BYTES } from '@doorbell/core'
import { Camera, findFfmpeg } from '../src/camera/camera'
import { h264AnnexB, snapshotJpeg, SnapshotError } from '../src/camera/snapshot'
import { RingSnapshots } from '../src/camera/snapshotRing'
import { SnapshotDecoder } from '../src/camera/snapshotDecoder'

/**
 * The picture at the press, from a real camera (ffmpeg's test pattern) through its GOP cache and
 * one short ffmpeg decode. testsrc's bars stand still: at 640x480, y = 150, x = 120 is cyan, 200
 * magenta, 280 blue, 360 yellow, 440 green.
 */
const BARS: Array<[number, [number, number, number]]> = [[120, [0, 255, 255]], [200, [255, 0, 255]], [280, [0, 0, 255]], [360, [255, 255, 0]], [440, [0, 255, 0]]]

function pixels (jpeg: Buffer): { width: number, height: number, rgb: Buffer } {
  const probe = spawnSync(findFfmpeg(), ['-hide_banner', '-i', 'pipe:0'], { input: jpeg })
  const m = /, (\d+)x(\d+)/.exec(probe.stderr.toString())
  assert.ok(m, 'ffmpeg reads the picture')
  const width = Number(m[1])
  const height = Number(m[2])
  const raw = spawnSync(findFfmpeg(), ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { input: jpeg, maxBuffer: 16 << 20 })
  assert.equal(raw.status, 0, raw.stderr.toString())
  return { width, height, rgb: raw.stdout }
}

function assertTestPatternBars (jpeg: Buffer): void {
  const { width, rgb } = pixels(jpeg)
  for (const [x, want] of BARS) {
    const i = (150 * width + x) * 3
    const got = [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!]
    assert.ok(got.every((v, k) => Math.abs(v - want[k]!) < 60), `bar at x=${x}: got rgb(${got.join(',')}), want rgb(${want.join(',')})`)
  }
}

async function runningCamera (codec: 'h264' | 'vp8'): Promise<Camera> {
  const camera = new Camera({ source: { kind: 'test-pattern', width: 640, height: 480, fps: 30 }, codec, keyframeInterval: 15, bitrateKbps: 1500 }, memoryLogger([], 'camera'))
  await camera.start()
  const start = Date.now()
  while ((camera.packets < 60 || camera.keyframe().length === 0) && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 20))
  return camera
}

test('a snapshot is the camera\'s current picture: a JPEG 640 px wide, at most 50 KB, the test pattern\'s bars in place', { timeout: 30_000 }, async (t) => {
  for (const codec of ['h264', 'vp8'] as const) {
    await t.test(codec, async () => {
      const camera = await runningCamera(codec)
      try {
        const jpeg = await snapshotJpeg(camera.keyframe(), { ffmpeg: camera.ffmpeg, codec })
        assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff])
        assert.ok(jpeg.length <= SNAPSHOT_TARGET_BYTES, `${jpeg.length} bytes`)
        assert.equal(pixels(jpeg).width, 640)
        assertTestPatternBars(jpeg)
      } finally {
        await camera.stop()
      }
    })
  }
})

test('no keyframe held (the camera is down): a SnapshotError saying so, and the ring gets "no picture" with the reason', async () => {
  await assert.rejects(snapshotJpeg([], { ffmpeg: findFfmpeg(), codec: 'h264' }), (err: Error) => err instanceof SnapshotError && /no keyframe/.test(err.message))
  const sent: SnapshotEvent[] = []
  const logs: string[] = []
  const shots = new RingSnapshots({ deviceId: 'front', camera: { keyframe: () => [], codec: 'h264', ffmpeg: findFfmpeg() }, publish: (s) => sent.push(s), log: memoryLogger(logs, 'snapshot') })
  const event = await shots.take('r-1', 1)
  shots.stop()
  assert.equal(sent.length, 1)
  assert.equal(event?.jpeg, null)
  assert.match(event?.reason ?? '', /no keyframe/)
  assert.ok(logs.some((l) => /^warn .*no snapshot for this ring/.test(l)), logs.join('\n'))
})

test('garbage in the cache: ffmpeg makes no picture, a SnapshotError names it (nothing thrown at the ring)', async () => {
  const junk = Buffer.alloc(200, 0x55)
  junk[0] = 0x80
  junk[1] = 0x80 | 96 // one whole frame (the marker), so ffmpeg is what refuses it
  junk[12] = 0x65 // an IDR slice header with nothing decodable after it
  assert.ok(h264AnnexB([junk]).length > 4)
  await assert.rejects(snapshotJpeg([junk], { ffmpeg: findFfmpeg(), codec: 'h264' }), SnapshotError)
})

test('half a keyframe (its marked last packet not yet here) or two frames: refused with a SnapshotError before any decoding', { timeout: 30_000 }, async () => {
  const camera = await runningCamera('h264')
  try {
    const whole = camera.keyframe()
    assert.ok(whole.length >= 3, `the test pattern's keyframe spans ${whole.length} packets`)
    assert.ok((whole.at(-1)![1]! & 0x80) !== 0, 'the camera\'s keyframe ends with the marker')
    const decoder = new SnapshotDecoder({ ffmpeg: camera.ffmpeg, codec: 'h264', log: memoryLogger([], 'snapshot') })
    try {
      for (const [bad, why] of [[whole.slice(0, -1), /not whole/], [[whole[0]!, ...whole.slice(2)], /missing in its sequence/], [[...whole, Buffer.concat([whole[0]!.subarray(0, 4), Buffer.from([0, 0, 0, 1]), whole[0]!.subarray(8)])], /more than one frame/], [[Buffer.alloc(5)], /too short/]] as const) {
        await assert.rejects(snapshotJpeg([...bad], { ffmpeg: camera.ffmpeg, codec: 'h264' }), (err: Error) => err instanceof SnapshotError && why.test(err.message))
        await assert.rejects(decoder.jpeg([...bad]), (err: Error) => err instanceof SnapshotError && why.test(err.message))
      }
      assert.equal(decoder.pid, undefined, 'no decoder was started for them')
      assertTestPatternBars(await decoder.jpeg(whole))
    } finally {
      decoder.stop()
    }
  } finally {
    await camera.stop()
  }
})

test('a ring\'s two pictures: one at once, a second after the delay that replaces it (seq 2)', { timeout: 20_000 }, async () => {
  const camera = await runningCamera('h264')
  const sent: SnapshotEvent[] = []
  const shots = new RingSnapshots({ deviceId: 'front', camera, publish: (s) => sent.push(s), log: memoryLogger([], 'snapshot'), secondAfterMs: 300 })
  try {
    shots.afterRing('r-2')
    const start = Date.now()
    while (sent.length < 2 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(sent.map((s) => [s.ringId, s.seq]), [['r-2', 1], ['r-2', 2]])
    for (const s of sent) {
      assert.ok(s.jpeg !== null)
      assert.ok(SnapshotEvent.safeParse(s).success)
      assertTestPatternBars(Buffer.from(s.jpeg, 'base64'))
    }
  } finally {
    shots.stop()
    await camera.stop()
  }
})

test('the long-running decoder: one ffmpeg for many pictures, each the camera\'s current picture, in both codecs', { timeout: 120_000 }, async (t) => {
  for (const codec of ['h264', 'vp8'] as const) {
    await t.test(codec, async () => {
      const camera = await runningCamera(codec)
      // A generous stall bound: on a loaded machine the one-shot fallback must not stand in for the decoder under test.
      const decoder = new SnapshotDecoder({ ffmpeg: camera.ffmpeg, codec, log: memoryLogger([], 'snapshot'), timeoutMs: 20_000 })
      try {
        let pid: number | undefined
        for (let i = 0; i < 4; i++) {
          const jpeg = await decoder.jpeg(camera.keyframe())
          assert.equal(decoder.lastPath, 'decoder', `picture ${i} came from the running decoder`)
          pid ??= decoder.pid
          assert.equal(decoder.pid, pid, 'the same process made every picture')
          assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff])
          assert.deepEqual([...jpeg.subarray(-2)], [0xff, 0xd9])
          assert.ok(jpeg.length <= SNAPSHOT_TARGET_BYTES, `${jpeg.length} bytes`)
          assert.equal(pixels(jpeg).width, 640)
          assertTestPatternBars(jpeg)
        }
        // Asked at the same time: answered in order, each with a whole picture.
        const both = await Promise.all([decoder.jpeg(camera.keyframe()), decoder.jpeg(camera.keyframe())])
        for (const jpeg of both) assertTestPatternBars(jpeg)
      } finally {
        decoder.stop()
        await camera.stop()
      }
    })
  }
})

test('the decoder dies: that picture is made by a one-shot run, and the next one by a new decoder', { timeout: 60_000 }, async () => {
  const camera = await runningCamera('h264')
  const logs: string[] = []
  const decoder = new SnapshotDecoder({ ffmpeg: camera.ffmpeg, codec: 'h264', log: memoryLogger(logs, 'snapshot'), timeoutMs: 20_000 })
  try {
    await decoder.jpeg(camera.keyframe())
    const first = decoder.pid
    assert.ok(first)
    process.kill(first, 'SIGKILL')
    while (decoder.pid === first) await new Promise((r) => setTimeout(r, 20))
    assertTestPatternBars(await decoder.jpeg(camera.keyframe()))
    assert.equal(decoder.lastPath, 'decoder', 'a new decoder started for it')
    assert.notEqual(decoder.pid, first)
  } finally {
    decoder.stop()
    await camera.stop()
  }
})

test('garbage to the decoder: no picture from it, the one-shot run refuses it with a SnapshotError, and the decoder is restarted', { timeout: 30_000 }, async () => {
  const junk = Buffer.alloc(200, 0x55)
  junk[0] = 0x80
  junk[1] = 0x80 | 96
  junk[12] = 0x65
  const logs: string[] = []
  const decoder = new SnapshotDecoder({ ffmpeg: findFfmpeg(), codec: 'h264', log: memoryLogger(logs, 'snapshot'), timeoutMs: 800 })
  try {
    await assert.rejects(decoder.jpeg([junk]), SnapshotError)
    assert.equal(decoder.lastPath, 'one-shot')
    assert.equal(decoder.pid, undefined, 'the stalled decoder is gone')
    assert.ok(logs.some((l) => /^warn .*gave no picture/.test(l)), logs.join('\n'))
    await assert.rejects(decoder.jpeg([]), (err: Error) => err instanceof SnapshotError && /no keyframe/.test(err.message))
  } finally {
    decoder.stop()
  }
})
