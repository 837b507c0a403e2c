/**
 * Issue 19, the doorbell's own history on the direct path, in headless Chromium: the page loads with
 * the hub up (it learns the doorbell's direct address), the hub process is killed, a ring reaches
 * the page from the doorbell and ends unanswered; the history view, which cannot reach the hub,
 * shows the rings the doorbell keeps, read from it over the direct path, marked "From the doorbell
 * (hub unreachable)", with the visitor's picture (the test pattern). Then the resident dismisses
 * the next ring from its banner: the page cannot tell the hub, so it tells the doorbell over the
 * direct path, and the doorbell's history in the view says who dismissed it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock } from '@doorbell/device'
import { eventually } from '../src/harness'
import { openResident, waitForPath } from '../src/browser'
import { kill, startHomeHub } from '../src/hubProcess'
import { assertTestPatternBars } from '../src/jpeg'
import { imageBytes } from '../src/ringPicture'
import { axeViolations, describeViolations } from '../src/axe'

test('hub down: the history view shows the rings the doorbell keeps, read from it directly, with their pictures; Dismiss in the ring banner is noted by the doorbell and shown there', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-direct-history-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir, { mesh: { tcpPort: 0, directPort: 0 } })
  const hub = home.hub
  t.after(async () => { await kill(hub, 'SIGTERM') })
  const deviceInvite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const residentInvite = await home.asOwner.invite({ kind: 'viewer', role: 'resident' })
  const lines: string[] = []
  const button = new SimulatedButton()
  const device = await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: deviceInvite.url },
    dataDir: join(dir, 'device'),
    mesh: { tcpPort: 0, directPort: 0 },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    ringTimeoutSeconds: 3
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  t.after(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))

  const resident = await openResident(`${home.base}/`, 'Kitchen tablet', residentInvite.code)
  t.after(() => resident.close())
  t.after(() => { if (process.exitCode) console.log([...resident.console, ...lines.slice(-30)].join('\n')) })
  const page = resident.page
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await waitForPath(page, 'lan')
  await page.waitForFunction(() => (localStorage.getItem('doorbell.direct') ?? '').includes('front-door'), undefined, { timeout: 10_000 })
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, 'doorbell:direct-ready', { timeout: 15_000 })
  // With the hub up, the history is the hub's, and nothing is read from the doorbell.
  await page.getByTestId('history').waitFor({ timeout: 10_000 })
  assert.equal(await page.getByTestId('history-from-doorbell').count(), 0)

  await kill(hub, 'SIGKILL')
  await waitForPath(page, 'direct')
  await eventually('the device to see the direct viewer', () => device.mesh!.server.viewers === 1, 15_000)

  // A ring nobody answers, while the hub is away: kept on the doorbell with its pictures.
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId)
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await eventually('the ring over', () => device.state().lastRing?.ringId === ringId && device.state().lastRing?.outcome === 'missed', 15_000)

  // The history view reads the doorbell's rings directly (again as the ring ends), marked as the doorbell's.
  const kept = page.locator(`[data-testid=history-kept-ring][data-ring="${ringId}"][data-outcome=missed]`)
  await kept.waitFor({ timeout: 20_000 })
  assert.match(await page.getByTestId('history-from-doorbell').innerText(), /From the doorbell \(hub unreachable\)/)
  assert.match(await kept.innerText(), /missed ring/)
  assertTestPatternBars(await imageBytes(page, `[data-testid=history-kept-ring][data-ring="${ringId}"] [data-testid=history-kept-thumb]`))
  assert.ok(lines.some((l) => l.includes('a screen read the kept rings directly') && l.includes('viewer=Kitchen tablet')))
  const violations = await axeViolations(page, '[data-testid=history-from-doorbell]')
  assert.deepEqual(violations, [], describeViolations(violations))

  // The next ring, dismissed from the banner while it rings: the hub is gone, so the page tells the
  // doorbell directly, which notes who; the doorbell's history in the view says so.
  button.press()
  const second = await eventually('the second ring', () => { const id = device.state().call.ringId; return id !== undefined && id !== ringId ? id : undefined })
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await page.getByTestId('dismiss').click()
  await eventually('the doorbell notes the dismissal', () => lines.some((l) => l.includes('a screen dismissed a ring directly') && l.includes('viewer=Kitchen tablet') && l.includes(second)), 10_000)
  const dismissed = page.locator(`[data-testid=history-kept-ring][data-ring="${second}"]`)
  await page.waitForFunction((sel) => /dismissed by Kitchen tablet/.test(document.querySelector(sel)?.textContent ?? ''), `[data-testid=history-kept-ring][data-ring="${second}"]`, { timeout: 20_000 })
  assert.match(await dismissed.innerText(), /dismissed by Kitchen tablet/)
  assert.doesNotMatch(await kept.innerText(), /dismissed/, 'the first ring, which nobody dismissed, is still a missed ring')
})
