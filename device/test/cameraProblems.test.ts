import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryLogger } from '@doorbell/core'
import { Camera, findFfmpeg } from '../src/camera/camera'
import { rpicamArgs } from '../src/camera/ffmpegArgs'
import { cameraProblem, redact } from '../src/camera/problems'

/**
 * A camera that cannot start says why, and what to do, in the doorbell's log. The USB webcam and
 * the Pi camera are not on these machines: what can run here runs for real (a missing V4L2 device,
 * rpicam-vid not installed, an RTSP camera that refuses the connection); the busy device and "no
 * cameras" are checked against the programs' own messages.
 */
const until = async (lines: string[], pattern: RegExp, ms = 8000): Promise<string> => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const hit = lines.find((l) => pattern.test(l))
    if (hit !== undefined) return hit
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`nothing matched ${pattern} in:\n${lines.join('\n')}`)
}
const settings = { codec: 'h264' as const, keyframeInterval: 15, bitrateKbps: 300 }

describe('the camera says why it cannot start', () => {
  test('a V4L2 device that is not there (a real ffmpeg)', async (t) => {
    const lines: string[] = []
    const camera = new Camera({ ...settings, source: { kind: 'v4l2', device: '/dev/video-missing', width: 640, height: 480, fps: 30 } }, memoryLogger(lines, 'camera'))
    t.after(async () => { await camera.stop() })
    await camera.start()
    const said = await until(lines, /camera: /)
    assert.match(said, /error +\[camera\] camera: \/dev\/video-missing does not exist: is the webcam plugged in\? List the cameras with: v4l2-ctl --list-devices/)
    await until(lines, /camera stopped, restarting/)
  })

  test('rpicam-vid not installed (real: this machine has none on the PATH given)', async (t) => {
    const lines: string[] = []
    const path = process.env.PATH
    process.env.PATH = '/nonexistent'
    t.after(() => { process.env.PATH = path })
    const camera = new Camera({ ...settings, ffmpegPath: findFfmpeg(), source: { kind: 'picam', width: 640, height: 480, fps: 30 } }, memoryLogger(lines, 'camera'))
    t.after(async () => { await camera.stop() })
    await camera.start()
    assert.match(await until(lines, /camera: rpicam/), /camera: rpicam-vid is not installed: sudo apt install rpicam-apps/)
    await until(lines, /camera stopped, restarting/)
  })

  test('an RTSP camera that refuses the connection (a real ffmpeg probe), its password kept out of the log', async (t) => {
    const lines: string[] = []
    const camera = new Camera({ ...settings, source: { kind: 'rtsp', url: 'rtsp://admin:secret@127.0.0.1:1/stream1' } }, memoryLogger(lines, 'camera'))
    t.after(async () => { await camera.stop() })
    await camera.start()
    assert.match(await until(lines, /camera: the RTSP camera/), /the RTSP camera at rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:1\/stream1 does not answer/)
    await until(lines, /camera stopped, restarting.*why=the RTSP camera did not answer/)
    assert.ok(!lines.some((l) => l.includes('secret')), 'no password in the log')
  })

  test('a busy device, no Pi camera, no permission: the programs\' own words', () => {
    const webcam = { kind: 'v4l2', device: '/dev/video0', width: 1280, height: 720, fps: 30 } as const
    const picam = { kind: 'picam', width: 1280, height: 720, fps: 30 } as const
    assert.equal(cameraProblem(webcam, '[video4linux2,v4l2 @ 0x55d] Cannot open video device /dev/video0: Device or resource busy'),
      '/dev/video0 is busy: another program is using the webcam (find it with: fuser /dev/video0)')
    assert.match(cameraProblem(webcam, '[video4linux2,v4l2 @ 0x55d] Cannot open video device /dev/video0: Permission denied') ?? '', /not in the video group/)
    assert.match(cameraProblem(picam, 'ERROR: *** no cameras available ***') ?? '', /finds no camera: check the ribbon cable/)
    assert.match(cameraProblem(picam, 'ERROR: *** failed to acquire camera /base/axi/pcie@120000/rp1/i2c@88000/imx708@1a ***') ?? '', /the Pi camera is busy/)
    assert.equal(cameraProblem(webcam, 'frame=  120 fps= 30 q=-1.0 size=N/A'), null)
    assert.equal(redact('rtsp://admin:p%40ss@cam.local:554/s'), 'rtsp://admin:***@cam.local:554/s')
    assert.equal(redact('rtsp://cam.local/s'), 'rtsp://cam.local/s')
  })

  test('rpicam-vid\'s exact command line: hardware H.264 Baseline, headers inline, to stdout, no preview', () => {
    assert.deepEqual(rpicamArgs({ width: 1280, height: 720, fps: 30 }),
      ['-t', '0', '--inline', '--codec', 'h264', '--profile', 'baseline', '--width', '1280', '--height', '720', '--framerate', '30', '-n', '-o', '-'])
  })
})
