/**
 * The owner invites a device from Home settings, in headless Chromium, over HTTPS with the home's
 * own CA. A hub (its own process, no owner yet): the owner's browser pairs with the setup code,
 * opens Home settings, picks "A doorbell or camera" and tries a bad device id, an empty one and a
 * bad zone (each refused on the page, nothing sent, nothing created); then invites `gate-cam` in
 * `CBD-TRAFFIC-01`. The page shows the code, the pair command and the browser camera link; the
 * test pairs the device with the URL from that command, through the device's real pairing (which
 * checks the CA fingerprint in the URL), and the owner's member list shows `gate-cam` in its zone.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger } from '@doorbell/core'
import { pairDevice } from '@doorbell/device'
import { openResident, type Resident } from '../src/browser'
import { eventually } from '../src/harness'
import { startProxiedHub, type ProxiedHub } from '../src/nginx'

const DEVICE = 'gate-cam'
const ZONE = 'CBD-TRAFFIC-01'

test('the owner invites a doorbell in a zone from Home settings; bad ids and zones are refused on the page; the device pairs with the shown command\'s URL and is listed in its zone', { timeout: 120_000 }, async (t) => {
  // One ordered cleanup list, run in one hook.
  const cleanup: Array<() => Promise<void> | void> = []
  let passed = false
  let hub: ProxiedHub | null = null
  let owner: Resident | null = null
  t.after(async () => {
    if (!passed) console.log([...(owner?.console ?? []), ...(hub?.hub.lines.slice(-30) ?? [])].join('\n'))
    for (const step of cleanup.reverse()) {
      try { await step() } catch (err) { console.log(`cleanup: ${(err as Error).message}`) }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-invite-device-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  // A hub reached directly (no proxy in front), serving HTTPS with its own CA; nobody paired yet.
  hub = await startProxiedHub(dir, { tls: 'auto', trustProxy: false })
  const h = hub
  cleanup.push(async () => { await h.stop() })
  const base = `https://127.0.0.1:${h.httpPort}`
  const caCert = readFileSync(join(dir, 'hub', 'tls', 'ca.crt'), 'utf8')

  // The owner pairs this browser with the setup code the hub printed, and opens Home settings.
  owner = await openResident(`${base}/`, 'Owner laptop', h.setupCode, { caCert })
  const o = owner
  cleanup.push(async () => { await o.close() })
  const page = o.page
  assert.match(await page.getByTestId('viewer-role').textContent() ?? '', /owner/)
  let invitesSent = 0
  page.on('request', (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/invites') invitesSent++ })
  await page.getByTestId('owner-panel-toggle').click()
  await page.getByTestId('invite-kind').getByLabel('A doorbell or camera').check()
  const deviceId = page.getByTestId('invite-device-id')
  const zone = page.getByTestId('invite-zone')
  assert.equal(await page.getByLabel('Device id').count(), 1, 'the device id field has a label')
  assert.equal(await page.getByLabel('Zone', { exact: true }).count(), 1, 'the zone field has a label')
  assert.equal(await zone.inputValue(), 'home', 'a device is in the home\'s zone unless told otherwise')

  // Bad input: a clear message on the page, the field marked, nothing sent to the hub.
  const refused = async (id: string, z: string, message: RegExp, field: 'invite-device-id' | 'invite-zone'): Promise<void> => {
    await deviceId.fill(id)
    await zone.fill(z)
    await page.getByTestId('invite-create').click()
    await page.getByTestId('invite-error').waitFor()
    assert.match(await page.getByTestId('invite-error').textContent() ?? '', message)
    assert.equal(await page.getByTestId(field).getAttribute('aria-invalid'), 'true')
    assert.equal(await page.getByTestId('invite-result').count(), 0, 'no code shown')
    assert.equal(invitesSent, 0, 'nothing sent')
  }
  await refused('gate cam!', ZONE, /"gate cam!" is not a device id/, 'invite-device-id')
  await refused('', ZONE, /Give the device's id/, 'invite-device-id')
  await refused(DEVICE, 'CBD TRAFFIC 01', /"CBD TRAFFIC 01" is not a zone id/, 'invite-zone')
  await refused(DEVICE, `${ZONE}, HARBOUR-02`, /exactly one zone/, 'invite-zone')

  // The doorbell's invite, in its zone.
  await deviceId.fill(DEVICE)
  await zone.fill(ZONE)
  assert.equal(await page.getByTestId('invite-error').count(), 0, 'the message goes once the fields change')
  await page.getByTestId('invite-create').click()
  await page.getByTestId('invite-camera-link').waitFor()
  assert.equal(invitesSent, 1)
  const code = (await page.getByTestId('invite-code').textContent() ?? '').trim()
  assert.match(code, /^[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}$/, 'the code, as printed')
  assert.ok((await page.getByTestId('invite-qr').innerHTML()).includes('<svg'), 'and as a QR code')
  assert.match(await page.getByTestId('invite-result').textContent() ?? '', new RegExp(`${DEVICE} in zone ${ZONE}`))
  const url = (await page.getByTestId('invite-url').textContent() ?? '').trim()
  const invite = new URL(url)
  assert.equal(invite.origin, base, 'the invite URL points where the owner reached the hub')
  assert.match(invite.hash, /&ca=[0-9A-F:]{95}$/, 'it names the home CA\'s fingerprint for the device to check')
  const rawCode = code.replace('-', '')

  // The two ready lines: the Node doorbell's pair command, the browser camera's link (same origin).
  const command = (await page.getByTestId('invite-pair-command').textContent() ?? '').trim()
  assert.equal(command, `npm run pair --workspace device -- '${url}'`)
  const cameraLink = page.getByTestId('invite-camera-link')
  assert.equal(await cameraLink.getAttribute('href'), `${base}/camera#code=${rawCode}&device=${DEVICE}`)
  assert.equal((await cameraLink.textContent() ?? '').trim(), `${base}/camera#code=${rawCode}&device=${DEVICE}`)

  // The device pairs with the URL in that command, through its real pairing (CA fingerprint checked, then the code redeemed).
  const fromCommand = /^npm run pair --workspace device -- '([^']+)'$/.exec(command)?.[1]
  assert.equal(fromCommand, url)
  const log: string[] = []
  const paired = await pairDevice({ url: fromCommand, deviceId: DEVICE, deviceName: 'Gate camera', log: memoryLogger(log, 'pairing') })
  assert.equal(paired.homeId, 'home')
  assert.equal(paired.ca?.trim(), caCert.trim(), 'the device kept the home CA it checked')

  // The owner's member list shows the device, its id and its one zone.
  const row = page.locator(`[data-testid^="member-"][data-subject="${DEVICE}"]`)
  await eventually('gate-cam in the owner\'s member list', async () => {
    await page.getByTestId('members-refresh').click()
    return await row.count() === 1
  }, 15_000)
  assert.equal(await row.getAttribute('data-zones'), ZONE)
  assert.match(await row.textContent() ?? '', new RegExp(`Gate camera[\\s\\S]*device · ${DEVICE}[\\s\\S]*zone ${ZONE}`))

  // The refused attempts created nothing: the audit log has this one device invite, and its pairing.
  const audit = async (): Promise<string[]> => await page.locator('[data-testid=audit-row][data-kind=invite]').allTextContents()
  const invites = await eventually('the device invite in the audit log', async () => {
    await page.getByTestId('audit-refresh').click()
    const rows = (await audit()).filter((r) => r.includes('invited device'))
    return rows.length > 0 ? rows : null
  })
  assert.equal(invites.length, 1, invites.join('\n'))
  assert.match(invites[0]!, new RegExp(`invited device ${DEVICE}`))

  // The code worked once: the same URL does not pair a second device.
  await assert.rejects(pairDevice({ url, deviceId: DEVICE, deviceName: 'Gate camera', log: memoryLogger(log, 'pairing') }), /not valid|used|expired/i)
  passed = true
})
