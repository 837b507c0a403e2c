import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { waitFor } from 'xstate'
import { SignalToViewer, decode, encode, exportPublicKey, generateSigningKey, newId, topics, SignalToDevice } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'
import { isVp8Keyframe } from '@doorbell/device'
import { eventually } from '../src/harness'
import { kill, startHomeHub, type HomeHub } from '../src/hubProcess'
import { nodeViewer } from '../src/nodeViewer'
import { openResident, videoIsPlaying } from '../src/browser'
import { startBrowserCamera, waitForNodeState, waitForWatchers } from '../src/cameraNode'
import { offerFrom, type PairedViewer } from '../src/trust'

/**
 * A browser camera node, end to end: Chromium with its fake camera pairs at /camera as a device of
 * zone CBD-TRAFFIC-01 and answers calls with its RTCPeerConnection, through the same answering side
 * as the Node doorbell. The watchers make the offer, as on every path: the viewer's own call logic
 * on werift in Node, and a resident's page in a second Chromium.
 */

const ZONE = 'CBD-TRAFFIC-01'
const CAMERA = 'junction-cam-3'

/** A resident paired through the hub's API with the owner's invite, for the Node watcher. */
async function pairResident (home: HomeHub, name: string): Promise<PairedViewer> {
  const invite = await home.asOwner.invite({ kind: 'viewer', role: 'resident' })
  const keys = await generateSigningKey(false)
  const viewerId = newId('v')
  const r = await new HubApi({ base: home.base }).pair({ kind: 'viewer', code: invite.code, id: viewerId, name, key: await exportPublicKey(keys.publicKey) })
  return { viewerId, homeId: r.homeId, memberId: r.member.id, token: r.token, credential: r.credential!, key: keys.privateKey, role: r.member.role!, name: r.member.name }
}

test('a browser camera node in a zone answers calls: video, no door, its watchers counted; a malformed offer gets a clear bye and the node takes the next call', { timeout: 240_000 }, async (t) => {
  // One ordered clean-up list, run once, last in first out.
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  const said: string[][] = []
  t.after(async () => {
    if (process.exitCode) console.log(said.map((lines) => lines.slice(-40).join('\n')).join('\n----\n'))
    for (const step of cleanup.reverse()) {
      try { await step() } catch (err) { console.error('clean-up step failed:', (err as Error).message) }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-camera-node-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir)
  cleanup.push(() => kill(home.hub, 'SIGTERM'))
  said.push(home.hub.lines)

  // The owner invites a camera into the zone; a browser with a (fake) camera pairs with it at /camera.
  const node = await startBrowserCamera(home, { deviceId: CAMERA, name: 'Junction cam 3', zone: ZONE })
  cleanup.push(() => node.close())
  said.push(node.lines)
  const page = node.page

  await t.test('the node shows its zone, its own preview, and nobody watching', async () => {
    assert.equal(await page.getByTestId('node-zone').textContent(), ZONE)
    assert.equal((await page.getByTestId('node-watchers').textContent())?.trim(), 'Live: 0 watching')
    assert.match((await page.getByTestId('node-status').textContent()) ?? '', /Connected to the hub/)
    const preview = await videoIsPlaying(page, '[data-testid=node-preview]')
    assert.ok(preview.width > 0, 'the preview has a size')
    // The code is taken out of the address bar once read.
    assert.ok(!page.url().includes('code='), page.url())
    // Kept for the next visit, in the documented place.
    const kept = await page.evaluate(() => JSON.parse(localStorage.getItem('doorbell.cameraNode') ?? 'null') as { deviceId: string, zone: string } | null)
    assert.equal(kept?.deviceId, CAMERA)
    assert.equal(kept?.zone, ZONE)
  })

  const paired = await pairResident(home, 'Control room')
  const watcher = nodeViewer(home.mqttUrl, paired, 'vp8')
  cleanup.push(() => watcher.close())
  await eventually('the watcher to hear of the camera node', () => watcher.home.doorbells.get(CAMERA)?.getSnapshot().context.device)
  const camera = watcher.home.doorbell(CAMERA)

  await t.test('its state says it has no door', () => {
    const state = camera.getSnapshot().context.device!
    assert.equal(state.lock, null)
    assert.equal(state.deviceName, 'Junction cam 3')
    assert.equal(state.call.status, 'idle')
  })

  await t.test('a watcher calls: the node answers, video frames arrive, the node counts one watcher', async () => {
    watcher.home.watch(CAMERA)
    await waitFor(camera, (s) => s.matches({ active: 'connected' }), { timeout: 20_000 })
    // A frame ends with the RTP marker bit: count whole frames, and at least one keyframe.
    await eventually('30 video frames from the browser\'s camera', () => watcher.rtp.filter((p) => p.header.marker).length >= 30, 20_000)
    assert.ok(watcher.rtp.some((p) => isVp8Keyframe(p.payload)), 'a VP8 keyframe arrived')
    await waitForWatchers(page, 1)
    assert.equal((await page.getByTestId('node-watchers').textContent())?.trim(), 'Live: 1 watching')
    await eventually('the state to list the watcher', () => camera.getSnapshot().context.device?.participants.some((p) => p.viewerName === 'Control room'))
    // It fetched its ICE settings from the hub with its own token.
    assert.ok(!node.lines.some((l) => l.includes('no ICE settings')), node.lines.join('\n'))
  })

  await t.test('an open-door command gets the no-door nack, and nothing else changes', async () => {
    watcher.home.unlock(CAMERA)
    await waitFor(camera, (s) => s.context.pendingCommand === null && s.context.commandError !== null, { timeout: 5000 })
    assert.equal(camera.getSnapshot().context.commandError, 'this camera node has no door')
    assert.equal(camera.getSnapshot().context.door, null)
    assert.ok(camera.getSnapshot().matches({ active: 'connected' }), 'the call goes on')
    const before = watcher.rtp.length
    await eventually('video to keep flowing after the refusal', () => watcher.rtp.length > before + 10)
  })

  await t.test('hang up: the node counts nobody again', async () => {
    watcher.home.hangUp(CAMERA)
    await waitFor(camera, (s) => s.matches('ended'), { timeout: 5000 })
    await waitForWatchers(page, 0)
    assert.equal((await page.getByTestId('node-watchers').textContent())?.trim(), 'Live: 0 watching')
    await eventually('the call record of the live view', () => watcher.home.history.find((r) => r.deviceId === CAMERA && r.outcome === 'live-view'))
  })

  // Everything the node sends this watcher, seen from a second connection of the same member.
  const raw = await mqtt.connectAsync(home.mqttUrl, { clientId: `viewer-${paired.viewerId}-raw`, username: paired.memberId, password: paired.token, reconnectPeriod: 0 })
  cleanup.push(() => raw.endAsync(true))
  const fromNode: SignalToViewer[] = []
  raw.on('message', (_topic, payload) => {
    const m = decode(SignalToViewer, payload, 'to-viewer')
    if (m.ok) fromNode.push(m.value)
  })
  await raw.subscribeAsync(topics.viewerInbox(paired.homeId, paired.viewerId), { qos: 1 })

  await t.test('a malformed offer SDP gets a bye that says why; the node stays up', async () => {
    // The watcher's own credentials and grant: the offer is admitted, then the browser cannot parse it.
    const sessionId = newId('s')
    // Passes the protocol's SDP check (v=0, a video m-line), which is all the hub's gate can know; not a session description.
    const sdp = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=this is not sdp\r\n'
    await raw.publishAsync(
      topics.session(paired.homeId, CAMERA, paired.viewerId, sessionId, 'to-device'),
      encode(SignalToDevice, await offerFrom(paired, { device: CAMERA, sessionId, sdp, viewerName: 'Control room' })),
      { qos: 1 }
    )
    const bye = await eventually('the node\'s bye', () => fromNode.find((m) => m.sessionId === sessionId), 15_000)
    assert.equal(bye.type, 'bye')
    assert.equal(bye.type === 'bye' && bye.reason, 'failed')
    assert.match(bye.type === 'bye' ? bye.message ?? '' : '', /^the camera could not answer: .*SessionDescription/i)
    assert.ok(!fromNode.some((m) => m.sessionId === sessionId && m.type === 'answer'), 'no answer was sent')
    await waitForNodeState(page, 'connected')
    await waitForWatchers(page, 0)
  })

  await t.test('the next call works as the first did; the answer has every candidate and makes the node the DTLS server', async () => {
    const before = watcher.rtp.length
    const seen = fromNode.length
    watcher.home.watch(CAMERA)
    await waitFor(camera, (s) => s.matches({ active: 'connected' }), { timeout: 20_000 })
    const answer = fromNode.slice(seen).find((m) => m.type === 'answer')
    assert.ok(answer?.type === 'answer', 'the node answered')
    // No trickle on our protocol: the candidates are in the answer itself.
    assert.match(answer.sdp, /^a=candidate:.* typ host/m)
    assert.match(answer.sdp, /^a=setup:passive\r?$/m)
    assert.doesNotMatch(answer.sdp, /^a=setup:active/m)
    assert.match(answer.sdp, /^a=sendonly\r?$/m)
    // The watcher offers sound both ways; a camera node sends and plays none, and says so on the audio line.
    const audioLine = answer.sdp.split(/^m=/m).find((m) => m.startsWith('audio'))
    assert.ok(audioLine, 'the audio line is answered, not left out')
    assert.match(audioLine, /^a=inactive\r?$/m)
    await eventually('video frames again', () => watcher.rtp.slice(before).filter((p) => p.header.marker).length >= 10, 20_000)
    await waitForWatchers(page, 1)
    watcher.home.hangUp(CAMERA)
    await waitForWatchers(page, 0)
  })

  await t.test('a resident\'s page shows the camera node without door controls, and plays its video', async () => {
    const code = (await home.asOwner.invite({ kind: 'viewer', role: 'resident' })).code
    const resident = await openResident(`${home.base}/`, 'Hall phone', code)
    cleanup.push(() => resident.close())
    said.push(resident.console)
    const card = resident.page.getByTestId(`doorbell-${CAMERA}`)
    await card.waitFor({ timeout: 15_000 })
    assert.equal(await card.getByTestId('door-status').count(), 0, 'no lock text')
    await card.getByTestId('live-view').click()
    const video = await videoIsPlaying(resident.page)
    assert.ok(video.width > 0)
    assert.equal(await card.getByTestId('open-door').count(), 0, 'no open-door control')
    assert.equal(await card.getByTestId('door-status').count(), 0, 'no lock text in the call')
    await waitForWatchers(page, 1)
    await card.getByTestId('hang-up').click()
    await waitForWatchers(page, 0)
  })

  let offline = false
  let online = false
  cleanup.push(watcher.home.hub.on('presence', (p) => {
    if (p.deviceId !== CAMERA) return
    if (p.online) online = true
    else offline = true
  }))

  await t.test('the page closed: the node goes offline; opened again, it signs in with the pairing it kept', async () => {
    offline = false
    await node.stop()
    await eventually('the watcher to hear that the camera went offline', () => offline)
    online = false
    await node.restart()
    await eventually('the watcher to hear that the camera is back', () => online)
    assert.equal(await page.getByTestId('node-zone').textContent(), ZONE)
    watcher.home.watch(CAMERA)
    await waitFor(camera, (s) => s.matches({ active: 'connected' }), { timeout: 20_000 })
    await waitForWatchers(page, 1)
    watcher.home.hangUp(CAMERA)
    await waitForWatchers(page, 0)
  })

  await t.test('"Stop being a camera" forgets the pairing and takes the node offline', async () => {
    offline = false
    await page.getByTestId('node-stop').click()
    await page.getByTestId('node-stop-confirm').click()
    await page.getByTestId('node-pair').waitFor()
    assert.equal(await page.evaluate(() => localStorage.getItem('doorbell.cameraNode')), null)
    await eventually('the watcher to hear that the camera went offline', () => offline)
  })

  await t.test('a camera id other than the invite\'s is refused with what to check, and spends nothing; a browser without a camera says so, and publishes nothing', async () => {
    const bare = await openResident(`${home.base}/`, 'Bare laptop')
    cleanup.push(() => bare.close())
    said.push(bare.console)
    const other = await home.asOwner.invite({ kind: 'device', deviceId: 'bare-laptop', zones: [ZONE] })
    await bare.page.goto(new URL(`/camera${new URL(other.url).hash}`, home.base).href)
    await bare.page.getByTestId('node-name-input').fill('Bare laptop')
    await bare.page.getByTestId('node-id-input').fill('not-the-invited-id')
    await bare.page.getByTestId('node-pair-submit').click()
    await bare.page.getByTestId('node-error').waitFor()
    assert.match((await bare.page.getByTestId('node-error').textContent()) ?? '', /not valid.*Check that the camera id is the one in the owner's invite/)
    assert.equal(await bare.page.evaluate(() => localStorage.getItem('doorbell.cameraNode')), null)
    // The same code still works with the invited id (the default from the name).
    await bare.page.getByTestId('node-id-input').fill('bare-laptop')
    await bare.page.getByTestId('node-pair-submit').click()
    const problem = bare.page.getByTestId('node-camera-error')
    await problem.waitFor({ timeout: 15_000 })
    assert.match((await problem.textContent()) ?? '', /(not allowed to use the camera|No camera was found).*Try again/)
    assert.equal(await bare.page.getByTestId('node-status').getAttribute('data-state'), 'camera-error')
    assert.equal(await bare.page.getByTestId('node-watchers').count(), 0)
    // Paired (the code is spent), but it never signed in to the broker: no state, no presence.
    assert.ok(!home.hub.lines.some((l) => l.includes('client=device-bare-laptop')), 'the node without a camera stayed off the broker')
    assert.equal(await bare.page.getByTestId('node-retry').isVisible(), true)
  })
})
