import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  CallRecord, DeviceState, Presence, RingEvent, SignalToDevice, SignalToViewer, encode, topics
} from '@doorbell/core'
import { mayPublish, maySubscribe, type GateResult } from '../src/gate'

const HOME = 'home'
const DEVICE = 'front-door'
const OTHER = 'back-door'
const VIEWER = 'kitchen'
const SESSION = 's1'
const DEVICE_CLIENT = `device-${DEVICE}`
const VIEWER_CLIENT = `viewer-${VIEWER}-ab12cd`

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
const lock = { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null } as const

const buf = (s: string): Buffer => Buffer.from(s)

/** A valid payload for each topic kind, for `device`. */
const valid = (device: string) => ({
  ring: buf(encode(RingEvent, { type: 'ring', deviceId: device, deviceName: 'Front door', ringId: 'r1', at: 1, count: 1 })),
  state: buf(encode(DeviceState, {
    deviceId: device,
    deviceName: 'Front door',
    call: { status: 'idle', ringId: null, since: 0 },
    participants: [],
    lock,
    lastRing: null,
    at: 1
  })),
  presence: buf(encode(Presence, { deviceId: device, online: true, at: 1 })),
  calls: buf(encode(CallRecord, { deviceId: device, ringId: 'r1', startedAt: 1, endedAt: 2, outcome: 'missed', answeredBy: [], unlocks: [] })),
  offer: buf(encode(SignalToDevice, { type: 'offer', sessionId: SESSION, viewerId: VIEWER, viewerName: 'Kitchen', sdp: SDP })),
  bye: buf(encode(SignalToDevice, { type: 'bye', sessionId: SESSION, reason: 'hang-up' })),
  answer: buf(encode(SignalToViewer, { type: 'answer', sessionId: SESSION, sdp: SDP }))
})

const t = (device: string) => ({
  ring: topics.ring(HOME, device),
  state: topics.state(HOME, device),
  presence: topics.presence(HOME, device),
  calls: topics.calls(HOME, device),
  toDevice: topics.session(HOME, device, VIEWER, SESSION, 'to-device'),
  toViewer: topics.session(HOME, device, VIEWER, SESSION, 'to-viewer')
})

function refused (result: GateResult, reason?: RegExp): void {
  assert.equal(result.ok, false, 'refused')
  if (!result.ok) {
    assert.ok(result.reason.length > 0, 'with a reason')
    if (reason) assert.match(result.reason, reason)
  }
}

function allowed (result: GateResult): void {
  assert.deepEqual(result, { ok: true })
}

describe('mayPublish', () => {
  test('$SYS is refused to everyone, whatever the payload', () => {
    refused(mayPublish(VIEWER_CLIENT, '$SYS/broker/uptime', buf('1')), /\$SYS/)
    refused(mayPublish(DEVICE_CLIENT, '$SYS/anything', valid(DEVICE).presence), /\$SYS/)
    refused(mayPublish(null, '$SYS/x', buf('{}')), /\$SYS/)
  })

  test('topics that are not ours are refused', () => {
    for (const topic of [
      'random/topic',
      'doorbell',
      'doorbell/home',
      `doorbell/${HOME}/${DEVICE}`,
      `doorbell/${HOME}/${DEVICE}/unknown`,
      `doorbell/${HOME}/${DEVICE}/ring/extra`,
      `doorbell/${HOME}/${DEVICE}/session/${VIEWER}/${SESSION}`,
      `doorbell/${HOME}/${DEVICE}/session/${VIEWER}/${SESSION}/to-nowhere`,
      `doorbell/${HOME}/bad id/ring`,
      `doorbell2/${HOME}/${DEVICE}/ring`
    ]) {
      refused(mayPublish(DEVICE_CLIENT, topic, valid(DEVICE).ring), /not a doorbell topic/)
      refused(mayPublish(VIEWER_CLIENT, topic, valid(DEVICE).offer), /not a doorbell topic/)
    }
  })

  test('malformed JSON is refused with a reason', () => {
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf('{"type":"offer",')), /not JSON/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf('')), /not JSON/)
    refused(mayPublish(DEVICE_CLIENT, t(DEVICE).ring, buf('ring!')), /not JSON/)
    refused(mayPublish(DEVICE_CLIENT, t(DEVICE).state, Buffer.from([0xff, 0xfe, 0x00])), /not JSON/)
    // The reason names the topic, so the hub's log line says where it happened.
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf('nope')), new RegExp(t(DEVICE).toDevice))
  })

  test('schema-invalid payloads are refused with a reason that names the field', () => {
    const offer = JSON.parse(valid(DEVICE).offer.toString()) as Record<string, unknown>
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf(JSON.stringify({ ...offer, sdp: 'hello' }))), /sdp: an SDP starts with "v=0"/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf(JSON.stringify({ ...offer, sdp: 'v=0\r\ns=-\r\n' }))), /sdp: an SDP has a video or data m-line/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf(JSON.stringify({ ...offer, type: 'unlock' }))), /type/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf(JSON.stringify({ ...offer, extra: true }))), /extra|unrecognized/i)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf(JSON.stringify({ ...offer, viewerName: '' }))), /viewerName/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf('[]')), /\(root\)/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf('null')), /\(root\)/)
    const ring = JSON.parse(valid(DEVICE).ring.toString()) as Record<string, unknown>
    refused(mayPublish(DEVICE_CLIENT, t(DEVICE).ring, buf(JSON.stringify({ ...ring, count: 0 }))), /count/)
    refused(mayPublish(DEVICE_CLIENT, t(DEVICE).ring, buf(JSON.stringify({ ...ring, ringId: 'a/b' }))), /ringId/)
    // A payload of another kind on the topic: a ring is not a state.
    refused(mayPublish(DEVICE_CLIENT, t(DEVICE).state, valid(DEVICE).ring))
  })

  test('ids in the payload must agree with the topic', () => {
    // An offer whose viewerId is not the topic's viewer level.
    const offer = JSON.parse(valid(DEVICE).offer.toString()) as Record<string, unknown>
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf(JSON.stringify({ ...offer, viewerId: 'hallway' }))), /viewerId hallway does not match the topic/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, buf(JSON.stringify({ ...offer, sessionId: 's2' }))), /sessionId s2 does not match the topic/)
    // A device's state published on another device's topic.
    refused(mayPublish(DEVICE_CLIENT, t(DEVICE).state, valid(OTHER).state), /deviceId back-door does not match the topic/)
  })

  test('a device may publish ring, state, presence, calls and to-viewer for its own id', () => {
    const p = valid(DEVICE)
    allowed(mayPublish(DEVICE_CLIENT, t(DEVICE).ring, p.ring))
    allowed(mayPublish(DEVICE_CLIENT, t(DEVICE).state, p.state))
    allowed(mayPublish(DEVICE_CLIENT, t(DEVICE).presence, p.presence))
    allowed(mayPublish(DEVICE_CLIENT, t(DEVICE).calls, p.calls))
    allowed(mayPublish(DEVICE_CLIENT, t(DEVICE).toViewer, p.answer))
    allowed(mayPublish(DEVICE_CLIENT, t(DEVICE).toViewer, buf(encode(SignalToViewer, { type: 'bye', sessionId: SESSION, reason: 'device-ended' }))))
  })

  test('a device may not publish for another device, nor send offers', () => {
    const p = valid(OTHER)
    const reason = new RegExp(`${DEVICE_CLIENT} may not publish for device ${OTHER}`)
    refused(mayPublish(DEVICE_CLIENT, t(OTHER).ring, p.ring), reason)
    refused(mayPublish(DEVICE_CLIENT, t(OTHER).state, p.state), reason)
    refused(mayPublish(DEVICE_CLIENT, t(OTHER).presence, p.presence), reason)
    refused(mayPublish(DEVICE_CLIENT, t(OTHER).calls, p.calls), reason)
    refused(mayPublish(DEVICE_CLIENT, t(OTHER).toViewer, p.answer), reason)
    refused(mayPublish(DEVICE_CLIENT, t(DEVICE).toDevice, valid(DEVICE).offer), /a device does not send offers/)
    refused(mayPublish(`device-${OTHER}`, t(DEVICE).ring, valid(DEVICE).ring), /device-back-door may not publish for device front-door/)
  })

  test('a client id that merely contains the device id is not that device', () => {
    const p = valid(DEVICE)
    refused(mayPublish(`device-${DEVICE}-evil`, t(DEVICE).ring, p.ring), /may not publish for device front-door/)
    refused(mayPublish(`x-device-${DEVICE}`, t(DEVICE).ring, p.ring), /only the device may publish ring/)
    refused(mayPublish(DEVICE, t(DEVICE).ring, p.ring), /only the device may publish ring/)
  })

  test('a viewer may only publish to-device', () => {
    const p = valid(DEVICE)
    allowed(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, p.offer))
    allowed(mayPublish(VIEWER_CLIENT, t(DEVICE).toDevice, p.bye))
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).ring, p.ring), /only the device may publish ring/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).state, p.state), /only the device may publish state/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).presence, p.presence), /only the device may publish presence/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).calls, p.calls), /only the device may publish calls/)
    refused(mayPublish(VIEWER_CLIENT, t(DEVICE).toViewer, p.answer), /only the device may publish to-viewer/)
  })

  test('the broker itself (client null, e.g. a will) may publish a valid message, never an invalid one', () => {
    allowed(mayPublish(null, t(DEVICE).presence, valid(DEVICE).presence))
    refused(mayPublish(null, t(DEVICE).presence, buf('offline')), /not JSON/)
    refused(mayPublish(null, 'elsewhere/x', valid(DEVICE).presence), /not a doorbell topic/)
  })
})

describe('maySubscribe', () => {
  test('$SYS is refused', () => {
    refused(maySubscribe('$SYS/#'), /\$SYS/)
    refused(maySubscribe('$SYS/broker/clients/connected'), /\$SYS/)
  })

  test('subscriptions outside doorbell/ are refused', () => {
    for (const topic of ['#', '+/#', '+/home/+/ring', 'other/#', 'doorbell2/#', 'doorbellx', '/doorbell/#', 'Doorbell/#']) {
      refused(maySubscribe(topic), /only doorbell\/ topics exist here/)
    }
  })

  test('concrete topics under doorbell/ must be ours', () => {
    refused(maySubscribe('doorbell/home/front-door/unknown'), /not a doorbell topic/)
    refused(maySubscribe('doorbell/home'), /not a doorbell topic/)
    allowed(maySubscribe(topics.ring(HOME, DEVICE)))
    allowed(maySubscribe(topics.session(HOME, DEVICE, VIEWER, SESSION, 'to-viewer')))
  })

  test('what the viewer and the device subscribe to is allowed', () => {
    allowed(maySubscribe('doorbell/#'))
    for (const topic of topics.homeEvents(HOME)) allowed(maySubscribe(topic))
    allowed(maySubscribe(topics.viewerInbox(HOME, VIEWER)))
    allowed(maySubscribe(topics.deviceInbox(HOME, DEVICE)))
  })
})
