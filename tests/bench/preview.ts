/**
 * Issue 21's live preview, side by side in one run: two doorbells in their own processes on one
 * hub, the same camera, one with live preview (the default) and one with it off (`livePreview:
 * false`), rung in turn, watched by one headless Chromium page:
 *   ring → first live frame in the banner (preview on): the button press (epoch clock) to the
 *         banner's preview <video>'s first presented frame (requestVideoFrameCallback);
 *   Answer → two-way audio ready (preview on): the Answer click's mark to `doorbell:audio-ready`,
 *         set when the doorbell says it opened audio on the preview's connection (`call-taken`);
 *   Answer → first frame (preview off): the Answer click's mark to the call view's first frame,
 *         a new connection made at Answer (as before the preview).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/core'
import { openResident } from '../src/browser'
import { VIEWER_DIST } from '../src/harness'
import { deviceInvite, inviteCode } from '../src/trust'
import { percentile, round, type Bench, type Figure } from './lib'
import { epochNow, startDeviceProcess, type DeviceProcess } from './proc'
import { CALL_CAMERA } from './call'

const LIVE = 'front-door'
const OFF = 'back-door'

/** In the page: the banner's preview video's first presented frame, as epoch ms. */
const PREVIEW_FRAME = `(async () => {
  let video = null
  while (!(video = document.querySelector('[data-testid=doorbell-${LIVE}] [data-testid=ring-preview]'))) await new Promise((r) => setTimeout(r, 2))
  const at = await new Promise((resolve) => video.requestVideoFrameCallback((now) => resolve(now)))
  return performance.timeOrigin + at
})()`

/** In the page: the call view's first presented frame, against the Answer mark. */
const CALL_FRAME = `(async () => {
  let video = null
  while (!(video = document.querySelector('[data-testid=doorbell-${OFF}] [data-testid=video]'))) await new Promise((r) => setTimeout(r, 2))
  const frameAt = await new Promise((resolve) => video.requestVideoFrameCallback((now) => resolve(now)))
  return frameAt - (performance.getEntriesByName('doorbell:answer').at(-1)?.startTime ?? NaN)
})()`

const AUDIO_READY = `(async () => {
  const deadline = performance.now() + 10000
  while (performance.now() < deadline) {
    const ready = performance.getEntriesByName('doorbell:audio-ready').at(-1)
    const answer = performance.getEntriesByName('doorbell:answer').at(-1)
    if (ready && answer && ready.startTime >= answer.startTime) return ready.startTime - answer.startTime
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error('no doorbell:audio-ready after Answer')
})()`

export const previewBench: Bench = async ({ smoke, log }) => {
  const rounds = smoke ? 2 : 20
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-preview-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, viewerDir: VIEWER_DIST, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  const common = { hubUrl: hub.mqttUrl, mesh: { enabled: false }, iceAdditionalHostAddresses: ['127.0.0.1'], ringTimeoutSeconds: 60, camera: CALL_CAMERA, audio: { source: { kind: 'test-tone' as const, frequencyHz: 660 } } }
  const devices: Record<string, DeviceProcess> = {}
  const resident = await openResident(hub.url, 'Bench', await inviteCode(hub, 'owner'))
  const { page } = resident
  try {
    devices[LIVE] = await startDeviceProcess({ ...common, deviceId: LIVE, deviceName: 'Front door', pairing: { url: await deviceInvite(hub, LIVE) } }, 'preview-live')
    devices[OFF] = await startDeviceProcess({ ...common, deviceId: OFF, deviceName: 'Back door', livePreview: false, pairing: { url: await deviceInvite(hub, OFF) } }, 'preview-off')
    for (const id of [LIVE, OFF]) await page.getByTestId(`doorbell-${id}`).waitFor({ timeout: 20_000 })
    // The cameras' first groups of pictures are cached before the first press.
    await page.waitForTimeout(2000)
    const ringToLive: number[] = []
    const answerToAudio: number[] = []
    const answerToFrameOff: number[] = []
    for (let i = 0; i < rounds; i++) {
      // Preview on: ring → live frame in the banner; Answer → audio open on the same connection.
      const live = page.getByTestId(`doorbell-${LIVE}`)
      const frame = page.evaluate(PREVIEW_FRAME) as Promise<number>
      const pressedAt = epochNow()
      devices[LIVE].ring()
      ringToLive.push(await frame - pressedAt)
      await live.locator('[data-testid=ring-preview][data-preview=live]').waitFor({ timeout: 10_000 })
      await live.getByTestId('answer').click()
      answerToAudio.push(await page.evaluate(AUDIO_READY) as number)
      await live.getByTestId('hang-up').click()
      await live.getByTestId('seen').click()
      // Preview off: Answer makes the connection, as before.
      const off = page.getByTestId(`doorbell-${OFF}`)
      devices[OFF].ring()
      await off.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
      const callFrame = page.evaluate(CALL_FRAME) as Promise<number>
      await off.getByTestId('answer').click()
      answerToFrameOff.push(await callFrame)
      await off.getByTestId('hang-up').click()
      await off.getByTestId('seen').click()
      log(`preview: round ${i + 1}/${rounds}: ring → live frame ${round(ringToLive.at(-1)!)} ms, answer → audio ${round(answerToAudio.at(-1)!)} ms; preview off: answer → frame ${round(answerToFrameOff.at(-1)!)} ms`)
    }
    const conditions = `loopback, headless Chromium (Debian) on ${cpus().length} shared cores, two doorbells in their own processes on one hub (startHub), 1280x720@30 H.264 test pattern, keyframe every 30 frames, Opus test tone; one with live preview, one with it off, rung in turn; ${rounds} rings each`
    const f = (id: string, name: string, value: number, target?: Figure['target']): Figure =>
      ({ id, name, value: round(value), unit: 'ms', ...(target ? { target } : {}), conditions, group: 'video' })
    return [
      f('preview-live-frame-p50', 'ring → first live frame in the banner (preview), p50', percentile(ringToLive, 50)),
      f('preview-live-frame-p95', 'ring → first live frame in the banner (preview), p95', percentile(ringToLive, 95), { op: '<=', value: 600 }),
      f('preview-answer-audio-p50', 'Answer → two-way audio ready (preview), p50', percentile(answerToAudio, 50)),
      f('preview-answer-audio-p95', 'Answer → two-way audio ready (preview), p95', percentile(answerToAudio, 95), { op: '<=', value: 50 }),
      f('preview-off-answer-frame-p50', 'Answer → first decoded frame (preview off), p50', percentile(answerToFrameOff, 50), { op: '<=', value: 200 }),
      f('preview-off-answer-frame-p95', 'Answer → first decoded frame (preview off), p95', percentile(answerToFrameOff, 95))
    ]
  } finally {
    await resident.close()
    for (const d of Object.values(devices)) await d.stop()
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}
