import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { RingEvent } from '@doorbell/core'
import { ringNotification, ringPicture } from '../src/composables/useRingAlert'

const ring: RingEvent = { type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId: 'r1', at: Date.UTC(2026, 0, 1, 12), count: 1 }

test('a ring\'s notification: the doorbell\'s name, the time, Answer and Dismiss, tagged per doorbell, the ring in its data', () => {
  const { title, options } = ringNotification(ring, null)
  assert.equal(title, 'Front door is ringing')
  assert.match(options.body ?? '', /^at /)
  assert.equal(options.tag, 'ring-front')
  assert.deepEqual(options.actions?.map((a) => a.action), ['answer', 'dismiss'])
  assert.deepEqual(options.data, { kind: 'ring', deviceId: 'front', ringId: 'r1' })
  assert.equal(options.image, undefined)
})

test('with the ring\'s picture it shows it; another ring\'s picture is not shown; "no picture" is said', () => {
  const picture = ringPicture({ type: 'snapshot', deviceId: 'front', ringId: 'r1', at: 1, seq: 1, jpeg: '/9j/AAAA' })
  assert.equal(picture.url, 'data:image/jpeg;base64,/9j/AAAA')
  assert.equal(ringNotification(ring, picture).options.image, 'data:image/jpeg;base64,/9j/AAAA')
  assert.equal(ringNotification(ring, { ...picture, ringId: 'r0' }).options.image, undefined)
  const none = ringPicture({ type: 'snapshot', deviceId: 'front', ringId: 'r1', at: 1, seq: 1, jpeg: null, reason: 'the camera is down' })
  assert.deepEqual([none.url, none.reason], [null, 'the camera is down'])
  assert.match(ringNotification(ring, none).options.body ?? '', /no picture/)
})
