import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { mkdir } from 'node:fs/promises'
import type { Page } from 'playwright-core'
import { eventually, startLan } from '../src/harness'
import { holdToOpen, openResident, videoIsPlaying, type Resident } from '../src/browser'
import { inviteCode } from '../src/trust'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))

const trail = async (page: Page, name: string): Promise<string[]> =>
  page.locator(`[data-testid="trail-${name}"] li`).allTextContents()

/** Is `wanted` a subsequence of `seen` (in order, gaps allowed)? */
const passedThrough = (seen: string[], wanted: string[]): boolean => {
  let i = 0
  for (const s of seen) if (s === wanted[i]) i++
  return i === wanted.length
}

test('the inspector shows the device, lock and viewer machines move through a whole call', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({ inspect: true, relockSeconds: 2 }, { inspect: true })
  t.after(() => lan.stop())
  // The inspector is the owner's: it signs in with this browser's owner pairing.
  const kitchen = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, 'owner'))
  t.after(() => kitchen.close())
  await kitchen.page.getByTestId('doorbell-front-door').waitFor()
  const inspector: Pick<Resident, 'page'> = { page: await kitchen.context.newPage() }
  await inspector.page.goto(lan.hub.url.replace(/\/$/, '/inspector'))
  await inspector.page.setViewportSize({ width: 1400, height: 1000 })
  // Actors started before the page opened arrive with the next roster (every 3 s).
  await inspector.page.getByTestId('actor-deviceCall').waitFor({ timeout: 10_000 })
  await inspector.page.getByTestId('actor-lock').waitFor({ timeout: 10_000 })
  await inspector.page.getByTestId('actor-viewerCall:front-door').waitFor({ timeout: 10_000 })

  // One window, two tabs: the resident's tab in front while they use it (a hidden tab gets no animation frames).
  await kitchen.page.bringToFront()
  lan.button.press()
  await kitchen.page.getByTestId('ring-banner').waitFor()
  await kitchen.page.getByTestId('answer').click()
  await videoIsPlaying(kitchen.page)
  await holdToOpen(kitchen.page)
  await kitchen.page.waitForSelector('[data-door=unlocked]')
  await kitchen.page.waitForSelector('[data-door=locked]', { timeout: 8000 })
  await kitchen.page.getByTestId('hang-up').click()
  await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'))

  // Read it off the inspector page, as a developer would.
  await inspector.page.bringToFront()
  await eventually('the device call machine through ringing, inCall and back to idle', async () =>
    passedThrough(await trail(inspector.page, 'deviceCall'), ['idle', 'ringing', 'inCall', 'idle']))
  await eventually('the lock through unlocked and back to locked', async () =>
    passedThrough(await trail(inspector.page, 'lock'), ['locked', 'unlocking', 'unlocked', 'relocking', 'locked']))
  await eventually('the viewer call machine through the call', async () =>
    passedThrough(await trail(inspector.page, 'viewerCall:front-door'), ['idle', 'incoming', 'active.connecting', 'active.connected.ready', 'ended']))
  // The active state is lit in the drawn statechart.
  const lit = await inspector.page.locator('[data-testid=actor-deviceCall] [data-active=true]').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))
  assert.ok(lit.includes('idle'), `deviceCall shows idle lit (lit: ${lit.join(', ')})`)
  // The timeline names the events that moved them.
  const events = await inspector.page.getByTestId('timeline').locator('td.ev').allTextContents()
  for (const e of ['PRESS', 'OFFER', 'UNLOCK', 'BYE']) assert.ok(events.includes(e), `timeline has ${e}`)

  await mkdir(SCREENSHOTS, { recursive: true })
  await inspector.page.screenshot({ path: `${SCREENSHOTS}/inspector.png`, fullPage: false })
})
