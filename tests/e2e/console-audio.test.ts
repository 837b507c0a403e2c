/**
 * Sound in the operator console, and the browser camera node's microphone, in headless Chromium.
 * A hub, two browser camera nodes in one zone (Chromium's fake camera and microphone) and an
 * operator's console. A camera node sends no sound until its microphone setting is turned on: its
 * tile receives no audio bytes and has no sound button. Turned on: the calls restart, the tile
 * receives audio (getStats' inbound-rtp bytes grow) into an <audio> that stays muted until the
 * operator unmutes that tile; unmuting another tile mutes the first (one at a time). axe-core
 * finds no WCAG 2 A/AA violation on the console or on the camera node page.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { openResident, type Resident } from '../src/browser'
import { kill, startHomeHub, type HomeHub } from '../src/hubProcess'
import { startBrowserCamera, type BrowserCamera } from '../src/cameraNode'
import { axeViolations, describeViolations } from '../src/axe'

const ZONE = 'CBD-TRAFFIC-01'
const A = { deviceId: 'cam-a', name: 'King St north', zone: ZONE }
const B = { deviceId: 'cam-b', name: 'King St south', zone: ZONE }

async function assertAccessible (page: Page, what: string): Promise<void> {
  const found = await axeViolations(page)
  assert.equal(found.length, 0, `${what}: axe-core found WCAG 2 A/AA violations:\n${describeViolations(found)}`)
}

const tile = (id: string): string => `[data-testid="tile-${id}"]`
const audioBytes = async (page: Page, id: string): Promise<number> => Number(await page.locator(tile(id)).getAttribute('data-audio-bytes'))
const isMuted = async (page: Page, id: string): Promise<boolean> => await page.locator(`${tile(id)} [data-testid=tile-audio]`).evaluate((a) => (a as HTMLAudioElement).muted)
const readings = async (page: Page, id: string): Promise<number> => Number(await page.locator(tile(id)).getAttribute('data-readings'))

/** Waits until the tile's current call has received audio bytes, and they still grow a second later. */
async function soundArrives (page: Page, id: string): Promise<number> {
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.getAttribute('data-audio-bytes')) > 0, tile(id), { timeout: 30_000 })
  const first = await audioBytes(page, id)
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.getAttribute('data-audio-bytes')) > n, [tile(id), first] as const, { timeout: 5000 })
  return await audioBytes(page, id)
}

test('console sound: a camera node sends none until its microphone is turned on; the operator unmutes one tile at a time; no axe violation on the console and the camera page', { timeout: 240_000 }, async (t) => {
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  let operator: Resident | null = null
  const cameras: BrowserCamera[] = []
  let hub: HomeHub | null = null
  t.after(async () => {
    if (process.exitCode) console.log([...(operator?.console ?? []), ...cameras.flatMap((c) => c.lines.slice(-20)), ...(hub?.hub.lines.slice(-30) ?? [])].join('\n'))
    for (const step of cleanup.reverse()) {
      try { await step() } catch (err) { console.error('clean-up step failed:', (err as Error).message) }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-console-audio-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  hub = await startHomeHub(dir, { mesh: { enabled: false } })
  const home = hub
  cleanup.push(() => kill(home.hub, 'SIGTERM'))
  for (const c of [A, B]) {
    const camera = await startBrowserCamera(home, c)
    cameras.push(camera)
    cleanup.push(() => camera.close())
  }
  const [a, b] = cameras as [BrowserCamera, BrowserCamera]

  // Off by default, with the legal note next to the setting.
  assert.equal(await a.page.getByTestId('node-microphone').isChecked(), false, 'a camera node sends no sound unless configured')
  assert.match(await a.page.getByTestId('node-microphone-note').textContent() ?? '', /restricted in many places/)
  await assertAccessible(a.page, 'the camera node page')

  const invite = await home.asOwner.invite({ kind: 'viewer', role: 'operator', zones: [ZONE] })
  operator = await openResident(`${home.base}/`, 'Night desk', invite.code)
  const page = operator.page
  await page.setViewportSize({ width: 1280, height: 800 })
  await page.goto(`${home.base}/console`)
  for (const c of [A, B]) await page.waitForSelector(`${tile(c.deviceId)}[data-state=live]`, { timeout: 30_000 })

  // Microphones off: three readings of each call, and not one audio byte; no sound button.
  for (const c of [A, B]) {
    const from = await readings(page, c.deviceId)
    await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.getAttribute('data-readings')) >= n + 3, [tile(c.deviceId), from] as const, { timeout: 10_000 })
    assert.equal(await audioBytes(page, c.deviceId), 0, `${c.name} sends no sound with its microphone off`)
    assert.equal(await page.locator(`${tile(c.deviceId)} [data-testid=tile-sound]`).count(), 0)
  }
  await assertAccessible(page, 'the operator console')

  // A's microphone on: its watchers' calls restart, and the console's tile receives its sound, muted.
  await a.page.getByTestId('node-microphone').check()
  await a.page.getByTestId('node-microphone-state').waitFor({ timeout: 10_000 })
  const aBytes = await soundArrives(page, A.deviceId)
  t.diagnostic(`tile A received ${aBytes} audio bytes`)
  assert.equal(await audioBytes(page, B.deviceId), 0, 'B, still off, sends none')
  assert.equal(await isMuted(page, A.deviceId), true, 'a tile\'s sound arrives muted')
  await b.page.getByTestId('node-microphone').check()
  await soundArrives(page, B.deviceId)
  assert.equal(await isMuted(page, B.deviceId), true)

  // One tile at a time: unmuting A, then B, leaves A muted; sound keeps arriving on both.
  await page.getByRole('button', { name: `Unmute ${A.name}` }).click()
  assert.equal(await isMuted(page, A.deviceId), false, 'A plays once unmuted')
  assert.equal(await isMuted(page, B.deviceId), true)
  assert.equal(await page.getByRole('button', { name: `Mute ${A.name}` }).getAttribute('data-audible'), 'true')
  await page.getByRole('button', { name: `Unmute ${B.name}` }).click()
  assert.equal(await isMuted(page, B.deviceId), false, 'B plays once unmuted')
  assert.equal(await isMuted(page, A.deviceId), true, 'unmuting B muted A')
  assert.equal(await page.getByRole('button', { name: `Unmute ${A.name}` }).getAttribute('data-audible'), 'false')
  const beforeA = await audioBytes(page, A.deviceId)
  await soundArrives(page, B.deviceId)
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.getAttribute('data-audio-bytes')) > n, [tile(A.deviceId), beforeA] as const, { timeout: 5000 })
  await assertAccessible(page, 'the operator console with sound')
  // Mute B: nothing plays.
  await page.getByRole('button', { name: `Mute ${B.name}` }).click()
  assert.deepEqual([await isMuted(page, A.deviceId), await isMuted(page, B.deviceId)], [true, true])

  // A's microphone off again: its next call carries no sound.
  await a.page.getByTestId('node-microphone').uncheck()
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('data-audio-bytes') === '0' && document.querySelector(sel)?.getAttribute('data-state') === 'live', tile(A.deviceId), { timeout: 30_000 })
  const from = await readings(page, A.deviceId)
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.getAttribute('data-readings')) >= n + 3, [tile(A.deviceId), from] as const, { timeout: 10_000 })
  assert.equal(await audioBytes(page, A.deviceId), 0, 'A sends no sound once its microphone is off again')
})
