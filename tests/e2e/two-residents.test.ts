import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { eventually, startLan } from '../src/harness'
import { holdToOpen, openResident, videoIsPlaying, waitForText } from '../src/browser'
import { inviteCode } from '../src/trust'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))

const text = async (page: Page, testId: string): Promise<string> => (await page.getByTestId(testId).first().textContent()) ?? ''

test('two residents: both get the ring, both see the visitor, one opens the door, both see it relock; a missed ring', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({ ringTimeoutSeconds: 4, relockSeconds: 2 })
  t.after(() => lan.stop())
  const kitchen = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, 'owner'))
  t.after(() => kitchen.close())
  const hall = await openResident(lan.hub.url, 'Hall phone', await inviteCode(lan.hub, { kind: 'viewer', role: 'resident' }))
  t.after(() => hall.close())
  const pages = [kitchen.page, hall.page]
  t.after(() => {
    // Shown only when the test fails, next to the assertion.
    if (process.exitCode) console.log([...kitchen.console, ...hall.console].join('\n'))
  })

  for (const page of pages) {
    await page.getByTestId('doorbell-front-door').waitFor({ timeout: 10_000 })
    await page.waitForSelector('[data-testid=link][data-up=true]')
  }

  // Ring: both pages show the banner.
  lan.button.press()
  for (const page of pages) {
    await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
    assert.match(await text(page, 'ring-banner'), /Front door is ringing/)
  }

  // Both answer; both decode video.
  await kitchen.page.getByTestId('answer').click()
  await hall.page.getByTestId('answer').click()
  for (const page of pages) {
    const video = await videoIsPlaying(page)
    assert.ok(video.width > 0, 'the video has a size')
    await waitForText(page, 'path', /Home network/)
  }
  // Everyone sees who is in the call.
  await waitForText(kitchen.page, 'participants', /you and Hall phone/)
  await waitForText(hall.page, 'participants', /Kitchen tablet and you/)
  await mkdir(SCREENSHOTS, { recursive: true })
  await kitchen.page.screenshot({ path: `${SCREENSHOTS}/in-call.png` })

  // Every door state each page shows, in order (a state shown for one frame included).
  // A string, not a function: tsx's name helpers do not exist in the page.
  for (const page of pages) {
    await page.evaluate(`(() => {
      const seen = window.doorSeen = []
      const look = () => {
        const door = document.querySelector('[data-testid=call-view] [data-testid=door-status]')?.getAttribute('data-door')
        if (door && seen.at(-1) !== door) seen.push(door)
      }
      look()
      new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true })
    })()`)
  }
  const doorSeen = async (page: Page): Promise<string[]> => await page.evaluate(() => (window as unknown as { doorSeen: string[] }).doorSeen)

  // A hold let go before it completes (0.6 s) sends nothing: the doorbell hears no command, the door stays locked.
  await holdToOpen(kitchen.page, 250)
  await kitchen.page.waitForTimeout(700)
  assert.ok(!lan.lines.some((l) => l.includes('open-door')), 'no open-door command reached the doorbell')
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'))
  for (const page of pages) assert.match(await text(page, 'door-status'), /^Locked$/)

  // The kitchen opens the door; the device's lock opens and both pages show it from the device's reports.
  await holdToOpen(kitchen.page)
  await eventually('the relay to open', () => lan.printed.includes('DOOR UNLOCKED'))
  for (const page of pages) await waitForText(page, 'door-status', /Door open/)
  // On its call's channel the kitchen (its command pending: "Opening…") is told "unlocked" alone, then the ack;
  // the hall, in the same call, sees every step (its own channel and the hub's state both say them).
  const kitchenReplies = await kitchen.page.evaluate(() => {
    const sent = performance.getEntriesByName('doorbell:command-sent')[0]!.startTime
    return performance.getEntriesByName('doorbell:reply-received').filter((m) => m.startTime >= sent).map((m) => (m as PerformanceMark).detail.type as string)
  })
  assert.deepEqual(kitchenReplies.slice(0, 2), ['lock', 'ack'], `the kitchen's channel said: ${kitchenReplies.join(', ')}`)
  assert.equal((await doorSeen(kitchen.page)).at(-1), 'unlocked')
  assert.deepEqual(await doorSeen(hall.page), ['locked', 'unlocking', 'unlocked'])
  assert.equal(lan.lock.open, true)
  // It relocks by itself (relockSeconds: 2) and both pages say so.
  for (const page of pages) await waitForText(page, 'door-status', /^Locked$/, 8000)
  assert.equal(lan.lock.open, false)
  assert.deepEqual(lan.printed.filter((l) => l.startsWith('DOOR')).slice(-2), ['DOOR UNLOCKED', 'DOOR LOCKED'])

  // Close the call on both screens; the device goes back to idle.
  await kitchen.page.getByTestId('hang-up').click()
  await hall.page.getByTestId('hang-up').click()
  for (const page of pages) await waitForText(page, 'ended', /Call ended/)
  await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'))

  // A second ring nobody answers ends as missed on both pages.
  lan.button.press()
  for (const page of pages) await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  for (const page of pages) {
    await page.waitForSelector('[data-testid=ended][data-reason=missed]', { timeout: 10_000 })
    assert.match(await text(page, 'ended'), /Missed ring/)
  }
  await hall.page.screenshot({ path: `${SCREENSHOTS}/missed.png` })
  assert.equal(lan.lock.open, false)
})
