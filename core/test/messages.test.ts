import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_MESSAGE_BYTES, ProtocolError, decodeTopicMessage, schemaForTopic, topics, type TopicMessage } from '../src/index'
import { OFFER_SDP, callRecord, deviceState, offer, presence, ring } from './fixtures'

const home = 'home'
const device = 'front-door'
const toDevice = topics.session(home, device, 'v1', 's1', 'to-device')
const toViewer = topics.session(home, device, 'v1', 's1', 'to-viewer')

function ok (topic: string, payload: unknown): TopicMessage {
  const r = decodeTopicMessage(topic, JSON.stringify(payload))
  assert.ok(r.ok, r.ok ? '' : r.error.message)
  return r.value
}

function fails (topic: string, payload: string | Uint8Array | object): ProtocolError {
  const raw = typeof payload === 'string' || payload instanceof Uint8Array ? payload : JSON.stringify(payload)
  const r = decodeTopicMessage(topic, raw)
  assert.equal(r.ok, false, `expected ${topic} to be refused`)
  if (r.ok) throw new Error('unreachable')
  assert.ok(r.error instanceof ProtocolError)
  assert.equal(r.error.where, topic)
  return r.error
}

describe('decodeTopicMessage: accepted messages', () => {
  test('a ring on the ring topic', () => {
    const m = ok(topics.ring(home, device), ring())
    assert.equal(m.kind, 'ring')
    assert.deepEqual(m.topic, { kind: 'ring', home, device })
    assert.deepEqual(m.payload, ring())
  })

  test('a state on the state topic', () => {
    const m = ok(topics.state(home, device), deviceState())
    assert.equal(m.kind, 'state')
    assert.deepEqual(m.payload, deviceState())
  })

  test('a presence on the presence topic', () => {
    assert.equal(ok(topics.presence(home, device), presence({ online: false })).kind, 'presence')
  })

  test('a call record on the calls topic', () => {
    assert.equal(ok(topics.calls(home, device), callRecord()).kind, 'calls')
  })

  test('an offer on its own session topic, with viewer and session from the topic', () => {
    const m = ok(toDevice, offer())
    assert.equal(m.kind, 'to-device')
    assert.deepEqual(m.topic, { kind: 'to-device', home, device, viewer: 'v1', session: 's1' })
    assert.equal(m.payload.type, 'offer')
  })

  test('a bye to the device (it names no viewer, the topic does)', () => {
    assert.equal(ok(toDevice, { type: 'bye', sessionId: 's1', reason: 'hang-up' }).kind, 'to-device')
  })

  test('an answer and a bye to the viewer', () => {
    assert.equal(ok(toViewer, { type: 'answer', sessionId: 's1', sdp: OFFER_SDP }).kind, 'to-viewer')
    assert.equal(ok(toViewer, { type: 'bye', sessionId: 's1', reason: 'busy' }).kind, 'to-viewer')
  })

  test('a payload given as bytes', () => {
    const r = decodeTopicMessage(topics.ring(home, device), new TextEncoder().encode(JSON.stringify(ring())))
    assert.ok(r.ok)
  })

  test('every topic kind has a schema', () => {
    assert.deepEqual(Object.keys(schemaForTopic).sort(), ['audit', 'calls', 'clip', 'command', 'command-result', 'grants', 'inspect', 'kept', 'presence', 'replies', 'revocations', 'ring', 'snapshot', 'state', 'to-device', 'to-viewer'])
  })
})

describe('decodeTopicMessage: refused messages', () => {
  test('an unknown topic is refused as unknown-topic, whatever the payload', () => {
    for (const topic of [
      'other/home/front-door/ring',
      'doorbell/home/front-door/doorbell',
      'doorbell/home/front-door',
      'doorbell/home/+/ring',
      'doorbell/home/front-door/session/v1/s1/sideways',
      ''
    ]) {
      const e = fails(topic, ring())
      assert.equal(e.code, 'unknown-topic', topic)
      assert.match(e.message, /not a doorbell topic/)
    }
  })

  test('malformed JSON on a known topic', () => {
    assert.equal(fails(topics.ring(home, device), '{"type":').code, 'malformed-json')
  })

  test('a too-large payload on a known topic', () => {
    assert.equal(fails(topics.state(home, device), new Uint8Array(MAX_MESSAGE_BYTES + 1)).code, 'too-large')
  })

  test('a payload of another topic\'s kind (a ring on the state topic)', () => {
    const e = fails(topics.state(home, device), ring())
    assert.equal(e.code, 'invalid-payload')
  })

  test('an offer sent to a viewer, an answer sent to the device', () => {
    assert.equal(fails(toViewer, offer()).code, 'invalid-payload')
    assert.equal(fails(toDevice, { type: 'answer', sessionId: 's1', sdp: OFFER_SDP }).code, 'invalid-payload')
  })

  test('a device publishing under another device\'s topic', () => {
    for (const [topic, payload] of [
      [topics.ring(home, 'back-door'), ring()],
      [topics.state(home, 'back-door'), deviceState()],
      [topics.presence(home, 'back-door'), presence()],
      [topics.calls(home, 'back-door'), callRecord()]
    ] as const) {
      const e = fails(topic, payload)
      assert.equal(e.code, 'invalid-payload', topic)
      assert.match(e.message, /deviceId front-door does not match the topic/)
    }
  })

  test('an offer whose sessionId is not the topic\'s session', () => {
    const e = fails(toDevice, offer({ sessionId: 's2' }))
    assert.equal(e.code, 'invalid-payload')
    assert.match(e.message, /sessionId s2 does not match the topic/)
  })

  test('a bye or an answer whose sessionId is not the topic\'s session', () => {
    assert.match(fails(toDevice, { type: 'bye', sessionId: 'other', reason: 'hang-up' }).message, /sessionId other/)
    assert.match(fails(toViewer, { type: 'answer', sessionId: 'other', sdp: OFFER_SDP }).message, /sessionId other/)
  })

  test('an offer whose viewerId is not the topic\'s viewer (one viewer posing as another)', () => {
    const e = fails(toDevice, offer({ viewerId: 'v2' }))
    assert.equal(e.code, 'invalid-payload')
    assert.match(e.message, /viewerId v2 does not match the topic/)
  })

  test('the error message starts with the topic', () => {
    const e = fails(toDevice, offer({ viewerId: 'v2' }))
    assert.ok(e.message.startsWith(`${toDevice}: `))
  })
})

test('an inspection batch must name the source of its topic', () => {
  const batch = { source: { kind: 'device', id: 'front-door', name: 'Front door' }, events: [{ type: 'event', at: 1, from: null, to: 'front-door/x:0', event: 'PRESS' }] }
  assert.ok(decodeTopicMessage('doorbell/home/front-door/inspect', JSON.stringify(batch)).ok)
  const wrong = decodeTopicMessage('doorbell/home/back-door/inspect', JSON.stringify(batch))
  assert.ok(!wrong.ok && /source\.id does not match/.test(wrong.error.message))
})
