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
