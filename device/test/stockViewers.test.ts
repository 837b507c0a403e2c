import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { RTCPeerConnection } from 'werift'
import { KVS_PAYLOAD_MAX, memoryLogger, type DoorAttempt, type StockCommandReply } from '@doorbell/core'
import { LockControl, SimulatedLock } from '../src/index'
import type { ControlChannel, MediaPeers } from '../src/answering'
import { withoutDefaultStun } from '../src/peer/werift'
import { StockViewers, type StockAction } from '../src/paths/cloud/stockViewers'

/**
 * StockViewers with real werift peers on both sides: a "stock viewer" offers without its
 * candidates and trickles them, as the KVS SDK's examples do; the doorbell side is a werift peer
 * with no media (the media is weriftPeers', tested with the camera elsewhere).
 */

async function until (what: string, check: () => boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** The doorbell's side of a session: a werift peer answering the offer, its data channels handed over. */
const dataOnlyPeers: MediaPeers = {
  name: 'doorbell',
  async open (_session, events) {
    const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'] })
    pc.onDataChannel.subscribe((dc) => {
      const channel: ControlChannel = {
        label: dc.label,
        isOpen: () => dc.readyState === 'open',
        send: (text) => { dc.send(text) },
        onOpen: (listener) => { dc.stateChanged.subscribe((s) => { if (s === 'open') listener() }); if (dc.readyState === 'open') listener() },
        onMessage: (listener) => { dc.onMessage.subscribe((d) => { listener(d) }) }
      }
      events.channel(channel)
    })
    pc.connectionStateChange.subscribe((s) => { events.connectionState(s) })
    return {
      async answer (sdp) {
        await pc.setRemoteDescription({ type: 'offer', sdp })
        withoutDefaultStun(pc, [])
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription!.sdp
      },
      async addCandidate (c) { await pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined }) },
      close () { void pc.close() }
    }
  }
}

async function doorbell (t: { after: (f: () => void) => void }, acceptUnsignedOpenDoor: boolean, maxViewers?: number) {
  const printed: string[] = []
  const lock = new LockControl(new SimulatedLock((line) => { printed.push(line) }), 50, memoryLogger([], 'lock'))
  lock.start()
  await until('the lock', () => lock.state().status === 'locked')
  const audit: DoorAttempt[] = []
  const lines: string[] = []
  const sent: Array<{ viewerId: string, action: StockAction, payload: unknown }> = []
  const stock = new StockViewers({
    deviceId: 'front-door',
    peers: dataOnlyPeers,
    lock,
    audit: (a) => { audit.push(a) },
    acceptUnsignedOpenDoor,
    send: (viewerId, action, payload) => { sent.push({ viewerId, action, payload }); return true },
    log: memoryLogger(lines, 'stock'),
    ...(maxViewers !== undefined ? { maxViewers } : {})
  })
  t.after(() => { stock.stop(); lock.stop() })
  return { stock, printed, audit, lines, sent }
}

/** A stock viewer: offers before gathering, trickles every candidate to the doorbell, opens `commands`. */
async function stockViewer (t: { after: (f: () => void) => void }, d: Awaited<ReturnType<typeof doorbell>>, viewerId: string) {
  const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'] })
  t.after(() => { void pc.close() })
  const commands = pc.createDataChannel('commands')
  const replies: StockCommandReply[] = []
  commands.onMessage.subscribe((m) => { replies.push(JSON.parse(m.toString()) as StockCommandReply) })
  pc.onIceCandidate.subscribe((c) => { if (c) d.stock.candidate(viewerId, c.toJSON()) })
  const offer = await pc.createOffer()
  d.stock.offer(viewerId, { type: 'offer', sdp: offer.sdp })
  withoutDefaultStun(pc, [])
  await pc.setLocalDescription(offer)
  return { pc, commands, replies }
}

const answerFor = async (d: Awaited<ReturnType<typeof doorbell>>, viewerId: string): Promise<{ type: 'answer', sdp: string }> => {
  await until('the answer', () => d.sent.some((s) => s.viewerId === viewerId && s.action === 'SDP_ANSWER'))
  return d.sent.find((s) => s.viewerId === viewerId && s.action === 'SDP_ANSWER')!.payload as { type: 'answer', sdp: string }
}

describe('StockViewers: stock KVS viewers on the doorbell\'s channel', () => {
  test('a plain offer with trickled candidates is answered; an unsigned OPEN_DOOR is refused and audited; bad commands get errors, the call goes on', async (t) => {
    const d = await doorbell(t, false)
    const v = await stockViewer(t, d, 'aws-test-page')
    await v.pc.setRemoteDescription(await answerFor(d, 'aws-test-page'))
    await until('the commands channel open', () => v.commands.readyState === 'open')

    v.commands.send('{"command":"OPEN_DOOR"}')
    v.commands.send('open sesame')
    v.commands.send('{"command":"OPEN_DOOR","extra":1}')
    await until('three replies', () => v.replies.length >= 3)
    assert.deepEqual(v.replies.map((r) => r.result), ['refused', 'error', 'error'])
    assert.match(v.replies[0]!.message, /does not accept unsigned OPEN_DOOR/)
    assert.match(v.replies[1]!.message, /^not JSON/)
    assert.match(v.replies[2]!.message, /unknown command/)
    assert.deepEqual(d.printed.filter((l) => l === 'DOOR UNLOCKED'), [])
    assert.deepEqual(d.audit.map((a) => [a.outcome, a.reason, a.path, a.memberId, a.role, a.viewerName]), [['denied', 'unsigned', 'cloud', null, null, 'KVS viewer aws-test-page']])

    // A malformed candidate: dropped with a warning; the channel still answers.
    d.stock.candidate('aws-test-page', { candidate: 'candidate:nonsense', sdpMid: '0' })
    d.stock.candidate('aws-test-page', 'not an object')
    assert.equal(d.lines.filter((l) => l.includes('dropped a malformed ICE candidate')).length, 2)
    v.commands.send('{"command":"OPEN_DOOR"}')
    await until('a fourth reply', () => v.replies.length >= 4)
    assert.equal(v.replies[3]!.result, 'refused')
    assert.equal(d.stock.count, 1)
  })

  test('with the owner\'s acceptUnsignedOpenDoor the door opens, audited as unsigned', async (t) => {
    const d = await doorbell(t, true)
    const v = await stockViewer(t, d, 'seed-viewer')
    await v.pc.setRemoteDescription(await answerFor(d, 'seed-viewer'))
    await until('the commands channel open', () => v.commands.readyState === 'open')
    v.commands.send('{"command":"OPEN_DOOR"}')
    await until('the reply', () => v.replies.length >= 1)
    assert.deepEqual(v.replies[0], { result: 'opened', message: 'DOOR UNLOCKED' })
    assert.equal(d.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1)
    assert.deepEqual(d.audit.map((a) => [a.outcome, a.reason, a.memberId]), [['allowed', 'unsigned', null]])
  })

  test('bad offers change nothing: over 10 KB, not an offer, no sender; viewers beyond the limit are refused', async (t) => {
    const d = await doorbell(t, false, 1)
    d.stock.offer('big', { type: 'offer', sdp: `v=0\r\n${'a=x:'.padEnd(100, '0')}\r\n`.repeat(Math.ceil(KVS_PAYLOAD_MAX / 100)) })
    d.stock.offer('answerer', { type: 'answer', sdp: 'v=0\r\n' })
    d.stock.offer('', { type: 'offer', sdp: 'v=0\r\n' })
    d.stock.offer('nosdp', { type: 'offer' })
    assert.equal(d.stock.count, 0)
    assert.equal(d.sent.length, 0)
    assert.ok(d.lines.some((l) => l.includes('over KVS\'s 10 KB payload limit') && l.includes('big')), d.lines.join('\n'))
    assert.equal(d.lines.filter((l) => l.includes('not an SDP offer')).length, 2)

    await stockViewer(t, d, 'first')
    await answerFor(d, 'first')
    await stockViewer(t, d, 'second')
    assert.equal(d.stock.count, 1)
    assert.ok(d.lines.some((l) => l.includes('KVS allows 10 viewers per channel') && l.includes('second')))
    assert.ok(!d.sent.some((s) => s.viewerId === 'second'))
  })
})
