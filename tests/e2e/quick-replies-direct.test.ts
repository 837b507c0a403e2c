/**
 * Quick replies on the direct path (issue 17), in headless Chromium: with the hub down, the ring
 * banner's quick reply goes to the doorbell itself (libp2p, `/doorbell/command/1.0.0`), signed as
 * over the hub and checked by the same guard. The owner's reply plays on the doorbell's speaker
 * (a WAV file: speech in it) without answering and is audited in the doorbell's outbox with the
 * path `direct`; a guest (no talk right) is refused, says why in the banner, and is audited too.
 * The owner changed the list after the page last read it from the hub: the banner offers the
 * doorbell's own list, read from it on the direct path (`/doorbell/replies/1.0.0`).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { DoorAttempt } from '@doorbell/core'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock } from '@doorbell/device'
import { eventually } from '../src/harness'
import { openResident, waitForPath, waitForText, type Resident } from '../src/browser'
import { kill, startHomeHub } from '../src/hubProcess'
import { pairOwnerBrowser } from '../src/inspector'
import { readWav, speechOf } from '../src/audio'

const REPLY = 'Leave it at the door, please'
/** The list the owner saves after the screens read the first one from the hub. */
const NEW_LIST = [REPLY, 'We are coming down', 'We will be right there']

/** The attempts in the doorbell's audit outbox (the hub is down: none has left it). */
const outbox = (file: string): DoorAttempt[] => {
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch {}
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => DoorAttempt.parse(JSON.parse(l)))
}

const readyForDirect = async (page: Page): Promise<void> => {
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await waitForPath(page, 'lan')
  await page.waitForFunction(() => (localStorage.getItem('doorbell.direct') ?? '').includes('front-door'), undefined, { timeout: 15_000 })
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, 'doorbell:direct-ready', { timeout: 20_000 })
}

test('hub down: a quick reply from the ring banner goes straight to the doorbell, plays on its speaker and is audited; a guest is refused and told why', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-replies-direct-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const said = join(dir, 'speaker.wav')
  let owner: Resident | null = null
  const home = await startHomeHub(dir, { mesh: { tcpPort: 0, directPort: 0 } }, {
    pairOwner: async (base, code) => {
      const paired = await pairOwnerBrowser(base, code, 'Owner phone')
      owner = paired.owner
      return paired.token
    }
  })
  const hub = home.hub
  t.after(async () => { await kill(hub, 'SIGTERM') })
  t.after(() => owner?.close())
  const deviceInvite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const guestInvite = await home.asOwner.invite({ kind: 'viewer', role: 'guest' })
  const lines: string[] = []
  const button = new SimulatedButton()
  const deviceDir = join(dir, 'device')
  const device = await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: deviceInvite.url },
    dataDir: deviceDir,
    mesh: { tcpPort: 0, directPort: 0 },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    audio: { speaker: { kind: 'wav', path: said } },
    ringTimeoutSeconds: 60
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  let deviceStopped = false
  t.after(async () => { if (!deviceStopped) await device.stop() })
  await device.hubConnected(AbortSignal.timeout(15_000))
  const ownerPage = (owner as Resident | null)?.page
  assert.ok(ownerPage, 'the owner paired in a browser')
  let passed = false
  t.after(() => { if (!passed) console.log([...(owner?.console ?? []), ...lines.slice(-60), ...hub.lines.slice(-20)].join('\n')) })

  // The owner's list, saved in Home settings while the hub is up, reaches the doorbell and is rendered.
  await ownerPage.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  // The saved list (none yet) is held back until the owner has typed: it arrives late, as on a
  // slow hub, and what was typed stays (it once replaced the box, and an empty list was saved).
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  await ownerPage.route('**/api/replies', async (route) => { if (route.request().method() === 'GET') await held; await route.continue() })
  const loaded = ownerPage.waitForResponse((r) => r.url().endsWith('/api/replies') && r.request().method() === 'GET', { timeout: 20_000 })
  await ownerPage.getByTestId('owner-panel-toggle').click()
  await ownerPage.getByTestId('replies-text').fill(`${REPLY}\nWe will be right there`)
  release()
  await loaded
  await ownerPage.unroute('**/api/replies')
  await ownerPage.waitForTimeout(100)
  assert.equal(await ownerPage.getByTestId('replies-text').inputValue(), `${REPLY}\nWe will be right there`, 'what the owner typed is kept when the saved list arrives')
  await ownerPage.getByTestId('replies-save').click()
  await waitForText(ownerPage, 'replies-note', /Saved 2 quick replies/)
  await eventually('the doorbell to render both replies', () => lines.some((l) => /\[device\/replies\] quick replies ready count=2/.test(l)), 60_000)
  // Screens read the list as they start and on each ring the hub tells them of: the owner's is
  // loaded again, and the guest's opened, after the save (with the hub down, neither can read it).
  const hubList = ownerPage.waitForResponse((r) => r.url().endsWith('/api/replies') && r.request().method() === 'GET', { timeout: 20_000 })
  await ownerPage.reload()
  assert.deepEqual(((await (await hubList).json()) as { replies: string[] }).replies, [REPLY, 'We will be right there'], 'the owner\'s page read the first list from the hub')
  const guest = await openResident(`${home.base}/`, 'Guest phone', guestInvite.code)
  t.after(() => guest.close())
  t.after(() => { if (!passed) console.log(guest.console.join('\n')) })
  // The owner changes the list after both screens read it from the hub: with the hub down, the
  // owner's banner offers the doorbell's list (the new one), read from it (core/src/repliesRead.ts).
  await ownerPage.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await ownerPage.getByTestId('owner-panel-toggle').click()
  // The panel loads the saved list into the box: wait for it, or it would overwrite what is typed.
  await eventually('the saved list in the box', async () => (await ownerPage.getByTestId('replies-text').inputValue()).includes('We will be right there'), 20_000)
  await ownerPage.getByTestId('replies-text').fill(NEW_LIST.join('\n'))
  await ownerPage.getByTestId('replies-save').click()
  await waitForText(ownerPage, 'replies-note', /Saved 3 quick replies/)
  await eventually('the doorbell to render the new list', () => lines.some((l) => /\[device\/replies\] quick replies ready count=3/.test(l)), 60_000)
  await readyForDirect(ownerPage)
  await readyForDirect(guest.page)

  // The hub dies: both screens go direct to the doorbell.
  await kill(hub, 'SIGKILL')
  await waitForPath(ownerPage, 'direct', 30_000)
  await waitForPath(guest.page, 'direct', 30_000)
  await eventually('the doorbell to see both screens directly', () => device.mesh!.server.viewers === 2, 30_000)

  // A ring: both banners offer the replies, over the direct path.
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId)
  for (const page of [guest.page, ownerPage]) {
    await page.getByTestId('ring-banner').waitFor({ timeout: 15_000 })
    await page.getByTestId('quick-reply-banner-0').waitFor({ timeout: 15_000 })
  }
  assert.equal(await ownerPage.getByTestId('ring-path').getAttribute('data-path'), 'direct')
  // The owner's banner: the doorbell's list. The guest may not play one, so the doorbell refuses it
  // the list: its banner keeps the hub's last one (and a press says why nothing plays).
  await ownerPage.getByTestId('quick-reply-banner-2').waitFor({ timeout: 20_000 })
  assert.deepEqual((await ownerPage.getByTestId('quick-replies-banner').locator('button').allTextContents()).map((s) => s.trim()), NEW_LIST)
  assert.deepEqual((await guest.page.getByTestId('quick-replies-banner').locator('button').allTextContents()).map((s) => s.trim()), [REPLY, 'We will be right there'])
  await eventually('the guest\'s read refused by the doorbell', () => lines.some((l) => l.includes('refused a direct read of the quick replies') && l.includes('Guest phone may not talk')), 20_000)
  const auditFile = join(deviceDir, 'audit-outbox.jsonl')

  // The guest has no talk right: refused by the doorbell's guard, and the banner says why.
  const before = device.audio.speaker.packets
  await guest.page.getByTestId('quick-reply-banner-0').click()
  await waitForText(guest.page, 'quick-reply-status-banner', /^Not played: Guest phone may not talk on this doorbell/, 20_000)
  const denied = await eventually('the guest\'s attempt in the outbox', () => outbox(auditFile).find((a) => a.kind === 'reply' && a.outcome === 'denied'))
  assert.equal(denied.reason, 'no-talk-right')
  assert.equal(denied.viewerName, 'Guest phone')
  assert.equal(denied.path, 'direct')
  assert.equal(device.audio.speaker.packets, before, 'nothing was played for the guest')

  // The owner's reply plays, without answering.
  await ownerPage.getByTestId('quick-reply-banner-0').click()
  await waitForText(ownerPage, 'quick-reply-status-banner', /^Playing “Leave it at the door, please”/, 20_000)
  await eventually('the reply at the speaker', () => device.audio.speaker.packets >= before + 50, 20_000)
  assert.equal(device.state().call.ringId, ringId, 'still the same ring')
  assert.equal(device.state().participants.length, 0, 'nobody answered: no call was made')
  const allowed = await eventually('the owner\'s reply in the outbox', () => outbox(auditFile).find((a) => a.kind === 'reply' && a.outcome === 'allowed'))
  assert.equal(allowed.viewerName, 'Owner phone')
  assert.equal(allowed.role, 'owner')
  assert.equal(allowed.path, 'direct')
  assert.equal(allowed.message, `Owner phone played "${REPLY}"`)
  assert.ok(lines.some((l) => l.includes('quick reply played') && l.includes('by=Owner phone')), 'the doorbell logged the reply')

  // The speaker's WAV holds the reply as speech.
  // The reply holds the talk lease while it plays: it has played out when the lease ends.
  await eventually('the reply to finish', () => lines.some((l) => l.includes('talk lease ended')), 30_000)
  deviceStopped = true
  await device.stop()
  const { samples, rate } = readWav(said)
  const speech = speechOf(samples, rate)
  t.diagnostic(`speaker: ${(samples.length / rate).toFixed(2)} s, RMS ${speech.rms.toFixed(3)}, voiced ${speech.voicedMs} ms, voice band ${(speech.voiceBand * 100).toFixed(1)} %`)
  assert.ok(speech.rms > 0.02 && speech.voicedMs >= 600, 'the reply is not silence')
  assert.ok(speech.voiceBand > 0.8, 'the reply is a voice, not a tone')
  passed = true
})
