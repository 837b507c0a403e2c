import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InviteResponse } from '@doorbell/core'
import { eventually } from '../src/harness'
import { freePort } from '../src/hubProcess'
import { holdToOpen, openResident, videoIsPlaying, waitForText, type Resident } from '../src/browser'
import { startNginx, startProxiedHub, testCertificate, writeNginxConfig } from '../src/nginx'
import { startDeviceProcess, type DeviceProcess } from '../bench/proc'

/**
 * The home as deployment/ runs it: the hub process on loopback (plain HTTP, trustProxy) behind
 * Debian's nginx with the shipped site config (HTTPS with a test CA that Chromium trusts like an
 * installed one, WSS at /mqtt). The owner pairs in Chromium through nginx; the doorbell, its own
 * process as the systemd unit runs it, pairs and connects through nginx too (wss://…/mqtt),
 * trusting the CA the way the unit's environment file tells it to (NODE_EXTRA_CA_CERTS).
 */
test('through nginx: the owner pairs, the doorbell rings over WSS, Answer, video, hold to open → DOOR UNLOCKED; nginx logged both WebSocket upgrades', { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-e2e-nginx-'))
  // One ordered cleanup list, run in reverse in a single t.after.
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => { for (const step of cleanup.reverse()) await step() })
  cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })

  const cert = await testCertificate(dir)
  const home = await startProxiedHub(dir)
  cleanup.push(() => home.stop())
  const httpsPort = await freePort()
  const files = writeNginxConfig(join(dir, 'nginx'), { serverName: 'localhost', httpsPort, httpPort: await freePort(), hubPort: home.httpPort, certPath: cert.certPath, keyPath: cert.keyPath })
  const nginx = await startNginx(files, httpsPort)
  cleanup.push(() => nginx.stop())
  const origin = `https://127.0.0.1:${httpsPort}`

  // The owner pairs in Chromium at nginx's address, with the setup code the hub printed.
  let owner: Resident | null = await openResident(nginx.url, 'Owner laptop', home.setupCode, { caCert: cert.caPem })
  cleanup.push(() => owner?.close())
  const page = owner.page
  t.after(() => { if (process.exitCode) console.log([...(owner?.console ?? []), ...nginx.lines, ...home.hub.lines].join('\n')) })
  assert.equal(page.url().startsWith(origin), true, page.url())
  assert.equal(await page.evaluate(() => window.isSecureContext), true)
  assert.match((await page.getByTestId('viewer-role').textContent()) ?? '', /owner/)

  // The owner's browser asks the hub, through nginx, for the doorbell's invite (its own pairing
  // token, from where the viewer keeps it). The URL the hub writes is nginx's HTTPS origin.
  const invite = InviteResponse.parse(await page.evaluate(async () => {
    const token = await new Promise<string>((resolve, reject) => {
      const open = indexedDB.open('doorbell')
      open.onerror = () => { reject(new Error('no pairing database')) }
      open.onsuccess = () => {
        const get = open.result.transaction('pairing', 'readonly').objectStore('pairing').get('current')
        get.onerror = () => { reject(new Error('no pairing')) }
        get.onsuccess = () => { resolve((get.result as { token: string }).token) }
      }
    })
    const res = await fetch('/api/invites', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify({ kind: 'device', deviceId: 'front-door' }) })
    if (!res.ok) throw new Error(`invite: ${res.status} ${await res.text()}`)
    return await res.json() as unknown
  }))
  assert.ok(invite.url.startsWith(`${origin}/pair#code=`), invite.url)

  // The doorbell, built and run as the systemd unit runs it, pairs and connects through nginx.
  let device: DeviceProcess
  const before = process.env.NODE_EXTRA_CA_CERTS
  process.env.NODE_EXTRA_CA_CERTS = cert.caPath
  try {
    device = await startDeviceProcess({
      hubUrl: `wss://127.0.0.1:${httpsPort}/mqtt`,
      pairing: { url: invite.url },
      mesh: { enabled: false },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      relockSeconds: 2
    }, 'nginx-doorbell')
  } finally {
    if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS
    else process.env.NODE_EXTRA_CA_CERTS = before
  }
  cleanup.push(() => device.stop())
  const printed = (): string[] => device.lines.map((l) => l.text)

  // Ring → banner → Answer → video → hold to open → the relay opens, the page shows it.
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await page.waitForSelector('[data-testid=link][data-up=true]')
  device.ring()
  await page.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
  assert.match((await page.getByTestId('ring-banner').textContent()) ?? '', /Front door is ringing/)
  await page.getByTestId('answer').click()
  const video = await videoIsPlaying(page)
  assert.ok(video.width > 0)
  await holdToOpen(page)
  await eventually('the relay to open', () => printed().includes('DOOR UNLOCKED'))
  await waitForText(page, 'door-status', /Door open/)
  await waitForText(page, 'door-status', /^Locked$/, 10_000)
  await eventually('the relay to relock', () => printed().includes('DOOR LOCKED'))
  await page.getByTestId('hang-up').click()
  await waitForText(page, 'ended', /Call ended/)

  // nginx writes a WebSocket's line when it closes: end both, then read its access log.
  await owner.close()
  owner = null
  await device.stop()
  const upgrades = (): string[] => nginx.accessLog().split('\n').filter((l) => /"GET \/mqtt HTTP\/1\.1" 101 /.test(l))
  await eventually('nginx to log both WebSocket upgrades', () => upgrades().length >= 2, 10_000)
  assert.ok(upgrades().some((l) => /Chrome\//.test(l)), `the page's WebSocket went through nginx:\n${upgrades().join('\n')}`)
  assert.ok(upgrades().some((l) => !/Chrome\//.test(l)), 'and the doorbell\'s')
  // The page itself came over HTTP/2 from nginx.
  assert.match(nginx.accessLog(), /"GET \/pair HTTP\/2\.0" 200 .*Chrome\//)
})
