import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { RTCPeerConnection } from 'werift'
import { keepRecordNumbers, keepSocketRecordNumbers, uniqueRecordNumbers } from '../src/peer/dtlsRecordNumbers'
import { asDtlsServer } from '../src/peer/session'
import { peerSockets } from '../src/peer/promptSend'
import { createPeerConnection, withoutDefaultStun } from '../src/peer/werift'
import type { ControlChannel } from '../src/answering'
import { openSession, silentPeers } from './silentPeers'

/**
 * Every DTLS record the doorbell sends carries a number of its own (RFC 6347 §4.1): werift numbers
 * its Finished and then the call's data from 1 again in the same epoch, and a browser drops the data
 * record with the Finished's number as a replay (peer/dtlsRecordNumbers.ts).
 */

interface DtlsRecord { type: number, epoch: number, seq: number }

/** Every DTLS record in one datagram (RFC 6347 §4.1: type, version, epoch, sequence number, length); none if it is not DTLS (RFC 7983). */
function recordsOf (d: Buffer): DtlsRecord[] {
  if (d.length < 13 || d[0]! < 20 || d[0]! > 63) return []
  const out: DtlsRecord[] = []
  for (let i = 0; i + 13 <= d.length; i += 13 + d.readUInt16BE(i + 11)) out.push({ type: d[i]!, epoch: d.readUInt16BE(i + 3), seq: d.readUIntBE(i + 5, 6) })
  return out
}

/** The (epoch, sequence number) pairs that came more than once. */
function repeated (records: DtlsRecord[]): string[] {
  const seen = new Set<string>()
  const twice: string[] = []
  for (const r of records) {
    const key = `epoch ${r.epoch} seq ${r.seq} (type ${r.type})`
    const id = `${r.epoch}/${r.seq}`
    if (seen.has(id)) twice.push(key)
    seen.add(id)
  }
  return twice
}

/**
 * A werift viewer with a control channel, its offer made, and every DTLS record its sockets
 * receive from the doorbell (from the first hello on).
 */
async function viewer (t: TestContext) {
  const pc = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle' })
  t.after(() => pc.close())
  const dc = pc.createDataChannel('control')
  await pc.setLocalDescription(await pc.createOffer())
  withoutDefaultStun(pc, [])
  if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete')
  const received: DtlsRecord[] = []
  for (const socket of peerSockets(pc)) socket.prependListener('message', (data: Buffer) => { received.push(...recordsOf(data)) })
  const replies: string[] = []
  dc.onMessage.subscribe((m) => { replies.push(m.toString()) })
  const offer = pc.localDescription!.sdp
  /** Sends `n` messages one after the other, each once the last two replies (the echo's two) are in. */
  const talk = async (n: number): Promise<void> => {
    if (dc.readyState !== 'open') await dc.stateChanged.watch((s) => s === 'open', 10_000)
    for (let i = 0; i < n; i++) {
      const want = replies.length + 2
      dc.send(`open ${i}`)
      const deadline = Date.now() + 10_000
      while (replies.length < want && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
      assert.equal(replies.length, want, `reply ${i} did not arrive`)
    }
  }
  return { pc, offer, received, replies, talk }
}

/** Each message answered with two (as the door's reports come): enough data records to pass the Finished's number. */
const echoTwice = (send: (text: string) => void, m: string): void => { send(`ack ${m}`); send(`done ${m}`) }

test('the counter: reset in epoch 0 (after a HelloVerifyRequest) as werift does; once epoch 1 began, the reset after the Finished is not made', () => {
  const context = { recordSequenceNumber: 0, epoch: 0 }
  assert.equal(keepRecordNumbers(context), true)
  assert.equal(keepRecordNumbers(context), true, 'again: nothing changes twice')
  context.recordSequenceNumber++
  context.recordSequenceNumber = 0
  assert.equal(context.recordSequenceNumber, 0, 'epoch 0: the reset stays')
  for (let i = 0; i < 6; i++) ++context.recordSequenceNumber
  context.epoch = 1
  const finished = ++context.recordSequenceNumber
  context.recordSequenceNumber = 0
  assert.equal(context.recordSequenceNumber, finished, 'epoch 1: the Finished\'s number is where the data carries on from')
  assert.equal(++context.recordSequenceNumber, finished + 1)
  context.recordSequenceNumber = 42
  assert.equal(context.recordSequenceNumber, 42, 'any other value is taken')
})

test('a context not shaped as werift\'s is left as it is', () => {
  for (const other of [undefined, null, 3, {}, { recordSequenceNumber: 0 }, { epoch: 0 }, { recordSequenceNumber: '0', epoch: 0 }]) {
    const before = JSON.stringify(other)
    assert.equal(keepRecordNumbers(other), false, `${before}`)
    assert.equal(JSON.stringify(other), before)
  }
  const frozen = Object.freeze({ recordSequenceNumber: 0, epoch: 0 })
  assert.equal(keepRecordNumbers(frozen), false, 'a counter that cannot be written is not werift\'s')
})

test('a socket\'s context made later (werift\'s renegotiation, when a viewer starts the handshake again) keeps its numbers too', () => {
  const socket: { dtls: { recordSequenceNumber: number, epoch: number } } = { dtls: { recordSequenceNumber: 0, epoch: 0 } }
  assert.equal(keepSocketRecordNumbers(socket), true)
  assert.equal(keepSocketRecordNumbers(socket), true, 'again: nothing changes twice')
  socket.dtls = { recordSequenceNumber: 0, epoch: 0 }
  const renewed = socket.dtls
  for (let i = 0; i < 7; i++) ++renewed.recordSequenceNumber
  renewed.epoch = 1
  const finished = ++renewed.recordSequenceNumber
  renewed.recordSequenceNumber = 0
  assert.equal(socket.dtls.recordSequenceNumber, finished, 'the new context carries on from its Finished')
  for (const other of [null, {}, { dtls: {} }, Object.freeze({ dtls: { recordSequenceNumber: 0, epoch: 0 } })]) assert.equal(keepSocketRecordNumbers(other), false, JSON.stringify(other))
})

/** A plain werift peer answering the viewer as DTLS server or client, echoing twice; `unique`: with uniqueRecordNumbers. */
async function werift (t: TestContext, v: Awaited<ReturnType<typeof viewer>>, o: { role: 'server' | 'client', unique: boolean }): Promise<void> {
  const doorbell = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
  t.after(() => doorbell.close())
  doorbell.onDataChannel.subscribe((dc) => { dc.onMessage.subscribe((m) => { echoTwice((text) => { dc.send(text) }, m.toString()) }) })
  await doorbell.setRemoteDescription({ type: 'offer', sdp: v.offer })
  if (o.unique) uniqueRecordNumbers(doorbell.dtlsTransports[0]!)
  withoutDefaultStun(doorbell, [])
  const answer = await doorbell.createAnswer()
  await doorbell.setLocalDescription(o.role === 'server' ? asDtlsServer(answer) : answer)
  assert.match(doorbell.localDescription!.sdp, o.role === 'server' ? /a=setup:passive/ : /a=setup:active/)
  await v.pc.setRemoteDescription(doorbell.localDescription!)
  await v.talk(12)
}

for (const role of ['server', 'client'] as const) {
  test(`werift as it is, as DTLS ${role}: a data record repeats its Finished's number (what this works around; if this fails, werift has fixed it)`, async (t) => {
    const v = await viewer(t)
    await werift(t, v, { role, unique: false })
    const finished = v.received.find((r) => r.type === 22 && r.epoch === 1)
    assert.ok(finished !== undefined && finished.seq > 0, `werift's Finished: ${JSON.stringify(finished)}`)
    assert.deepEqual(repeated(v.received), [`epoch 1 seq ${finished.seq} (type 23)`])
  })

  test(`with uniqueRecordNumbers, as DTLS ${role}: every record has a number of its own`, async (t) => {
    const v = await viewer(t)
    await werift(t, v, { role, unique: true })
    assert.ok(v.received.filter((r) => r.type === 23).length > 30)
    assert.deepEqual(repeated(v.received), [])
  })
}

test('the doorbell\'s peers (weriftPeers, the DTLS server): every record the viewer gets has a number of its own, over a call\'s many messages', async (t) => {
  const v = await viewer(t)
  const peers = silentPeers({ iceAdditionalHostAddresses: ['127.0.0.1'] })
  const setup: string[] = []
  const channel = (c: ControlChannel): void => { c.onMessage((m) => { echoTwice(c.send, m.toString()) }) }
  const peer = await openSession(peers, { channel, setup: (step) => { setup.push(step) } })
  t.after(() => peer.close())
  const answer = await peer.answer(v.offer)
  assert.match(answer, /a=setup:passive/)
  await v.pc.setRemoteDescription({ type: 'answer', sdp: answer })
  await v.talk(12)
  const data = v.received.filter((r) => r.type === 23)
  assert.ok(data.length > 30, `${data.length} data records: past the Finished's number`)
  assert.ok(v.received.some((r) => r.type === 22 && r.epoch === 1), 'the Finished was seen')
  assert.deepEqual(repeated(v.received), [])
  assert.deepEqual(v.replies.slice(0, 4), ['ack open 0', 'done open 0', 'ack open 1', 'done open 1'])
  assert.ok(!setup.includes('dtls record numbers not kept'), setup.join(', '))
})

test('a call closed before DTLS starts leaves its transport alone', () => {
  const listeners: Array<(s: string) => void> = []
  const transport = { dtls: undefined, onStateChange: { subscribe: (f: (s: string) => void) => { listeners.push(f); return { unSubscribe: () => { listeners.splice(listeners.indexOf(f), 1) } } } } }
  const stop = uniqueRecordNumbers(transport)
  assert.equal(listeners.length, 1)
  stop()
  assert.equal(listeners.length, 0)
})
