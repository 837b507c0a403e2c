import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ZodError } from 'zod'
import { DoorRequest, DeviceState, MAX_MESSAGE_BYTES, ProtocolError, RingEvent, SignalToDevice, decode, encode } from '../src/index'
import { deviceState, offer, ring } from './fixtures'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

/** A JSON string of exactly `size` UTF-8 bytes: {"pad":"xxx…"}. */
const jsonOfSize = (size: number, char = 'x'): string => {
  const head = '{"pad":"'
  const tail = '"}'
  const unit = bytes(char).byteLength
  const n = (size - head.length - tail.length) / unit
  assert.ok(Number.isInteger(n), 'size must fit whole characters')
  return head + char.repeat(n) + tail
}

function expectError (r: ReturnType<typeof decode>): ProtocolError {
  assert.equal(r.ok, false, 'expected decode to fail')
  if (r.ok) throw new Error('unreachable')
  assert.ok(r.error instanceof ProtocolError)
  return r.error
}

describe('decode', () => {
  test('parses a valid message given as a string', () => {
    const r = decode(RingEvent, JSON.stringify(ring()))
    assert.deepEqual(r, { ok: true, value: ring() })
  })

  test('parses a valid message given as UTF-8 bytes', () => {
    const r = decode(RingEvent, bytes(JSON.stringify(ring({ deviceName: 'Porte d’entrée' }))))
    assert.ok(r.ok)
    assert.equal(r.value.deviceName, 'Porte d’entrée')
  })

  test('returns the parsed value, with transforms applied', () => {
    const r = decode(RingEvent, JSON.stringify(ring({ deviceName: '  Gate  ' })))
    assert.ok(r.ok)
    assert.equal(r.value.deviceName, 'Gate')
  })

  test('reports malformed JSON as malformed-json, without throwing', () => {
    for (const raw of ['{', '', 'undefined', "{'type':'ring'}", '{"a":1,}']) {
      const e = expectError(decode(RingEvent, raw))
      assert.equal(e.code, 'malformed-json', `for ${JSON.stringify(raw)}`)
      assert.match(e.message, /^not JSON \(/)
    }
  })

  test('reports bytes that are not JSON as malformed-json', () => {
    const e = expectError(decode(RingEvent, new Uint8Array([0xff, 0xfe, 0x00, 0x7b])))
    assert.equal(e.code, 'malformed-json')
  })

  test('reports valid JSON of the wrong shape as invalid-payload naming the path', () => {
    const e = expectError(decode(RingEvent, JSON.stringify(ring({ count: 0 }))))
    assert.equal(e.code, 'invalid-payload')
    assert.match(e.message, /^count: /)
  })

  test('names nested paths with dots and array indexes', () => {
    const state = deviceState({ participants: [{ sessionId: 's1', viewerId: 'v/1', viewerName: 'A', since: 1 }] })
    const e = expectError(decode(DeviceState, JSON.stringify(state)))
    assert.equal(e.code, 'invalid-payload')
    assert.match(e.message, /participants\.0\.viewerId: an id is 1-64 characters/)
  })

  test('names the root when the whole message is wrong', () => {
    for (const raw of ['null', '42', '"ring"', '[]']) {
      const e = expectError(decode(RingEvent, raw))
      assert.equal(e.code, 'invalid-payload')
      assert.match(e.message, /^\(root\): /, `for ${raw}`)
    }
  })

  test('names an unknown field as a root issue of a strict object', () => {
    const e = expectError(decode(RingEvent, JSON.stringify({ ...ring(), admin: true })))
    assert.match(e.message, /\(root\): .*admin/)
  })

  test('lists at most three issues', () => {
    const e = expectError(decode(RingEvent, '{}'))
    assert.equal(e.message.split('; ').length, 3)
  })

  test('prefixes the message with where, and keeps where on the error', () => {
    const e = expectError(decode(DoorRequest, '{"type":"unlock"}', 'data channel'))
    assert.equal(e.where, 'data channel')
    assert.match(e.message, /^data channel: id: /)
    assert.equal(e.name, 'ProtocolError')
  })

  test('accepts a message of exactly the size limit', () => {
    const raw = jsonOfSize(MAX_MESSAGE_BYTES)
    assert.equal(raw.length, MAX_MESSAGE_BYTES)
    // Valid JSON, wrong shape: it passed the size check.
    assert.equal(expectError(decode(RingEvent, raw)).code, 'invalid-payload')
    assert.equal(expectError(decode(RingEvent, bytes(raw))).code, 'invalid-payload')
  })

  test('refuses a message one byte over the limit before parsing it', () => {
    const raw = jsonOfSize(MAX_MESSAGE_BYTES + 1)
    for (const input of [raw, bytes(raw)]) {
      const e = expectError(decode(RingEvent, input, 'doorbell/home/front-door/ring'))
      assert.equal(e.code, 'too-large')
      assert.match(e.message, new RegExp(`${MAX_MESSAGE_BYTES + 1} bytes exceeds ${MAX_MESSAGE_BYTES}`))
    }
  })

  test('refuses a too-large message even when it is not JSON (size is checked first)', () => {
    assert.equal(expectError(decode(RingEvent, '{'.repeat(MAX_MESSAGE_BYTES + 1))).code, 'too-large')
  })

  test('counts the size of a string in UTF-8 bytes, as for the same message in bytes', () => {
    // 3 bytes per character: under the limit in UTF-16 units, well over it in bytes.
    const raw = jsonOfSize(10 + 3 * 30_000, '€')
    assert.ok(raw.length < MAX_MESSAGE_BYTES)
    assert.equal(expectError(decode(RingEvent, bytes(raw))).code, 'too-large')
    assert.equal(expectError(decode(RingEvent, raw)).code, 'too-large')
  })
})

describe('encode', () => {
  test('returns JSON that decodes to the same value', () => {
    const text = encode(SignalToDevice, offer())
    const r = decode(SignalToDevice, text)
    assert.deepEqual(r, { ok: true, value: offer() })
  })

  test('sends the parsed value, with transforms applied', () => {
    assert.equal(JSON.parse(encode(RingEvent, ring({ deviceName: ' Gate ' }))).deviceName, 'Gate')
  })

  test('refuses an invalid value by throwing, so nothing bad reaches the wire', () => {
    assert.throws(() => encode(RingEvent, ring({ ringId: 'bad/id' })), ZodError)
    assert.throws(() => encode(DoorRequest, { type: 'unlock', id: '' }), ZodError)
  })

  test('refuses extra fields rather than silently sending them', () => {
    assert.throws(() => encode(DoorRequest, { type: 'unlock', id: 'c1', secret: 'x' } as never), ZodError)
  })
})
