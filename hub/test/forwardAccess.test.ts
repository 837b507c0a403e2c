import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import type { AedesPublishPacket, Client } from 'aedes'
import { Presence, RingEvent, encode, type Member, exportPublicKey, generateSigningKey, memoryLogger, newId, topics } from '@doorbell/core'
import { startHub, type Hub } from '../src/index'
import { deviceDirectory, forwardAccess } from '../src/broker/forwardAccess'
import { pairDevice, pairScreen } from './pairedViewer'
import type { Principal } from '../src/broker/gate'

/**
 * Access checked when the broker forwards, not only at SUBSCRIBE (aedes `authorizeForward`),
 * with a real hub and real mqtt.js clients: a device re-paired into another zone stops reaching
 * the old zone's operator at once, and a removed camera's messages stop reaching an open console,
 * without either screen reconnecting or resubscribing.
 */
const H = 'home'
const ring = (deviceId: string): string => encode(RingEvent, { type: 'ring', deviceId, deviceName: deviceId, ringId: newId('r'), at: Date.now(), count: 1 })

const presence = (deviceId: string, online: boolean): string => encode(Presence, { deviceId, online, at: Date.now() })
const connect = async (hub: Hub, clientId: string, c: { memberId: string, token: string }, extra: mqtt.IClientOptions = {}): Promise<MqttClient> =>
  await mqtt.connectAsync(hub.mqttUrl, { clientId, username: c.memberId, password: c.token, reconnectPeriod: 0, connectTimeout: 5000, ...extra })

/** Publishes a ring from `device` and says which of the screens got it within `ms`. */
async function ringReaches (device: MqttClient, deviceId: string, screens: Record<string, MqttClient>, ms = 800): Promise<string[]> {
  const payload = ring(deviceId)
  const got = new Set<string>()
  const listeners = Object.entries(screens).map(([name, s]) => {
    const on = (_t: string, p: Buffer): void => { if (p.toString() === payload) got.add(name) }
    s.on('message', on)
    return () => s.off('message', on)
  })
  await device.publishAsync(topics.ring(H, deviceId), payload, { qos: 1 })
  await new Promise((resolve) => setTimeout(resolve, ms))
  for (const off of listeners) off()
  return [...got].sort()
}

test('a device moved to another zone stops reaching the old zone\'s operator at once; a removed camera stops reaching an open console', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-forward-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false } }, { log: memoryLogger() })
  const clients: MqttClient[] = []
  t.after(async () => {
    for (const c of clients) c.end(true)
    await hub.stop()
    await rm(dir, { recursive: true, force: true })
  })
  const cam = await pairDevice(hub, 'cam-1', 'north')
  const opNorth = await pairScreen(hub, 'operator', ['north'])
  const resident = await pairScreen(hub, 'resident')
  const north = await connect(hub, `viewer-${opNorth.viewerId}-a`, opNorth)
  const home = await connect(hub, `viewer-${resident.viewerId}-a`, resident)
  clients.push(north, home)
  const granted = await north.subscribeAsync(topics.ring(H, 'cam-1'), { qos: 1 })
  assert.equal(granted[0]!.qos, 1, 'the north operator may follow cam-1')
  await home.subscribeAsync(`doorbell/${H}/+/ring`, { qos: 1 })
  const device = await connect(hub, 'device-cam-1', cam)
  clients.push(device)
  assert.deepEqual(await ringReaches(device, 'cam-1', { north, home }), ['home', 'north'])

  // The owner re-pairs cam-1 into zone south: its old connection is closed; it signs in again.
  const moved = await pairDevice(hub, 'cam-1', 'south')
  // As the doorbell does: a will that says offline, and its presence retained.
  const deviceAgain = await connect(hub, 'device-cam-1', moved, { will: { topic: topics.presence(H, 'cam-1'), payload: Buffer.from(presence('cam-1', false)), qos: 1, retain: true } })
  await deviceAgain.publishAsync(topics.presence(H, 'cam-1'), presence('cam-1', true), { qos: 1, retain: true })
  clients.push(deviceAgain)
  assert.equal(north.connected, true, 'the operator did not reconnect')
  assert.deepEqual(await ringReaches(deviceAgain, 'cam-1', { north, home }), ['home'], 'the north operator no longer gets cam-1')

  // The owner removes the camera; the console stays open. Its last words (the will, sent as the
  // hub closes its connection) and its retained presence (to a new subscription) reach nobody.
  const owner = await pairOwner(hub)
  const heard: string[] = []
  home.on('message', (topic) => { heard.push(topic) })
  await home.subscribeAsync(`doorbell/${H}/+/presence`, { qos: 1 })
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.deepEqual(heard, [topics.presence(H, 'cam-1')], 'while paired, its retained presence reaches the console')
  heard.length = 0
  await hub.trust.revoke(owner, moved.memberId)
  await home.unsubscribeAsync(`doorbell/${H}/+/presence`)
  await home.subscribeAsync(`doorbell/${H}/+/presence`, { qos: 1 })
  await new Promise((resolve) => setTimeout(resolve, 800))
  assert.equal(home.connected, true)
  assert.deepEqual(heard.filter((topic) => topic.includes('/cam-1/')), [], `nothing of the removed camera reached the console: ${heard.join(', ')}`)
})

/** The home's owner, paired with the setup code (only an owner removes members). */
async function pairOwner (hub: Hub): Promise<NonNullable<ReturnType<Hub['trust']['authenticate']>>> {
  const setup = hub.trust.setupCode()!
  const key = await generateSigningKey(false)
  const paired = await hub.trust.pair({ kind: 'viewer', code: setup.code, id: newId('v'), name: 'Owner', key: await exportPublicKey(key.publicKey) })
  return paired.member
}

// ---------------------------------------------------------------- the hook on its own

const member = (m: Partial<Member> & Pick<Member, 'kind' | 'subject'>): Member => ({
  id: newId('m'), name: m.subject, role: null, door: false, zones: [], createdAt: 0, expiresAt: null, revokedAt: null, ...m
})

test('the hook parses a topic once per message, but decides per delivery: a device removed between two deliveries of one ring is refused from the next', () => {
  const front = member({ kind: 'device', subject: 'front', zones: ['porch'] })
  const back = member({ kind: 'device', subject: 'back', zones: ['yard'] })
  const members: Member[] = [front, back]
  const directory = deviceDirectory(() => members)
  const operator: Principal = { kind: 'viewer', home: H, viewerId: 'v1', member: member({ kind: 'viewer', subject: 'v1', role: 'operator', zones: ['porch'] }) }
  const resident: Principal = { kind: 'viewer', home: H, viewerId: 'v2', member: member({ kind: 'viewer', subject: 'v2', role: 'resident' }) }
  const clients = { operator: {} as Client, resident: {} as Client }
  const who = new Map<Client, Principal>([[clients.operator, operator], [clients.resident, resident]])
  const forward = forwardAccess((c) => who.get(c), directory)
  const packet = (topic: string): AedesPublishPacket => ({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, retain: false, dup: false, messageId: 1 } as AedesPublishPacket)
  const frontRing = packet(topics.ring(H, 'front'))
  const backRing = packet(topics.ring(H, 'back'))
  // Alternating topics: each is parsed for itself.
  assert.equal(forward(clients.operator, frontRing), frontRing)
  assert.equal(forward(clients.operator, backRing), null, 'the yard is not the operator\'s zone')
  assert.equal(forward(clients.resident, backRing), backRing)
  assert.equal(forward(clients.operator, frontRing), frontRing)
  // Removed while its ring is being delivered: the next delivery of the same message is refused.
  assert.equal(forward(clients.resident, frontRing), frontRing)
  members[0] = { ...front, revokedAt: Date.now() }
  directory.invalidate()
  assert.equal(forward(clients.resident, frontRing), null)
  assert.equal(forward(clients.operator, frontRing), null)
  // Not a doorbell topic: passed on as before (the SUBSCRIBE check decided).
  const other = packet('somewhere/else')
  assert.equal(forward(clients.resident, other), other)
})
