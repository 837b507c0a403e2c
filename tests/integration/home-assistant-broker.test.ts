import { test } from 'node:test'
import assert from 'node:assert/strict'
import { integrationTopics } from '@doorbell/core'
import { eventually, startLan } from '../src/harness'
import { homeAssistant, latest, parseDiscovery, PREFIX, sleep, startHaBroker, stateTopics, type FakeHomeAssistant, type Received } from '../src/homeAssistant'
import { UserMosquitto } from '../src/userMosquitto'

/**
 * Home Assistant on the user's own broker: a real Mosquitto (TLS with the user's CA, passwords,
 * an ACL per user, no persistence), started by the test; the hub connects out to it as a client
 * with its password in a file, and mirrors discovery, states and events there. A client signed in
 * as Home Assistant's own user plays Home Assistant, checking every config against the schema
 * written from Home Assistant's documentation.
 */

const FRONT = 'front-door'
const QUIET_MS = 700

test('Home Assistant on the user\'s Mosquitto: discovery, events, the lock, birth, a broker restart, the hub\'s will, and bad input', { timeout: 120_000 }, async (t) => {
  const { broker, hubBroker, asHa } = await startHaBroker(t)

  const lan = await startLan({}, { homeAssistant: { enabled: true, broker: hubBroker } })
  t.after(() => lan.stop())
  const hub = lan.hub
  let ha: FakeHomeAssistant = await homeAssistant(broker.url, asHa)
  t.after(() => ha.end())

  const configTopic = integrationTopics.discovery(PREFIX, `doorbell_home_${FRONT}`)
  const configIn = (from: Received[]) => {
    const m = latest(from, configTopic)
    return m && m.payload !== '' ? parseDiscovery(m.topic, m.payload) : null
  }
  const front = await eventually('the front door\'s config on the user\'s broker, with its lock', () => {
    const c = configIn(ha.got)
    return c && 'door' in c.components ? c : null
  })

  // Every entity is unavailable unless both the doorbell and the hub say available; "online" follows the hub alone.
  const bridge = integrationTopics.bridge('home')
  const availability = integrationTopics.entity('home', FRONT, 'availability')
  for (const id of ['ring', 'door', 'last_ring', 'last_ring_image']) {
    const c = front.components[id]!
    assert.deepEqual(c.availability?.map((a) => a.topic), [availability, bridge], id)
    assert.equal(c.availability_mode, 'all', id)
  }
  assert.deepEqual(front.components.online!.availability?.map((a) => a.topic), [bridge])

  await ha.client.subscribeAsync(stateTopics(front), { qos: 1 })
  const door = front.components.door as Extract<typeof front.components[string], { platform: 'lock' }>
  await eventually('the hub online, the front door available and locked', () =>
    latest(ha.got, bridge)?.payload === 'online' && latest(ha.got, availability)?.payload === 'online' && latest(ha.got, door.state_topic!)?.payload === 'LOCKED')

  // ------------------------------------------------------------ an event per press
  const ringEntity = front.components.ring as Extract<typeof front.components[string], { platform: 'event' }>
  lan.button.press()
  const event = await eventually('the press on the user\'s broker', () => ha.got.find((m) => m.topic === ringEntity.state_topic))
  assert.equal(event.retain, false)
  assert.equal((JSON.parse(event.payload) as { event_type: string }).event_type, 'press')

  // ------------------------------------------------------------ a lock command from the user's broker
  for (const word of ['OPEN', 'UNLOCK']) {
    const auditFrom = hub.trust.audit.all().length
    const printed = lan.printed.length
    await ha.client.publishAsync(door.command_topic, word, { qos: 1 })
    const record = await eventually(`the refused ${word} in the audit log`, () => hub.trust.audit.all().slice(auditFrom).find((r) => r.kind === 'open-door'))
    assert.deepEqual([record.outcome, record.reason, record.deviceId], ['denied', 'no-door-right', FRONT])
    assert.equal(record.actor, `Home Assistant (the broker at ${broker.url})`)
    await sleep(QUIET_MS)
    assert.equal(lan.printed.length, printed, `${word}: the lock did not move`)
  }
  // Bad words are logged and change nothing (the hub cannot close another broker's client).
  const auditFrom = hub.trust.audit.all().length
  await ha.client.publishAsync(door.command_topic, 'FLING', { qos: 1 })
  await eventually('the hub to say why it ignored FLING', () => lan.lines.some((l) => l.includes('ignored a lock command from the user\'s broker')))
  assert.equal(hub.trust.audit.all().length, auditFrom)
  assert.equal(lan.printed.at(-1) ?? 'DOOR LOCKED', 'DOOR LOCKED')

  // ------------------------------------------------------------ Home Assistant's birth
  const bornFrom = ha.got.length
  await ha.client.publishAsync(`${PREFIX}/status`, 'online', { qos: 1 })
  await eventually('the config republished after the birth message', () => configIn(ha.got.slice(bornFrom)) !== null)

  // ------------------------------------------------------------ the user's broker restarts and forgets everything
  await ha.end()
  await broker.restart()
  await eventually('the hub to say it lost the broker', () => lan.lines.some((l) => l.includes('lost the user\'s broker') || l.includes('cannot reach the user\'s broker')))
  // Home Assistant comes back after the hub has (the other order is the birth message's case, above).
  await eventually('the hub to connect again', () => lan.lines.filter((l) => l.includes('connected to the user\'s broker')).length === 2, 15_000)
  ha = await homeAssistant(broker.url, asHa)
  await ha.client.subscribeAsync(stateTopics(front), { qos: 1 })
  await eventually('the config, the hub online and the lock state again, retained, once the hub is back', () =>
    configIn(ha.got)?.device.name === 'Front door' && latest(ha.got, bridge)?.payload === 'online' && latest(ha.got, door.state_topic!)?.retain === true)
  await sleep(QUIET_MS)
  assert.deepEqual(ha.got.filter((m) => m.topic === ringEntity.state_topic), [], 'no press replayed')

  // ------------------------------------------------------------ the hub stops: Home Assistant marks everything unavailable
  await lan.stop()
  await eventually('the hub offline on the user\'s broker', () => latest(ha.got, bridge)?.payload === 'offline')
})

test('a wrong password for the user\'s broker: the hub starts, the doorbell connects, and the log says why in one line', { timeout: 60_000 }, async (t) => {
  const broker = await UserMosquitto.start([{ name: 'doorbell-hub', password: 'right', topics: ['doorbell/#', `${PREFIX}/#`] }])
  t.after(() => broker.remove())
  const lan = await startLan({}, { homeAssistant: { enabled: true, broker: { url: broker.url, username: 'doorbell-hub', password: 'wrong', ca: broker.caFile } } })
  t.after(() => lan.stop())
  const said = await eventually('the hub to say the password is wrong', () => lan.lines.find((l) => l.includes('cannot reach the user\'s broker')))
  assert.match(said, /bad username or password|not authorized/)
  assert.ok(!said.includes('wrong'), 'the password is not in the log')
  assert.ok(lan.hub.modules.includes('homeAssistant') && lan.hub.modules.includes('http'), 'the hub started all the same')
  // Retried every 5 s, but said once.
  await sleep(6000)
  assert.equal(lan.lines.filter((l) => l.includes('cannot reach the user\'s broker')).length, 1)
})
