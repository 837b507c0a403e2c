/**
 * The signaling-transport compliance suite (core/src/transport.ts): the behaviour every path must
 * have, run against each of them with real parts (Aedes + mqtt.js; libp2p over webrtc-direct).
 * A new transport (the cloud's) gets its own `TransportPair` and runs the same suite.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { CallRecord, DeviceState, DeviceTransport, RingEvent, SignalToDevice, SignalToViewer, SnapshotEvent, ViewerTransport } from '@doorbell/core'
import { eventually } from './harness'

export const HOME = 'home'
export const DEVICE = 'front-door'
export const VIEWER = 'v-kitchen'

export interface TransportPair {
  device: DeviceTransport
  viewer: ViewerTransport
  /** The viewer's grant, signed by the home, that every offer carries (transports pass it on; the device checks it). */
  credential: string
  /** Raw bytes into the device, as a broken or hostile viewer would send them on this path. */
  injectToDevice: (raw: string | Uint8Array) => Promise<void>
  /** Raw bytes into the viewer, as a broken or hostile device (`claimed` says whose) would send them. */
  injectToViewer: (raw: string | Uint8Array) => Promise<void>
  close: () => Promise<void>
}

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'

export const ring = (over: Partial<RingEvent> = {}): RingEvent => ({ type: 'ring', deviceId: DEVICE, deviceName: 'Front door', ringId: 'r1', at: Date.now(), count: 1, ...over })
export const state = (at: number): DeviceState => ({
  deviceId: DEVICE,
  deviceName: 'Front door',
  call: { status: 'idle', ringId: null, since: 0 },
  participants: [],
  lock: { status: 'locked', relockAt: null, version: at, boot: 'b1', error: null },
  lastRing: null,
  at
})
const record = (): CallRecord => ({ deviceId: DEVICE, ringId: 'r1', startedAt: 1000, endedAt: 2000, outcome: 'missed', answeredBy: [], unlocks: [] })
// The proof travels as the credential does: opaque to the path (the device's DoorGuard checks both).
const offerWith = (sessionId: string, credential: string): SignalToDevice => ({ type: 'offer', sessionId, viewerId: VIEWER, viewerName: 'Kitchen', sdp: SDP, credential, proof: credential })
const answer = (sessionId: string): SignalToViewer => ({ type: 'answer', sessionId, sdp: SDP })

const settle = async (ms = 300): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Both ends connected and the viewer hearing the device (a probe state went through). */
export async function ready (pair: TransportPair): Promise<void> {
  let seen = false
  const off = pair.viewer.on('state', () => { seen = true })
  await eventually('the viewer to hear the device', () => {
    if (!seen) pair.device.publishState(state(1))
    return seen
  }, 15_000)
  off()
}

export function transportCompliance (name: string, makePair: () => Promise<TransportPair>): void {
  describe(`signaling transport compliance: ${name}`, () => {
    let pair: TransportPair
    const offer = (sessionId: string): SignalToDevice => offerWith(sessionId, pair.credential)
    before(async () => {
      pair = await makePair()
      await ready(pair)
    })
    after(async () => { await pair?.close() })

    test('a ring reaches the viewer intact', async () => {
      const got: RingEvent[] = []
      const off = pair.viewer.on('ring', (r) => { got.push(r) })
      const sent = ring({ ringId: 'r-intact' })
      pair.device.publishRing(sent)
      await eventually('the ring', () => got.length === 1)
      assert.deepEqual(got[0], sent)
      off()
    })

    test('states arrive in the order sent, and a call record arrives intact', async () => {
      const got: number[] = []
      const records: CallRecord[] = []
      const offs = [pair.viewer.on('state', (s) => { got.push(s.at) }), pair.viewer.on('call', (c) => { records.push(c) })]
      const base = Date.now()
      for (let i = 1; i <= 20; i++) pair.device.publishState(state(base + i))
      pair.device.publishCall(record())
      await eventually('20 states and the record', () => got.length >= 20 && records.length === 1)
      assert.deepEqual(got.filter((at) => at > base), Array.from({ length: 20 }, (_, i) => base + i + 1))
      assert.deepEqual(records[0], record())
      for (const off of offs) off()
    })

    test('an offer reaches the device with the viewer it came from; the answer reaches only its own session', async () => {
      const offers: Array<[string, SignalToDevice]> = []
      const off = pair.device.onSignal((viewerId, m) => { offers.push([viewerId, m]) })
      const s1: SignalToViewer[] = []
      const s2: SignalToViewer[] = []
      const offs = [pair.viewer.onSession('s-one', (m) => { s1.push(m) }), pair.viewer.onSession('s-two', (m) => { s2.push(m) })]
      pair.viewer.sendToDevice(DEVICE, 's-one', offer('s-one'))
      await eventually('the offer', () => offers.length === 1)
      assert.equal(offers[0]![0], VIEWER)
      assert.deepEqual(offers[0]![1], offer('s-one'))
      pair.device.sendToViewer(VIEWER, 's-one', answer('s-one'))
      await eventually('the answer', () => s1.length === 1)
      await settle()
      assert.deepEqual(s1, [answer('s-one')])
      assert.deepEqual(s2, [], 'another session hears nothing')
      off(); for (const o of offs) o()
    })

    test('offer then bye arrive in that order; the device\'s bye reaches the session', async () => {
      const got: string[] = []
      const off = pair.device.onSignal((_viewerId, m) => { got.push(`${m.type}:${m.sessionId}`) })
      const heard: SignalToViewer[] = []
      const offSession = pair.viewer.onSession('s-bye', (m) => { heard.push(m) })
      pair.viewer.sendToDevice(DEVICE, 's-bye', offer('s-bye'))
      pair.viewer.sendToDevice(DEVICE, 's-bye', { type: 'bye', sessionId: 's-bye', reason: 'hang-up' })
      await eventually('offer and bye', () => got.length === 2)
      assert.deepEqual(got, ['offer:s-bye', 'bye:s-bye'])
      pair.viewer.sendToDevice(DEVICE, 's-bye2', offer('s-bye2'))
      const offSession2 = pair.viewer.onSession('s-bye2', (m) => { heard.push(m) })
      await eventually('the second offer', () => got.length === 3)
      pair.device.sendToViewer(VIEWER, 's-bye2', { type: 'bye', sessionId: 's-bye2', reason: 'device-ended' })
      await eventually('the device\'s bye', () => heard.length === 1)
      assert.equal(heard[0]!.type, 'bye')
      off(); offSession(); offSession2()
    })

    test('malformed input to the device is dropped, changes nothing, and the path keeps working', async () => {
      const got: SignalToDevice[] = []
      const off = pair.device.onSignal((_v, m) => { got.push(m) })
      for (const raw of ['not json', '{"type":"offer"}', JSON.stringify({ ...offer('s-bad'), sdp: 'nope' }), JSON.stringify({ type: 'bye', sessionId: '../x', reason: 'hang-up' }), new Uint8Array([0xff, 0xfe, 0x00])]) {
        await pair.injectToDevice(raw)
      }
      await settle()
      assert.equal(got.length, 0)
      pair.viewer.sendToDevice(DEVICE, 's-after-bad', offer('s-after-bad'))
      await eventually('a good offer after the bad ones', () => got.length === 1)
      assert.equal(got[0]!.sessionId, 's-after-bad')
      off()
    })

    test('malformed or spoofed input to the viewer is dropped, and the path keeps working', async () => {
      const rings: RingEvent[] = []
      const states: DeviceState[] = []
      const offs = [pair.viewer.on('ring', (r) => { rings.push(r) }), pair.viewer.on('state', (s) => { states.push(s) })]
      for (const raw of ['not json', '{"kind":"ring","payload":{}}', JSON.stringify({ kind: 'ring', payload: { ...ring(), count: 0 } }), JSON.stringify({ kind: 'ring', payload: ring({ deviceId: 'back-door' }) })]) {
        await pair.injectToViewer(raw)
      }
      await settle()
      assert.equal(rings.length, 0)
      assert.equal(states.length, 0)
      pair.device.publishRing(ring({ ringId: 'r-after-bad' }))
      await eventually('a good ring after the bad ones', () => rings.length === 1)
      assert.equal(rings[0]!.ringId, 'r-after-bad')
      for (const off of offs) off()
    })

    test('the visitor\'s picture reaches the viewer intact; a non-JPEG, an oversize or another doorbell\'s picture is dropped', async () => {
      assert.ok(pair.device.publishSnapshot, 'this path carries the ring\'s picture (issue 19)')
      const got: SnapshotEvent[] = []
      const off = pair.viewer.on('snapshot', (s) => { got.push(s) })
      // A JPEG as far as the edge can tell (the magic FF D8 FF, 40 KB); the banner decodes the rest.
      const jpegOf = (bytes: number): string => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(bytes - 4, 0x42)]).toString('base64')
      const good: SnapshotEvent = { type: 'snapshot', deviceId: DEVICE, ringId: 'r-picture', at: Date.now(), seq: 1, jpeg: jpegOf(40 * 1024) }
      const bad: SnapshotEvent[] = [
        { ...good, jpeg: Buffer.from('GIF89a, not a JPEG at all').toString('base64') },
        { ...good, jpeg: jpegOf(70 * 1024) },
        { ...good, deviceId: 'back-door' }
      ]
      for (const payload of bad) await pair.injectToViewer(JSON.stringify({ kind: 'snapshot', payload }))
      await settle()
      assert.deepEqual(got, [])
      pair.device.publishSnapshot(good)
      await eventually('the picture', () => got.length === 1)
      assert.deepEqual(got[0], good)
      off()
    })

    test('forty calls in a row on one connection all get through (nothing is left open after a bye)', async () => {
      const offers: string[] = []
      const off = pair.device.onSignal((_v, m) => { if (m.type === 'offer') offers.push(m.sessionId) })
      for (let i = 0; i < 40; i++) {
        const id = `s-many-${i}`
        const heard: SignalToViewer[] = []
        const offSession = pair.viewer.onSession(id, (m) => { heard.push(m) })
        pair.viewer.sendToDevice(DEVICE, id, offer(id))
        await eventually(`offer ${i}`, () => offers.includes(id), 5000)
        pair.device.sendToViewer(VIEWER, id, { type: 'bye', sessionId: id, reason: 'device-ended' })
        await eventually(`the bye of call ${i}`, () => heard.length === 1, 5000)
        offSession()
      }
      assert.equal(offers.length, 40)
      off()
    })

    test('a bye from outside a session\'s own channel does not end it', async () => {
      const got: string[] = []
      const off = pair.device.onSignal((_v, m) => { got.push(`${m.type}:${m.sessionId}`) })
      pair.viewer.sendToDevice(DEVICE, 's-victim', offer('s-victim'))
      await eventually('the victim\'s offer', () => got.length === 1)
      await pair.injectToDevice(JSON.stringify({ type: 'bye', sessionId: 's-victim', reason: 'hang-up' }))
      await settle()
      assert.deepEqual(got, ['offer:s-victim'])
      off()
    })

    test('a closed viewer hears nothing more, and the device carries on without error', async () => {
      await pair.viewer.close()
      assert.equal(pair.viewer.connected, false)
      let heard = 0
      pair.viewer.on('ring', () => { heard++ })
      pair.device.publishRing(ring({ ringId: 'r-after-close' }))
      pair.device.sendToViewer(VIEWER, 's-one', answer('s-one'))
      await settle()
      assert.equal(heard, 0)
    })
  })
}
