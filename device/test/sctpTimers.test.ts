import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RTCPeerConnection } from 'werift'
import { WEBRTC_RTO, webrtcRto } from '../src/peer/sctpTimers'
import { weriftPeers } from '../src/peer/session'
import { withoutDefaultStun } from '../src/peer/werift'
import type { Camera } from '../src/camera/camera'
import type { Microphone } from '../src/audio/microphone'
import type { Speaker } from '../src/audio/speaker'

/**
 * The doorbell's data channel sends a lost message again after WebRTC's retransmission timeout
 * (dcsctp's 220-800 ms, from the measured round trip), not werift's 3 s before the first sample
 * and 1 s at least after it (peer/sctpTimers.ts). Nothing here is timed: the association's
 * timeout is read where werift keeps it, as its T3 timer uses it.
 */

interface Association { rto: number, srtt?: number, rttvar?: number, updateRto: (r: number) => void }

/** A real werift association (a peer with a data channel, its offer applied, not connected). */
async function association (): Promise<{ a: Association, close: () => Promise<void> }> {
  const viewer = new RTCPeerConnection({ iceServers: [] })
  viewer.createDataChannel('control')
  await viewer.setLocalDescription(await viewer.createOffer())
  const pc = new RTCPeerConnection({ iceServers: [] })
  await pc.setRemoteDescription(viewer.localDescription!)
  const a = (pc as unknown as { sctpTransport?: { sctp?: Association } }).sctpTransport?.sctp
  assert.ok(a !== undefined, 'the offer made an association')
  return { a, close: async () => { await pc.close(); await viewer.close() } }
}

test('werift\'s association as it is: 3 s before a round trip is measured, 1 s at least after (what this bounds)', async () => {
  const { a, close } = await association()
  try {
    assert.equal(a.rto, 3)
    a.updateRto(0.002)
    assert.equal(a.rto, 1)
  } finally { await close() }
})

test('with WebRTC\'s bounds: 500 ms before the first sample, then the round-trip estimate within 220-800 ms', async () => {
  const { a, close } = await association()
  try {
    assert.equal(webrtcRto(a), true)
    assert.equal(webrtcRto(a), true, 'again: nothing changes twice')
    assert.equal(a.rto, WEBRTC_RTO.initial)
    a.updateRto(0.002) // a LAN's round trip: the estimate (2 + 4 × 1 ms) is under the floor
    assert.equal(a.rto, WEBRTC_RTO.min)
    a.updateRto(0.3) // a screen that held its acknowledgement back: srtt and rttvar grow
    assert.ok(a.rto > WEBRTC_RTO.min && a.rto < WEBRTC_RTO.max, `${a.rto}`)
    assert.equal(a.rto, a.srtt! + 4 * a.rttvar!, 'the estimate, unchanged, between the bounds')
    for (let i = 0; i < 5; i++) a.updateRto(3) // a stalled link: capped
    assert.equal(a.rto, WEBRTC_RTO.max)
  } finally { await close() }
})

test('an association not shaped as werift\'s is left as it is', () => {
  for (const other of [undefined, null, 1, {}, { rto: 1 }, { updateRto: () => {} }, { rto: '1', updateRto: () => {} }]) {
    const before = JSON.stringify(other)
    assert.equal(webrtcRto(other), false, `${before}`)
    assert.equal(JSON.stringify(other), before)
  }
})

test('the doorbell\'s peers answer with the association\'s timeout bounded', async (t) => {
  // The doorbell's own peer connection is werift's: seen as it takes the viewer's offer.
  const made: RTCPeerConnection[] = []
  const setRemote = RTCPeerConnection.prototype.setRemoteDescription
  RTCPeerConnection.prototype.setRemoteDescription = async function (this: RTCPeerConnection, ...args: Parameters<typeof setRemote>) {
    made.push(this)
    return await setRemote.apply(this, args)
  }
  t.after(() => { RTCPeerConnection.prototype.setRemoteDescription = setRemote })
  const viewer = new RTCPeerConnection({ iceServers: [] })
  t.after(() => viewer.close())
  viewer.createDataChannel('control')
  await viewer.setLocalDescription(await viewer.createOffer())
  withoutDefaultStun(viewer, [])
  const camera = { codec: 'h264', subscribe: () => () => {} } as unknown as Camera
  const microphone = { subscribe: () => () => {} } as unknown as Microphone
  const speaker = { enabled: false, play: () => {} } as unknown as Speaker
  const peers = weriftPeers({ camera, microphone, speaker, ice: async () => ({ iceServers: [], iceTransportPolicy: 'all' }), iceAdditionalHostAddresses: [], keepEarlyDtls: false })
  const setup: string[] = []
  const peer = await peers.open({ sessionId: 's1', viewerId: 'v1', audio: false, preview: false, path: null, mayTalk: () => false } as unknown as Parameters<typeof peers.open>[0], { connectionState: () => {}, channel: () => {}, setup: (step) => { setup.push(step) } })
  t.after(() => peer.close())
  await peer.answer(viewer.localDescription!.sdp)
  const doorbell = made.filter((pc) => pc !== viewer)
  assert.equal(doorbell.length, 1)
  const a = (doorbell[0] as unknown as { sctpTransport?: { sctp?: Association } }).sctpTransport?.sctp
  assert.equal(a?.rto, WEBRTC_RTO.initial)
  a!.updateRto(0.002)
  assert.equal(a!.rto, WEBRTC_RTO.min)
  assert.ok(!setup.includes('sctp timeout not bounded'), setup.join(', '))
})
