/**
 * An IP doorbell's own microphone: the RTSP camera (GStreamer's server on loopback, H.264 and a
 * G.711 A-law sine) is the doorbell's camera and, with audio.source "camera", its microphone. A
 * resident who answers a ring hears the camera's tone in Chromium, and sees its picture.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { eventually, startLan } from '../src/harness'
import { openResident, videoIsPlaying } from '../src/browser'
import { inviteCode } from '../src/trust'
import { startRtspCamera } from '../src/rtsp'
import { near, pageToneFrequency } from '../src/audio'

const CAMERA_HZ = 880
const PASSWORD = 'door-secret-42'

test('the RTSP camera\'s sound (PCMA) is the doorbell\'s microphone: a resident who answers hears the camera\'s tone', { timeout: 120_000 }, async (t) => {
  const camera = await startRtspCamera('constrained-baseline', '640x360', { audio: 'pcma', toneHz: CAMERA_HZ })
  t.after(() => camera.stop())
  const url = camera.url.replace('rtsp://', `rtsp://admin:${PASSWORD}@`)
  const lan = await startLan({ camera: { source: { kind: 'rtsp', url }, codec: 'h264' }, audio: { source: 'camera' } })
  t.after(() => lan.stop())
  const resident = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, { kind: 'viewer', role: 'resident' }))
  t.after(() => resident.close())
  t.after(() => { if (process.exitCode) console.log([...resident.console, ...lan.lines.slice(-60), ...camera.lines.slice(-10)].join('\n')) })
  const page = resident.page

  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 10_000 })
  await page.waitForSelector('[data-testid=link][data-up=true]')
  await eventually('the microphone to take the camera\'s sound', () => lan.lines.find((l) => l.includes('encoding the RTSP camera\'s sound to Opus')), 20_000)
  lan.button.press()
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await page.getByTestId('answer').click()
  const playing = await videoIsPlaying(page)
  assert.equal(playing.width, 640, 'the camera\'s own picture')
  const heard = await pageToneFrequency(page)
  assert.ok(near(heard, CAMERA_HZ), `the page hears ${heard.toFixed(1)} Hz (the camera sends ${CAMERA_HZ} Hz)`)
  assert.deepEqual(lan.lines.filter((l) => l.includes(PASSWORD)), [], 'the camera\'s password is in no log line')
  t.diagnostic(`the page heard ${heard.toFixed(1)} Hz from the camera's ${CAMERA_HZ} Hz PCMA track`)
})
