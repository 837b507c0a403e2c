import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { DeviceState, Presence, RingEvent, StockDoorSetting, encode, exportPublicKey, generateSigningKey, importPublicKey, newId, open, signReplyList, topics } from '@doorbell/core'
import { ApiError } from '@doorbell/viewer/lib'
import {
  connectAs, pairDevice, pairOwner, pairScreen, pairThrough, startClusterHub,
  type ClusterHub, type Owner, type PairedDevice, type PairedScreen, reportExitedHubs, startThreeHubs, stopThreeHubs, type ThreeHubs
} from '../src/cluster'
import { eventually } from '../src/harness'
import type { TestPostgres } from '../src/postgres'
import type { TestRedis } from '../src/redis'

/**
 * The state each hub used to keep for itself, shared (docs/cluster.md, "What is shared where"):
 * three hub processes, Redis and PostgreSQL on loopback, started by the test.
 */

const HOME = 'home'
const TESTS = fileURLToPath(new URL('..', import.meta.url))

function stateOf (device: PairedDevice, lock: 'locked' | 'unlocked'): string {
  return encode(DeviceState, { deviceId: device.deviceId, deviceName: 'Door', call: { status: 'idle', ringId: null, since: 1 }, participants: [], lock: { status: lock, relockAt: null, version: 1, boot: 'b1', error: null }, lastRing: null, at: Date.now() })
}

/**
 * A doorbell in a process of its own (so that SIGKILL is a real death): it signs in with its
 * will (offline), publishes its state (unlocked) and presence, both retained, and waits.
 */
function doorbellProcess (url: string, device: PairedDevice): { child: ChildProcess, up: Promise<void> } {
  const presence = (online: boolean): string => encode(Presence, { deviceId: device.deviceId, deviceName: 'Door', online, at: Date.now() })
  const script = `
    import mqtt from 'mqtt'
    const [url, id, user, pass, stateTopic, state, presenceTopic, online, offline] = process.argv.slice(1)
    const c = mqtt.connect(url, { clientId: 'device-' + id, username: user, password: pass, reconnectPeriod: 0, keepalive: 5,
      will: { topic: presenceTopic, payload: Buffer.from(offline), qos: 1, retain: true } })
    c.on('error', (e) => { console.error(e.message); process.exit(2) })
    c.on('connect', async () => {
      await c.publishAsync(stateTopic, state, { qos: 1, retain: true })
      await c.publishAsync(presenceTopic, online, { qos: 1, retain: true })
      console.log('up')
    })`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, url, device.deviceId, device.memberId, device.token,
    topics.state(HOME, device.deviceId), stateOf(device, 'unlocked'), topics.presence(HOME, device.deviceId), presence(true), presence(false)], { cwd: TESTS, stdio: ['ignore', 'pipe', 'pipe'] })
  const up = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('up')) resolve() })
    child.once('exit', (code) => { reject(new Error(`the doorbell process exited (${code})`)) })
  })
  return { child, up }
}

/** What a screen that subscribes now gets of a doorbell's retained state and presence (after `settleMs`). */
async function retainedFor (hub: ClusterHub, screen: PairedScreen, device: PairedDevice, settleMs = 700): Promise<{ state: DeviceState | null, online: boolean | null }> {
  const client = await connectAs(hub.mqttUrl, screen)
  try {
    let state: DeviceState | null = null
    let online: boolean | null = null
    client.on('message', (topic, payload) => {
      if (topic === topics.state(HOME, device.deviceId)) state = DeviceState.parse(JSON.parse(payload.toString()))
      if (topic === topics.presence(HOME, device.deviceId)) online = Presence.parse(JSON.parse(payload.toString())).online
    })
    await client.subscribeAsync([topics.state(HOME, device.deviceId), topics.presence(HOME, device.deviceId)], { qos: 1 })
    await new Promise((resolve) => setTimeout(resolve, settleMs))
    return { state, online }
  } finally {
    await client.endAsync(true).catch(() => {})
  }
}

describe('the state each hub kept for itself, shared by a cluster of three hubs', { timeout: 300_000 }, () => {
  let redis: TestRedis
  let db: TestPostgres
  const hubs: ClusterHub[] = []
  const cluster: ThreeHubs = { hubs }
  let A: ClusterHub, B: ClusterHub, C: ClusterHub
  let owner: Owner
  const clients: MqttClient[] = []
  const children: ChildProcess[] = []

  before(async () => {
    // All three start before the home has an owner.
    const three = await startThreeHubs(cluster, 'cluster-state-', { ownerOnA: false })
    ;({ redis, db, A, B, C } = three)
  })

  after(async () => {
    reportExitedHubs(hubs)
    for (const child of children) child.kill('SIGKILL')
    await Promise.all(clients.map(async (c) => { await c.endAsync(true).catch(() => {}) }))
    await stopThreeHubs(cluster)
  })

  it('one setup code for the cluster: the first hub with no owner prints it, the others say where it is, and it pairs the owner through any hub', async () => {
    const printed = A.proc.lines.filter((l) => l.includes('no owner yet'))
    assert.equal(printed.length, 1, 'A printed the setup code')
    for (const hub of [B, C]) {
      assert.ok(!hub.proc.lines.some((l) => l.includes('no owner yet')), `${hub.name} printed no code of its own`)
      assert.ok(hub.proc.lines.some((l) => l.includes('setup code another hub of the cluster printed') && l.includes('hub=a')), `${hub.name} says hub a printed it`)
    }
    const code = /setup code code=(\S+)/.exec(printed[0]!)![1]!
    // A wrong code through B: refused, and A's still works (through C).
    await assert.rejects(pairThrough(B, { kind: 'viewer', code: 'ABCDEFGHJK', id: newId('v'), name: 'Prober', key: await exportPublicKey((await generateSigningKey(false)).publicKey) }), (err: Error & { status?: number }) => err.status === 401)
    owner = await pairOwner(C, code)
    for (const hub of [A, B, C]) assert.equal((await owner.on(hub).me()).role, 'owner')
    // Used once: never again, through any hub.
    await assert.rejects(pairThrough(A, { kind: 'viewer', code: code.replace('-', ''), id: newId('v'), name: 'Second owner', key: await exportPublicKey((await generateSigningKey(false)).publicKey) }), (err: Error & { status?: number }) => err.status === 401)
  })

  it('fail-secure across hubs: a doorbell on A is not stale on B while it lives; SIGKILLed while unlocked, B withholds its state', async () => {
    const door = await pairDevice(owner.on(A), A)
    const screen = await pairScreen(owner.on(B), B, 'Hall screen')
    const bell = doorbellProcess(A.mqttUrl, door)
    children.push(bell.child)
    await bell.up
    const alive = await retainedFor(B, screen, door)
    assert.equal(alive.online, true, 'B shows the doorbell online')
    assert.equal(alive.state?.lock?.status, 'unlocked', 'while it lives, B gives its state (not stale)')
    // A screen already watching on C sees the offline presence: from then on, any screen on B or C is withheld the old state.
    const watcher = await connectAs(C.mqttUrl, screen)
    clients.push(watcher)
    const offline = new Promise<number>((resolve) => {
      watcher.on('message', (topic, payload) => { if (topic === topics.presence(HOME, door.deviceId) && !Presence.parse(JSON.parse(payload.toString())).online) resolve(Date.now()) })
    })
    await watcher.subscribeAsync(topics.presence(HOME, door.deviceId), { qos: 1 })
    const killedAt = Date.now()
    bell.child.kill('SIGKILL')
    const offlineAt = await offline
    console.log(`doorbell SIGKILLed on A → offline on C: ${offlineAt - killedAt} ms`)
    for (const hub of [B, C, A]) {
      const dead = await retainedFor(hub, screen, door)
      assert.equal(dead.online, false, `${hub.name}: its presence says offline`)
      assert.equal(dead.state, null, `${hub.name}: the "unlocked" it left is withheld`)
    }
    // Back (a new process on C): its new state goes out on every hub.
    const again = doorbellProcess(C.mqttUrl, door)
    children.push(again.child)
    await again.up
    await eventually('its state on B again', async () => (await retainedFor(B, screen, door, 300)).state?.lock?.status === 'unlocked')
    again.child.kill('SIGKILL')
  })

  it('the owner\'s per-doorbell settings live in PostgreSQL: a change through any hub is what every hub serves and signs, with the database\'s seq', async () => {
    const door = await pairDevice(owner.on(A), A)
    assert.equal((await owner.on(A).setLivePreview(door.deviceId, false)).seq, 1)
    const second = await owner.on(B).setStockSetting(door.deviceId, true)
    assert.deepEqual({ seq: second.seq, acceptUnsignedOpenDoor: second.acceptUnsignedOpenDoor, livePreview: second.livePreview }, { seq: 2, acceptUnsignedOpenDoor: true, livePreview: false }, 'B continues A\'s seq and keeps A\'s setting')
    // Changes through the three hubs at once: each takes its own next number, none is lost.
    const together = await Promise.all([A, B, C, A, B, C].map(async (hub, i) => await owner.on(hub).setLivePreview(door.deviceId, i % 2 === 0)))
    assert.deepEqual(together.map((s) => s.seq).sort((x, y) => x - y), [3, 4, 5, 6, 7, 8])
    const newest = together.find((s) => s.seq === 8)!
    for (const hub of [A, B, C]) {
      const mine = (await owner.on(hub).stockSettings()).find((s) => s.deviceId === door.deviceId)
      assert.deepEqual(mine, newest, `${hub.name} serves the newest`)
    }
    // Bad input through C changes nothing.
    const bad = await fetch(`${C.base}/api/devices/${door.deviceId}/live-preview`, { method: 'PUT', headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' }, body: '{"livePreview":"yes"}' })
    assert.equal(bad.status, 400)
    assert.deepEqual((await owner.on(A).stockSettings()).find((s) => s.deviceId === door.deviceId), newest)
    // What the doorbell hears (retained with the revocation list, on whichever hub it signs in): seq 8, signed by the home.
    const device = await connectAs(C.mqttUrl, door)
    clients.push(device)
    const homeKey = await importPublicKey(owner.homeKey)
    const heard = await new Promise<string[]>((resolve) => {
      device.on('message', (topic, payload) => { if (topic === topics.revocations(HOME)) resolve((JSON.parse(payload.toString()) as { stockSettings?: string[] }).stockSettings ?? []) })
      void device.subscribeAsync(topics.revocations(HOME), { qos: 1 })
    })
    const opened = await Promise.all(heard.map(async (t) => await open(StockDoorSetting, t, homeKey)))
    const forDoor = opened.flatMap((o) => o.ok && o.value.device === door.deviceId ? [o.value] : [])
    assert.deepEqual(forDoor.map((v) => [v.seq, v.livePreview, v.acceptUnsignedOpenDoor]), [[8, newest.livePreview, true]])
  })

  it('the quick replies live in PostgreSQL: saved through A, served by B and C; an older list through C is refused; a newer one through C wins everywhere', async () => {
    const save = async (hub: ClusterHub, replies: string[], now: number) => await owner.on(hub).saveReplies(await signReplyList({ credential: owner.credential, key: owner.key.privateKey, home: HOME, replies, now }))
    const now = Date.now()
    await save(A, ['Coming!', 'Leave it at the door'], now)
    for (const hub of [B, C]) assert.deepEqual((await owner.on(hub).replies()).replies, ['Coming!', 'Leave it at the door'], `${hub.name} serves A's list`)
    await assert.rejects(save(C, ['Old'], now - 60_000), (err: Error) => err instanceof ApiError && err.status === 409)
    assert.deepEqual((await owner.on(B).replies()).replies, ['Coming!', 'Leave it at the door'], 'the older list changed nothing')
    await save(C, ['One moment'], now + 1000)
    for (const hub of [A, B]) assert.deepEqual((await owner.on(hub).replies()).replies, ['One moment'], `${hub.name} serves C's newer list`)
  })

  it('a removed member\'s persistent sessions and queued rings are dropped from Redis, and no hub queues for them again', async () => {
    const door = await pairDevice(owner.on(A), A)
    const screen = await pairScreen(owner.on(A), A, 'Away tablet')
    const clientId = `viewer-${screen.viewerId}-away`
    const queue = `outgoing:${encodeURIComponent(clientId)}`
    const away = await connectAs(B.mqttUrl, screen, { clientId, clean: false })
    await away.subscribeAsync(`doorbell/${HOME}/+/ring`, { qos: 1 })
    await away.endAsync()
    const device = await connectAs(A.mqttUrl, door)
    clients.push(device)
    const press = async (): Promise<void> => {
      await device.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId: newId('r'), at: Date.now(), count: 1 }), { qos: 1 })
    }
    await press()
    await eventually('the ring queued for the screen away', () => redis.command('LLEN', queue) === '1')
    assert.equal(redis.command('SISMEMBER', 'clients', clientId), '1')
    await owner.on(C).removeMember(screen.memberId)
    await eventually('its session gone from Redis', () => redis.command('EXISTS', queue, `client:${encodeURIComponent(clientId)}`) === '0' && redis.command('SISMEMBER', 'clients', clientId) === '0')
    assert.equal(redis.command('KEYS', 'packet:*'), '', 'the queued ring\'s packet released (no other session held it)')
    // Every hub's subscription index forgot it: a ring through A is queued for no one.
    await press()
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(redis.command('EXISTS', queue), '0', 'nothing queued for the removed screen')
    assert.ok([A, B, C].some((h) => h.proc.lines.some((l) => l.includes('dropped a removed member\'s sessions'))), 'a hub logged it')
  })

  it('presence in Redis: which devices and screens are connected, on any hub, read through any hub; a dead hub\'s drop out', async () => {
    const door = await pairDevice(owner.on(A), A)
    const screen = await pairScreen(owner.on(A), A, 'Presence screen')
    const device = await connectAs(A.mqttUrl, door)
    const onB = await connectAs(B.mqttUrl, screen)
    clients.push(device, onB)
    type Seen = { connected: Array<{ kind: string, subject: string, hub: string, memberId: string }>, hubs: Record<string, { devices: number, screens: number }> }
    const presence = async (hub: ClusterHub): Promise<Seen> => {
      const res = await fetch(`${hub.base}/api/presence`, { headers: { Authorization: `Bearer ${owner.token}` } })
      assert.equal(res.status, 200, await res.clone().text())
      return await res.json() as Seen
    }
    const where = (seen: Seen, subject: string): string[] => seen.connected.filter((c) => c.subject === subject).map((c) => c.hub)
    await eventually('both, read through C', async () => {
      const seen = await presence(C)
      return where(seen, door.deviceId).join() === 'a' && where(seen, screen.viewerId).join() === 'b'
    })
    const seen = await presence(B)
    assert.ok(seen.hubs.a!.devices >= 1 && seen.hubs.b!.screens >= 1, JSON.stringify(seen.hubs))
    // Only the owner reads it.
    const asScreen = await fetch(`${C.base}/api/presence`, { headers: { Authorization: `Bearer ${screen.token}` } })
    assert.equal(asScreen.status, 403)
    await onB.endAsync()
    await eventually('the screen gone', async () => where(await presence(C), screen.viewerId).length === 0)
    // A hub that dies says no goodbye: its entries expire (15 s), and its doorbell, reconnected elsewhere, shows there.
    await A.stop('SIGKILL')
    const again = await connectAs(C.mqttUrl, door)
    clients.push(again)
    await eventually('A\'s entries gone, the doorbell on C', async () => where(await presence(B), door.deviceId).join() === 'c', 30_000)
    await A.restart()
  })

  it('Home Assistant\'s integration keys: made through A, sealed in PostgreSQL (no key file on any hub), gone when removed through B', async () => {
    const made = await owner.on(A).createIntegration({ name: 'Home Assistant' })
    const rows = async (): Promise<Array<{ id: string, sealed: Buffer }>> => (await db.query('SELECT id, sealed FROM integration_keys WHERE id = $1', [made.member.id], 'city')).rows as Array<{ id: string, sealed: Buffer }>
    assert.equal((await rows()).length, 1, 'its key is in PostgreSQL')
    for (const hub of [A, B, C]) assert.equal(existsSync(join(cluster.dir!, hub.name, 'trust', 'integrations')), false, `no key file on ${hub.name}`)
    await owner.on(B).removeMember(made.member.id)
    assert.equal((await rows()).length, 0, 'removed through B: its key is gone')
  })
})
