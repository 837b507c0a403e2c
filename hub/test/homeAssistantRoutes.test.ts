import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HomeAssistantBrokerSettings, PairResponse, exportPublicKey, generateSigningKey, memoryLogger, newId, type HubConfigInput } from '@doorbell/core'
import { startHub, type Hub } from '../src/hub'

/** `/api/home-assistant/broker` on a real hub: owners only, checked by the hub's schema, the password never sent back, applied without a restart. */

async function testHub (extra: Partial<HubConfigInput>): Promise<{ hub: Hub, stop: () => Promise<void>, lines: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-ha-routes-'))
  const log = memoryLogger()
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false }, ...extra }, { log })
  return { hub, lines: log.lines, stop: async () => { await hub.stop(); await rm(dir, { recursive: true, force: true }) } }
}

async function viewer (hub: Hub, role: 'owner' | 'resident'): Promise<string> {
  const code = role === 'owner' ? hub.trust.setupCode()!.code : (await hub.trust.invite('console', { kind: 'viewer', role }, hub.url)).code
  const keys = await generateSigningKey(false)
  const r = await fetch(`${hub.url}api/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ kind: 'viewer', code, id: newId('v'), name: role, key: await exportPublicKey(keys.publicKey) }) })
  return PairResponse.parse(await r.json()).token
}

const call = async (hub: Hub, method: string, token: string | null, body?: unknown): Promise<{ status: number, text: string }> => {
  const r = await fetch(`${hub.url}api/home-assistant/broker`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  return { status: r.status, text: await r.text() }
}

test('the owner sets, reads and clears the user\'s broker; others are refused; bad input is a 400 that changes nothing', async (t) => {
  const { hub, stop, lines } = await testHub({ homeAssistant: { enabled: true } })
  t.after(stop)
  const owner = await viewer(hub, 'owner')
  const resident = await viewer(hub, 'resident')
  const shown = async (): Promise<HomeAssistantBrokerSettings> => HomeAssistantBrokerSettings.parse(JSON.parse((await call(hub, 'GET', owner)).text))
  assert.deepEqual(await shown(), { broker: null, enabled: true, connection: { state: 'off', problem: null } })

  assert.equal((await call(hub, 'GET', resident)).status, 403)
  assert.equal((await call(hub, 'PUT', resident, { url: 'mqtt://127.0.0.1:1' })).status, 403)
  assert.equal((await call(hub, 'DELETE', null)).status, 401)
  for (const bad of [
    { url: 'mqtt://broker.example:1883', username: 'u', password: 'p' },
    { url: 'mqtts://u:p@broker.example:8883' },
    { url: 'not a url' },
    { url: 'mqtts://broker.example:8883', ca: 'not a certificate' },
    { url: 'mqtts://broker.example:8883', port: 8883 }
  ]) {
    const r = await call(hub, 'PUT', owner, bad)
    assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`)
    assert.ok((JSON.parse(r.text) as { error: string }).error.length > 0)
  }
  assert.equal((await shown()).broker, null, 'nothing changed')

  // A broker on this machine that is not running: set at once, and the page is told why it cannot connect.
  const set = await call(hub, 'PUT', owner, { url: 'mqtt://127.0.0.1:1', username: 'doorbell-hub', password: 'very-secret' })
  assert.equal(set.status, 200, set.text)
  assert.ok(!set.text.includes('very-secret'))
  const s = await shown()
  assert.deepEqual(s.broker, { url: 'mqtt://127.0.0.1:1', username: 'doorbell-hub', password: true, ca: false, source: 'settings' })
  for (let i = 0; i < 100 && (await shown()).connection.problem === null; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  assert.match((await shown()).connection.problem ?? '', /ECONNREFUSED/)
  assert.ok(!lines.some((l) => l.includes('very-secret')), 'the password is in no log line')

  const cleared = await call(hub, 'DELETE', owner)
  assert.equal(cleared.status, 200)
  assert.deepEqual((await shown()).broker, null)
  assert.equal((await shown()).connection.state, 'off')
})

test('with Home Assistant off in the hub\'s config, the broker cannot be set (409)', async (t) => {
  const { hub, stop } = await testHub({})
  t.after(stop)
  const owner = await viewer(hub, 'owner')
  const r = await call(hub, 'PUT', owner, { url: 'mqtt://127.0.0.1:1' })
  assert.equal(r.status, 409)
  assert.match(r.text, /homeAssistant.enabled/)
  assert.equal(HomeAssistantBrokerSettings.parse(JSON.parse((await call(hub, 'GET', owner)).text)).enabled, false)
})
