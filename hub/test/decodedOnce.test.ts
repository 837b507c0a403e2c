import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RingEvent, encode, topics } from '@doorbell/core'
import { decodePublished } from '../src/broker/decodedOnce'

/** The gate, the history, Web Push and the audit log share one parse of each published message (decodedOnce.ts). */
test('one parse per payload Buffer and topic: the same result again; another Buffer, another topic or a string is parsed afresh; a refusal stays a refusal', () => {
  const topic = topics.ring('home', 'front-door')
  const bytes = encode(RingEvent, { type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId: 'r1', at: 1, count: 1 })
  const payload = Buffer.from(bytes)
  const first = decodePublished(topic, payload)
  assert.equal(first.ok, true)
  assert.equal(decodePublished(topic, payload), first, 'the gate\'s parse, given again to the listeners')
  const again = decodePublished(topic, Buffer.from(bytes))
  assert.notEqual(again, first, 'another message with the same bytes is its own')
  assert.deepEqual(again, first)
  // The same Buffer under another doorbell's topic: parsed for that topic (the deviceId does not match it).
  const other = decodePublished(topics.ring('home', 'back-door'), payload)
  assert.equal(other.ok, false)
  assert.notEqual(decodePublished(topic, bytes), first, 'a string payload is not kept')
  const bad = Buffer.from('{"type":"ring"}')
  const refused = decodePublished(topic, bad)
  assert.equal(refused.ok, false)
  assert.equal(decodePublished(topic, bad), refused)
})

test('the shared result is frozen all the way down: a reader that tries to change it throws, and the next reader gets it as parsed', () => {
  const topic = topics.ring('home', 'front-door')
  const payload = Buffer.from(encode(RingEvent, { type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId: 'r2', at: 2, count: 1 }))
  const first = decodePublished(topic, payload)
  assert.ok(first.ok)
  const ring = first.value.payload as unknown as { deviceName: string }
  assert.throws(() => { ring.deviceName = 'Back door' }, TypeError)
  assert.throws(() => { (first as { ok: boolean }).ok = false }, TypeError)
  const next = decodePublished(topic, payload)
  assert.ok(next.ok)
  assert.equal((next.value.payload as unknown as { deviceName: string }).deviceName, 'Front door')
  const refused = decodePublished(topic, Buffer.from('{"type":"ring"}'))
  assert.equal(refused.ok, false)
  assert.ok(Object.isFrozen(refused))
})
