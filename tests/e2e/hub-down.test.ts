/**
 * The door still answers with the hub dead. In headless Chromium: the page is loaded with the hub
 * up; the hub process is killed (by its PID); the page switches to the direct path on its own; a
 * ring reaches it from the doorbell itself, with the visitor's picture; the resident answers, sees the visitor, opens the door
 * and sees it relock; the hub is started again and the page moves back to it; the next ring comes
 * through the hub. The page shows the path each time. Prints how long each step took.
 * Pairing as at home: the owner pairs with the setup code the hub printed, then invites the
 * doorbell and the resident's browser over the hub's API; both keep their pairing across the
 * hub's death (the hub its members in its dataDir).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock } from '@doorbell/device'
import { eventually, removeTestDir } from '../src/harness'
import { firstFrame, holdToOpen, mark, openResident, videoIsPlaying, waitForPath, waitForText } from '../src/browser'
import { kill, startHomeHub, startHubProcess } from '../src/hubProcess'
import { assertTestPatternBars } from '../src/jpeg'
import { ringBannerPicture } from '../src/ringPicture'

test('hub down: the page switches to the direct path, a ring still arrives, the call and the door work; the hub comes back and takes over again', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-hub-down-'))
  t.after(() => { removeTestDir(dir) })
  const home = await startHomeHub(dir, { mesh: { tcpPort: 0, directPort: 0 } })
  const { config, base, asOwner } = home
  let hub = home.hub
  t.after(async () => { await kill(hub, 'SIGTERM') })
  // The owner invites the doorbell and the resident.
  const deviceInvite = await asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const residentInvite = await asOwner.invite({ kind: 'viewer', role: 'resident' })

  const lines: string[] = []
  const printed: string[] = []
  const lock = new SimulatedLock((line) => { printed.push(line) })
  const button = new SimulatedButton()
  const device = await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: deviceInvite.url },
    dataDir: join(dir, 'device'),
    mesh: { tcpPort: 0, directPort: 0 },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    relockSeconds: 2,
    ringTimeoutSeconds: 30
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock } })
  t.after(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))

  const resident = await openResident(`${base}/`, 'Kitchen tablet', residentInvite.code)
  t.after(() => resident.close())
  let passed = false
  // Shown only when the test fails.
  t.after(() => { if (!passed) console.log([...resident.console, ...lines.slice(-40), ...hub.lines.slice(-20)].join('\n')) })
  const page = resident.page

  // With the hub up: the LAN path; the doorbell's direct addresses are learned and the direct
  // path's code is fetched while the hub can still serve it.
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await waitForPath(page, 'lan')
  await page.waitForFunction(() => (localStorage.getItem('doorbell.direct') ?? '').includes('front-door'), undefined, { timeout: 10_000 })
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, 'doorbell:direct-ready', { timeout: 15_000 })

  // The hub dies.
  const killedAt = Date.now()
  await kill(hub, 'SIGKILL')
  await page.waitForSelector('[data-testid=link][data-up=false]', { timeout: 10_000 })
  const noticed = Date.now() - killedAt
  await waitForPath(page, 'direct')
  const switched = Date.now() - killedAt
  const dialMs = (await mark(page, 'doorbell:direct-connected'))! - (await mark(page, 'doorbell:direct-dial'))!
  assert.match(await page.getByTestId('link').textContent() ?? '', /Direct to the doorbell/)
  await eventually('the device to see the direct viewer', () => device.mesh!.server.viewers === 1)

  // A ring reaches the page from the doorbell itself.
  button.press()
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  assert.equal(await page.getByTestId('ring-path').getAttribute('data-path'), 'direct')
  assert.match(await page.getByTestId('ring-path').textContent() ?? '', /via direct/)
  // The visitor's picture came with it, from the doorbell itself (issue 19): its test pattern.
  assertTestPatternBars(await ringBannerPicture(page))

  // Answer: video plays, the call shows the path.
  const shown = firstFrame(page)
  await page.getByTestId('answer').click()
  const video = await videoIsPlaying(page)
  assert.ok(video.width > 0)
  const answerToFrame = (await shown) - (await mark(page, 'doorbell:answer'))!
  assert.equal(await page.getByTestId('path').getAttribute('data-path'), 'direct')
  assert.match(await page.getByTestId('path').textContent() ?? '', /Direct/)

  // Open the door over the call's data channel, exactly as on the LAN; it relocks by itself.
  await holdToOpen(page)
  await eventually('the relay to open', () => printed.includes('DOOR UNLOCKED'))
  await waitForText(page, 'door-status', /Door open/)
  await waitForText(page, 'door-status', /^Locked$/, 8000)
  assert.deepEqual(printed.filter((l) => l.startsWith('DOOR')).slice(-2), ['DOOR UNLOCKED', 'DOOR LOCKED'])
  await page.getByTestId('hang-up').click()
  await waitForText(page, 'ended', /Call ended/)
  await eventually('the device back to idle', () => device.call.getSnapshot().matches('idle'))

  // The hub comes back: the page returns to it and closes its direct connection.
  const restartedAt = Date.now()
  hub = startHubProcess(config)
  await waitForPath(page, 'lan', 30_000)
  const back = Date.now() - restartedAt
  await device.hubConnected(AbortSignal.timeout(15_000))
  await eventually('the direct connection to close', () => device.mesh!.server.viewers === 0)
  // The first ring's late copies from the device's queue (ring, states, record) change nothing.
  await page.waitForTimeout(1000)
  assert.equal(await page.getByTestId('ring-banner').count(), 0, 'no stale ring alert')

  // The next ring comes through the hub: no direct viewer is left to carry it.
  button.press()
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  assert.equal(await page.getByTestId('ring-path').getAttribute('data-path'), 'lan')
  assert.equal(device.mesh!.server.viewers, 0)
  assert.ok(hub.lines.some((l) => l.includes('client connected client=device-front-door')))
  await page.getByTestId('dismiss').click()

  passed = true
  t.diagnostic(`hub killed -> page noticed ${noticed} ms -> direct path shown ${switched} ms (grace period 3000 ms); direct dial ${Math.round(dialMs)} ms; Answer -> first frame on the direct path ${Math.round(answerToFrame)} ms; hub restarted -> LAN path shown ${back} ms`)
})
