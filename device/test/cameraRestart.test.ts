import { test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryLogger } from '@doorbell/core'
import { Camera } from '../src/camera/camera'

test('an encoder that keeps dying is restarted with the shared backoff: 0.5 s, 1 s, 2 s…', async (t) => {
  const lines: string[] = []
  // An "ffmpeg" that exits at once, every time.
  const camera = new Camera({ source: { kind: 'test-pattern', width: 320, height: 240, fps: 15 }, codec: 'h264', keyframeInterval: 15, bitrateKbps: 300, ffmpegPath: '/bin/false' }, memoryLogger(lines, 'camera'))
  t.after(async () => { await camera.stop() })
  await camera.start()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const waits = lines.filter((l) => l.includes('camera stopped, restarting')).map((l) => Number(/inMs=(\d+)/.exec(l)?.[1]))
  assert.deepEqual(waits.slice(0, 3), [500, 1000, 2000], lines.join('\n'))
})
