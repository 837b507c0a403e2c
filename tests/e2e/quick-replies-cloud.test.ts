/**
 * Quick replies away from home (issue 17), in headless Chromium, against the cloud stand-ins
 * (tests/src/cloud: the KVS emulator and mosquitto with mutual TLS behind a SigV4 WebSocket front;
 * not AWS). The hub is killed and the doorbell has no direct path (mesh off): the ring comes
 * through IoT Core, and the banner's quick reply goes on the doorbell's KVS channel
 * (core/src/cloudCommand.ts), signed as over the hub and checked by the same guard. The resident's
 * page opened before the owner saved the list, so it never read it from the hub: the banner
 * offers the doorbell's own list, read over KVS (core/src/repliesRead.ts). The reply plays on the
 * doorbell's speaker (a WAV file: speech in it) without answering, and is audited in the doorbell's
 * outbox with the path `cloud`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DoorAttempt } from '@doorbell/core'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock } from '@doorbell/device'
import { eventually } from '../src/harness'
import { openResident, waitForPath, waitForText, type Resident } from '../src/browser'
import { kill, startHomeHub } from '../src/hubProcess'
import { startCloud } from '../src/cloud'
import { pairOwnerBrowser } from '../src/inspector'
import { readWav, speechOf } from '../src/audio'

const REPLY = 'Leave it at the door, please'

/** The attempts in the doorbell's audit outbox (the hub is down: none has left it). */
const outbox = (file: string): DoorAttempt[] => {
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch {}
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => DoorAttempt.parse(JSON.parse(l)))
}

test('away from home, the hub down: the ring banner offers the doorbell\'s own quick replies over KVS, and one plays on its speaker without answering and is audited', { timeout: 240_000 }, async (t) => {
  const cleanup: Array<() => Promise<void> | void> = []
  t.after(async () => { for (const undo of cleanup.reverse()) await undo() })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-replies-cloud-e2e-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  let owner: Resident | null = null
  const home = await startHomeHub(dir, { mesh: { enabled: false }, cloud: provisioned.viewer }, {
    pairOwner: async (base, code) => {
      const paired = await pairOwnerBrowser(base, code, 'Owner phone')
      owner = paired.owner
      cleanup.push(() => paired.owner.close())
      return paired.token
    }
  })
  const hub = home.hub
  cleanup.push(() => kill(hub, 'SIGTERM'))
  const deviceInvite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const residentInvite = await home.asOwner.invite({ kind: 'viewer', role: 'resident' })
  const lines: string[] = []
  const button = new SimulatedButton()
  const deviceDir = join(dir, 'device')
  const said = join(dir, 'speaker.wav')
  const device = await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: deviceInvite.url },
    dataDir: deviceDir,
    // No direct path: away from home, the cloud path is the only one left.
    mesh: { enabled: false },
    cloud: provisioned.device,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    audio: { speaker: { kind: 'wav', path: said } },
    ringTimeoutSeconds: 60
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  let deviceStopped = false
  cleanup.push(async () => { if (!deviceStopped) await device.stop() })
  await device.hubConnected(AbortSignal.timeout(15_000))
  await eventually('the doorbell on IoT Core and its KVS channel', () => device.cloud?.connected.iot === true && device.cloud.connected.kvs, 30_000)

  // The resident's page, at home: its own AWS keys into Settings once. It reads the hub's quick
  // replies now, before the owner has saved any.
  const resident = await openResident(`${home.base}/`, 'Kitchen tablet', residentInvite.code, { caCert: cloud.pki.serverCaPem })
  cleanup.push(() => resident.close())
  let passed = false
  t.after(() => { if (!passed) console.log([...resident.console, ...lines.slice(-60), ...hub.lines.slice(-20)].join('\n')) })
  const page = resident.page
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await waitForPath(page, 'lan')
  await page.getByTestId('cloud-settings-toggle').click()
  await page.waitForFunction(() => (document.querySelector('[data-testid=cloud-region]') as HTMLInputElement | null)?.value === 'us-east-1', undefined, { timeout: 10_000 })
  await page.getByTestId('cloud-access-key').fill(cloud.resident.accessKeyId)
  await page.getByTestId('cloud-secret').fill(cloud.resident.secretAccessKey)
  await page.getByTestId('cloud-save').click()
  await page.waitForSelector('[data-testid=cloud-status][data-state=saved]', { timeout: 5000 })
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, 'doorbell:cloud-ready', { timeout: 15_000 })

  // The owner saves the list in Home settings; the doorbell takes and renders it.
  const ownerPage = (owner as Resident | null)?.page
  assert.ok(ownerPage, 'the owner paired in a browser')
  await ownerPage.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await ownerPage.getByTestId('owner-panel-toggle').click()
  await ownerPage.getByTestId('replies-text').fill(`${REPLY}\nWe will be right there`)
  await ownerPage.getByTestId('replies-save').click()
  await waitForText(ownerPage, 'replies-note', /Saved 2 quick replies/)
  await eventually('the doorbell to render both replies', () => lines.some((l) => /\[device\/replies\] quick replies ready count=2/.test(l)), 60_000)

  // The hub dies; the page moves to the cloud by itself.
  await kill(hub, 'SIGKILL')
  await waitForPath(page, 'cloud', 30_000)

  // A ring through IoT Core: the banner offers the doorbell's list, read on its KVS channel.
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId)
  await page.getByTestId('ring-banner').waitFor({ timeout: 15_000 })
  assert.equal(await page.getByTestId('ring-path').getAttribute('data-path'), 'cloud')
  await page.getByTestId('quick-reply-banner-1').waitFor({ timeout: 30_000 })
  assert.deepEqual((await page.getByTestId('quick-replies-banner').locator('button').allTextContents()).map((s) => s.trim()), [REPLY, 'We will be right there'])
  assert.ok(lines.some((l) => l.includes('a screen read the quick replies (cloud)') && l.includes('viewer=Kitchen tablet')), 'the doorbell answered the read over KVS')

  // The reply plays, without answering.
  const before = device.audio.speaker.packets
  await page.getByTestId('quick-reply-banner-0').click()
  await waitForText(page, 'quick-reply-status-banner', /^Playing “Leave it at the door, please”/, 30_000)
  await eventually('the reply at the speaker', () => device.audio.speaker.packets >= before + 50, 20_000)
  assert.equal(device.state().call.ringId, ringId, 'still the same ring')
  assert.equal(device.state().participants.length, 0, 'nobody answered: no call was made')
  const auditFile = join(deviceDir, 'audit-outbox.jsonl')
  const allowed = await eventually('the reply in the doorbell\'s outbox', () => outbox(auditFile).find((a) => a.kind === 'reply' && a.outcome === 'allowed'))
  assert.equal(allowed.viewerName, 'Kitchen tablet')
  assert.equal(allowed.role, 'resident')
  assert.equal(allowed.path, 'cloud')
  assert.equal(allowed.message, `Kitchen tablet played "${REPLY}"`)
  const routed = cloud.kvs.log.filter((e) => e.outcome === 'routed')
  assert.ok(routed.some((e) => e.action === 'SDP_OFFER' && e.to === '(master)'), 'the command went through the KVS channel')

  // The speaker's WAV holds the reply as speech: it has played out when the talk lease ends.
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
