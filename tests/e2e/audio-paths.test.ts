/**
 * Sound both ways on the two paths that do not go through the hub, in headless Chromium: the same
 * two-way tone check as audio.test.ts (tests/src/audio.ts: the doorbell's test tone found by an
 * analyser on the page; Chromium's fake microphone tone found by an FFT in the doorbell's WAV
 * speaker), once with the hub dead and the call on the direct path (libp2p, webrtc-direct), once
 * away from home on the cloud path (our own protocol over the KVS emulator, events through the IoT
 * Core stand-in, the emulator's TURN servers a real coturn).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import type { DeviceConfigInput, HubConfigInput } from '@doorbell/core'
import { eventually } from '../src/harness'
import { openResident, videoIsPlaying, waitForPath, type Resident } from '../src/browser'
import { kill, startHomeHub } from '../src/hubProcess'
import { startCloud } from '../src/cloud'
import { DOORBELL_HZ, RESIDENT_HZ, speakerPlayedTone, talkBothWays, toneWav } from '../src/audio'

interface Away {
  page: Resident['page']
  device: Doorbell
  button: SimulatedButton
  /** The doorbell's WAV speaker (complete once the doorbell has stopped). */
  said: string
  lines: string[]
  /** Stops the doorbell (which closes its WAV); the cleanup then has nothing left to stop. */
  stop: () => Promise<void>
}

/**
 * A home whose hub dies while the page is idle: the doorbell with a test-tone microphone and a WAV
 * speaker, a resident's page with a fake microphone playing a tone, waiting on `path`.
 */
async function awayFromHub (t: TestContext, path: 'direct' | 'cloud'): Promise<Away> {
  const cleanup: Array<() => Promise<void> | void> = []
  t.after(async () => { for (const undo of cleanup.reverse()) await undo() })
  const dir = mkdtempSync(join(tmpdir(), `doorbell-audio-${path}-`))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const voice = join(dir, 'resident.wav')
  toneWav(voice, RESIDENT_HZ, 60)
  const said = join(dir, 'speaker.wav')

  const cloud = path === 'cloud' ? await startCloud() : null
  if (cloud) cleanup.push(() => cloud.stop())
  const provisioned = cloud ? await cloud.provision('home', 'front-door') : null
  const hubMesh: Partial<HubConfigInput> = path === 'direct' ? { mesh: { tcpPort: 0, directPort: 0 } } : { mesh: { enabled: false }, cloud: provisioned!.viewer }
  const home = await startHomeHub(dir, hubMesh)
  cleanup.push(() => kill(home.hub, 'SIGTERM'))
  const deviceInvite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const residentInvite = await home.asOwner.invite({ kind: 'viewer', role: 'resident' })

  const lines: string[] = []
  const button = new SimulatedButton()
  const paths: DeviceConfigInput = path === 'direct' ? { mesh: { tcpPort: 0, directPort: 0 } } : { mesh: { enabled: false }, cloud: provisioned!.device }
  const device = await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: deviceInvite.url },
    dataDir: join(dir, 'device'),
    iceAdditionalHostAddresses: ['127.0.0.1'],
    relockSeconds: 2,
    ringTimeoutSeconds: 30,
    audio: { source: { kind: 'test-tone', frequencyHz: DOORBELL_HZ }, speaker: { kind: 'wav', path: said } },
    ...paths
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  let stopped = false
  cleanup.push(async () => { if (!stopped) await device.stop() })
  await device.hubConnected(AbortSignal.timeout(10_000))
  if (path === 'cloud') await eventually('the doorbell on IoT Core and its KVS channel', () => device.cloud?.connected.iot === true && device.cloud.connected.kvs, 20_000)

  const resident = await openResident(`${home.base}/`, 'Kitchen tablet', residentInvite.code, { microphone: voice, ...(cloud ? { caCert: cloud.pki.serverCaPem } : {}) })
  cleanup.push(() => resident.close())
  t.after(() => { if (process.exitCode) console.log([...resident.console, ...lines.slice(-60)].join('\n')) })
  const page = resident.page
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await waitForPath(page, 'lan')
  if (cloud) {
    // Once, at home: the resident's own AWS keys (as in cloud.test.ts).
    await page.getByTestId('cloud-settings-toggle').click()
    await page.waitForFunction(() => (document.querySelector('[data-testid=cloud-region]') as HTMLInputElement | null)?.value === 'us-east-1', undefined, { timeout: 10_000 })
    await page.getByTestId('cloud-access-key').fill(cloud.resident.accessKeyId)
    await page.getByTestId('cloud-secret').fill(cloud.resident.secretAccessKey)
    await page.getByTestId('cloud-save').click()
    await page.waitForSelector('[data-testid=cloud-status][data-state=saved]', { timeout: 5000 })
    await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, 'doorbell:cloud-ready', { timeout: 15_000 })
  } else {
    await page.waitForFunction(() => (localStorage.getItem('doorbell.direct') ?? '').includes('front-door'), undefined, { timeout: 10_000 })
    await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, 'doorbell:direct-ready', { timeout: 15_000 })
  }
  await kill(home.hub, 'SIGKILL')
  await waitForPath(page, path, 30_000)
  return {
    page,
    device,
    button,
    said,
    lines,
    stop: async () => { stopped = true; await device.stop() }
  }
}

for (const path of ['direct', 'cloud'] as const) {
  test(`sound both ways on the ${path} path: the page hears the doorbell's tone, the doorbell's speaker plays the resident's only while Talk is on`, { timeout: 180_000 }, async (t) => {
    const away = await awayFromHub(t, path)
    const { page } = away
    away.button.press()
    await page.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
    assert.equal(await page.getByTestId('ring-path').getAttribute('data-path'), path)
    // The live preview on this path too (issue 21): moving video before Answer, the doorbell's microphone sent to nobody.
    await page.locator('[data-testid=ring-preview][data-preview=live]').waitFor({ timeout: 30_000 })
    await videoIsPlaying(page, '[data-testid=ring-preview]')
    assert.equal(away.device.audio.microphone.listening, 0, 'no sound to a preview')
    await page.getByTestId('answer').click()
    await videoIsPlaying(page)
    assert.equal(await page.getByTestId('path').getAttribute('data-path'), path)

    const heard = await talkBothWays(page, () => away.device.audio.speaker.packets)
    assert.ok(away.lines.some((l) => l.includes('offer') && l.includes(`path=${path}`)), `the doorbell took the offer from the ${path} path`)
    assert.equal(away.lines.filter((l) => l.includes('] offer viewer=Kitchen tablet session=')).length, 1, 'one offer: Answer took the preview\'s connection')
    await page.getByTestId('hang-up').click()
    await eventually('the device back to idle', () => away.device.call.getSnapshot().matches('idle'), 15_000)
    await away.stop()
    const tone = speakerPlayedTone(away.said)
    t.diagnostic(`${path}: page heard ${heard.toFixed(1)} Hz (doorbell ${DOORBELL_HZ} Hz); speaker played ${tone.hz.toFixed(1)} Hz (resident ${RESIDENT_HZ} Hz, RMS ${tone.rms.toFixed(3)}, ${tone.seconds.toFixed(1)} s)`)
  })
}
