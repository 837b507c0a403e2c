import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { z } from 'zod'
import {
  CallRecord, DoorRequest, DeviceState, LockState, MAX_SDP_BYTES, Presence, Reply, RingEvent, Sdp,
  SignalToDevice, SignalToViewer
} from '../src/index'
import { AUDIO_ONLY_SDP, OFFER_SDP, callRecord, deviceState, lock, offer, presence, ring } from './fixtures'

/** Asserts the schema accepts the value and returns what it parsed to. */
function accepts<S extends z.ZodType> (schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value)
  assert.ok(r.success, `expected valid, got: ${r.success ? '' : JSON.stringify(r.error.issues)}`)
  return r.data
}

/** Asserts the schema rejects the value, with an issue at `path` (dot-joined; '' for the root). */
function rejects (schema: z.ZodType, value: unknown, path: string): void {
  const r = schema.safeParse(value)
  assert.equal(r.success, false, `expected ${JSON.stringify(value)?.slice(0, 80)} to be rejected`)
  const paths = r.error!.issues.map((i) => i.path.join('.'))
  assert.ok(paths.includes(path), `expected an issue at "${path}", got ${JSON.stringify(paths)}`)
}

describe('RingEvent', () => {
  test('accepts a first press', () => {
    assert.deepEqual(accepts(RingEvent, ring()), ring())
  })

  test('accepts a re-alert with a higher count', () => {
    accepts(RingEvent, ring({ count: 7 }))
  })

  test('trims the device name', () => {
    assert.equal(accepts(RingEvent, ring({ deviceName: '  Front door  ' })).deviceName, 'Front door')
  })

  test('rejects a count of zero, a fraction or over 1000', () => {
    rejects(RingEvent, ring({ count: 0 }), 'count')
    rejects(RingEvent, ring({ count: 1.5 }), 'count')
    rejects(RingEvent, ring({ count: 1001 }), 'count')
  })

  test('rejects ids that could break a topic level', () => {
    rejects(RingEvent, ring({ deviceId: 'front/door' }), 'deviceId')
    rejects(RingEvent, ring({ deviceId: 'a+b' }), 'deviceId')
    rejects(RingEvent, ring({ ringId: 'r#1' }), 'ringId')
    rejects(RingEvent, ring({ ringId: 'r 1' }), 'ringId')
    rejects(RingEvent, ring({ ringId: '' }), 'ringId')
    rejects(RingEvent, ring({ ringId: 'x'.repeat(65) }), 'ringId')
  })

  test('rejects a blank or overlong device name', () => {
    rejects(RingEvent, ring({ deviceName: '   ' }), 'deviceName')
    rejects(RingEvent, ring({ deviceName: 'x'.repeat(65) }), 'deviceName')
  })

  test('rejects a negative or fractional timestamp', () => {
    rejects(RingEvent, ring({ at: -1 }), 'at')
    rejects(RingEvent, ring({ at: 1.5 }), 'at')
  })

  test('rejects another type, a missing field and unknown fields', () => {
    rejects(RingEvent, { ...ring(), type: 'state' }, 'type')
    const { ringId: _, ...noRingId } = ring()
    rejects(RingEvent, noRingId, 'ringId')
    rejects(RingEvent, { ...ring(), extra: true }, '')
  })
})

describe('LockState', () => {
  test('accepts every status', () => {
    for (const status of ['locked', 'unlocking', 'unlocked', 'relocking', 'fault'] as const) {
      accepts(LockState, lock({ status }))
    }
  })

  test('accepts an open door with its relock time and a fault with its error', () => {
    accepts(LockState, lock({ status: 'unlocked', relockAt: 1_700_000_005_000 }))
    accepts(LockState, lock({ status: 'fault', error: 'relay did not confirm' }))
  })

  test('rejects an unknown status, a negative version and an overlong error', () => {
    rejects(LockState, lock({ status: 'open' as never }), 'status')
    rejects(LockState, lock({ version: -1 }), 'version')
    rejects(LockState, lock({ error: 'x'.repeat(201) }), 'error')
  })

  test('rejects a missing relockAt (it is null, not absent)', () => {
    const { relockAt: _, ...rest } = lock()
    rejects(LockState, rest, 'relockAt')
  })
})

describe('DeviceState', () => {
  test('accepts an idle device', () => {
    assert.deepEqual(accepts(DeviceState, deviceState()), deviceState())
  })

  test('accepts a device in a call with participants and a last ring', () => {
    accepts(DeviceState, deviceState({
      call: { status: 'in-call', ringId: 'r1', since: 1 },
      participants: [{ sessionId: 's1', viewerId: 'v1', viewerName: 'Alice', since: 2 }],
      lastRing: { ringId: 'r1', at: 1, outcome: 'answered' }
    }))
  })

  test('accepts a live view without a ring', () => {
    accepts(DeviceState, deviceState({ call: { status: 'in-call', ringId: null, since: 1 } }))
  })

  test('rejects an unknown call status', () => {
    rejects(DeviceState, deviceState({ call: { status: 'busy' as never, ringId: null, since: 1 } }), 'call.status')
  })

  test('rejects a bad participant, naming its index', () => {
    rejects(DeviceState, deviceState({
      participants: [
        { sessionId: 's1', viewerId: 'v1', viewerName: 'Alice', since: 2 },
        { sessionId: 's/2', viewerId: 'v2', viewerName: 'Bob', since: 2 }
      ]
    }), 'participants.1.sessionId')
  })

  test('rejects more than 64 participants', () => {
    const p = Array.from({ length: 65 }, (_, i) => ({ sessionId: `s${i}`, viewerId: `v${i}`, viewerName: 'V', since: 1 }))
    rejects(DeviceState, deviceState({ participants: p }), 'participants')
  })

  test('rejects a last ring with an outcome other than answered or missed', () => {
    rejects(DeviceState, deviceState({ lastRing: { ringId: 'r1', at: 1, outcome: 'live-view' as never } }), 'lastRing.outcome')
  })

  test('rejects a bad nested lock state', () => {
    rejects(DeviceState, deviceState({ lock: lock({ status: 'ajar' as never }) }), 'lock.status')
  })

  test('rejects unknown fields inside call', () => {
    rejects(DeviceState, deviceState({ call: { status: 'idle', ringId: null, since: 1, extra: 1 } as never }), 'call')
  })
})

describe('Presence', () => {
  test('accepts online and offline', () => {
    accepts(Presence, presence())
    accepts(Presence, presence({ online: false }))
  })

  test('rejects a string for online and a bad device id', () => {
    rejects(Presence, presence({ online: 'yes' as never }), 'online')
    rejects(Presence, presence({ deviceId: '#' }), 'deviceId')
  })
})

describe('CallRecord', () => {
  test('accepts answered, missed and live-view records', () => {
    accepts(CallRecord, callRecord())
    accepts(CallRecord, callRecord({ outcome: 'missed', answeredBy: [], unlocks: [] }))
    accepts(CallRecord, callRecord({ outcome: 'live-view', ringId: null }))
  })

  test('rejects an unknown outcome', () => {
    rejects(CallRecord, callRecord({ outcome: 'declined' as never }), 'outcome')
  })

  test('rejects a bad entry in answeredBy and unlocks', () => {
    rejects(CallRecord, callRecord({ answeredBy: [{ viewerId: 'v 1', viewerName: 'A' }] }), 'answeredBy.0.viewerId')
    rejects(CallRecord, callRecord({ unlocks: [{ viewerId: 'v1', at: -5 }] }), 'unlocks.0.at')
  })

  test('rejects more than 64 viewers who answered', () => {
    const many = Array.from({ length: 65 }, (_, i) => ({ viewerId: `v${i}`, viewerName: 'V' }))
    rejects(CallRecord, callRecord({ answeredBy: many }), 'answeredBy')
  })
})

describe('Sdp', () => {
  test('accepts a browser offer with video and a data channel', () => {
    accepts(Sdp, OFFER_SDP)
  })

  test('accepts LF line ends and a data-channel-only offer', () => {
    accepts(Sdp, 'v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\n')
  })

  test('rejects text that does not start with v=0', () => {
    rejects(Sdp, 'hello\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n', '')
    rejects(Sdp, ' ' + OFFER_SDP, '')
  })

  test('rejects an SDP without a video or data m-line', () => {
    rejects(Sdp, AUDIO_ONLY_SDP, '')
  })

  test('accepts an SDP of exactly the limit and rejects one byte more', () => {
    const pad = (n: number) => OFFER_SDP + 'a=x-pad:' + 'x'.repeat(n - OFFER_SDP.length - 8)
    assert.equal(pad(MAX_SDP_BYTES).length, MAX_SDP_BYTES)
    accepts(Sdp, pad(MAX_SDP_BYTES))
    rejects(Sdp, pad(MAX_SDP_BYTES + 1), '')
  })

  test('the size limit message says so', () => {
    const r = Sdp.safeParse(OFFER_SDP + 'x'.repeat(MAX_SDP_BYTES))
    assert.equal(r.success, false)
    assert.match(r.error!.issues.map((i) => i.message).join(' '), /at most 32768 bytes/)
  })
})

describe('SignalToDevice', () => {
  test('accepts an offer', () => {
    assert.equal(accepts(SignalToDevice, offer()).type, 'offer')
  })

  test('accepts a bye with and without a message', () => {
    accepts(SignalToDevice, { type: 'bye', sessionId: 's1', reason: 'hang-up' })
    accepts(SignalToDevice, { type: 'bye', sessionId: 's1', reason: 'failed', message: 'ICE failed' })
  })

  test('rejects an answer (only the device answers)', () => {
    rejects(SignalToDevice, { type: 'answer', sessionId: 's1', sdp: OFFER_SDP }, 'type')
  })

  test('rejects an offer whose SDP is not an SDP, naming the sdp field', () => {
    rejects(SignalToDevice, offer({ sdp: 'nonsense' }), 'sdp')
    rejects(SignalToDevice, offer({ sdp: AUDIO_ONLY_SDP }), 'sdp')
    rejects(SignalToDevice, offer({ sdp: OFFER_SDP + 'x'.repeat(MAX_SDP_BYTES) }), 'sdp')
  })

  test('rejects an offer without a viewer name or with a bad session id', () => {
    rejects(SignalToDevice, offer({ viewerName: '' }), 'viewerName')
    rejects(SignalToDevice, offer({ sessionId: '+' }), 'sessionId')
  })

  test('rejects an unknown bye reason and an overlong bye message', () => {
    rejects(SignalToDevice, { type: 'bye', sessionId: 's1', reason: 'bored' }, 'reason')
    rejects(SignalToDevice, { type: 'bye', sessionId: 's1', reason: 'failed', message: 'x'.repeat(301) }, 'message')
  })

  test('rejects an offer without a credential (anonymous) or with one that is not a signed token', () => {
    const { credential: _, ...anonymous } = offer()
    rejects(SignalToDevice, anonymous, 'credential')
    rejects(SignalToDevice, offer({ credential: 'not-a-token' }), 'credential')
  })

  test('rejects extra fields on an offer', () => {
    rejects(SignalToDevice, offer({ candidate: 'a=candidate' }), '')
  })
})

describe('SignalToViewer', () => {
  test('accepts an answer and a bye', () => {
    accepts(SignalToViewer, { type: 'answer', sessionId: 's1', sdp: OFFER_SDP })
    accepts(SignalToViewer, { type: 'bye', sessionId: 's1', reason: 'busy' })
  })

  test('rejects an offer (the viewer makes offers, never receives them)', () => {
    rejects(SignalToViewer, offer(), 'type')
  })

  test('rejects an answer with a bad SDP', () => {
    rejects(SignalToViewer, { type: 'answer', sessionId: 's1', sdp: 'v=1' }, 'sdp')
  })
})

describe('DoorRequest', () => {
  test('accepts an unlock with an id', () => {
    assert.deepEqual(accepts(DoorRequest, { type: 'unlock', id: 'c1' }), { type: 'unlock', id: 'c1' })
  })

  test('rejects an unknown command, a missing id and extra fields', () => {
    rejects(DoorRequest, { type: 'lock', id: 'c1' }, 'type')
    rejects(DoorRequest, { type: 'unlock' }, 'id')
    rejects(DoorRequest, { type: 'unlock', id: 'c1', forSeconds: 3600 }, '')
  })
})

describe('Reply', () => {
  test('accepts an ack with the lock state', () => {
    accepts(Reply, { type: 'ack', id: 'c1', lock: lock({ status: 'unlocking', version: 3 }) })
  })

  test('accepts a nack with and without a command id', () => {
    accepts(Reply, { type: 'nack', id: 'c1', error: { code: 'denied', message: 'not allowed' } })
    accepts(Reply, { type: 'nack', id: null, error: { code: 'invalid-command', message: 'unreadable' } })
  })

  test('accepts an unsolicited lock report', () => {
    accepts(Reply, { type: 'lock', lock: lock() })
  })

  test('rejects a nack with an unknown error code', () => {
    rejects(Reply, { type: 'nack', id: 'c1', error: { code: 'oops', message: '' } }, 'error.code')
  })

  test('rejects an ack without a lock state and a nack that omits its id (null, not absent)', () => {
    rejects(Reply, { type: 'ack', id: 'c1' }, 'lock')
    rejects(Reply, { type: 'nack', error: { code: 'busy', message: '' } }, 'id')
  })

  test('rejects an unknown reply type', () => {
    rejects(Reply, { type: 'ok', id: 'c1' }, 'type')
  })
})
