import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RTCPeerConnection } from 'werift'
import { WEBRTC_RTO, earlyRetransmit, webrtcRto } from '../src/peer/sctpRecovery'
import { withoutDefaultStun } from '../src/peer/werift'
import { peerSockets } from '../src/peer/promptSend'
import type { ControlChannel } from '../src/answering'
import { openSession, silentPeers } from './silentPeers'

/**
 * The doorbell's data channel sends a lost message again at the first report of it when few are in
 * flight, and otherwise after WebRTC's retransmission timeout (dcsctp's 220-800 ms, from the
 * measured round trip), not werift's three reports and 3 s before the first sample, 1 s at least
 * after it (peer/sctpRecovery.ts). Nothing here is timed: the association's timeout is read where
 * werift keeps it, as its T3 timer uses it, and a resend is told apart from the timer's by the timer.
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
  for (const other of [undefined, null, 1, {}, { rto: 1 }, { updateRto: () => {} }, { rto: '1', updateRto: () => {} }, { sentQueue: [], outboundQueue: [] }, { sentQueue: {}, outboundQueue: [], receiveSackChunk: async () => {} }]) {
    const before = JSON.stringify(other)
    assert.equal(webrtcRto(other), false, `${before}`)
    assert.equal(earlyRetransmit(other), false, `${before}`)
    assert.equal(JSON.stringify(other), before)
  }
})

test('early retransmit counts a SACK\'s report of a missing chunk as enough when few are in flight (RFC 5827), and only then', async () => {
  type C = { tsn: number, acked?: boolean, retransmit?: boolean, misses: number }
  const seen: unknown[] = []
  const association = (sent: C[], waiting = 0) => ({ sentQueue: sent, outboundQueue: new Array(waiting).fill({}), lastSackedTsn: 99, receiveSackChunk: async (sack: unknown) => { seen.push(sack) } })
  // Two in flight, the first reported missing (the second is in a gap block): one report is enough (3 - 1 counted before werift adds it).
  const two = association([{ tsn: 100, misses: 0 }, { tsn: 101, misses: 0 }])
  assert.equal(earlyRetransmit(two), true)
  assert.equal(earlyRetransmit(two), true, 'again: nothing changes twice')
  await two.receiveSackChunk({ cumulativeTsn: 99, gaps: [[2, 2]] })
  assert.deepEqual(two.sentQueue.map((c) => c.misses), [2, 0])
  assert.equal(seen.length, 1, 'werift still reads the SACK')
  // Three in flight, the first missing: two reports (3 - 2 counted before).
  const three = association([{ tsn: 100, misses: 0 }, { tsn: 101, misses: 0 }, { tsn: 102, misses: 0 }])
  earlyRetransmit(three)
  await three.receiveSackChunk({ cumulativeTsn: 99, gaps: [[2, 3]] })
  assert.deepEqual(three.sentQueue.map((c) => c.misses), [1, 0, 0])
  // Four in flight, more waiting to be sent, no gap, a stale SACK, TSNs across the wrap: werift's own rule.
  const four = association([{ tsn: 100, misses: 0 }, { tsn: 101, misses: 0 }, { tsn: 102, misses: 0 }, { tsn: 103, misses: 0 }])
  earlyRetransmit(four)
  await four.receiveSackChunk({ cumulativeTsn: 99, gaps: [[2, 4]] })
  assert.deepEqual(four.sentQueue.map((c) => c.misses), [0, 0, 0, 0])
  const queued = association([{ tsn: 100, misses: 0 }, { tsn: 101, misses: 0 }], 1)
  earlyRetransmit(queued)
  await queued.receiveSackChunk({ cumulativeTsn: 99, gaps: [[2, 2]] })
  assert.deepEqual(queued.sentQueue.map((c) => c.misses), [0, 0], 'more to send: its acknowledgements will come')
  const noGap = association([{ tsn: 100, misses: 0 }])
  earlyRetransmit(noGap)
  await noGap.receiveSackChunk({ cumulativeTsn: 99, gaps: [] })
  assert.deepEqual(noGap.sentQueue.map((c) => c.misses), [0])
  const stale = association([{ tsn: 100, misses: 0 }, { tsn: 101, misses: 0 }])
  earlyRetransmit(stale)
  await stale.receiveSackChunk({ cumulativeTsn: 98, gaps: [[3, 3]] })
  assert.deepEqual(stale.sentQueue.map((c) => c.misses), [0, 0], 'a SACK older than the last is werift\'s to ignore')
  const wrap = { ...association([{ tsn: 0xffffffff, misses: 0 }, { tsn: 0, misses: 0 }]), lastSackedTsn: 0xfffffffe }
  earlyRetransmit(wrap)
  await wrap.receiveSackChunk({ cumulativeTsn: 0xfffffffe, gaps: [[2, 2]] })
  assert.deepEqual(wrap.sentQueue.map((c) => c.misses), [2, 0], 'serial numbers past 2^32 - 1')
})

test('the doorbell\'s peers: the timeout bounded, and a reply lost on the way resent at the viewer\'s first report, not on the timer', async (t) => {
  // The doorbell's own peer connection is werift's: seen as it takes the viewer's offer.
  const made: RTCPeerConnection[] = []
  const setRemote = RTCPeerConnection.prototype.setRemoteDescription
  RTCPeerConnection.prototype.setRemoteDescription = async function (this: RTCPeerConnection, ...args: Parameters<typeof setRemote>) {
    made.push(this)
    return await setRemote.apply(this, args)
  }
  t.after(() => { RTCPeerConnection.prototype.setRemoteDescription = setRemote })
  const viewer = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle' })
  t.after(() => viewer.close())
  const dc = viewer.createDataChannel('control')
  await viewer.setLocalDescription(await viewer.createOffer())
  withoutDefaultStun(viewer, [])
  const peers = silentPeers({ iceAdditionalHostAddresses: ['127.0.0.1'] })
  const setup: string[] = []
  // The door's way: two answers to each message.
  let dropNext = false
  const channel = (c: ControlChannel): void => { c.onMessage((m) => { if (m.toString() === 'open 3') dropNext = true; c.send(`ack ${m.toString()}`); setImmediate(() => { c.send(`done ${m.toString()}`) }) }) }
  const peer = await openSession(peers, { channel, setup: (step) => { setup.push(step) } })
  t.after(() => peer.close())
  const answer = await peer.answer(viewer.localDescription!.sdp)
  const doorbell = made.filter((pc) => pc !== viewer)
  assert.equal(doorbell.length, 1)
  const a = (doorbell[0] as unknown as { sctpTransport?: { sctp?: Association & { timer3Expired: () => void } } }).sctpTransport!.sctp!
  assert.equal(a.rto, WEBRTC_RTO.initial)
  assert.ok(!setup.includes('sctp recovery not changed'), setup.join(', '))
  // The loss: the doorbell's first DTLS application record after 'open 3' came in (its reply) is not sent.
  for (const socket of peerSockets(doorbell[0]!)) {
    const send = socket.send.bind(socket) as (...x: unknown[]) => void
    ;(socket as unknown as { send: (...x: unknown[]) => void }).send = (...x: unknown[]) => {
      if (dropNext && (x[0] as Buffer)[0] === 23) { dropNext = false; return }
      send(...x)
    }
  }
  let timeouts = 0
  const expired = a.timer3Expired
  a.timer3Expired = () => { timeouts++; expired() }
  await viewer.setRemoteDescription({ type: 'answer', sdp: answer })
  if (dc.readyState !== 'open') await dc.stateChanged.watch((s) => s === 'open', 10_000)
  const replies: string[] = []
  dc.onMessage.subscribe((m) => { replies.push(m.toString()) })
  for (let i = 0; i < 6; i++) {
    const want = replies.length + 2
    dc.send(`open ${i}`)
    const deadline = Date.now() + 10_000
    while (replies.length < want && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
  }
  assert.equal(dropNext, false, 'a reply was lost on the way')
  assert.deepEqual(replies.slice(6, 8), ['ack open 3', 'done open 3'], 'in order, the lost one resent')
  assert.equal(replies.length, 12)
  assert.equal(timeouts, 0, 'resent at the viewer\'s report of the gap, not by the timer')
  assert.ok(a.rto >= WEBRTC_RTO.min && a.rto <= WEBRTC_RTO.max, `${a.rto}`)
})
