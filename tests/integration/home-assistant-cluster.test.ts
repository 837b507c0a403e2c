import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import type { MqttClient } from 'mqtt'
import { CommandResult, DeviceState, OutOfCallCommand, Presence, RingEvent, encode, integrationTopics, newId, topics, type HomeAssistantBrokerSettings } from '@doorbell/core'
import { connectAs, pairDevice, reportExitedHubs, startThreeHubs, stopThreeHubs, type ClusterHub, type PairedDevice, type ThreeHubs } from '../src/cluster'
import { eventually } from '../src/harness'
import { homeAssistant, latest, parseDiscovery, PREFIX, sleep, stateTopics, type FakeHomeAssistant } from '../src/homeAssistant'
import { UserMosquitto } from '../src/userMosquitto'

/**
 * Home Assistant's bridge on a cluster (docs/home-assistant.md, docs/cluster.md): three hub
 * processes on one Redis and one PostgreSQL, a real Mosquitto as the user's broker. The broker is
 * saved through a hub that does not bridge, and the one that does (it holds PostgreSQL's advisory
 * lock) connects to it; one connection, so a ring is one event and an OPEN is one command to the
 * doorbell. SIGKILL the bridging hub: another takes the lock and the bridge.
 */

const HOME = 'home'
const QUIET_MS = 1500
const LONG = 60_000
const BRIDGING = 'this hub runs the bridge to the user\'s broker'

const c: ThreeHubs = { hubs: [] }
let broker: UserMosquitto

before(async () => {
  broker = await UserMosquitto.start([
    { name: 'doorbell-hub', password: 'hub-secret-1', topics: ['doorbell/#', `${PREFIX}/#`] },
    { name: 'homeassistant', password: 'ha-secret-2', topics: ['doorbell/#', `${PREFIX}/#`] }
  ])
  await startThreeHubs(c, 'doorbell-ha-cluster-', { ownerOnA: true, config: { homeAssistant: { enabled: true } } })
})

after(async () => {
  reportExitedHubs(c.hubs)
  await stopThreeHubs(c)
  broker?.remove()
})

/**
 * The paired doorbell as an MQTT client on `hub`: online, locked, and answering each command it
 * gets (counted) with a successful result, as the real one does once its DoorGuard accepts it.
 */
async function doorbellOn (hub: ClusterHub, door: PairedDevice): Promise<{ client: MqttClient, commands: OutOfCallCommand[] }> {
  const presence = (online: boolean): string => encode(Presence, { deviceId: door.deviceId, deviceName: 'Door', online, at: Date.now() })
  const client = await connectAs(hub.mqttUrl, door, { will: { topic: topics.presence(HOME, door.deviceId), payload: Buffer.from(presence(false)), qos: 1, retain: true } })
  const commands: OutOfCallCommand[] = []
  client.on('message', (topic, payload) => {
    const viewer = topic.split('/')[4]!
    const command = OutOfCallCommand.parse(JSON.parse(payload.toString()))
    commands.push(command)
    client.publish(topics.commandResult(HOME, door.deviceId, viewer), encode(CommandResult, { ok: true, id: command.id, type: command.type }), { qos: 1 })
  })
  await client.subscribeAsync(topics.commandInbox(HOME, door.deviceId), { qos: 1 })
  const state = encode(DeviceState, { deviceId: door.deviceId, deviceName: 'Door', call: { status: 'idle', ringId: null, since: 1 }, participants: [], lock: { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null }, lastRing: null, at: Date.now() })
  await client.publishAsync(topics.state(HOME, door.deviceId), state, { qos: 1, retain: true })
  await client.publishAsync(topics.presence(HOME, door.deviceId), presence(true), { qos: 1, retain: true })
  return { client, commands }
}

const bridgingHubs = (hubs: ClusterHub[]): ClusterHub[] => hubs.filter((h) => h.proc.proc.exitCode === null && h.proc.lines.some((l) => l.includes(BRIDGING)))

test('one hub bridges to the user\'s Mosquitto with settings saved through another; one event per ring, one command per OPEN; another hub takes over when it is killed', { timeout: 240_000 }, async () => {
  const owner = c.owner!
  // The first hub to start took the lock; which one it is does not matter, only that it is one.
  const bridger = await eventually('one hub bridging', () => { const b = bridgingHubs(c.hubs); return b.length === 1 ? b[0] : null }, LONG)
  const [saver, doorHub] = c.hubs.filter((h) => h !== bridger) as [ClusterHub, ClusterHub]

  // ------------------------------------------------------------ settings saved through a standby
  const bad = await fetch(`${saver.base}/api/home-assistant/broker`, { method: 'PUT', headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ url: 'mqtt://ha.example:1883', username: 'u', password: 'p' }) })
  assert.equal(bad.status, 400, 'plain mqtt:// to another machine is refused')
  assert.equal((await owner.on(bridger).homeAssistantBroker()).broker, null, 'a refused request saved nothing')
  const saved = await owner.on(saver).setHomeAssistantBroker({ url: broker.url, username: 'doorbell-hub', password: 'hub-secret-1', ca: readFileSync(broker.caFile, 'utf8') })
  assert.deepEqual(saved.broker, { url: broker.url, username: 'doorbell-hub', password: true, ca: true, source: 'settings' })
  assert.equal(saved.connection.state, 'off', 'the hub that saved it stands by')
  assert.match(saved.connection.problem ?? '', /stands by/)
  // The password is sealed in PostgreSQL, never in clear.
  const kept = String((await c.db!.query("SELECT value::text AS v FROM shared_documents WHERE name = 'home-assistant-broker'", [], 'city')).rows[0]?.v)
  assert.ok(kept.includes('sealedPassword') && !kept.includes('hub-secret-1'), kept)

  const door = await pairDevice(owner.on(saver), saver)
  const cred = await owner.on(saver).createIntegration()
  await owner.on(saver).setIntegrationDoor(cred.member.id, true)
  const bell = await doorbellOn(doorHub, door)

  const ha: FakeHomeAssistant = await homeAssistant(broker.url, { clientId: 'ha-test', username: 'homeassistant', password: 'ha-secret-2', ca: readFileSync(broker.caFile, 'utf8') })
  const configTopic = integrationTopics.discovery(PREFIX, `doorbell_${HOME}_${door.deviceId}`)
  const config = await eventually('the doorbell\'s discovery config on the user\'s broker, with its lock', () => {
    const m = latest(ha.got, configTopic)
    const parsed = m && m.payload !== '' ? parseDiscovery(m.topic, m.payload) : null
    return parsed && 'door' in parsed.components ? parsed : null
  }, LONG)
  await ha.client.subscribeAsync(stateTopics(config), { qos: 1 })
  const lock = config.components.door as Extract<typeof config.components[string], { platform: 'lock' }>
  const ring = config.components.ring as Extract<typeof config.components[string], { platform: 'event' }>

  /** Exactly one of the live hubs is connected to the user's broker; the others stand by. */
  const oneConnected = async (hubs: ClusterHub[]): Promise<ClusterHub> => await eventually('one hub connected to the user\'s broker', async () => {
    const views: Array<[ClusterHub, HomeAssistantBrokerSettings]> = await Promise.all(hubs.map(async (h) => [h, await owner.on(h).homeAssistantBroker()] as [ClusterHub, HomeAssistantBrokerSettings]))
    const connected = views.filter(([, v]) => v.connection.state === 'connected')
    return connected.length === 1 && views.every(([, v]) => v.broker?.source === 'settings') ? connected[0]![0] : null
  }, LONG)

  /** A ring on the doorbell's hub is one event on the user's broker; an OPEN is one command to the doorbell, opened once. */
  const ringAndOpen = async (): Promise<void> => {
    const ringId = newId('r')
    await bell.client.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), { qos: 1 })
    const events = (): number => ha.got.filter((m) => m.topic === ring.state_topic && m.payload.includes(ringId)).length
    await eventually('the ring as an event on the user\'s broker', () => events() > 0, LONG)
    const commandsBefore = bell.commands.length
    const from = ha.got.length
    await ha.client.publishAsync(lock.command_topic, 'OPEN', { qos: 1 })
    const opened = (): number => ha.got.slice(from).filter((m) => m.topic === lock.json_attributes_topic && (JSON.parse(m.payload) as { result: string }).result === 'opened').length
    await eventually('the OPEN carried out and told', () => opened() > 0, LONG)
    await sleep(QUIET_MS)
    assert.equal(events(), 1, 'one event per ring')
    assert.equal(bell.commands.length - commandsBefore, 1, 'one command per OPEN')
    assert.equal(bell.commands.at(-1)?.type, 'unlock', 'the door command')
    assert.equal(opened(), 1, 'told once')
  }

  assert.equal(await oneConnected(c.hubs), bridger)
  const configs = ha.got.filter((m) => m.topic === configTopic).length
  await ringAndOpen()
  assert.equal(ha.got.filter((m) => m.topic === configTopic).length, configs, 'discovery published once: no other hub connected meanwhile')

  // ------------------------------------------------------------ the bridging hub dies
  await bridger.stop('SIGKILL')
  const next = await oneConnected([saver, doorHub])
  assert.ok(bridgingHubs([next]).length === 1, 'the new bridge says so in its log')
  await ringAndOpen()

  bell.client.end(true)
  await ha.end()
})
