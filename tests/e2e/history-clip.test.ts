import { test } from 'node:test'
import assert from 'node:assert/strict'
import { eventually, startLan } from '../src/harness'
import { openResident } from '../src/browser'
import { inviteCode } from '../src/trust'
import { axeViolations, describeViolations } from '../src/axe'

/**
 * Issue 19's optional clip in a real Chromium, a real hub and a real doorbell (ffmpeg's test
 * pattern): the owner turns ring clips on in Home settings, a ring's clip reaches the history, and
 * tapping the ring plays it: the `<video>` loads it from the hub with Range requests and its
 * currentTime advances.
 */

const DEVICE = 'front-door'

test('the owner turns ring clips on, and the history view plays a ring\'s clip', { timeout: 150_000 }, async (t) => {
  const lan = await startLan({ ringTimeoutSeconds: 2, camera: { clipSeconds: 4 } })
  t.after(() => lan.stop())
  const owner = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, 'owner'))
  t.after(() => owner.close())
  t.after(() => { if (process.exitCode) console.log(owner.console.join('\n')) })
  const page = owner.page
  await page.getByTestId(`doorbell-${DEVICE}`).waitFor({ timeout: 10_000 })
  await page.waitForSelector('[data-testid=link][data-up=true]')

  // Home settings: off until the owner turns it on; the doorbell takes the signed setting.
  await page.getByTestId('owner-panel-toggle').click()
  const box = page.getByTestId(`clip-on-${DEVICE}`)
  await box.waitFor({ timeout: 10_000 })
  assert.equal(await box.isChecked(), false)
  await box.check()
  await page.getByTestId('clip-saved').waitFor({ timeout: 10_000 })
  await eventually('the doorbell took the setting', () => lan.lines.some((l) => l.includes('turned on the ring clip')), 10_000)
  await page.getByTestId('owner-panel-toggle').click()

  // A ring; nobody answers; its clip reaches the hub.
  lan.button.press()
  const ringId = await eventually('the ring', () => lan.device.state().call.ringId)
  const id = await eventually('the clip at the hub', async () => {
    const e = (await lan.hub.history.store.list({ limit: 5 }, { memberId: 'x', devices: null })).events.find((x) => x.ringId === ringId)
    return e && lan.hub.history.clips.video(e.id) ? e.id : undefined
  }, 30_000)

  // The history (asked again when the page is visible again) marks the ring as having a clip.
  await page.evaluate(() => { document.dispatchEvent(new Event('visibilitychange')) })
  const item = page.locator(`[data-testid=history-event][data-id="${id}"]`)
  await item.getByTestId('history-has-clip').waitFor({ timeout: 15_000 })

  const served: number[] = []
  page.on('response', (r) => { if (r.url().includes(`/api/events/${id}/clip?`)) served.push(r.status()) })
  await item.getByRole('button').first().click()
  await page.getByTestId('history-picture').waitFor({ state: 'visible', timeout: 5000 })
  await page.getByTestId('history-clip-play').click()
  const video = page.getByTestId('history-clip-video')
  await video.waitFor({ timeout: 10_000 })
  const first = await eventually('the clip playing', async () => await video.evaluate((v: HTMLVideoElement) => v.currentTime > 0.3 && v.videoWidth > 0 ? { t: v.currentTime, w: v.videoWidth, d: v.duration } : null), 15_000)
  assert.equal(first.w, 640)
  assert.ok(Math.abs(first.d - 4) < 1, `duration ${first.d} s`)
  const later = await eventually('the clip\'s time advancing', async () => { const now = await video.evaluate((v: HTMLVideoElement) => v.currentTime); return now > first.t + 0.5 ? now : null }, 10_000)
  assert.ok(later > first.t)
  // Seeking back: the video asks the hub for the part it needs.
  await video.evaluate((v: HTMLVideoElement) => { v.currentTime = 0.2 })
  await eventually('played on after the seek', async () => await video.evaluate((v: HTMLVideoElement) => !v.seeking && v.currentTime > 0.4 && v.error === null), 10_000)
  assert.ok(served.length > 0 && served.every((s) => s === 200 || s === 206), `served ${served.join(',')}`)
  assert.ok(served.includes(206), `a Range request answered 206: ${served.join(',')}`)
  const violations = await axeViolations(page, '[data-testid=history-picture]')
  assert.deepEqual(violations, [], describeViolations(violations))
})
