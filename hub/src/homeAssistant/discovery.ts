import { integrationTopics, type LockStatus } from '@doorbell/core'

/**
 * Home Assistant's device-based MQTT discovery for one doorbell, pure: what the bridge publishes,
 * retained, on `<prefix>/device/<object id>/config`. Written from Home Assistant's MQTT
 * documentation (device discovery payload; the event, lock, binary_sensor and sensor platforms):
 * `device` and `origin` at the root, one mapping per entity under `components`, each with its
 * `platform` and `unique_id`, and `default_entity_id` (not the deprecated `object_id`). Full
 * option names, no abbreviations: the payload is small and easier to read in HA's MQTT tools.
 */

export interface DoorbellForDiscovery {
  home: string
  deviceId: string
  name: string
  /** The doorbell has a door (its state carries a lock): the lock entity is offered. */
  hasLock: boolean

  /**
   * Where the config goes to the user's broker: the hub's own availability there (its will), so
   * that every entity is unavailable while the hub is away from that broker, not stale.
   */
  bridge?: { topic: string, online: string, offline: string }
}

/** What the origin block says: this hub's software. */
export const ORIGIN = { name: 'doorbell hub', sw_version: '0.1.0' } as const

/** Words the bridge publishes on the entity topics (Home Assistant's defaults where it has them). */
export const AVAILABLE = 'online'
export const NOT_AVAILABLE = 'offline'
export const ON = 'ON'
export const OFF = 'OFF'
export const PRESS = 'press'

/**
 * The lock machine's states in Home Assistant's words. `relocking` is the door on its way back to
 * locked (LOCKING); `fault` is the lock machine's fault (JAMMED). Only what the doorbell reports.
 */
export const LOCK_STATE: Record<LockStatus, string> = {
  locked: 'LOCKED',
  unlocking: 'UNLOCKING',
  unlocked: 'UNLOCKED',
  relocking: 'LOCKING',
  fault: 'JAMMED'
}

/** `[a-zA-Z0-9_-]` only (the discovery topic's object id); home and device ids already are. */
export const objectIdOf = (home: string, deviceId: string): string => `doorbell_${home}_${deviceId}`

/** An entity id's object part: lower case, `_` for anything else. */
const slug = (id: string): string => id.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'doorbell'

export function discoveryConfig (d: DoorbellForDiscovery): Record<string, unknown> {
  const base = objectIdOf(d.home, d.deviceId)
  const entity = slug(d.deviceId)
  const topic = (e: Parameters<typeof integrationTopics.entity>[2]): string => integrationTopics.entity(d.home, d.deviceId, e)
  // The doorbell's presence (its will says offline): every entity but "online" itself, which
  // must stay readable to say the doorbell is off line.
  const hub = d.bridge === undefined ? [] : [{ topic: d.bridge.topic, payload_available: d.bridge.online, payload_not_available: d.bridge.offline }]
  const availability = [{ topic: topic('availability'), payload_available: AVAILABLE, payload_not_available: NOT_AVAILABLE }, ...hub]
  // With two sources, available only when both say so (Home Assistant's default is the latest).
  const mode = hub.length > 0 ? { availability_mode: 'all' } : {}
  const components: Record<string, Record<string, unknown>> = {
    ring: {
      platform: 'event',
      unique_id: `${base}_ring`,
      default_entity_id: `event.${entity}_ring`,
      name: 'Ring',
      device_class: 'doorbell',
      event_types: [PRESS],
      state_topic: topic('event'),
      availability,
      ...mode
    },
    online: {
      platform: 'binary_sensor',
      unique_id: `${base}_online`,
      default_entity_id: `binary_sensor.${entity}_online`,
      name: 'Online',
      device_class: 'connectivity',
      entity_category: 'diagnostic',
      state_topic: topic('online'),
      payload_on: ON,
      payload_off: OFF,
      ...(hub.length > 0 ? { availability: hub } : {})
    },
    last_ring: {
      platform: 'sensor',
      unique_id: `${base}_last_ring`,
      default_entity_id: `sensor.${entity}_last_ring`,
      name: 'Last ring',
      device_class: 'timestamp',
      state_topic: topic('last-ring'),
      // ring_id, outcome (ringing, answered, missed), answered_by, duration_s: known after the press.
      json_attributes_topic: topic('last-ring-attributes'),
      availability,
      ...mode
    },
    // Every doorbell and camera node has a camera: there from the start, empty until a ring's picture.
    last_ring_image: {
      platform: 'image',
      unique_id: `${base}_last_ring_image`,
      default_entity_id: `image.${entity}_last_ring`,
      name: 'Visitor',
      // The picture taken at the last ring (the one a few seconds later replaces it), base64 as it travels.
      image_topic: topic('image'),
      image_encoding: 'b64',
      content_type: 'image/jpeg',
      availability,
      ...mode
    }
  }
  if (d.hasLock) {
    components.door = {
      platform: 'lock',
      unique_id: `${base}_door`,
      default_entity_id: `lock.${entity}_door`,
      name: 'Door',
      state_topic: topic('lock'),
      command_topic: integrationTopics.lockCommand(d.home, d.deviceId),
      payload_lock: 'LOCK',
      payload_unlock: 'UNLOCK',
      payload_open: 'OPEN',
      state_locked: LOCK_STATE.locked,
      state_unlocking: LOCK_STATE.unlocking,
      state_unlocked: LOCK_STATE.unlocked,
      state_locking: LOCK_STATE.relocking,
      state_jammed: LOCK_STATE.fault,
      // How the last open or unlock from Home Assistant went (opened, refused and why, no answer).
      json_attributes_topic: topic('lock-attributes'),
      // The state shown is the doorbell's report, never what was asked for.
      optimistic: false,
      retain: false,
      availability,
      ...mode
    }
  }
  return {
    device: { identifiers: [base], name: d.name, manufacturer: 'doorbell (open source)', model: 'LAN video doorbell' },
    origin: ORIGIN,
    qos: 1,
    components
  }
}
