import { test } from 'node:test'
import assert from 'node:assert/strict'
import { integrationTopics } from '@doorbell/core'
import { discoveryConfig, LOCK_STATE, objectIdOf } from '../src/homeAssistant/discovery'

/**
 * The discovery config as a pure function (the full check against Home Assistant's documented
 * schema, over a real broker, is tests/integration/home-assistant.test.ts).
 */

test('a doorbell\'s config: device, origin, five components with unique ids and default entity ids, the lock only with a door, the picture as a base64 JPEG image', () => {
  const withDoor = discoveryConfig({ home: 'home', deviceId: 'Front-Door', name: 'Front door', hasLock: true }) as {
    device: { identifiers: string[] }, origin: { name: string }, components: Record<string, Record<string, unknown>>
  }
  assert.deepEqual(withDoor.device.identifiers, [objectIdOf('home', 'Front-Door')])
  assert.equal(withDoor.origin.name, 'doorbell hub')
  assert.deepEqual(Object.keys(withDoor.components).sort(), ['door', 'last_ring', 'last_ring_image', 'online', 'ring'])
  assert.deepEqual(Object.values(withDoor.components).map((c) => c.default_entity_id).sort(),
    ['binary_sensor.front_door_online', 'event.front_door_ring', 'image.front_door_last_ring', 'lock.front_door_door', 'sensor.front_door_last_ring'])
  assert.deepEqual([withDoor.components.last_ring_image!.image_topic, withDoor.components.last_ring_image!.image_encoding, withDoor.components.last_ring_image!.content_type],
    [integrationTopics.entity('home', 'Front-Door', 'image'), 'b64', 'image/jpeg'])
  assert.ok(Object.values(withDoor.components).every((c) => !('object_id' in c)), 'no deprecated object_id')
  assert.equal(withDoor.components.door!.command_topic, integrationTopics.lockCommand('home', 'Front-Door'))
  // The connectivity sensor is never "unavailable": it is what says the doorbell is off line.
  assert.equal(withDoor.components.online!.availability, undefined)
  assert.ok(Array.isArray(withDoor.components.ring!.availability))
  const camera = discoveryConfig({ home: 'home', deviceId: 'cam-n', name: 'North', hasLock: false }) as { components: Record<string, unknown> }
  assert.deepEqual(Object.keys(camera.components).sort(), ['last_ring', 'last_ring_image', 'online', 'ring'])
})

test('every state of the lock machine has a Home Assistant lock state, and the fault is JAMMED', () => {
  assert.deepEqual(LOCK_STATE, { locked: 'LOCKED', unlocking: 'UNLOCKING', unlocked: 'UNLOCKED', relocking: 'LOCKING', fault: 'JAMMED' })
})

test('to the user\'s broker: every entity also needs the hub there (availability_mode all); "online" follows the hub alone', () => {
  const bridge = { topic: 'doorbell/home/ha-bridge', online: 'online', offline: 'offline' }
  const c = discoveryConfig({ home: 'home', deviceId: 'front-door', name: 'Front door', hasLock: true, bridge }) as { components: Record<string, { availability?: Array<{ topic: string }>, availability_mode?: string }> }
  for (const id of ['ring', 'door', 'last_ring']) {
    assert.deepEqual(c.components[id]!.availability!.map((a) => a.topic), ['doorbell/home/front-door/ha/availability', bridge.topic], id)
    assert.equal(c.components[id]!.availability_mode, 'all', id)
  }
  assert.deepEqual(c.components.online!.availability!.map((a) => a.topic), [bridge.topic])
  // On the hub's own broker nothing changes: the hub is the broker.
  const own = discoveryConfig({ home: 'home', deviceId: 'front-door', name: 'Front door', hasLock: true }) as { components: Record<string, { availability?: unknown[], availability_mode?: string }> }
  assert.equal(own.components.ring!.availability!.length, 1)
  assert.equal(own.components.ring!.availability_mode, undefined)
  assert.equal(own.components.online!.availability, undefined)
})
