/**
 * The call view on a phone at the door, in headless Chromium: the visitor's video covers the
 * screen (portrait 390×844 and landscape 844×390) with every call control inside it and at least
 * 44 px; a level meter (role meter) follows the fake microphone's tone while talking and is empty
 * from a silent microphone; Space is hold-to-talk; Escape leaves the call for the home view. axe-core
 * finds no WCAG 2 A/AA violation on the pairing screen, the home page and the call view mid-call,
 * in the light and the dark colour scheme.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { eventually, startLan } from '../src/harness'
import { openResident, videoIsPlaying, waitForText } from '../src/browser'
import { inviteCode } from '../src/trust'
import { toneWav } from '../src/audio'
import { axeViolations, describeViolations } from '../src/axe'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
const CONTROLS = ['hang-up', 'talk-toggle', 'hold-to-talk', 'speaker-mute', 'open-door']

/** No violation in the light scheme nor in the dark one (UX.md: light and dark). */
async function assertAccessible (page: Page, what: string): Promise<void> {
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme })
    const found = await axeViolations(page)
    assert.equal(found.length, 0, `${what} (${colorScheme}): axe-core found WCAG 2 A/AA violations:\n${describeViolations(found)}`)
  }
  await page.emulateMedia({ colorScheme: 'light' })
}

/** The video covers the window, and every control lies inside it, at least 44 px each way. */
async function assertFillsScreen (page: Page, width: number, height: number): Promise<void> {
  await page.setViewportSize({ width, height })
  await page.waitForFunction(([w, h]) => window.innerWidth === w && window.innerHeight === h, [width, height] as const)
  const video = (await page.getByTestId('video').boundingBox())!
  assert.ok(video.x <= 0 && video.y <= 0 && video.x + video.width >= width && video.y + video.height >= height,
    `at ${width}×${height} the video covers the screen (it is ${JSON.stringify(video)})`)
  for (const id of CONTROLS) {
    const box = (await page.getByTestId(id).boundingBox())!
    assert.ok(box, `${id} is shown`)
    assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= width && box.y + box.height <= height, `at ${width}×${height} ${id} is on screen (${JSON.stringify(box)})`)
    assert.ok(box.width >= 44 && box.height >= 44, `at ${width}×${height} ${id} is at least 44 px (${box.width}×${box.height})`)
  }
}

const meterLevel = async (page: Page): Promise<number> => Number(await page.getByRole('meter', { name: 'Your microphone level' }).getAttribute('aria-valuenow'))

/** The meter's readings over `ms`, every 150 ms. */
async function meterReadings (page: Page, ms: number): Promise<number[]> {
  const seen: number[] = []
  for (const end = Date.now() + ms; Date.now() < end;) {
    seen.push(await meterLevel(page))
    await page.waitForTimeout(150)
  }
  return seen
}

test('the call view fills a phone\'s screen in portrait and landscape, its level meter follows the microphone, Space talks, Escape leaves; no axe violation', { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-call-view-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const voice = join(dir, 'voice.wav')
  toneWav(voice, 440, 60)
  const silence = join(dir, 'silence.wav')
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', 'anullsrc=r=48000:cl=mono:d=30', '-c:a', 'pcm_s16le', silence])
  const lan = await startLan({ audio: { source: { kind: 'test-tone', frequencyHz: 660 }, speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  t.after(() => lan.stop())

  // The pairing screen, before anyone is paired.
  const stranger = await openResident(lan.hub.url, 'Stranger')
  t.after(() => stranger.close())
  await stranger.page.getByTestId('pair-submit').waitFor({ timeout: 10_000 })
  await assertAccessible(stranger.page, 'the pairing screen')

  const phone = await openResident(lan.hub.url, 'Door phone', await inviteCode(lan.hub, 'owner'), { microphone: voice })
  t.after(() => phone.close())
  const quiet = await openResident(lan.hub.url, 'Quiet tablet', await inviteCode(lan.hub, { kind: 'viewer', role: 'resident' }), { microphone: silence })
  t.after(() => quiet.close())
  t.after(() => { if (process.exitCode) console.log([...phone.console, ...quiet.console, ...lan.lines.slice(-40)].join('\n')) })
  const page = phone.page
  await page.setViewportSize({ width: 390, height: 844 })
  for (const p of [page, quiet.page]) {
    await p.getByTestId('doorbell-front-door').waitFor({ timeout: 10_000 })
    await p.waitForSelector('[data-testid=link][data-up=true]')
  }
  await assertAccessible(page, 'the home page')

  lan.button.press()
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await page.getByTestId('answer').click()
  await page.getByRole('dialog', { name: 'Call with Front door' }).waitFor()
  await videoIsPlaying(page)
  await page.waitForFunction(() => !(document.querySelector('[data-testid=open-door]') as HTMLButtonElement).disabled)

  await assertFillsScreen(page, 390, 844)
  await assertFillsScreen(page, 844, 390)
  await page.setViewportSize({ width: 390, height: 844 })
  await assertAccessible(page, 'the call view mid-call')

  // No meter before talking; talking: it moves with the tone.
  assert.equal(await page.getByRole('meter').count(), 0, 'no level meter while not talking')
  await page.getByTestId('talk-toggle').click()
  await waitForText(page, 'talk-status', /Front door hears you/)
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=talk-level]')?.getAttribute('aria-valuenow')) > 20, undefined, { timeout: 10_000 })
  const loud = await meterReadings(page, 2000)
  t.diagnostic(`meter while the 440 Hz tone plays: ${loud.join(' ')}`)
  assert.ok(loud.every((v) => v > 20), `the meter shows the tone all along (${loud.join(' ')})`)
  assert.ok(new Set(loud).size > 1 || loud[0]! > 20, 'the meter is read again and again')
  await assertAccessible(page, 'the call view while talking')
  // The README's call: a phone at the door, talking, its level meter lit.
  await page.screenshot({ path: `${SCREENSHOTS}/call-talking.png` })
  // Talk off: the meter goes.
  await page.getByTestId('talk-toggle').click()
  await waitForText(page, 'talk-toggle', /^Talk$/)
  assert.equal(await page.getByRole('meter').count(), 0, 'the meter goes when talk stops')

  // Space, with focus in the call view (not on a button), is hold-to-talk.
  await page.getByTestId('call-view').focus()
  const before = lan.device.audio.speaker.packets
  await page.keyboard.down(' ')
  await waitForText(page, 'talk-status', /Front door hears you/)
  await eventually('the held voice at the speaker', () => lan.device.audio.speaker.packets >= before + 25, 10_000)
  assert.ok(await meterLevel(page) >= 0)
  await page.keyboard.up(' ')
  await page.waitForFunction(() => document.querySelector('[data-testid=talk-toggle]')?.getAttribute('aria-pressed') === 'false')
  assert.equal(await page.getByRole('meter').count(), 0, 'letting Space go stops talk')

  // A silent microphone: the meter is there and stays at the bottom.
  await quiet.page.getByTestId('answer').click()
  await videoIsPlaying(quiet.page)
  await quiet.page.getByTestId('talk-toggle').click()
  await waitForText(quiet.page, 'talk-status', /Front door hears you/)
  const still = await meterReadings(quiet.page, 2000)
  t.diagnostic(`meter from a silent microphone: ${still.join(' ')}`)
  assert.ok(still.every((v) => v <= 5), `a silent microphone leaves the meter still (${still.join(' ')})`)

  // Escape leaves the call: the home view is back.
  await page.keyboard.press('Escape')
  await page.getByTestId('ended').waitFor({ timeout: 10_000 })
  assert.equal(await page.getByTestId('call-view').count(), 0)
  assert.equal(await page.evaluate(() => document.documentElement.classList.contains('in-call')), false, 'the page scrolls again')
  await quiet.page.getByTestId('hang-up').click()
  await quiet.page.getByTestId('ended').waitFor({ timeout: 10_000 })
})
