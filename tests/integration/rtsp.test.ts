/**
 * An IP camera over RTSP, against a real RTSP server (GStreamer's, tests/src/rtspServer.py) started
 * by the test:
 * - Constrained Baseline H.264 is passed through, not re-encoded (the log says so, and the running
 *   ffmpeg's own command line copies): Chromium decodes it (SPS/PPS dumped before each keyframe);
 *   the camera drops (its server stopped) and comes back on the same port: the video resumes in
 *   the same call.
 * - Main profile (with B-frames, as many cameras send) is re-encoded, and the log says why.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { Page } from 'playwright-core'
import { eventually, startLan } from '../src/harness'
import { openResident, videoIsPlaying } from '../src/browser'
import { inviteCode } from '../src/trust'
import { startRtspCamera } from '../src/rtsp'
import { childrenNamed } from '../src/doorbellProcess'

/** The command line of the encoder this process runs (the doorbell is in-process here). */
function encoderCommand (): string[] {
  const pids = childrenNamed(process.pid, 'ffmpeg')
  assert.equal(pids.length, 1, `one ffmpeg runs: ${pids.join(', ')}`)
  return readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0').filter(Boolean)
}
const frames = async (page: Page): Promise<number> =>
  await page.$eval('[data-testid=video]', (el) => (el as HTMLVideoElement).getVideoPlaybackQuality().totalVideoFrames)

test('RTSP: Constrained Baseline H.264 is passed through and plays in Chromium; the camera drops and comes back, the video resumes', { timeout: 120_000 }, async (t) => {
  const camera = await startRtspCamera('constrained-baseline')
  t.after(() => camera.stop())
  const lan = await startLan({ camera: { source: { kind: 'rtsp', url: camera.url }, codec: 'h264' } })
  t.after(() => lan.stop())
  let passed = false
  t.after(() => { if (!passed) console.log([...lan.lines.filter((l) => l.includes('[device/camera]')), ...lan.lines.slice(-20), ...camera.lines.slice(-10)].join('\n')) })

  await eventually('the passthrough decision in the log', () => lan.lines.find((l) => l.includes('passing the RTSP camera\'s H.264 through')), 20_000)
  assert.ok(lan.lines.some((l) => /why=the camera sends H\.264 Constrained Baseline/.test(l)))
  await eventually('the encoder', () => childrenNamed(process.pid, 'ffmpeg').length === 1)
  const command = encoderCommand()
  assert.deepEqual(command.slice(command.indexOf('-c:v'), command.indexOf('-c:v') + 4), ['-c:v', 'copy', '-bsf:v', 'dump_extra=freq=keyframe'])
  assert.ok(!command.includes('libx264'), 'nothing re-encoded')
  assert.equal(command[command.indexOf('-i') + 1], camera.url)

  const resident = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, { kind: 'viewer', role: 'resident' }))
  t.after(() => resident.close())
  const page = resident.page
  await page.getByTestId('live-view').click()
  const playing = await videoIsPlaying(page)
  assert.equal(playing.width, 640, 'the camera\'s own 640x360 picture')

  // The camera drops: its server is stopped (by PID); the encoder ends and is retried with backoff.
  const restartsBefore = lan.lines.filter((l) => l.includes('camera stopped, restarting')).length
  await camera.stop()
  await eventually('the doorbell to notice', () => lan.lines.filter((l) => l.includes('camera stopped, restarting')).length > restartsBefore, 10_000)
  await page.waitForTimeout(1500)
  const stalled = await frames(page)
  await page.waitForTimeout(500)
  assert.equal(await frames(page), stalled, 'no frames while the camera is away')

  // It comes back on the same address: the video resumes in the same call.
  const backAt = Date.now()
  await camera.restart()
  await eventually('the video to resume', async () => (await frames(page)) > stalled + 10, 30_000)
  const resumed = Date.now() - backAt
  assert.equal(lan.lines.filter((l) => l.includes('passing the RTSP camera\'s H.264 through')).length >= 2, true, 'asked again, passed through again')

  passed = true
  const waits = lan.lines.filter((l) => l.includes('camera stopped, restarting')).map((l) => /inMs=(\d+)/.exec(l)?.[1] ?? '?')
  t.diagnostic(`camera back -> video resumed in ${resumed} ms (the encoder retries with the shared backoff: waits ${waits.join(', ')} ms)`)
  if (process.env.RTSP_LOG) console.log(lan.lines.filter((l) => l.includes('camera')).join('\n'))
})

test('RTSP: Main profile is re-encoded to Baseline, and the log says why', { timeout: 60_000 }, async (t) => {
  const camera = await startRtspCamera('main')
  t.after(() => camera.stop())
  const lan = await startLan({ camera: { source: { kind: 'rtsp', url: camera.url }, codec: 'h264' } })
  t.after(() => lan.stop())
  const said = await eventually('the re-encoding decision in the log', () => lan.lines.find((l) => l.includes('re-encoding the RTSP camera')), 20_000)
  assert.match(said, /why=the camera sends H\.264 Main, not \(Constrained\) Baseline/)
  await eventually('the encoder', () => childrenNamed(process.pid, 'ffmpeg').length === 1)
  const command = encoderCommand()
  assert.equal(command[command.indexOf('-c:v') + 1], 'libx264')
  assert.equal(command[command.indexOf('-profile:v') + 1], 'baseline')
  const before = lan.device.camera.packets
  await eventually('RTP from the re-encoded camera', () => lan.device.camera.packets > before + 50, 15_000)
})
