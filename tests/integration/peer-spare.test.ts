import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RTCPeerConnection } from 'werift'
import { PeerSpare, type PeerConnectionLike } from '@doorbell/viewer/lib'
import { opusCodec, videoCodec, withoutDefaultStun } from '@doorbell/device'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { nodeViewer } from '../src/nodeViewer'

/**
 * Issue 21's ring → live frame: a screen keeps one call's connection made and gathered before any
 * ring (viewer/src/lib/peerSpare.ts), so a preview's offer leaves at once. Real werift peers, a real
 * hub and doorbell: the preview's offer is the spare's (its ICE credentials), video comes, the
 * spare is used once and made again once its call is past its Answer or over (never during a
 * preview, where it would fall on the Answer); a call needing ICE servers, or a spare past its age, gathers anew.
 */

const werift = (iceServers: Array<{ urls: string }> = []): PeerConnectionLike => new RTCPeerConnection({
  iceServers,
  iceAdditionalHostAddresses: ['127.0.0.1'],
  bundlePolicy: 'max-bundle',
  codecs: { video: [videoCodec('h264')], audio: [opusCodec()] }
}) as unknown as PeerConnectionLike
const clearStun = (pc: PeerConnectionLike): void => { withoutDefaultStun(pc as unknown as RTCPeerConnection, (pc as unknown as RTCPeerConnection).config.iceServers) }
const ufrag = (sdp: string): string | undefined => /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1]

test('a spare is gathered before it is needed, taken once, made again when its call says so; not for a call with ICE servers, not past its age', { timeout: 60_000 }, async (t) => {
  let made = 0
  let clock = 0
  const spare = new PeerSpare({ createPeerConnection: () => { made++; return werift() }, beforeGather: clearStun, refillAfterMs: 50, maxAgeMs: 60_000, now: () => clock })
  t.after(() => { spare.close() })
  await eventually('the spare gathered', () => spare.isReady, 20_000)
  assert.equal(spare.take([{ urls: 'turn:turn.example:3478' }]), null, 'a call with ICE servers (the cloud path\'s TURN) gathers its own')
  assert.ok(spare.isReady, 'and the spare stays')
  const taken = spare.take([])
  assert.ok(taken, 'taken')
  const sdp = taken.peer.localDescription?.sdp ?? ''
  assert.match(sdp, /^a=candidate:/m, 'its offer holds its candidates')
  assert.equal(taken.peer.iceGatheringState, 'complete')
  assert.equal(spare.take([]), null, 'used once')
  // Not made again until the call that took it says so (callSession: at a preview's Answer or end).
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal(made, 1, 'no new spare until the call says so')
  assert.equal(spare.isReady, false)
  await taken.peer.close()
  spare.makeNext()
  await eventually('made again once the call says so', () => spare.isReady, 20_000)
  assert.equal(made, 2)
  clock += 60_001
  assert.equal(spare.take([]), null, 'too old: not used (its candidates may be stale)')
  spare.close()
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(spare.isReady, false, 'closed: none is made again')
})

test('a preview on a screen with a spare sends the spare\'s offer, gets video, and the next ring gets a new one', { timeout: 120_000 }, async (t) => {
  // Long enough that the preview is still on 1.5 s after its video, on a loaded machine.
  const lan = await startLan({ ringTimeoutSeconds: 12 })
  t.after(() => lan.stop())
  const kitchen = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'resident' })
  const viewer = nodeViewer(lan.hub.mqttUrl, kitchen, 'h264', { preview: true, spare: true })
  t.after(() => viewer.close())
  const spare = viewer.home.spare!
  await eventually('on the hub, its spare gathered', () => viewer.home.hub.connected && spare.isReady, 20_000)
  const offers: string[] = []
  const send = viewer.home.paths.sendToDevice.bind(viewer.home.paths)
  viewer.home.paths.sendToDevice = (deviceId, sessionId, m) => { if (m.type === 'offer') offers.push(m.sdp); send(deviceId, sessionId, m) }
  const previews = (): number => Object.values(lan.device.call.getSnapshot().context.sessions).filter((s) => s.preview).length
  const ringOnce = async (): Promise<string> => {
    const before = viewer.rtp.length
    lan.button.press()
    await eventually('a live preview with video', () => previews() === 1 && viewer.rtp.length > before + 10, 30_000)
    const gathered = performance.getEntriesByName('doorbell:gathered').at(-1) as PerformanceMark | undefined
    assert.equal((gathered?.detail as { spare?: boolean } | undefined)?.spare, true, 'the preview took the spare: no gathering at the ring')
    // The resident may press Answer at any moment of the preview: no spare is made then (it was, a second after the ring).
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(previews(), 1, 'still ringing, the preview on')
    assert.equal(spare.isReady, false, 'no new spare while the preview is on')
    // Missed after 12 s: the preview ends with the ring.
    const card = viewer.home.doorbells.get('front-door')!
    await eventually('the ring over, the preview ended', () => previews() === 0 && lan.device.call.getSnapshot().matches('idle') && !card.getSnapshot().matches('incoming'), 20_000)
    return offers.at(-1)!
  }
  const first = await ringOnce()
  assert.equal(offers.length, 1)
  assert.ok(ufrag(first), 'the offer has ICE credentials')
  await eventually('a new spare', () => spare.isReady, 20_000)
  const second = await ringOnce()
  assert.equal(offers.length, 2)
  assert.notEqual(ufrag(second), ufrag(first), 'each call its own connection: the spare is never used twice')
})
