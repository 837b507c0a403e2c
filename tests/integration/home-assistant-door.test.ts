import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { integrationTopics, type AuditRecord, type IntegrationCredential } from '@doorbell/core'
import { ApiError, HubApi } from '@doorbell/viewer/lib'
import { eventually, startLan, type Lan } from '../src/harness'
import { homeAssistant, latest, parseDiscovery, PREFIX, sleep, startHaBroker, stateTopics, type FakeHomeAssistant } from '../src/homeAssistant'
import { pairViewer } from '../src/trust'

/**
 * Home Assistant opens the door, signed (issue 22): the owner's integration credential makes a
 * member whose key only the hub holds; HA's OPEN or UNLOCK makes the hub sign an open-door
 * command as that member and send it on the doorbell's command topic; the real doorbell checks it
 * with its DoorGuard (the door right the owner gave, signature, freshness, nonce), the simulated
 * relay moves, and the hub's audit log names "Home Assistant (integration)". Without the right,
 * or once the integration is removed, nothing moves, the refusal is audited, and Home Assistant
 * sees why in the lock's attributes. On the hub's broker and on the user's Mosquitto.
 */

const FRONT = 'front-door'
const QUIET_MS = 700
const ACTOR = 'Home Assistant (integration)'

interface LockAttributes { last_command: string, by: string, result: string, reason: string | null, message: string }

/** The front door's lock entity, as Home Assistant discovers it. */
async function lockOf (ha: FakeHomeAssistant) {
  const topic = integrationTopics.discovery(PREFIX, `doorbell_home_${FRONT}`)
  const config = await eventually('the front door\'s config, with its lock', () => {
    const m = latest(ha.got, topic)
    const c = m && m.payload !== '' ? parseDiscovery(m.topic, m.payload) : null
    return c && 'door' in c.components ? c : null
  })
  await ha.client.subscribeAsync(stateTopics(config), { qos: 1 })
  const door = config.components.door as Extract<typeof config.components[string], { platform: 'lock' }>
  assert.equal(door.json_attributes_topic, integrationTopics.entity('home', FRONT, 'lock-attributes'), 'the lock says how its last command went')
  await eventually('the door locked in Home Assistant', () => latest(ha.got, door.state_topic!)?.payload === 'LOCKED')
  return door
}

/** Sends `word` as Home Assistant and waits for the lock's attributes and the audit record it causes. */
async function send (lan: Lan, ha: FakeHomeAssistant, door: { command_topic: string, json_attributes_topic?: string | undefined }, word: string): Promise<{ record: AuditRecord, attributes: LockAttributes }> {
  const auditFrom = lan.hub.trust.audit.all().length
  const from = ha.got.length
  await ha.client.publishAsync(door.command_topic, word, { qos: 1 })
  const record = await eventually(`${word}'s audit record`, () => lan.hub.trust.audit.all().slice(auditFrom).find((r) => r.kind === 'open-door'))
  const attributes = await eventually(`${word}'s result in Home Assistant`, () => {
    const m = ha.got.slice(from).filter((x) => x.topic === door.json_attributes_topic).at(-1)
    return m ? JSON.parse(m.payload) as LockAttributes : null
  })
  return { record, attributes }
}

test('on the hub\'s broker: refused without the door right, opens once the owner grants it, refused once removed; the key stays in the hub', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({}, { homeAssistant: { enabled: true } })
  t.after(() => lan.stop())
  const owner = await pairViewer(lan.hub, { name: 'Owner', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen', role: 'resident' })
  const api = new HubApi({ base: lan.hub.url, token: owner.token })
  const cred: IntegrationCredential = await api.createIntegration()
  assert.equal(cred.member.door, false, 'no door right at first')

  // Its own key, in the hub's data folder only: 0600, in no answer and no log line.
  const keyFile = join(lan.hub.config.dataDir, 'trust', 'integrations', `${cred.member.id}.key`)
  const pem = readFileSync(keyFile, 'utf8')
  assert.equal(statSync(keyFile).mode & 0o777, 0o600)
  const secret = pem.split('\n')[1]!
  assert.ok(!JSON.stringify(cred).includes(secret) && !JSON.stringify(await api.members()).includes(secret), 'the API never shows the key')

  const ha = await homeAssistant(lan.hub.mqttUrl, { clientId: cred.clientId, username: cred.username, password: cred.password })
  t.after(() => ha.end())
  const door = await lockOf(ha)

  // ------------------------------------------------------------ without the door right
  for (const word of ['OPEN', 'UNLOCK']) {
    const printed = lan.printed.length
    const { record, attributes } = await send(lan, ha, door, word)
    assert.deepEqual([record.outcome, record.reason, record.actor, record.deviceId, record.path], ['denied', 'no-door-right', ACTOR, FRONT, 'lan'])
    assert.deepEqual([attributes.last_command, attributes.result, attributes.reason, attributes.by], [word, 'refused', 'no-door-right', ACTOR])
    assert.match(attributes.message, /door right/)
    await sleep(QUIET_MS)
    assert.equal(lan.printed.length, printed, `${word}: the relay did not move`)
    assert.equal(latest(ha.got, door.state_topic!)?.payload, 'LOCKED')
  }

  // ------------------------------------------------------------ the owner's grant, and bad requests to change it
  const residentApi = new HubApi({ base: lan.hub.url, token: resident.token })
  await assert.rejects(residentApi.setIntegrationDoor(cred.member.id, true), (err: unknown) => err instanceof ApiError && err.status === 403)
  await assert.rejects(api.setIntegrationDoor(resident.memberId, true), (err: unknown) => err instanceof ApiError && err.status === 404, 'a person is not an integration')
  await assert.rejects(api.setIntegrationDoor('m-nobody', true), (err: unknown) => err instanceof ApiError && err.status === 404)
  const bad = await fetch(`${lan.hub.url}api/integrations/${cred.member.id}/door`, { method: 'PUT', headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ door: 'yes' }) })
  assert.equal(bad.status, 400)
  assert.equal(lan.hub.trust.members().find((m) => m.id === cred.member.id)?.door, false, 'nothing changed')
  assert.equal((await api.setIntegrationDoor(cred.member.id, true)).door, true)
  assert.ok(lan.hub.trust.audit.all().some((r) => r.kind === 'pairing' && r.actor === 'Owner' && r.message.includes('granted the door right of Home Assistant')))

  // ------------------------------------------------------------ with it: one release each, the state Home Assistant sees is the doorbell's
  for (const word of ['OPEN', 'UNLOCK']) {
    const printed = lan.printed.length
    const stateFrom = ha.got.length
    const { record, attributes } = await send(lan, ha, door, word)
    assert.deepEqual([record.outcome, record.reason, record.actor, record.path], ['allowed', 'ok', ACTOR, 'lan'])
    assert.deepEqual([attributes.result, attributes.reason], ['opened', null])
    await eventually(`${word}: the relay opened and closed again`, () => lan.printed.slice(printed).join(',') === 'DOOR UNLOCKED,DOOR LOCKED')
    await eventually(`${word}: Home Assistant saw it unlocked, then locked`, () => {
      const shown = ha.got.slice(stateFrom).filter((m) => m.topic === door.state_topic).map((m) => m.payload)
      return shown.includes('UNLOCKED') && shown.at(-1) === 'LOCKED'
    })
  }

  // ------------------------------------------------------------ withdrawn, then removed
  await api.setIntegrationDoor(cred.member.id, false)
  const withdrawn = await send(lan, ha, door, 'OPEN')
  assert.deepEqual([withdrawn.record.outcome, withdrawn.record.reason], ['denied', 'no-door-right'])
  await api.removeMember(cred.member.id)
  await eventually('Home Assistant cut off', () => ha.closed())
  assert.ok(!existsSync(keyFile), 'a removed integration\'s key is deleted')
  assert.ok(!lan.lines.some((l) => l.includes(secret)), 'the key is in no log line')
  assert.equal(lan.printed.filter((l) => l === 'DOOR UNLOCKED').length, 2)
})

test('on the user\'s Mosquitto: the owner\'s integration opens the door from there, and a removed one is refused', { timeout: 120_000 }, async (t) => {
  const { broker, hubBroker, asHa } = await startHaBroker(t)
  const lan = await startLan({}, { homeAssistant: { enabled: true, broker: hubBroker } })
  t.after(() => lan.stop())
  const owner = await pairViewer(lan.hub, { name: 'Owner', role: 'owner' })
  const api = new HubApi({ base: lan.hub.url, token: owner.token })
  const cred = await api.createIntegration()
  await api.setIntegrationDoor(cred.member.id, true)

  const ha = await homeAssistant(broker.url, asHa)
  t.after(() => ha.end())
  const door = await lockOf(ha)

  const printed = lan.printed.length
  const opened = await send(lan, ha, door, 'OPEN')
  assert.deepEqual([opened.record.outcome, opened.record.actor, opened.attributes.result], ['allowed', ACTOR, 'opened'])
  await eventually('the relay opened and closed again', () => lan.printed.slice(printed).join(',') === 'DOOR UNLOCKED,DOOR LOCKED')
  await eventually('the user\'s broker shows it locked again', () => latest(ha.got, door.state_topic!)?.payload === 'LOCKED')

  await api.removeMember(cred.member.id)
  const after = lan.printed.length
  const removed = await send(lan, ha, door, 'OPEN')
  assert.deepEqual([removed.record.outcome, removed.record.reason, removed.record.actor], ['denied', 'revoked', ACTOR])
  assert.deepEqual([removed.attributes.result, removed.attributes.reason], ['refused', 'revoked'])
  await sleep(QUIET_MS)
  assert.equal(lan.printed.length, after, 'a removed integration moves nothing')
  assert.equal(latest(ha.got, door.state_topic!)?.payload, 'LOCKED')
})
