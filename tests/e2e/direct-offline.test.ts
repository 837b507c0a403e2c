/**
 * Fail-secure on the direct path (issue 18): with the hub down, a resident's screen is connected to
 * the doorbell itself (libp2p webrtc-direct). The door is opened there, and the doorbell is
 * SIGKILLed (by its PID) while it is open. A killed doorbell closes nothing, and Chromium notices a
 * dead WebRTC peer only after ~30 s, so the doorbell repeats its presence every 2 s on the events
 * stream and the page counts three missed as gone (core/src/direct.ts). The screen must then say
 * "Front door is offline · lock state unknown", never "Door open · locks in 0 s"; when the doorbell
 * is started again, the page dials it again and shows its true state, "Locked".
 * The doorbell runs as its own process (as systemd runs it) with the simulated relay kept in a file.
 * Prints how long each step took.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DIRECT_SILENCE_MS } from '@doorbell/core'
import { readRelayFile } from '@doorbell/device'
import { eventually } from '../src/harness'
import { doorLines, recordDoorLines } from '../src/doorLines'
import { holdToOpen, openResident, videoIsPlaying, waitForPath, waitForText } from '../src/browser'
import { freePort, kill, startHomeHub } from '../src/hubProcess'
import { killDoorbell, startDoorbellProcess, type DoorbellProcess } from '../src/doorbellProcess'

const OFFLINE = /^Front door is offline · lock state unknown$/
/** Three missed heartbeats, then a margin for a loaded machine. */
const OFFLINE_BOUND_MS = DIRECT_SILENCE_MS + 4000

test('direct path: a doorbell SIGKILLed with the door open shows offline, lock state unknown, within the heartbeat bound; restarted, it shows Locked', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-direct-offline-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir, { mesh: { tcpPort: 0, directPort: 0 } })
  const { base, asOwner } = home
  const hub = home.hub
  t.after(async () => { await kill(hub, 'SIGTERM') })
  const deviceInvite = await asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const residentInvite = await asOwner.invite({ kind: 'viewer', role: 'resident' })

  const relayFile = join(dir, 'relay')
  const config = join(dir, 'doorbell.json')
  // Fixed ports: the restarted doorbell must be where the page's address book says (as in a home).
  writeFileSync(config, JSON.stringify({
    hubUrl: home.mqttUrl,
    pairing: { url: deviceInvite.url },
    dataDir: join(dir, 'device'),
    gpio: { driver: 'simulated', relayFile },
    mesh: { host: '127.0.0.1', tcpPort: await freePort(), directPort: await freePort() },
    // Long enough that the door is still open when the doorbell is killed.
    relockSeconds: 120,
    iceAdditionalHostAddresses: ['127.0.0.1']
  }))
  let doorbell: DoorbellProcess = startDoorbellProcess(config)
  t.after(async () => { await killDoorbell(doorbell, 'SIGKILL') })
  await eventually('the doorbell connected to the hub', () => hub.lines.some((l) => l.includes('client connected client=device-front-door')), 30_000)

  const resident = await openResident(`${base}/`, 'Kitchen tablet', residentInvite.code)
  t.after(() => resident.close())
  let passed = false
  t.after(() => { if (!passed) console.log([...resident.console, ...doorbell.lines.slice(-40), ...hub.lines.slice(-20)].join('\n')) })
  const page = resident.page
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await waitForText(page, 'door-status', /^Locked$/)
  // The doorbell's direct addresses are learned, and the direct path's code fetched, while the hub is up.
  await page.waitForFunction(() => (localStorage.getItem('doorbell.direct') ?? '').includes('front-door'), undefined, { timeout: 10_000 })
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, 'doorbell:direct-ready', { timeout: 15_000 })

  // The hub dies: the page goes direct to the doorbell.
  await kill(hub, 'SIGKILL')
  await waitForPath(page, 'direct', 30_000)
  await waitForText(page, 'door-status', /^Locked$/)

  // The door is opened over the direct path; the call is closed, the card shows the open door.
  await page.bringToFront()
  await page.getByTestId('live-view').click()
  await videoIsPlaying(page)
  await holdToOpen(page)
  await waitForText(page, 'door-status', /^Door open · locks in \d+ s$/)
  await eventually('the relay to be open', () => readRelayFile(relayFile) === 'open')
  await page.getByTestId('hang-up').click()
  await page.getByTestId('seen').click()
  await waitForText(page, 'door-status', /^Door open · locks in \d+ s$/)
  await recordDoorLines(page)

  // SIGKILL, by its PID: nothing closes the page's connection; its silence must.
  const killedAt = Date.now()
  await killDoorbell(doorbell, 'SIGKILL')
  assert.equal(readRelayFile(relayFile), 'open', 'the relay stays where it was when the process died')
  await waitForText(page, 'door-status', OFFLINE, OFFLINE_BOUND_MS)
  const noticed = Date.now() - killedAt
  assert.equal(await page.getByTestId('door-status').getAttribute('data-door'), 'offline')
  assert.equal(await page.getByTestId('offline').count(), 1, 'the Offline badge')
  assert.ok(!(await doorLines(page)).some((l) => /locks in 0 s/.test(l)), `never "locks in 0 s": ${(await doorLines(page)).join(' | ')}`)
  // It stays so while the doorbell is down (the page keeps trying the hub and the doorbell).
  await page.waitForTimeout(3000)
  assert.match(await page.getByTestId('door-status').textContent() ?? '', OFFLINE)

  // Started again (the hub still down): locked first, and the page, dialling again, shows it.
  doorbell = startDoorbellProcess(config)
  await eventually('the relay locked', () => readRelayFile(relayFile) === 'locked', 10_000)
  await waitForText(page, 'door-status', /^Locked$/, 60_000)
  const shown = Date.now() - doorbell.startedAt
  assert.equal(await page.getByTestId('offline').count(), 0)
  assert.equal(await page.getByTestId('link').getAttribute('data-up'), 'true')
  const lines = await doorLines(page)
  assert.ok(!lines.slice(lines.findIndex((l) => l.startsWith('offline'))).some((l) => /Door open|unlocked/.test(l)), `after the kill, never shown open again: ${lines.join(' | ')}`)

  passed = true
  t.diagnostic(`direct path: SIGKILL -> screen shows offline/unknown ${noticed} ms (silence bound ${DIRECT_SILENCE_MS} ms); restart -> Locked shown ${shown} ms after the process started`)
})
