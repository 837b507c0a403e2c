import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CallTaken, Offer, RingEvent, SignalToDevice, TakeCall, decode } from '../src/index'
import { offer } from './fixtures'

test('a preview offer says so with preview: true; anything else there is refused with a clear error', () => {
  assert.equal(Offer.parse(offer({ preview: true })).preview, true)
  assert.equal(Offer.parse(offer()).preview, undefined, 'an offer without it is a call, as before')
  for (const bad of [false, 'yes', 1]) {
    const r = decode(SignalToDevice, JSON.stringify(offer({ preview: bad })), 'signaling')
    assert.equal(r.ok, false, `preview: ${JSON.stringify(bad)} is refused`)
    if (!r.ok) assert.match(r.error.message, /preview/)
  }
})

test('take-call and call-taken are exact; a ring says livePreview only when it is off', () => {
  assert.equal(decode(TakeCall, '{"type":"take-call"}').ok, true)
  assert.equal(decode(TakeCall, '{"type":"take-call","as":"owner"}').ok, false, 'no extra fields')
  assert.equal(decode(CallTaken, '{"type":"call-taken"}').ok, true)
  const ring = { type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId: 'r1', at: 1000, count: 1 }
  assert.equal(RingEvent.safeParse({ ...ring, livePreview: false }).success, true)
  assert.equal(RingEvent.safeParse({ ...ring, livePreview: true }).success, false, 'on is the default, never said')
})
