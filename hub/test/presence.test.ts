import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { PairResponse, exportPublicKey, generateSigningKey, memoryLogger, newId } from '@doorbell/core'
import { startHub } from '../src/hub'

/** `GET /api/presence` on a single hub (a cluster's is in tests/integration/cluster-state.test.ts): its own broker's signed-in clients. */
test('presence on one hub: the owner sees which devices and screens are signed in, and when they leave; others may not look', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hub-presence-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false } }, { log: memoryLogger() })
  t.after(async () => { await hub.stop(); await rm(dir, { recursive: true, force: true }) })
  const pair = async (code: string, body: Record<string, unknown>): Promise<PairResponse> => {
    const res = await fetch(`${hub.url}api/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code, ...body }) })
    assert.equal(res.status, 200)
    return PairResponse.parse(await res.json())
  }
  const viewerKey = async (): Promise<string> => await exportPublicKey((await generateSigningKey(false)).publicKey)
  const owner = await pair(hub.trust.setupCode()!.code, { kind: 'viewer', id: newId('v'), name: 'Owner', key: await viewerKey() })
  const resident = await pair((await hub.trust.invite('console', { kind: 'viewer', role: 'resident', zones: [] }, hub.url)).code, { kind: 'viewer', id: newId('v'), name: 'Resident', key: await viewerKey() })
  const door = await pair((await hub.trust.invite('console', { kind: 'device', deviceId: 'front-door' }, hub.url)).code, { kind: 'device', id: 'front-door', name: 'Front door' })
  const presence = async (token: string): Promise<{ status: number, body: { connected?: Array<{ kind: string, subject: string, hub: string, since: number | null }>, hubs?: Record<string, { devices: number, screens: number }> } }> => {
    const res = await fetch(`${hub.url}api/presence`, { headers: { Authorization: `Bearer ${token}` } })
    return { status: res.status, body: await res.json() as never }
  }
  assert.deepEqual((await presence(owner.token)).body, { connected: [], hubs: {} })
  const device = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'device-front-door', username: door.member.id, password: door.token, reconnectPeriod: 0 })
  const seen = await presence(owner.token)
  assert.equal(seen.status, 200)
  assert.deepEqual(seen.body.connected?.map((c) => [c.kind, c.subject, c.hub, c.since]), [['device', 'front-door', 'local', null]])
  assert.deepEqual(seen.body.hubs, { local: { devices: 1, screens: 0 } })
  assert.equal((await presence(resident.token)).status, 403, 'owners only')
  assert.equal((await presence('not-a-token')).status, 401)
  await device.endAsync()
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.deepEqual((await presence(owner.token)).body.connected, [])
})
