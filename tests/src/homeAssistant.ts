import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { z } from 'zod'
import { UserMosquitto } from './userMosquitto'

/**
 * Home Assistant as the tests play it: its MQTT discovery schema, written from Home Assistant's
 * documentation (device-based discovery, the event, lock, binary_sensor and sensor platforms,
 * availability, the origin block), and a client that connects and subscribes as its MQTT
 * integration does. Home Assistant itself cannot be installed on these machines.
 */

export const PREFIX = 'homeassistant'

/** Abbreviations Home Assistant expands before it validates (the ones a doorbell's config could use). */
export const ABBREVIATIONS: Record<string, string> = {
  dev: 'device', o: 'origin', cmps: 'components', p: 'platform', uniq_id: 'unique_id', def_ent_id: 'default_entity_id',
  stat_t: 'state_topic', cmd_t: 'command_topic', avty: 'availability', avty_t: 'availability_topic', dev_cla: 'device_class',
  evt_typ: 'event_types', pl_lock: 'payload_lock', pl_unlk: 'payload_unlock', pl_open: 'payload_open', pl_on: 'payload_on',
  pl_off: 'payload_off', pl_avail: 'payload_available', pl_not_avail: 'payload_not_available', stat_locked: 'state_locked',
  stat_unlocked: 'state_unlocked', stat_locking: 'state_locking', stat_unlocking: 'state_unlocking', stat_jam: 'state_jammed',
  opt: 'optimistic', ret: 'retain', ent_cat: 'entity_category', t: 'topic', ids: 'identifiers', mf: 'manufacturer', mdl: 'model',
  sw: 'sw_version', url: 'support_url', img_t: 'image_topic', cont_type: 'content_type', img_e: 'image_encoding', json_attr_t: 'json_attributes_topic', json_attr_tpl: 'json_attributes_template'
}
export const expand = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(expand)
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [ABBREVIATIONS[k] ?? k, k === 'cmps' || k === 'components' ? Object.fromEntries(Object.entries(x as object).map(([id, c]) => [id, expand(c)])) : expand(x)]))
}

export const Topic = z.string().min(1).refine((t) => !t.includes('+') && !t.includes('#'), 'a topic to publish or subscribe to, no wildcards')
export const Availability = z.array(z.strictObject({ topic: Topic, payload_available: z.string().optional(), payload_not_available: z.string().optional(), value_template: z.string().optional() })).min(1)
export const Qos = z.union([z.literal(0), z.literal(1), z.literal(2)])
/** At least one of identifiers and connections, and a name (shared device context). */
export const Device = z.object({
  identifiers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  connections: z.array(z.tuple([z.string(), z.string()])).optional(),
  name: z.string().min(1),
  manufacturer: z.string().optional(),
  model: z.string().optional(),
  sw_version: z.string().optional(),
  hw_version: z.string().optional(),
  serial_number: z.string().optional(),
  suggested_area: z.string().optional(),
  configuration_url: z.string().optional(),
  via_device: z.string().optional()
}).refine((d) => d.identifiers !== undefined || d.connections !== undefined, 'a device needs identifiers or connections')
/** `name` is required; `sw_version` and `support_url` optional. */
export const Origin = z.object({ name: z.string().min(1), sw_version: z.string().optional(), support_url: z.string().url().optional() })

/** What every entity component shares; `default_entity_id` is `<platform>.<object id>`. No deprecated `object_id`. */
export const entity = <P extends string, S extends z.ZodRawShape>(platform: P, shape: S) => z.strictObject({
  platform: z.literal(platform),
  unique_id: z.string().min(1),
  default_entity_id: z.string().regex(new RegExp(`^${platform}\\.[a-z0-9_]+$`), `default_entity_id is ${platform}.<object id>`),
  name: z.string().nullable().optional(),
  availability: Availability.optional(),
  availability_mode: z.enum(['all', 'any', 'latest']).optional(),
  qos: Qos.optional(),
  entity_category: z.enum(['config', 'diagnostic']).optional(),
  icon: z.string().optional(),
  enabled_by_default: z.boolean().optional(),
  json_attributes_topic: Topic.optional(),
  json_attributes_template: z.string().optional(),
  ...shape
})
export const Component = z.discriminatedUnion('platform', [
  entity('event', {
    state_topic: Topic,
    event_types: z.array(z.string().min(1)).min(1),
    device_class: z.enum(['button', 'doorbell', 'motion']).optional()
  }),
  entity('lock', {
    command_topic: Topic,
    state_topic: Topic.optional(),
    payload_lock: z.string().optional(),
    payload_unlock: z.string().optional(),
    payload_open: z.string().optional(),
    state_locked: z.string().optional(),
    state_locking: z.string().optional(),
    state_unlocked: z.string().optional(),
    state_unlocking: z.string().optional(),
    state_jammed: z.string().optional(),
    state_open: z.string().optional(),
    state_opening: z.string().optional(),
    optimistic: z.boolean().optional(),
    retain: z.boolean().optional()
  }),
  entity('binary_sensor', {
    state_topic: Topic,
    device_class: z.string().optional(),
    payload_on: z.string().optional(),
    payload_off: z.string().optional()
  }),
  entity('sensor', {
    state_topic: Topic,
    device_class: z.string().optional(),
    unit_of_measurement: z.string().optional()
  }),
  // One of image_topic (the picture itself) and url_topic; image_encoding b64: the payload is base64.
  entity('image', {
    image_topic: Topic.optional(),
    url_topic: Topic.optional(),
    content_type: z.string().optional(),
    image_encoding: z.literal('b64').optional()
  }).refine((c) => (c.image_topic === undefined) !== (c.url_topic === undefined), 'an image entity has image_topic or url_topic')
])
export type Component = z.infer<typeof Component>
/** The device-based discovery payload: device and origin at the root, at least one component. */
export const DeviceDiscovery = z.strictObject({
  device: Device,
  origin: Origin,
  components: z.record(z.string().regex(/^[a-zA-Z0-9_-]+$/), Component).refine((c) => Object.keys(c).length > 0, 'at least one component'),
  availability: Availability.optional(),
  qos: Qos.optional(),
  state_topic: Topic.optional(),
  command_topic: Topic.optional(),
  encoding: z.string().optional()
})
export type DeviceDiscovery = z.infer<typeof DeviceDiscovery>
export const DISCOVERY_TOPIC = new RegExp(`^${PREFIX}/device/([a-zA-Z0-9_-]+)/config$`)

export function parseDiscovery (topic: string, payload: string): DeviceDiscovery {
  assert.match(topic, DISCOVERY_TOPIC, 'the device discovery topic: <prefix>/device/<object id>/config')
  const raw = JSON.parse(payload) as unknown
  assert.ok(!JSON.stringify(raw).includes('"object_id"') && !JSON.stringify(raw).includes('"obj_id"'), 'no deprecated object_id')
  const parsed = DeviceDiscovery.safeParse(expand(raw))
  assert.ok(parsed.success, `${topic} against Home Assistant's documented schema: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`)
  const uniqueIds = Object.values(parsed.data.components).map((c) => c.unique_id)
  assert.equal(new Set(uniqueIds).size, uniqueIds.length, 'unique ids are unique')
  return parsed.data
}

export interface Received { topic: string, payload: string, retain: boolean, at: number }

export interface FakeHomeAssistant {
  client: MqttClient
  got: Received[]
  closed: () => boolean
  end: () => Promise<void>
}

/** Connects as Home Assistant's MQTT integration does (its client id from the advanced options) and subscribes to discovery. */
export async function homeAssistant (url: string, options: IClientOptions): Promise<FakeHomeAssistant> {
  const client = mqtt.connect(url, { clean: true, reconnectPeriod: 0, connectTimeout: 5000, ...options })
  await new Promise<void>((resolve, reject) => { client.once('connect', () => { resolve() }); client.once('error', reject) })
  client.on('error', () => {})
  let closed = false
  client.on('close', () => { closed = true })
  const got: Received[] = []
  client.on('message', (topic, payload, packet) => { got.push({ topic, payload: payload.toString(), retain: packet.retain, at: Date.now() }) })
  const granted = await client.subscribeAsync([`${PREFIX}/+/+/config`, `${PREFIX}/+/+/+/config`], { qos: 1 })
  assert.deepEqual(granted.map((g) => g.qos), [1, 1], 'Home Assistant may subscribe to its discovery topics')
  return {
    client,
    got,
    closed: () => closed,
    end: async () => { await new Promise<void>((resolve) => { client.end(true, {}, () => { resolve() }) }) }
  }
}

/** Every topic Home Assistant subscribes to for a config's entities: state, availability and attributes topics. */
export const stateTopics = (c: DeviceDiscovery): string[] => [...new Set(Object.values(c.components).flatMap((x: Component) => [
  ...('state_topic' in x && x.state_topic !== undefined ? [x.state_topic] : []),
  ...('image_topic' in x && x.image_topic !== undefined ? [x.image_topic] : []),
  ...(x.availability ?? []).map((a) => a.topic),
  ...(x.json_attributes_topic !== undefined ? [x.json_attributes_topic] : [])
]))]

export const latest = (got: Received[], topic: string): Received | undefined => got.filter((m) => m.topic === topic).at(-1)
export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
/** Consecutive repeats as one: the bridge restates the lock with every state the doorbell publishes. */
export const collapse = (xs: string[]): string[] => xs.filter((x, i) => i === 0 || xs[i - 1] !== x)

/** The user's Mosquitto as Home Assistant users run it: one account for the hub, one for Home Assistant. */
export interface HaBroker {
  broker: UserMosquitto
  /** The hub's password in a file, as the hub's config names it. */
  passwordFile: string
  /** The hub's broker settings for its config's `homeAssistant.broker`. */
  hubBroker: { url: string, username: string, passwordFile: string, ca: string }
  /** How the stand-in Home Assistant signs in. */
  asHa: IClientOptions
}

export const HUB_BROKER_PASSWORD = 'hub-secret-1'

/** The user's Mosquitto accounts: one for the hub, one for Home Assistant. */
export const HA_BROKER_USERS = [
  { name: 'doorbell-hub', password: HUB_BROKER_PASSWORD, topics: ['doorbell/#', `${PREFIX}/#`] },
  { name: 'homeassistant', password: 'ha-secret-2', topics: ['doorbell/#', `${PREFIX}/#`] }
]

/** How the stand-in Home Assistant signs in to the user's Mosquitto. */
export const haClientOptions = (broker: UserMosquitto): IClientOptions => ({ clientId: 'ha-test', username: 'homeassistant', password: 'ha-secret-2', ca: readFileSync(broker.caFile, 'utf8') })

/** The hub's broker settings as the owner saves them in Home settings. */
export const hubBrokerSettings = (broker: UserMosquitto): { url: string, username: string, password: string, ca: string } => ({ url: broker.url, username: 'doorbell-hub', password: HUB_BROKER_PASSWORD, ca: readFileSync(broker.caFile, 'utf8') })

/** Starts the user's Mosquitto (TLS, passwords, ACL) for a test and removes it after. */
export async function startHaBroker (t: TestContext): Promise<HaBroker> {
  const broker = await UserMosquitto.start(HA_BROKER_USERS)
  t.after(() => broker.remove())
  const passwordFile = join(broker.dir, 'hub-password')
  writeFileSync(passwordFile, `${HUB_BROKER_PASSWORD}\n`, { mode: 0o600 })
  return {
    broker,
    passwordFile,
    hubBroker: { url: broker.url, username: 'doorbell-hub', passwordFile, ca: broker.caFile },
    asHa: haClientOptions(broker)
  }
}

/** The doorbell's discovery config on Home Assistant's broker once it has its lock; null before. */
export function discoveredWithLock (got: Received[], configTopic: string): DeviceDiscovery | null {
  const m = latest(got, configTopic)
  const parsed = m && m.payload !== '' ? parseDiscovery(m.topic, m.payload) : null
  return parsed && 'door' in parsed.components ? parsed : null
}
