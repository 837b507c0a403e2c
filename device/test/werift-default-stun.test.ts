import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RTCPeerConnection } from 'werift'
import { createPeerConnection, withoutDefaultStun } from '../src/peer/werift'

/**
 * Regression: werift adds stun.l.google.com:19302 when no STUN server is configured, and on
 * a LAN without internet gathering then waits ~5 s for it (FIELD-NOTES.md). The device must
 * gather host candidates only, and never look the public server up.
 */
async function offerFromViewer (): Promise<{ viewer: RTCPeerConnection, sdp: string }> {
  const viewer = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'] })
  viewer.createDataChannel('control')
  viewer.addTransceiver('video', { direction: 'recvonly' })
  const offer = await viewer.createOffer()
  withoutDefaultStun(viewer, []) // the test's own viewer must not stall either
  await viewer.setLocalDescription(offer)
  return { viewer, sdp: viewer.localDescription!.sdp }
}

test('with no STUN server configured, the device clears werift\'s public default before gathering', async (t) => {
  const { viewer, sdp } = await offerFromViewer()
  const device = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
  t.after(async () => { await device.close(); await viewer.close() })
  await device.setRemoteDescription({ type: 'offer', sdp })
  const before = device.iceTransports.map((tr) => (tr.connection as { stunServer?: unknown }).stunServer)
  assert.ok(before.some((s) => Array.isArray(s) && s[0] === 'stun.l.google.com'), 'werift still defaults to the public server (if not, this workaround can go)')

  withoutDefaultStun(device, [])
  assert.ok(device.iceTransports.every((tr) => (tr.connection as { stunServer?: unknown }).stunServer === undefined))
  await device.setLocalDescription(await device.createAnswer())
  const answer = device.localDescription!.sdp
  assert.match(answer, /a=candidate:.* 127\.0\.0\.1 .* typ host/)
  assert.doesNotMatch(answer, /typ srflx/, 'no server-reflexive candidate: nothing was asked of a STUN server')
})

test('a STUN server the owner configured is kept', async (t) => {
  const { viewer, sdp } = await offerFromViewer()
  const iceServers = [{ urls: 'stun:127.0.0.1:3478' }]
  const device = createPeerConnection({ codec: 'vp8', iceServers, iceAdditionalHostAddresses: ['127.0.0.1'] })
  t.after(async () => { await device.close(); await viewer.close() })
  await device.setRemoteDescription({ type: 'offer', sdp })
  withoutDefaultStun(device, iceServers)
  assert.ok(device.iceTransports.every((tr) => {
    const s = (tr.connection as { stunServer?: unknown }).stunServer
    return Array.isArray(s) && s[0] === '127.0.0.1' && s[1] === 3478
  }))
})
