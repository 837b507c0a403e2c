/**
 * Our viewer answers a stock KVS doorbell, in headless Chromium, with no hub anywhere: the built
 * viewer from a plain static server; a stock master page (the seed's KVS master stood in for by
 * the unmodified KVS WebRTC SDK's SignalingClient, driven as AWS's example master drives it: fake
 * camera and a 660 Hz fake microphone, answers and candidates addressed to the viewer, trickle ICE,
 * a `commands` channel that records what arrives); the ring published as the seed publishes it,
 * through the IoT Core stand-in on `doorbell/<channel>/ring`. The resident adds the doorbell in
 * "KVS doorbells" with their AWS keys, the ring banner shows, they answer: the video plays, the
 * tone is heard, the resident's voice reaches the master, and OPEN_DOOR arrives on the master's `commands` channel; axe finds no WCAG A/AA violation in
 * the settings, the card or the banner. A malformed ring and a
 * malformed candidate are ignored with a logged reason; the call goes on.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { GetSignalingChannelEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { GetIceServerConfigCommand, KinesisVideoSignalingClient } from '@aws-sdk/client-kinesis-video-signaling'
import { eventually } from '../src/harness'
import { holdToOpen, openResident, videoIsPlaying } from '../src/browser'
import { REGION, startCloud } from '../src/cloud'
import { serveStockPages, serveViewerAlone } from '../src/cloud/stock/pages'
import { DOORBELL_HZ, near, pageToneFrequency, toneWav } from '../src/audio'
import { axeViolations, describeViolations } from '../src/axe'

interface MasterState { commands: Array<{ label: string, data: string, from: string }>, offers: Array<{ from: string, keys: string[] }>, states: string[], errors: string[] }

test('our viewer, served with no hub, answers a stock KVS doorbell rung on doorbell/<channel>/ring: video and audio play, talk reaches it, OPEN_DOOR arrives on the master\'s commands channel; bad rings and candidates are ignored with a reason', { timeout: 240_000 }, async (t) => {
  const cleanup: Array<() => Promise<void> | void> = []
  t.after(async () => { for (const undo of cleanup.reverse()) await undo() })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-stock-doorbell-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const channel = 'seed-door'
  const channelARN = cloud.kvs.createChannel(channel)
  const credentials = cloud.resident

  // The stock master: what AWS's example master gets with the AWS SDK before it opens its SignalingClient.
  const control = new KinesisVideoClient({ region: REGION, endpoint: cloud.kvs.endpoint, credentials, maxAttempts: 1 })
  cleanup.push(() => { control.destroy() })
  const endpoints = await control.send(new GetSignalingChannelEndpointCommand({ ChannelARN: channelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'MASTER' } }))
  const endpoint = endpoints.ResourceEndpointList!.find((e) => e.Protocol === 'WSS')!.ResourceEndpoint!
  const signaling = new KinesisVideoSignalingClient({ region: REGION, endpoint: cloud.kvs.endpoint, credentials, maxAttempts: 1 })
  cleanup.push(() => { signaling.destroy() })
  const ice = await signaling.send(new GetIceServerConfigCommand({ ChannelARN: channelARN }))
  const iceServers = [{ urls: ice.IceServerList![0]!.Uris!, username: ice.IceServerList![0]!.Username!, credential: ice.IceServerList![0]!.Password! }]

  const tone = join(dir, 'doorbell-mic.wav')
  toneWav(tone, DOORBELL_HZ, 30)
  const pages = await serveStockPages()
  cleanup.push(() => pages.stop())
  const masterBrowser = await openResident(`${pages.url}/master.html`, 'stock master', undefined, { caCert: cloud.pki.serverCaPem, microphone: tone })
  cleanup.push(() => masterBrowser.close())
  const master = masterBrowser.page
  await master.evaluate(async (o) => { await (window as unknown as { startMaster: (o: unknown) => Promise<void> }).startMaster(o) }, { region: REGION, channelARN, endpoint, credentials, iceServers })
  const masterState = async (): Promise<MasterState> => await master.evaluate(() => {
    const m = (window as unknown as { master: MasterState }).master
    return { commands: m.commands.slice(), offers: m.offers.slice(), states: m.states.slice(), errors: m.errors.slice() }
  })

  // The seed's ring publisher: a thing certificate on the IoT Core stand-in.
  const thing = await cloud.iot.provisionThing('seed-doorbell')
  const publisher = mqtt.connect(`mqtts://${cloud.iot.dataHost}:${cloud.iot.dataPort}`, { clientId: 'seed-doorbell', protocolVersion: 4, reconnectPeriod: 0, ca: cloud.pki.serverCaPem, cert: thing.certPem, key: thing.keyPem })
  cleanup.push(() => { publisher.end(true) })
  await new Promise<void>((resolve, reject) => { publisher.once('connect', () => { resolve() }); publisher.once('error', reject) })
  const publish = async (body: string): Promise<void> => { await publisher.publishAsync(`doorbell/${channel}/ring`, body, { qos: 1 }) }

  // Our viewer, from a static server: no hub behind it.
  const app = await serveViewerAlone()
  cleanup.push(() => app.stop())
  const viewer = await openResident(app.url, 'Away phone', undefined, { caCert: cloud.pki.serverCaPem, fakeCamera: true })
  cleanup.push(() => viewer.close())
  const page = viewer.page
  let passed = false
  t.after(() => { if (!passed) console.log([...viewer.console, ...masterBrowser.console, ...cloud.kvs.log.slice(-30).map((e) => JSON.stringify(e))].join('\n')) })

  // "KVS doorbells": the warning, the resident's AWS keys, then the doorbell (by its ARN; the ring topic left to its default).
  await page.getByTestId('kvs-settings-toggle').click()
  assert.match(await page.getByTestId('kvs-warning').innerText(), /trusts AWS access alone.*no signature.*audit log cannot see it/s)
  await page.getByTestId('kvs-access-key').fill(credentials.accessKeyId)
  await page.getByTestId('kvs-secret').fill(credentials.secretAccessKey)
  await page.getByTestId('kvs-save-keys').click()
  await page.getByTestId('kvs-keys').waitFor({ state: 'detached' })
  // Bad input first: named fields, nothing added.
  await page.getByTestId('kvs-name').fill('Seed doorbell')
  await page.getByTestId('kvs-region').fill('Europe')
  await page.getByTestId('kvs-channel').fill('seed door')
  await page.getByTestId('kvs-add').click()
  await page.getByTestId('kvs-error').waitFor()
  assert.ok(await page.getByTestId('kvs-region-error').isVisible())
  assert.ok(await page.getByTestId('kvs-channel-error').isVisible())
  assert.equal(await page.locator('[data-testid^=kvs-entry-]').count(), 0, 'nothing was added')
  await page.getByTestId('kvs-region').fill(REGION)
  await page.getByTestId('kvs-channel').fill(channelARN)
  assert.equal(await page.getByTestId('kvs-ring-topic').getAttribute('placeholder'), `doorbell/${channel}/ring`)
  await page.getByTestId('kvs-iot-endpoint').fill(new URL(cloud.iot.wssUrl).host)
  await page.locator('[data-testid=kvs-add-form] details summary').click()
  await page.getByTestId('kvs-iot-wss-url').fill(cloud.iot.wssUrl)
  await page.getByTestId('kvs-kvs-endpoint').fill(cloud.kvs.endpoint)
  await page.getByTestId('kvs-add').click()
  await page.getByTestId('kvs-added').waitFor()
  const entry = page.locator('[data-testid^=kvs-entry-]')
  const id = (await entry.getAttribute('data-testid'))!.replace('kvs-entry-', '')
  await page.waitForSelector('[data-testid=kvs-status][data-state=connected]', { timeout: 20_000 })
  const card = page.getByTestId(`kvs-doorbell-${id}`)
  assert.match(await card.getByTestId('kvs-trust').innerText(), /AWS access alone/)
  const axe = async (what: string): Promise<void> => {
    const found = await axeViolations(page)
    assert.equal(found.length, 0, `${what}: axe-core found WCAG 2 A/AA violations:\n${describeViolations(found)}`)
  }
  await axe('the KVS doorbells settings and card')

  // A malformed ring (milliseconds) and one naming another channel: ignored, with the reason logged.
  await publish(JSON.stringify({ event: 'ring', channel, timestamp: Date.now() }))
  await publish('ring ring')
  await eventually('the viewer to say why it ignored the bad rings', () =>
    viewer.console.some((l) => /ignored a malformed ring on doorbell\/seed-door\/ring .*timestamp/.test(l)) && viewer.console.some((l) => /ignored a ring on doorbell\/seed-door\/ring: not JSON/.test(l)))
  assert.equal(await card.getAttribute('data-phase'), 'idle', 'no banner for a bad ring')

  // The seed's ring: the banner, then the answer.
  await publish(JSON.stringify({ event: 'ring', channel, timestamp: Math.floor(Date.now() / 1000) }))
  await card.getByTestId('ring-banner').waitFor({ timeout: 15_000 })
  assert.match(await card.getByTestId('ring-banner').innerText(), /Seed doorbell is ringing/)
  await axe('the stock doorbell\'s ring banner')
  await card.getByTestId('answer').click()
  const video = await videoIsPlaying(page)
  assert.ok(video.width > 0)
  const heard = await pageToneFrequency(page)
  assert.ok(near(heard, DOORBELL_HZ), `our viewer hears ${heard.toFixed(1)} Hz (the master's microphone is ${DOORBELL_HZ} Hz)`)

  // Talk: the master's answer takes audio, so the resident's microphone reaches it.
  const audioIn = async (): Promise<number> => await master.evaluate(async () => {
    let n = 0
    for (const pc of Object.values((window as unknown as { master: { peers: Record<string, RTCPeerConnection> } }).master.peers)) {
      (await pc.getStats()).forEach((r: { type: string, kind?: string, packetsReceived?: number }) => { if (r.type === 'inbound-rtp' && r.kind === 'audio') n += r.packetsReceived ?? 0 })
    }
    return n
  })
  const silent = await audioIn()
  await page.getByTestId('talk-toggle').click()
  await eventually('the resident\'s voice at the master', async () => (await audioIn()) > silent + 25, 15_000)
  await page.getByTestId('talk-toggle').click()

  // As a standard KVS viewer: a plain offer, trickled candidates, answered by its client id.
  const state = await masterState()
  assert.equal(state.offers.length, 1)
  assert.deepEqual(state.offers[0]!.keys, ['sdp', 'type'], 'a bare session description')
  const viewerId = state.offers[0]!.from
  const routed = cloud.kvs.log.filter((e) => e.outcome === 'routed')
  assert.ok(routed.some((e) => e.from === viewerId && e.action === 'ICE_CANDIDATE'), 'our viewer trickled its candidates')
  assert.ok(routed.some((e) => e.from === '(master)' && e.to === viewerId && e.action === 'SDP_ANSWER'), 'the master answered our viewer by its client id')
  assert.ok(routed.some((e) => e.from === '(master)' && e.to === viewerId && e.action === 'ICE_CANDIDATE'), 'the master trickled to our viewer')

  // A malformed candidate from the master: dropped with the reason, the call goes on.
  await master.evaluate((to) => { (window as unknown as { master: { signaling: { sendIceCandidate: (c: unknown, r: string) => void } } }).master.signaling.sendIceCandidate({ candidate: 'candidate:garbage', sdpMid: '0', sdpMLineIndex: 0 }, to) }, viewerId)
  await eventually('the viewer to drop the malformed candidate', () => viewer.console.some((l) => l.includes('dropped a malformed ICE candidate')))

  // Open the door: OPEN_DOOR on the master's commands channel.
  await holdToOpen(page)
  const command = await eventually('OPEN_DOOR on the master\'s commands channel', async () => (await masterState()).commands.at(0))
  assert.deepEqual(command, { label: 'commands', data: '{"command":"OPEN_DOOR"}', from: viewerId })
  await eventually('the master to print DOOR UNLOCKED', () => masterBrowser.console.some((l) => l.includes('DOOR UNLOCKED')))
  assert.match(await page.getByTestId('door-status').innerText(), /OPEN_DOOR sent/)
  await videoIsPlaying(page)
  assert.deepEqual((await masterState()).errors, [])

  await page.getByTestId('hang-up').click()
  await card.getByTestId('ended').waitFor()
  passed = true
  t.diagnostic(`our viewer heard ${heard.toFixed(1)} Hz; video ${video.width} px wide`)
})
