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
  // Three restarts (0.5 + 1 s of backoff), waited for as they are logged, not for a fixed time a loaded machine may outlast.
  const restarts = (): string[] => lines.filter((l) => l.includes('camera stopped, restarting'))
  const deadline = Date.now() + 20_000
  while (restarts().length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const waits = restarts().map((l) => Number(/inMs=(\d+)/.exec(l)?.[1]))
  assert.deepEqual(waits.slice(0, 3), [500, 1000, 2000], lines.join('\n'))
})
