/**
 * A stock KVS viewer calls our doorbell, in headless Chromium: the unmodified KVS WebRTC SDK's
 * SignalingClient driven in a page the way AWS's example viewer drives it (tests/src/cloud/stock:
 * a plain SDP offer receiving audio and video, trickle ICE, a `commands` data channel), through the
 * KVS emulator (not AWS), with the resident's AWS keys. Video and the doorbell's tone play; its
 * unsigned OPEN_DOOR is refused with a message on the channel and lands in the hub's audit log;
 * bad input (a command that is not JSON, a malformed candidate, an offer over 10 KB) gets a clear
 * error and the call goes on. The owner turns on "accept unsigned OPEN_DOOR from KVS viewers" in
 * the doorbell's cloud config; after its restart the same viewer opens the door, audited as unsigned.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetSignalingChannelEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { GetIceServerConfigCommand, KinesisVideoSignalingClient } from '@aws-sdk/client-kinesis-video-signaling'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import type { DeviceCloudConfig } from '@doorbell/core'
import { eventually } from '../src/harness'
import { openResident, videoIsPlaying } from '../src/browser'
import { kill, startHomeHub } from '../src/hubProcess'
import { REGION, startCloud } from '../src/cloud'
import { serveStockPages } from '../src/cloud/stock/pages'
import { DOORBELL_HZ, near, pageToneFrequency } from '../src/audio'

test('a stock KVS viewer (the unmodified SDK in Chromium) watches and hears our doorbell; its unsigned OPEN_DOOR is refused and audited, then accepted after the owner\'s setting and audited as unsigned; bad input leaves the call going', { timeout: 240_000 }, async (t) => {
  const cleanup: Array<() => Promise<void> | void> = []
  t.after(async () => { for (const undo of cleanup.reverse()) await undo() })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-stock-viewer-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  const home = await startHomeHub(dir, { mesh: { enabled: false }, cloud: provisioned.viewer })
  cleanup.push(() => kill(home.hub, 'SIGTERM'))
  const deviceInvite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })

  const lines: string[] = []
  const printed: string[] = []
  const doorbell = async (cloudConfig: DeviceCloudConfig, pairing: { url: string } | undefined): Promise<Doorbell> => {
    const device = await startDoorbell({
      hubUrl: home.mqttUrl,
      ...(pairing ? { pairing } : {}),
      dataDir: join(dir, 'device'),
      mesh: { enabled: false },
      cloud: cloudConfig,
      iceAdditionalHostAddresses: ['127.0.0.1'],
      relockSeconds: 1,
      audio: { source: { kind: 'test-tone', frequencyHz: DOORBELL_HZ }, speaker: { kind: 'none' } }
    }, { log: memoryLogger(lines, 'device'), drivers: { button: new SimulatedButton(), lock: new SimulatedLock((line) => { printed.push(line) }) } })
    await device.hubConnected(AbortSignal.timeout(10_000))
    await eventually('the doorbell\'s KVS master', () => device.cloud?.connected.kvs === true, 20_000)
    return device
  }
  let device = await doorbell(provisioned.device, { url: deviceInvite.url })
  cleanup.push(() => device.stop())
  assert.equal(provisioned.device.acceptUnsignedOpenDoor, false, 'off by default')

  // What the example page gets with the AWS SDK before it opens its SignalingClient: the channel's VIEWER endpoint and its TURN servers.
  const credentials = cloud.resident
  const channelARN = cloud.kvs.createChannel(provisioned.device.channelName)
  const control = new KinesisVideoClient({ region: REGION, endpoint: cloud.kvs.endpoint, credentials, maxAttempts: 1 })
  cleanup.push(() => { control.destroy() })
  const endpoints = await control.send(new GetSignalingChannelEndpointCommand({ ChannelARN: channelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' } }))
  const endpoint = endpoints.ResourceEndpointList!.find((e) => e.Protocol === 'WSS')!.ResourceEndpoint!
  const signaling = new KinesisVideoSignalingClient({ region: REGION, endpoint: cloud.kvs.endpoint, credentials, maxAttempts: 1 })
  cleanup.push(() => { signaling.destroy() })
  const ice = await signaling.send(new GetIceServerConfigCommand({ ChannelARN: channelARN, ClientId: 'stock-viewer' }))
  // As the example page's default ("use only one set of TURN servers"): IceServerList[0].
  const iceServers = [{ urls: ice.IceServerList![0]!.Uris!, username: ice.IceServerList![0]!.Username!, credential: ice.IceServerList![0]!.Password! }]

  const pages = await serveStockPages()
  cleanup.push(() => pages.stop())
  const browser = await openResident(`${pages.url}/viewer.html`, 'stock viewer', undefined, { caCert: cloud.pki.serverCaPem })
  cleanup.push(() => browser.close())
  let passed = false
  t.after(() => { if (!passed) console.log([...browser.console, ...lines.slice(-60), ...cloud.kvs.log.slice(-20).map((e) => JSON.stringify(e))].join('\n')) })
  const page = browser.page
  const start = async (clientId: string): Promise<void> => {
    await page.goto(`${pages.url}/viewer.html`)
    await page.evaluate((o) => { (window as unknown as { startViewer: (o: unknown) => void }).startViewer(o) }, { region: REGION, channelARN, endpoint, clientId, credentials, iceServers })
  }
  const replies = async (): Promise<string[]> => await page.evaluate(() => (window as unknown as { stock: { replies: string[] } }).stock.replies.slice())
  const send = async (text: string): Promise<void> => {
    await page.evaluate((t) => { (window as unknown as { stock: { commands: RTCDataChannel } }).stock.commands.send(t) }, text)
  }
  const channelOpen = async (): Promise<void> => {
    await page.waitForFunction(() => (window as unknown as { stock: { commands: RTCDataChannel } }).stock.commands.readyState === 'open', undefined, { timeout: 20_000 })
  }

  // (1) The call: video and the doorbell's tone, through the emulator, with trickle ICE.
  await start('stock-viewer')
  const video = await videoIsPlaying(page)
  assert.ok(video.width > 0)
  const heard = await pageToneFrequency(page)
  assert.ok(near(heard, DOORBELL_HZ), `the stock viewer hears ${heard.toFixed(1)} Hz (the doorbell's microphone is ${DOORBELL_HZ} Hz)`)
  const routed = cloud.kvs.log.filter((e) => e.outcome === 'routed' && e.from === 'stock-viewer')
  assert.ok(routed.some((e) => e.action === 'SDP_OFFER'), 'the plain offer went through KVS')
  assert.ok(routed.some((e) => e.action === 'ICE_CANDIDATE'), 'the viewer trickled its candidates through KVS')
  assert.ok(cloud.kvs.log.some((e) => e.outcome === 'routed' && e.from === '(master)' && e.to === 'stock-viewer' && e.action === 'SDP_ANSWER'), 'the doorbell answered the viewer by its client id')

  // (2) Its unsigned OPEN_DOOR: refused, with a message on the channel; the door stays shut.
  await channelOpen()
  await send('{"command":"OPEN_DOOR"}')
  const refused = await eventually('the refusal on the commands channel', async () => (await replies()).map((r) => JSON.parse(r) as { result: string, message: string }).find((r) => r.result === 'refused'))
  assert.match(refused.message, /does not accept unsigned OPEN_DOOR/)
  assert.ok(!printed.includes('DOOR UNLOCKED'))

  // Bad input: a command that is not JSON, an unknown one, a malformed candidate: clear errors, the call goes on.
  await send('open the door please')
  await send('{"command":"SELF_DESTRUCT"}')
  const errors = await eventually('two errors on the commands channel', async () => {
    const got = (await replies()).map((r) => JSON.parse(r) as { result: string, message: string }).filter((r) => r.result === 'error')
    return got.length >= 2 ? got : undefined
  })
  assert.match(errors[0]!.message, /^not JSON/)
  assert.match(errors[1]!.message, /unknown command/)
  await page.evaluate(() => { (window as unknown as { stock: { signaling: { sendIceCandidate: (c: unknown) => void } } }).stock.signaling.sendIceCandidate({ candidate: 'candidate:garbage', sdpMid: '0', sdpMLineIndex: 0 }) })
  await eventually('the doorbell to say why it dropped the candidate', () => lines.some((l) => l.includes('dropped a malformed ICE candidate from a stock KVS viewer')))
  // An offer over KVS's 10 KB limit (from a second viewer in the same page, with a correlation id): KVS refuses it, and says so.
  const status = await page.evaluate(async (o) => {
    const KVS = (window as unknown as { KVSWebRTC: { SignalingClient: new (c: unknown) => { on: (e: string, f: (x: unknown) => void) => void, open: () => void, close: () => void, sendSdpOffer: (s: unknown, r?: string, c?: string) => void }, Role: { VIEWER: string } } }).KVSWebRTC
    const client = new KVS.SignalingClient({ channelARN: o.channelARN, channelEndpoint: o.endpoint, clientId: 'big-offer', role: KVS.Role.VIEWER, region: o.region, credentials: o.credentials, systemClockOffset: 0 })
    return await new Promise<unknown>((resolve) => {
      client.on('statusResponse', (s) => { client.close(); resolve(s) })
      client.on('open', () => { client.sendSdpOffer({ type: 'offer', sdp: `v=0\r\n${'a=x-padding:0123456789abcdef\r\n'.repeat(400)}` }, undefined, 'big-offer-1') })
      client.open()
    })
  }, { region: REGION, channelARN, endpoint, credentials }) as { errorType: string, description: string }
  assert.equal(status.errorType, 'InvalidArgumentException')
  assert.match(status.description, /over the limit of 10240/)
  // The call goes on: the channel still answers, the video still plays.
  await send('{"command":"OPEN_DOOR"}')
  await eventually('a second refusal', async () => (await replies()).filter((r) => r.includes('"refused"')).length >= 2)
  await videoIsPlaying(page)

  // The refusals are in the owner's audit log, unsigned, over the cloud.
  const denied = await eventually('the refusal in the audit log', async () => (await home.asOwner.audit()).filter((r) => r.reason === 'unsigned' && r.outcome === 'denied').at(0), 15_000)
  assert.equal(denied.path, 'cloud')
  assert.equal(denied.actor, 'KVS viewer stock-viewer')

  // (3) The owner turns the setting on for this doorbell; after its restart the same viewer opens the door.
  await device.stop()
  device = await doorbell({ ...provisioned.device, acceptUnsignedOpenDoor: true }, undefined)
  assert.ok(lines.some((l) => l.includes('acceptUnsignedOpenDoor is on')), 'the doorbell warns at start')
  await start('stock-viewer')
  await videoIsPlaying(page)
  await channelOpen()
  await send('{"command":"OPEN_DOOR"}')
  const opened = await eventually('the door opened', async () => (await replies()).map((r) => JSON.parse(r) as { result: string, message: string }).find((r) => r.result === 'opened'))
  assert.equal(opened.message, 'DOOR UNLOCKED')
  await eventually('the relay to open', () => printed.includes('DOOR UNLOCKED'))
  const allowed = await eventually('the opening in the audit log', async () => (await home.asOwner.audit()).filter((r) => r.reason === 'unsigned' && r.outcome === 'allowed').at(0), 15_000)
  assert.equal(allowed.path, 'cloud')
  assert.equal(allowed.actor, 'KVS viewer stock-viewer')
  assert.match(allowed.message, /unsigned OPEN_DOOR/)

  passed = true
  t.diagnostic(`stock viewer heard ${heard.toFixed(1)} Hz; video ${video.width} px wide`)
})
