import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { integrationTopics, memoryLogger, type IntegrationCredential } from '@doorbell/core'
import { startHub } from '@doorbell/hub'
import { SimulatedButton, SimulatedLock, startDoorbell, type Doorbell } from '@doorbell/device'
import { HubApi } from '@doorbell/viewer/lib'
import { eventually } from '../src/harness'
import { homeAssistant } from '../src/homeAssistant'
import { deviceInvite, pairViewer } from '../src/trust'

/**
 * Home Assistant's door command must not open the door after Home Assistant was told "no answer"
 * (issue 20): it waits 10 s for the doorbell's result, while the command goes QoS 1 to the
 * doorbell's persistent session, so a doorbell away for longer gets it when it is back. The hub
 * signs it valid for 8 s (core `signOutOfCallDoorCommand` validForMs). Here the doorbell is away
 * 11 s (stopped, then started again on the same data folder): the command reaches it, it refuses
 * it as stale and audits it, the relay never moves, and Home Assistant, told "no answer" after
 * 10 s, is then told it was refused (stale).
 */
const FRONT = 'front-door'
const ACTOR = 'Home Assistant (integration)'

test('a door command that reaches a doorbell away for 11 s is refused as stale, audited, and Home Assistant is told', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-ha-stale-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const lines: string[] = []
  const printed: string[] = []
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dir, 'hub'), mesh: { enabled: false }, homeAssistant: { enabled: true } }, { log: memoryLogger(lines, 'hub') })
  t.after(() => hub.stop())
  const invite = await deviceInvite(hub, FRONT)
  const start = async (): Promise<Doorbell> => await startDoorbell({
    hubUrl: hub.mqttUrl, pairing: { url: invite }, dataDir: join(dir, 'device'), mesh: { enabled: false }, relockSeconds: 1, ringTimeoutSeconds: 30
  }, { log: memoryLogger(lines, 'device'), drivers: { button: new SimulatedButton(), lock: new SimulatedLock((line) => { printed.push(line) }) } })
  let device = await start()
  t.after(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))

  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const api = new HubApi({ base: hub.url, token: owner.token })
  const cred: IntegrationCredential = await api.createIntegration()
  await api.setIntegrationDoor(cred.member.id, true)
  const ha = await homeAssistant(hub.mqttUrl, { clientId: cred.clientId, username: cred.username, password: cred.password })
  t.after(() => ha.end())
  const attributesTopic = integrationTopics.entity('home', FRONT, 'lock-attributes')
  await ha.client.subscribeAsync(attributesTopic, { qos: 1 })
  const told = (from: number): Array<{ result: string, reason: string | null, message: string }> =>
    ha.got.slice(from).filter((m) => m.topic === attributesTopic).map((m) => JSON.parse(m.payload) as { result: string, reason: string | null, message: string })

  // The doorbell goes away (its persistent session stays on the hub), and Home Assistant opens.
  await device.stop()
  const from = ha.got.length
  const auditFrom = hub.trust.audit.all().length
  const sentAt = Date.now()
  await ha.client.publishAsync(integrationTopics.lockCommand('home', FRONT), 'OPEN', { qos: 1 })
  const noAnswer = await eventually('Home Assistant told "no answer"', () => told(from).find((a) => a.result === 'no answer'), 20_000)
  assert.match(noAnswer.message, /no answer from the doorbell in 10 s/)
  assert.ok(Date.now() - sentAt >= 9_500, 'after the 10 s Home Assistant waits')

  // Back after 11 s: the command is delivered from its session, and refused.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, sentAt + 11_000 - Date.now())))
  device = await start()
  await device.hubConnected(AbortSignal.timeout(10_000))
  const record = await eventually('the refusal in the audit log', () => hub.trust.audit.all().slice(auditFrom).find((r) => r.kind === 'open-door'), 20_000)
  assert.deepEqual([record.outcome, record.reason, record.actor, record.deviceId], ['denied', 'stale', ACTOR, FRONT])
  const refused = await eventually('Home Assistant told it was refused', () => told(from).find((a) => a.result === 'refused'), 10_000)
  assert.equal(refused.reason, 'stale')
  await new Promise((resolve) => setTimeout(resolve, 700))
  assert.deepEqual(printed.filter((l) => l === 'DOOR UNLOCKED'), [], 'the relay never moved')
})
