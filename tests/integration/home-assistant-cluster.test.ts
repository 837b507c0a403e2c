import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { integrationTopics } from '@doorbell/core'
import { pairDevice, reportExitedHubs, startThreeHubs, stopThreeHubs, type ClusterHub, type ThreeHubs } from '../src/cluster'
import { eventually } from '../src/harness'
import { HA_BROKER_USERS, HUB_BROKER_PASSWORD, discoveredWithLock, haClientOptions, homeAssistant, hubBrokerSettings, PREFIX, stateTopics, type FakeHomeAssistant } from '../src/homeAssistant'
import { HOME, bridgingHubs, doorbellOn, oneConnected, ringAndOpen } from '../src/homeAssistantCluster'
import { UserMosquitto } from '../src/userMosquitto'

/**
 * Home Assistant's bridge on a cluster (docs/home-assistant.md, docs/cluster.md): three hub
 * processes on one Redis and one PostgreSQL, a real Mosquitto as the user's broker. The broker is
 * saved through a hub that does not bridge, and the one that does (it holds PostgreSQL's advisory
 * lock) connects to it; one connection, so a ring is one event and an OPEN is one command to the
 * doorbell. SIGKILL the bridging hub: another takes the lock and the bridge.
 */

const LONG = 60_000

const c: ThreeHubs = { hubs: [] }
let broker: UserMosquitto

before(async () => {
  broker = await UserMosquitto.start(HA_BROKER_USERS)
  await startThreeHubs(c, 'doorbell-ha-cluster-', { ownerOnA: true, config: { homeAssistant: { enabled: true } } })
})

after(async () => {
  reportExitedHubs(c.hubs)
  await stopThreeHubs(c)
  broker?.remove()
})

test('one hub bridges to the user\'s Mosquitto with settings saved through another; one event per ring, one command per OPEN; another hub takes over when it is killed', { timeout: 240_000 }, async () => {
  const owner = c.owner!
  // The first hub to start took the lock; which one it is does not matter, only that it is one.
  const bridger = await eventually('one hub bridging', () => { const b = bridgingHubs(c.hubs); return b.length === 1 ? b[0] : null }, LONG)
  const [saver, doorHub] = c.hubs.filter((h) => h !== bridger) as [ClusterHub, ClusterHub]

  // ------------------------------------------------------------ settings saved through a standby
  const bad = await fetch(`${saver.base}/api/home-assistant/broker`, { method: 'PUT', headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ url: 'mqtt://ha.example:1883', username: 'u', password: 'p' }) })
  assert.equal(bad.status, 400, 'plain mqtt:// to another machine is refused')
  assert.equal((await owner.on(bridger).homeAssistantBroker()).broker, null, 'a refused request saved nothing')
  const saved = await owner.on(saver).setHomeAssistantBroker(hubBrokerSettings(broker))
  assert.deepEqual(saved.broker, { url: broker.url, username: 'doorbell-hub', password: true, ca: true, source: 'settings' })
  assert.equal(saved.connection.state, 'off', 'the hub that saved it stands by')
  assert.match(saved.connection.problem ?? '', /stands by/)
  // The password is sealed in PostgreSQL, never in clear.
  const kept = String((await c.db!.query("SELECT value::text AS v FROM shared_documents WHERE name = 'home-assistant-broker'", [], 'city')).rows[0]?.v)
  assert.ok(kept.includes('sealedPassword') && !kept.includes(HUB_BROKER_PASSWORD), kept)

  const door = await pairDevice(owner.on(saver), saver)
  const cred = await owner.on(saver).createIntegration()
  await owner.on(saver).setIntegrationDoor(cred.member.id, true)
  const bell = await doorbellOn(doorHub, door)

  const ha: FakeHomeAssistant = await homeAssistant(broker.url, haClientOptions(broker))
  const configTopic = integrationTopics.discovery(PREFIX, `doorbell_${HOME}_${door.deviceId}`)
  const config = await eventually('the doorbell\'s discovery config on the user\'s broker, with its lock', () => discoveredWithLock(ha.got, configTopic), LONG)
  await ha.client.subscribeAsync(stateTopics(config), { qos: 1 })
  assert.equal(await oneConnected(owner, c.hubs), bridger)
  const configs = ha.got.filter((m) => m.topic === configTopic).length
  await ringAndOpen({ bell, door, ha, config })
  assert.equal(ha.got.filter((m) => m.topic === configTopic).length, configs, 'discovery published once: no other hub connected meanwhile')

  // ------------------------------------------------------------ the bridging hub dies
  await bridger.stop('SIGKILL')
  const next = await oneConnected(owner, [saver, doorHub])
  assert.ok(bridgingHubs([next]).length === 1, 'the new bridge says so in its log')
  await ringAndOpen({ bell, door, ha, config })

  bell.client.end(true)
  await ha.end()
})
