import { test } from 'node:test'
import assert from 'node:assert/strict'
import { waitFor } from 'xstate'
import mqtt from 'mqtt'
import { DeviceState, integrationTopics, topics, type IntegrationCredential } from '@doorbell/core'
import type { Hub } from '@doorbell/hub'
import { HubApi } from '@doorbell/viewer/lib'
import { eventually, startLan } from '../src/harness'
import {
  collapse, DISCOVERY_TOPIC, homeAssistant as connectHomeAssistant, latest, parseDiscovery, PREFIX, sleep, stateTopics,
  type Component, type DeviceDiscovery, type Received
} from '../src/homeAssistant'
import { nodeViewer } from '../src/nodeViewer'
import { pairViewer } from '../src/trust'

/**
 * Home Assistant by MQTT discovery, against the hub's own broker (a real Aedes) with a real
 * doorbell: an mqtt.js client signed in with the integration credential plays Home Assistant. Home
 * Assistant itself cannot be installed here; its side is the schema in ../src/homeAssistant.ts,
 * written from its MQTT documentation (device-based discovery, the event, lock, binary_sensor and
 * sensor platforms, availability, the origin block).
 */

const FRONT = 'front-door'
const BACK = 'back-door'
const QUIET_MS = 700

/** Home Assistant on the hub's broker, signed in with the integration credential. */
const homeAssistant = async (hub: Hub, cred: IntegrationCredential): ReturnType<typeof connectHomeAssistant> =>
  await connectHomeAssistant(hub.mqttUrl, { clientId: cred.clientId, username: cred.username, password: cred.password })

// ---------------------------------------------------------------- the test

test('Home Assistant on the hub\'s broker: discovery, an event per press, the lock as the doorbell reports it, birth, removal, availability, and bad input', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({}, { homeAssistant: { enabled: true } })
  t.after(() => lan.stop())
  const hub = lan.hub
  assert.deepEqual(hub.modules.slice(0, 7), ['trust', 'tls', 'broker', 'homeAssistant', 'history', 'push', 'mqtt'], 'the bridge starts before the broker takes connections')

  // The owner makes Home Assistant's credential over the API, as Home settings do.
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const api = new HubApi({ base: hub.url, token: owner.token })
  const cred = await api.createIntegration()
  assert.deepEqual([cred.member.kind, cred.member.door, cred.discoveryPrefix, cred.enabled, cred.mqttPort], ['integration', false, PREFIX, true, Number(new URL(hub.mqttUrl).port)])
  // Its credential is for the broker only.
  const asIntegration = await fetch(`${hub.url}api/me`, { headers: { Authorization: `Bearer ${cred.password}` } })
  assert.equal(asIntegration.status, 403)

  // A second doorbell, paired but never started: it has a config, and is unavailable.
  const backCode = (await hub.trust.invite('console', { kind: 'device', deviceId: BACK }, hub.url)).code
  const back = await hub.trust.pair({ kind: 'device', code: backCode, id: BACK, name: 'Back door' })

  // The broker's own routing: every publish, with who sent it (null: the hub itself).
  const routed: Array<{ topic: string, payload: string, fromHub: boolean }> = []
  const onPublish = (packet: { topic: string, payload: Buffer | string }, client: unknown): void => { routed.push({ topic: packet.topic, payload: packet.payload.toString(), fromHub: client === null }) }
  hub.broker.on('publish', onPublish)
  t.after(() => { hub.broker.removeListener('publish', onPublish) })

  let ha = await homeAssistant(hub, cred)
  t.after(() => ha.end())
  const configTopic = (device: string): string => integrationTopics.discovery(PREFIX, `doorbell_home_${device}`)
  const configOf = (device: string, from: Received[] = ha.got): DeviceDiscovery | null => {
    const m = latest(from, configTopic(device))
    return m && m.payload !== '' ? parseDiscovery(m.topic, m.payload) : null
  }

  // ------------------------------------------------------------ discovery
  const front = await eventually('the front door\'s config, with its lock (its state has one)', () => {
    const c = configOf(FRONT)
    return c && 'door' in c.components ? c : null
  })
  const backConfig = await eventually('the back door\'s config', () => configOf(BACK))
  for (const m of ha.got) if (m.payload !== '') parseDiscovery(m.topic, m.payload)
  assert.ok(ha.got.filter((m) => m.topic.startsWith(`${PREFIX}/`)).every((m) => DISCOVERY_TOPIC.test(m.topic)), 'only device-based discovery topics')
  assert.deepEqual(Object.fromEntries(Object.entries(front.components).map(([id, c]) => [id, [c.platform, 'device_class' in c ? c.device_class : null]])), {
    ring: ['event', 'doorbell'], online: ['binary_sensor', 'connectivity'], last_ring: ['sensor', 'timestamp'], last_ring_image: ['image', null], door: ['lock', null]
  })
  const ringEntity = front.components.ring as Extract<Component, { platform: 'event' }>
  const door = front.components.door as Extract<Component, { platform: 'lock' }>
  const onlineEntity = front.components.online as Extract<Component, { platform: 'binary_sensor' }>
  const lastRing = front.components.last_ring as Extract<Component, { platform: 'sensor' }>
  assert.deepEqual(ringEntity.event_types, ['press'])
  assert.deepEqual([door.payload_lock ?? 'LOCK', door.payload_unlock ?? 'UNLOCK', door.payload_open], ['LOCK', 'UNLOCK', 'OPEN'])
  assert.equal(door.optimistic, false, 'the lock shows what the doorbell reports, never what was asked')
  assert.equal(front.origin.name, 'doorbell hub')
  assert.equal(front.device.name, 'Front door')
  assert.ok(!('door' in backConfig.components), 'no lock until the doorbell says it has one')
  // Availability is the doorbell's presence; the connectivity sensor stays readable to say "off line".
  const availability = integrationTopics.entity('home', FRONT, 'availability')
  const image = front.components.last_ring_image as Extract<Component, { platform: 'image' }>
  for (const c of [ringEntity, door, lastRing, image]) assert.deepEqual(c.availability?.map((a) => a.topic), [availability])
  assert.equal(onlineEntity.availability, undefined)

  // Home Assistant subscribes to each entity's topics, as it does after discovery.
  const entityTopics = [...stateTopics(front), ...stateTopics(backConfig)]
  assert.deepEqual((await ha.client.subscribeAsync(entityTopics, { qos: 1 })).map((g) => g.qos), entityTopics.map(() => 1))
  await eventually('the front door online, available and locked', () =>
    latest(ha.got, availability)?.payload === 'online' && latest(ha.got, onlineEntity.state_topic)?.payload === 'ON' && latest(ha.got, door.state_topic!)?.payload === 'LOCKED')
  await eventually('the back door unavailable and off line', () =>
    latest(ha.got, integrationTopics.entity('home', BACK, 'availability'))?.payload === 'offline' && latest(ha.got, integrationTopics.entity('home', BACK, 'online'))?.payload === 'OFF')

  // ------------------------------------------------------------ an event per press, never retained
  const ringsBefore = routed.filter((m) => m.topic === topics.ring('home', FRONT)).length
  lan.button.press()
  const first = await eventually('an event for the press', () => ha.got.find((m) => m.topic === ringEntity.state_topic))
  lan.button.press() // a press while ringing re-alerts: another event
  await eventually('an event for the second press', () => ha.got.filter((m) => m.topic === ringEntity.state_topic).length === 2)
  const rings = routed.filter((m) => m.topic === topics.ring('home', FRONT)).slice(ringsBefore).map((m) => JSON.parse(m.payload) as { ringId: string, count: number, at: number })
  const events = ha.got.filter((m) => m.topic === ringEntity.state_topic)
  assert.deepEqual(events.map((m) => JSON.parse(m.payload) as unknown), rings.map((r) => ({ event_type: 'press', ring_id: r.ringId, count: r.count })))
  assert.ok(events.every((m) => !m.retain), 'events are live, not retained')
  assert.equal(first.retain, false)
  await eventually('the last ring\'s time', () => latest(ha.got, lastRing.state_topic)?.payload === new Date(rings.at(-1)!.at).toISOString())
  // The last ring's attributes say how it went, as far as the hub knows: ringing, for now.
  const attributesTopic = lastRing.json_attributes_topic!
  const attributes = (): { ring_id: string, outcome: string, answered_by: string[], duration_s: number | null } | null => {
    const m = latest(ha.got, attributesTopic)
    return m === undefined ? null : JSON.parse(m.payload) as ReturnType<typeof attributes>
  }
  await eventually('the ring\'s attributes: ringing', () => attributes()?.outcome === 'ringing')
  // The visitor's picture: the doorbell's JPEG, base64 as it travels, retained (the second replaces the first).
  const picture = await eventually('the visitor\'s picture', () => latest(ha.got, image.image_topic!))
  assert.ok(Buffer.from(picture.payload, 'base64').subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff])), 'a JPEG')
  assert.deepEqual(attributes(), { ring_id: rings[0]!.ringId, at: new Date(rings[0]!.at).toISOString(), outcome: 'ringing', answered_by: [], duration_s: null })

  // Reconnecting replays the configs and states (retained), never a press.
  await ha.end()
  ha = await homeAssistant(hub, cred)
  await ha.client.subscribeAsync(entityTopics, { qos: 1 })
  await eventually('the configs again, retained', () => configOf(FRONT) !== null && configOf(BACK) !== null)
  await eventually('the lock state again, retained', () => latest(ha.got, door.state_topic!)?.retain === true)
  await sleep(QUIET_MS)
  assert.deepEqual(ha.got.filter((m) => m.topic === ringEntity.state_topic), [], 'no event replayed on reconnect')

  // ------------------------------------------------------------ the lock follows a real open
  const viewer = nodeViewer(hub.mqttUrl, owner)
  t.after(() => viewer.close())
  await eventually('the viewer to reach the hub', () => viewer.home.hub.connected)
  await eventually('the viewer to know the doorbell', () => viewer.home.doorbells.get(FRONT))
  const doorbell = viewer.home.doorbell(FRONT)
  await waitFor(doorbell, (s) => s.matches('incoming'), { timeout: 5000 })
  viewer.home.answer(FRONT)
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 15_000 })
  const lockFrom = ha.got.length
  const reportedFrom = routed.length
  const printedFrom = lan.printed.length
  viewer.home.unlock(FRONT)
  await eventually('Home Assistant to see the door unlocked', () => ha.got.slice(lockFrom).some((m) => m.topic === door.state_topic && m.payload === 'UNLOCKED'))
  await eventually('… and locked again by itself', () => ha.got.slice(lockFrom).some((m, i, a) => m.topic === door.state_topic && m.payload === 'LOCKED' && a.slice(0, i).some((x) => x.payload === 'UNLOCKED')))
  assert.deepEqual(lan.printed.slice(printedFrom), ['DOOR UNLOCKED', 'DOOR LOCKED'])
  const WORDS: Record<string, string> = { locked: 'LOCKED', unlocking: 'UNLOCKING', unlocked: 'UNLOCKED', relocking: 'LOCKING', fault: 'JAMMED' }
  const reported = routed.slice(reportedFrom).filter((m) => m.topic === topics.state('home', FRONT) && !m.fromHub)
    .map((m) => DeviceState.parse(JSON.parse(m.payload)).lock?.status).filter((s) => s !== undefined).map((s) => WORDS[s]!)
  const shown = ha.got.slice(lockFrom).filter((m) => m.topic === door.state_topic).map((m) => m.payload)
  assert.deepEqual(collapse(shown), collapse(reported), 'Home Assistant shows exactly the states the doorbell reported, in order')
  viewer.home.hangUp(FRONT)
  await waitFor(doorbell, (s) => s.matches('ended'), { timeout: 5000 })
  // Answered, by whom and for how long: from the doorbell's state and its call record.
  const answered = await eventually('the ring\'s attributes: answered by the owner', () => {
    const x = attributes()
    return x?.outcome === 'answered' && x.duration_s !== null ? { ...x, duration_s: x.duration_s } : null
  })
  assert.deepEqual([answered.ring_id, answered.answered_by], [rings[0]!.ringId, ['Owner']])
  assert.ok(answered.duration_s >= 0 && answered.duration_s < 60, `a plausible duration: ${answered.duration_s} s`)

  // ------------------------------------------------------------ a lock command without the door right
  for (const word of ['OPEN', 'UNLOCK']) {
    const auditFrom = hub.trust.audit.all().length
    const from = ha.got.length
    const printed = lan.printed.length
    await ha.client.publishAsync(door.command_topic, word, { qos: 1 })
    const record = await eventually(`the refused ${word} in the audit log`, () => hub.trust.audit.all().slice(auditFrom).find((r) => r.kind === 'open-door'))
    assert.deepEqual([record.outcome, record.reason, record.actor, record.deviceId], ['denied', 'no-door-right', 'Home Assistant (integration)', FRONT])
    await sleep(QUIET_MS)
    assert.equal(lan.printed.length, printed, `${word}: the lock did not move`)
    assert.ok(ha.got.slice(from).filter((m) => m.topic === door.state_topic).every((m) => m.payload === 'LOCKED'), `${word}: the door stays locked in Home Assistant`)
    assert.ok(!ha.closed(), 'a well-formed command keeps the connection')
  }
  const beforeLock = hub.trust.audit.all().length
  await ha.client.publishAsync(door.command_topic, 'LOCK', { qos: 1 })
  await eventually('the hub to say the door locks by itself', () => lan.lines.some((l) => l.includes('Home Assistant asked to lock')))
  assert.equal(hub.trust.audit.all().length, beforeLock, 'LOCK opens nothing and records nothing')

  // ------------------------------------------------------------ bad input changes nothing and is logged
  for (const bad of [{ topic: door.command_topic, payload: 'FLING' }, { topic: `${PREFIX}/status`, payload: 'maybe' }]) {
    const auditFrom = hub.trust.audit.all().length
    const routedFrom = routed.length
    const lines = lan.lines.length
    ha.client.publish(bad.topic, bad.payload, { qos: 1 })
    await eventually(`the hub to close the connection for ${bad.payload}`, () => ha.closed())
    await sleep(QUIET_MS)
    assert.ok(lan.lines.slice(lines).some((l) => l.includes('refused a publish') && l.includes(`topic=${bad.topic}`) && l.includes('unexpected payload')), `the hub says why (${bad.payload})`)
    assert.deepEqual(routed.slice(routedFrom).filter((m) => m.topic === bad.topic || m.topic.startsWith(`${PREFIX}/`)), [], `${bad.payload}: not routed, nothing republished`)
    assert.equal(hub.trust.audit.all().length, auditFrom, `${bad.payload}: nothing audited`)
    assert.equal(lan.printed.at(-1), 'DOOR LOCKED')
    await ha.end()
    ha = await homeAssistant(hub, cred)
  }

  // ------------------------------------------------------------ Home Assistant's birth: everything republished
  await eventually('the retained configs', () => configOf(FRONT) !== null && configOf(BACK) !== null)
  const bornFrom = ha.got.length
  const bornRouted = routed.length
  await ha.client.publishAsync(`${PREFIX}/status`, 'online', { qos: 1 })
  await eventually('both configs republished after the birth message', () => configOf(FRONT, ha.got.slice(bornFrom)) !== null && configOf(BACK, ha.got.slice(bornFrom)) !== null)
  assert.deepEqual(configOf(FRONT, ha.got.slice(bornFrom)), front)
  // The birth's own republishing done before its will (Home Assistant's copies just read may be the
  // retained ones its new connection got on subscribing; the broker reports a message routed once
  // every subscriber has it).
  await eventually('the hub routed both configs after the birth', () => [FRONT, BACK].every((id) => routed.slice(bornRouted).some((m) => m.fromHub && m.topic === configTopic(id))))
  await sleep(QUIET_MS)
  const offlineFrom = routed.length
  await ha.client.publishAsync(`${PREFIX}/status`, 'offline', { qos: 1 })
  await sleep(QUIET_MS)
  assert.ok(!routed.slice(offlineFrom).some((m) => m.fromHub && m.topic.startsWith(`${PREFIX}/device/`)), 'its will republishes nothing')

  // ------------------------------------------------------------ a removed doorbell's config is cleared
  await api.removeMember(back.member.id)
  await eventually('the back door\'s config cleared (empty payload)', () => latest(ha.got, configTopic(BACK))?.payload === '')
  await ha.end()
  ha = await homeAssistant(hub, cred)
  await eventually('the front door\'s retained config', () => configOf(FRONT) !== null)
  await sleep(QUIET_MS)
  assert.equal(latest(ha.got, configTopic(BACK)), undefined, 'nothing retained for the removed doorbell')

  // ------------------------------------------------------------ the doorbell leaves: unavailable, and off line
  await ha.client.subscribeAsync(stateTopics(front), { qos: 1 })
  await eventually('the front door available before it stops', () => latest(ha.got, availability)?.payload === 'online')
  await lan.device.stop()
  await eventually('the front door unavailable and off line', () => latest(ha.got, availability)?.payload === 'offline' && latest(ha.got, onlineEntity.state_topic)?.payload === 'OFF')

  // ------------------------------------------------------------ revoking the credential ends Home Assistant's session
  await api.removeMember(cred.member.id)
  await eventually('Home Assistant disconnected at once', () => ha.closed())
  const again = mqtt.connect(hub.mqttUrl, { clientId: cred.clientId, username: cred.username, password: cred.password, reconnectPeriod: 0 })
  const refusal = await new Promise<number | undefined>((resolve) => { again.once('error', (err) => { resolve((err as { code?: number }).code) }); again.once('connect', () => { resolve(0) }) })
  again.end(true)
  assert.equal(refusal, 4, 'a revoked credential cannot sign in')
})
