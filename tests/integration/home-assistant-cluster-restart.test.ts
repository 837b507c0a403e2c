import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { integrationTopics } from '@doorbell/core'
import { pairDevice, reportExitedHubs, startThreeHubs, stopThreeHubs, type ClusterHub, type ThreeHubs } from '../src/cluster'
import { eventually } from '../src/harness'
import { HA_BROKER_USERS, discoveredWithLock, haClientOptions, homeAssistant, hubBrokerSettings, PREFIX, stateTopics, type FakeHomeAssistant } from '../src/homeAssistant'
import { HOME, LOST, bridgingHubs, bridgingNow, doorbellOn, oneConnected, ringAndOpen } from '../src/homeAssistantCluster'
import { UserMosquitto } from '../src/userMosquitto'

/**
 * Home Assistant's bridge on a cluster when PostgreSQL restarts (docs/cluster.md): the bridging
 * hub's lease is a session advisory lock, which PostgreSQL drops with the session. The test stops
 * PostgreSQL by its postmaster's PID (SIGINT: a fast shutdown, as `systemctl restart` does) and
 * starts it again. The bridging hub gives the bridge up at once (it cannot know who takes the lock
 * next), no hub bridges while PostgreSQL is away, and when it is back exactly one hub takes the
 * lock and the bridge; a ring is then one event and an OPEN one unlock. All along, the user's
 * Mosquitto never holds two bridge connections and no two hubs say they bridge.
 */

const LONG = 60_000
/** Every hub connects to the user's broker with this client id (hub/src/homeAssistant/userBroker.ts). */
const BRIDGE_CLIENT = `doorbell-hub-${HOME}`

const c: ThreeHubs = { hubs: [] }
let broker: UserMosquitto
/** The bridge connections Mosquitto holds, by its own log, and the most it ever held; any takeover of the client id. */
const onBroker = { open: 0, most: 0, takeovers: [] as string[] }

before(async () => {
  broker = await UserMosquitto.start(HA_BROKER_USERS)
  // Mosquitto 2's connection messages: "New client connected from … as ID (…)", then "Client ID
  // disconnected.", "Client ID closed its connection." or a socket error; a second connection with
  // the same id while one is open: "Client ID already connected, closing old connection."
  broker.onLine((line) => {
    if (line.includes(` as ${BRIDGE_CLIENT} `)) { onBroker.open++; onBroker.most = Math.max(onBroker.most, onBroker.open) }
    if (line.includes(`Client ${BRIDGE_CLIENT} already connected`)) onBroker.takeovers.push(line)
    if (new RegExp(`^(Client ${BRIDGE_CLIENT} (disconnected|closed its connection)|Socket error on client ${BRIDGE_CLIENT},)`).test(line)) onBroker.open--
  })
  await startThreeHubs(c, 'doorbell-ha-restart-', { ownerOnA: true, config: { homeAssistant: { enabled: true } } })
})

after(async () => {
  reportExitedHubs(c.hubs)
  await stopThreeHubs(c)
  await broker?.remove()
})

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch { return false }
}

test('PostgreSQL restarted: the bridge stops with its lease, comes back on exactly one hub, never two at once; a ring is one event and an OPEN one unlock', { timeout: 300_000 }, async () => {
  const owner = c.owner!
  const db = c.db!
  const bridger = await eventually('one hub bridging', () => { const b = bridgingHubs(c.hubs); return b.length === 1 ? b[0] : null }, LONG)
  const saver = c.hubs.find((h) => h !== bridger)!
  await owner.on(saver).setHomeAssistantBroker(hubBrokerSettings(broker))
  const door = await pairDevice(owner.on(saver), saver)
  const cred = await owner.on(saver).createIntegration()
  await owner.on(saver).setIntegrationDoor(cred.member.id, true)
  const bell = await doorbellOn(saver, door)
  const ha: FakeHomeAssistant = await homeAssistant(broker.url, haClientOptions(broker))
  const configTopic = integrationTopics.discovery(PREFIX, `doorbell_${HOME}_${door.deviceId}`)
  const config = await eventually('the doorbell\'s discovery config on the user\'s broker, with its lock', () => discoveredWithLock(ha.got, configTopic), LONG)
  await ha.client.subscribeAsync(stateTopics(config), { qos: 1 })
  assert.equal(await oneConnected(owner, c.hubs), bridger)
  await eventually('the bridge\'s connection in Mosquitto\'s log', () => onBroker.open === 1, LONG)

  // From here until the end, every 50 ms: how many hubs say they bridge now.
  let mostBridging = 0
  const sampler = setInterval(() => { mostBridging = Math.max(mostBridging, bridgingNow(c.hubs).length) }, 50)
  try {
    // ---------------------------------------------------------- PostgreSQL stopped by its PID
    const pid = db.pid()
    const linesBefore = c.hubs.map((h) => h.proc.lines.length)
    process.kill(pid, 'SIGINT')
    await eventually('PostgreSQL stopped', () => !alive(pid), LONG)
    await eventually('the bridge off the user\'s broker while PostgreSQL is away', () => onBroker.open === 0, LONG)
    assert.ok(bridger.proc.lines.slice(linesBefore[c.hubs.indexOf(bridger)]).some((l) => l.includes(LOST)), 'the bridging hub says it gave the bridge up')
    assert.deepEqual(bridgingNow(c.hubs), [], 'no hub bridges while PostgreSQL is away')
    // Several standby rounds (each 2 s) fail meanwhile: nobody may take the bridge without the lock.
    await eventually('every hub tried to take the lease and could not', () => c.hubs.every((h, i) => h.proc.lines.slice(linesBefore[i]).some((l) => l.includes('could not take or use the bridge\'s lease'))), LONG)
    assert.equal(onBroker.open, 0, 'still no bridge')

    // ---------------------------------------------------------- started again
    await db.resume()
    const next = await oneConnected(owner, c.hubs)
    await eventually('one bridge connection in Mosquitto\'s log', () => onBroker.open === 1, LONG)
    assert.deepEqual(bridgingNow(c.hubs).map((h) => h.name), [next.name], 'exactly one hub bridges, and it is the one connected')
    await ringAndOpen({ bell, door, ha, config })
  } finally {
    clearInterval(sampler)
  }
  assert.equal(onBroker.most, 1, 'Mosquitto never held two bridge connections')
  assert.deepEqual(onBroker.takeovers, [], 'no hub took the bridge\'s client id from another')
  assert.equal(mostBridging, 1, 'no two hubs ever said they bridge at once')

  bell.client.end(true)
  await ha.end()
})
