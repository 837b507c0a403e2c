import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { findFfmpeg } from '@doorbell/device'

/**
 * Reading a picture back: ffmpeg decodes the JPEG to RGB, and the test pattern's bars (ffmpeg's
 * testsrc, which stand still while its counter runs) are compared by colour. At 640x480, y = 150:
 * x = 120 cyan, 200 magenta, 280 blue, 360 yellow, 440 green.
 */
const BARS: Array<[number, [number, number, number]]> = [[120, [0, 255, 255]], [200, [255, 0, 255]], [280, [0, 0, 255]], [360, [255, 255, 0]], [440, [0, 255, 0]]]

export function jpegPixels (jpeg: Buffer): { width: number, height: number, rgb: Buffer } {
  const probe = spawnSync(findFfmpeg(), ['-hide_banner', '-i', 'pipe:0'], { input: jpeg })
  const m = /, (\d+)x(\d+)/.exec(probe.stderr.toString())
  assert.ok(m, `ffmpeg reads the picture: ${probe.stderr.toString().slice(-300)}`)
  const raw = spawnSync(findFfmpeg(), ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { input: jpeg, maxBuffer: 16 << 20 })
  assert.equal(raw.status, 0, raw.stderr.toString())
  return { width: Number(m[1]), height: Number(m[2]), rgb: raw.stdout }
}

/** The picture is the doorbell's test pattern: 640 px wide, its bars where they belong. */
export function assertTestPatternBars (jpeg: Buffer): void {
  const { width, rgb } = jpegPixels(jpeg)
  assert.equal(width, 640)
  for (const [x, want] of BARS) {
    const i = (150 * width + x) * 3
    const got = [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!]
    assert.ok(got.every((v, k) => Math.abs(v - want[k]!) < 60), `bar at x=${x}: got rgb(${got.join(',')}), want rgb(${want.join(',')})`)
  }
}
