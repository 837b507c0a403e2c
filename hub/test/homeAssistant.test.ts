import { test } from 'node:test'
import assert from 'node:assert/strict'
import { integrationTopics } from '@doorbell/core'
import { discoveryConfig, LOCK_STATE, objectIdOf } from '../src/homeAssistant/discovery'

/**
 * The discovery config as a pure function (the full check against Home Assistant's documented
 * schema, over a real broker, is tests/integration/home-assistant.test.ts).
 */

test('a doorbell\'s config: device, origin, four components with unique ids and default entity ids, the lock only with a door', () => {
  const withDoor = discoveryConfig({ home: 'home', deviceId: 'Front-Door', name: 'Front door', hasLock: true }) as {
    device: { identifiers: string[] }, origin: { name: string }, components: Record<string, Record<string, unknown>>
  }
  assert.deepEqual(withDoor.device.identifiers, [objectIdOf('home', 'Front-Door')])
  assert.equal(withDoor.origin.name, 'doorbell hub')
  assert.deepEqual(Object.keys(withDoor.components).sort(), ['door', 'last_ring', 'online', 'ring'])
  assert.deepEqual(Object.values(withDoor.components).map((c) => c.default_entity_id).sort(),
    ['binary_sensor.front_door_online', 'event.front_door_ring', 'lock.front_door_door', 'sensor.front_door_last_ring'])
  assert.ok(Object.values(withDoor.components).every((c) => !('object_id' in c)), 'no deprecated object_id')
  assert.equal(withDoor.components.door!.command_topic, integrationTopics.lockCommand('home', 'Front-Door'))
  // The connectivity sensor is never "unavailable": it is what says the doorbell is off line.
  assert.equal(withDoor.components.online!.availability, undefined)
  assert.ok(Array.isArray(withDoor.components.ring!.availability))
  const camera = discoveryConfig({ home: 'home', deviceId: 'cam-n', name: 'North', hasLock: false }) as { components: Record<string, unknown> }
  assert.deepEqual(Object.keys(camera.components).sort(), ['last_ring', 'online', 'ring'])
})

test('every state of the lock machine has a Home Assistant lock state, and the fault is JAMMED', () => {
  assert.deepEqual(LOCK_STATE, { locked: 'LOCKED', unlocking: 'UNLOCKING', unlocked: 'UNLOCKED', relocking: 'LOCKING', fault: 'JAMMED' })
})
