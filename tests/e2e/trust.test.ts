import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { mkdir } from 'node:fs/promises'
import type { Page } from 'playwright-core'
import { eventually, startLan } from '../src/harness'
import { holdToOpen, openResident, videoIsPlaying } from '../src/browser'
import { inviteCode } from '../src/trust'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))

const text = async (page: Page, testId: string): Promise<string> => (await page.getByTestId(testId).first().textContent()) ?? ''

/** The owner creates a one-time code in Home settings, as a person would, and reads it off the screen. */
async function invite (owner: Page, role: 'resident' | 'guest', door: boolean): Promise<string> {
  await owner.getByTestId('invite-role').selectOption(role)
  const box = owner.getByTestId('invite-door')
  if ((await box.isChecked()) !== door) await box.click()
  await owner.getByTestId('invite-create').click()
  await owner.getByTestId('invite-code').waitFor()
  await owner.waitForFunction((previous) => document.querySelector('[data-testid=invite-code]')?.textContent?.trim() !== previous, '')
  const code = (await text(owner, 'invite-code')).trim()
  assert.match(code, /^[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}$/, 'a one-time code as printed')
  assert.ok((await owner.getByTestId('invite-qr').innerHTML()).includes('<svg'), 'the code is also shown as a QR code')
  return code
}

test('over HTTPS: the owner pairs a resident and a guest; the resident opens the door, the guest cannot; the audit log shows it all', { timeout: 180_000 }, async (t) => {
  // HTTPS with the hub's own CA, which each browser trusts like a person who installed it (no certificate errors ignored).
  const lan = await startLan({ relockSeconds: 2 }, { tls: 'auto' })
  t.after(() => lan.stop())
  assert.match(lan.hub.url, /^https:\/\//)
  assert.match(lan.hub.mqttUrl, /^mqtts:\/\//, 'the doorbell reaches the broker over TLS too')
  const caCert = lan.hub.tls!.caCert

  // The owner pairs with the setup code the hub printed on its first start.
  const owner = await openResident(lan.hub.url, 'Owner laptop', await inviteCode(lan.hub, 'owner'), { caCert })
  t.after(() => owner.close())
  assert.equal(await owner.page.evaluate('window.isSecureContext'), true, 'a secure context (WebCrypto, camera)')
  assert.match(await text(owner.page, 'viewer-role'), /owner/)
  await owner.page.getByTestId('owner-panel-toggle').click()

  // The owner invites a resident and a guest without the door right; each pairs their own browser.
  const residentCode = await invite(owner.page, 'resident', true)
  const resident = await openResident(lan.hub.url, 'Hall phone', residentCode, { caCert })
  t.after(() => resident.close())
  const guestCode = await invite(owner.page, 'guest', false)
  const guest = await openResident(lan.hub.url, 'Guest phone', guestCode, { caCert })
  t.after(() => guest.close())
  assert.match(await text(resident.page, 'viewer-role'), /resident/)
  assert.match(await text(guest.page, 'viewer-role'), /guest/)
  t.after(() => { if (process.exitCode) console.log([...owner.console, ...resident.console, ...guest.console].join('\n')) })

  // Without the home's CA nothing trusts the hub: its certificate is from no public CA.
  await assert.rejects(fetch(`${lan.hub.url}api/info`), 'a client without the CA refuses the hub')

  // Ring; the resident answers, sees the visitor and opens the door.
  for (const p of [resident.page, guest.page]) await p.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  lan.button.press()
  await resident.page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await guest.page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await resident.page.getByTestId('answer').click()
  await videoIsPlaying(resident.page)
  await holdToOpen(resident.page)
  await eventually('the relay to open for the resident', () => lan.printed.includes('DOOR UNLOCKED'))
  await resident.page.waitForSelector('[data-testid=door-status][data-door=unlocked]')
  await resident.page.waitForSelector('[data-testid=door-status][data-door=locked]', { timeout: 8000 })

  // The guest joins the call and sees the visitor, but the doorbell refuses to open for them, and the page says why.
  const opened = lan.printed.filter((l) => l === 'DOOR UNLOCKED').length
  await guest.page.getByTestId('answer').click()
  await videoIsPlaying(guest.page)
  await holdToOpen(guest.page)
  await guest.page.getByTestId('command-error').waitFor({ timeout: 5000 })
  assert.match(await text(guest.page, 'command-error'), /guests cannot open the door/)
  await mkdir(SCREENSHOTS, { recursive: true })
  await guest.page.screenshot({ path: `${SCREENSHOTS}/guest-refused.png` })
  assert.equal(lan.printed.filter((l) => l === 'DOOR UNLOCKED').length, opened, 'the lock did not move for the guest')
  assert.equal(lan.lock.open, false)

  // The owner's audit log shows the resident's pairing, the door opened by the resident and the guest refused, with the reason.
  await owner.page.getByTestId('audit-refresh').click()
  const rows = async (): Promise<Array<{ kind: string | null, outcome: string | null, reason: string | null, text: string }>> =>
    await owner.page.getByTestId('audit-row').evaluateAll((els) => els.map((e) => ({
      kind: e.getAttribute('data-kind'), outcome: e.getAttribute('data-outcome'), reason: e.getAttribute('data-reason'), text: e.textContent ?? ''
    })))
  const log = await eventually('the three attempts in the owner\'s audit log', async () => {
    await owner.page.getByTestId('audit-refresh').click()
    const r = await rows()
    const paired = r.find((x) => x.kind === 'pairing' && x.text.includes('Hall phone'))
    const allowed = r.find((x) => x.kind === 'open-door' && x.outcome === 'allowed' && x.text.includes('Hall phone'))
    const denied = r.find((x) => x.kind === 'open-door' && x.outcome === 'denied' && x.text.includes('Guest phone'))
    return paired && allowed && denied ? { paired, allowed, denied } : null
  }, 15_000)
  assert.equal(log.denied.reason, 'no-door-right')
  assert.match(log.denied.text, /Denied/)
  await owner.page.getByTestId('owner-panel').scrollIntoViewIfNeeded()
  await owner.page.screenshot({ path: `${SCREENSHOTS}/audit-log.png`, fullPage: true })

  // The same records, exported as JSON from the hub.
  const exported = lan.hub.trust.audit.all()
  assert.ok(exported.some((r) => r.kind === 'open-door' && r.outcome === 'denied' && r.reason === 'no-door-right' && r.actor === 'Guest phone'))
  assert.ok(exported.some((r) => r.kind === 'open-door' && r.outcome === 'allowed' && r.actor === 'Hall phone'))
})
