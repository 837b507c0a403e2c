/**
 * The owner's "accept unsigned OPEN_DOOR from KVS viewers", signed: a stock KVS viewer (the
 * unmodified SDK in Chromium, through the KVS emulator) calls our doorbell, whose cloud config
 * leaves the setting off. Its OPEN_DOOR is refused and audited; the owner turns the setting on for
 * this doorbell in Home settings (confirming the risk it states); the hub signs it with the home
 * key and sends it with the revocation list; the same call's OPEN_DOOR then opens the door, audited
 * as unsigned. Turned off again, the next one is refused. Bad requests change nothing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetSignalingChannelEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { GetIceServerConfigCommand, KinesisVideoSignalingClient } from '@aws-sdk/client-kinesis-video-signaling'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock } from '@doorbell/device'
import { eventually } from '../src/harness'
import { openResident, videoIsPlaying, type Resident } from '../src/browser'
import { pairOwnerBrowser } from '../src/inspector'
import { kill, startHomeHub } from '../src/hubProcess'
import { REGION, startCloud } from '../src/cloud'
import { serveStockPages } from '../src/cloud/stock/pages'

test('the owner\'s signed "accept unsigned OPEN_DOOR from KVS viewers": refused, then accepted after the owner turns it on (audited as unsigned), refused again when off', { timeout: 240_000 }, async (t) => {
  const cleanup: Array<() => Promise<void> | void> = []
  t.after(async () => { for (const undo of cleanup.reverse()) await undo() })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-stock-owner-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  // The owner's screen is a browser, paired with the hub's setup code: Home settings is where the owner sets it.
  let ownerScreen: Resident | null = null
  const home = await startHomeHub(dir, { mesh: { enabled: false }, cloud: provisioned.viewer }, {
    pairOwner: async (base, code) => {
      const paired = await pairOwnerBrowser(base, code)
      ownerScreen = paired.owner
      cleanup.push(() => paired.owner.close())
      return paired.token
    }
  })
  cleanup.push(() => kill(home.hub, 'SIGTERM'))
  const deviceInvite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })

  const lines: string[] = []
  const printed: string[] = []
  const device = await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: deviceInvite.url },
    dataDir: join(dir, 'device'),
    mesh: { enabled: false },
    cloud: provisioned.device,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    relockSeconds: 1,
    audio: { source: { kind: 'test-tone', frequencyHz: 660 }, speaker: { kind: 'none' } }
  }, { log: memoryLogger(lines, 'device'), drivers: { button: new SimulatedButton(), lock: new SimulatedLock((line) => { printed.push(line) }) } })
  cleanup.push(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))
  await eventually('the doorbell\'s KVS master', () => device.cloud?.connected.kvs === true, 20_000)
  assert.equal(provisioned.device.acceptUnsignedOpenDoor, false, 'the config leaves it off')

  const credentials = cloud.resident
  const channelARN = cloud.kvs.createChannel(provisioned.device.channelName)
  const control = new KinesisVideoClient({ region: REGION, endpoint: cloud.kvs.endpoint, credentials, maxAttempts: 1 })
  cleanup.push(() => { control.destroy() })
  const endpoints = await control.send(new GetSignalingChannelEndpointCommand({ ChannelARN: channelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' } }))
  const endpoint = endpoints.ResourceEndpointList!.find((e) => e.Protocol === 'WSS')!.ResourceEndpoint!
  const signaling = new KinesisVideoSignalingClient({ region: REGION, endpoint: cloud.kvs.endpoint, credentials, maxAttempts: 1 })
  cleanup.push(() => { signaling.destroy() })
  const ice = await signaling.send(new GetIceServerConfigCommand({ ChannelARN: channelARN, ClientId: 'stock-viewer' }))
  const iceServers = [{ urls: ice.IceServerList![0]!.Uris!, username: ice.IceServerList![0]!.Username!, credential: ice.IceServerList![0]!.Password! }]

  const pages = await serveStockPages()
  cleanup.push(() => pages.stop())
  const browser = await openResident(`${pages.url}/viewer.html`, 'stock viewer', undefined, { caCert: cloud.pki.serverCaPem })
  cleanup.push(() => browser.close())
  let passed = false
  t.after(() => { if (!passed) console.log([...browser.console, ...lines.slice(-60), ...home.hub.lines.slice(-30)].join('\n')) })
  const page = browser.page
  await page.evaluate((o) => { (window as unknown as { startViewer: (o: unknown) => void }).startViewer(o) }, { region: REGION, channelARN, endpoint, clientId: 'stock-viewer', credentials, iceServers })
  await videoIsPlaying(page)
  await page.waitForFunction(() => (window as unknown as { stock: { commands: RTCDataChannel } }).stock.commands.readyState === 'open', undefined, { timeout: 20_000 })
  const results = async (): Promise<string[]> => await page.evaluate(() => (window as unknown as { stock: { replies: string[] } }).stock.replies.map((r) => (JSON.parse(r) as { result: string }).result))
  const openDoor = async (): Promise<string> => {
    const before = (await results()).length
    await page.evaluate(() => { (window as unknown as { stock: { commands: RTCDataChannel } }).stock.commands.send('{"command":"OPEN_DOOR"}') })
    return await eventually('the doorbell\'s reply', async () => (await results())[before])
  }
  const audited = async (outcome: 'allowed' | 'denied'): Promise<number> => (await home.asOwner.audit()).filter((r) => r.reason === 'unsigned' && r.outcome === outcome).length

  // Off (the config's default): refused and audited.
  assert.equal(await openDoor(), 'refused')
  await eventually('the refusal in the audit log', async () => (await audited('denied')) >= 1 ? true : undefined, 15_000)
  assert.ok(!printed.includes('DOOR UNLOCKED'))

  // Bad requests change nothing: an unknown doorbell, a body that is not the setting.
  await assert.rejects(home.asOwner.setStockSetting('back-door', true), (err: Error & { status?: number }) => err.status === 404 && /no paired doorbell back-door/.test(err.message))
  const raw = await fetch(`${home.base}/api/devices/front-door/stock-setting`, { method: 'PUT', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${home.ownerToken}` }, body: JSON.stringify({ acceptUnsignedOpenDoor: 'yes' }) })
  assert.equal(raw.status, 400)
  assert.deepEqual(await home.asOwner.stockSettings(), [])

  // The owner turns it on in Home settings: the confirmation states the risk; signed by the home,
  // the doorbell takes it, and the same call opens the door.
  const owner = (ownerScreen as Resident | null)!.page
  const confirmations: string[] = []
  owner.on('dialog', (dialog) => { confirmations.push(dialog.message()); void dialog.accept() })
  await owner.getByTestId('owner-panel-toggle').click()
  const box = owner.getByTestId('stock-accept-front-door')
  assert.equal(await box.isChecked(), false)
  await box.check()
  await owner.getByTestId('stock-saved').waitFor({ timeout: 15_000 })
  assert.match(confirmations[0] ?? '', /anyone with access to this doorbell's KVS channel .* can then open the door/i)
  assert.deepEqual((await home.asOwner.stockSettings()).map((x) => [x.deviceId, x.acceptUnsignedOpenDoor]), [['front-door', true]])
  await eventually('the doorbell to take the owner\'s setting', () => lines.some((l) => l.includes('the owner turned on "accept unsigned OPEN_DOOR from KVS viewers"')), 15_000)
  assert.equal(await openDoor(), 'opened')
  await eventually('the relay to open', () => printed.includes('DOOR UNLOCKED'))
  const allowed = await eventually('the opening in the audit log', async () => (await home.asOwner.audit()).find((r) => r.reason === 'unsigned' && r.outcome === 'allowed'), 15_000)
  assert.equal(allowed.path, 'cloud')
  assert.equal(allowed.actor, 'KVS viewer stock-viewer')
  // Kept on the doorbell: a signed token, not a bare flag.
  assert.match(readFileSync(join(dir, 'device', 'stock-setting.txt'), 'utf8'), /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)

  // Off again: refused.
  await home.asOwner.setStockSetting('front-door', false)
  await eventually('the doorbell to take it', () => lines.some((l) => l.includes('the owner turned off "accept unsigned OPEN_DOOR from KVS viewers"')), 15_000)
  assert.equal(await openDoor(), 'refused')
  assert.deepEqual((await home.asOwner.stockSettings()).map((s) => [s.deviceId, s.acceptUnsignedOpenDoor, s.seq]), [['front-door', false, 2]])
  passed = true
})
