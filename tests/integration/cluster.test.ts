import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { RingEvent, encode, newId, topics } from '@doorbell/core'
import { ApiError } from '@doorbell/viewer/lib'
import {
  connectAs, pairDevice, pairScreen, pairThrough, ready, startClusterNginx,
  type ClusterHub, type Owner, type PairedDevice, type PairedScreen, reportExitedHubs, startThreeHubs, stopThreeHubs, type ThreeHubs
} from '../src/cluster'
import { eventually } from '../src/harness'
import { request, type Nginx } from '../src/nginx'
import type { TestPostgres } from '../src/postgres'
import type { TestRedis } from '../src/redis'

/**
 * Three hubs as one cluster (docs/cluster.md): Redis and PostgreSQL from Debian, nginx in front
 * with the shipped cluster configs, every process started by the test on loopback.
 */

const HOME = 'home'
const RINGS = `doorbell/${HOME}/+/ring`

function ring (device: PairedDevice): { topic: string, payload: string, ringId: string } {
  const ringId = newId('r')
  return { topic: topics.ring(HOME, device.deviceId), payload: encode(RingEvent, { type: 'ring', deviceId: device.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), ringId }
}

/** Every ring id a client receives, in order. */
function ringsOf (client: MqttClient): string[] {
  const seen: string[] = []
  client.on('message', (topic, payload) => { if (topic.endsWith('/ring')) seen.push((JSON.parse(payload.toString()) as { ringId: string }).ringId) })
  return seen
}

async function end (...clients: MqttClient[]): Promise<void> {
  await Promise.all(clients.map(async (c) => { await c.endAsync(true).catch(() => {}) }))
}

describe('a cluster of three hubs on Redis and PostgreSQL behind nginx', { timeout: 240_000 }, () => {
  let redis: TestRedis
  let db: TestPostgres
  const hubs: ClusterHub[] = []
  const cluster: ThreeHubs = { hubs }
  let A: ClusterHub, B: ClusterHub, C: ClusterHub
  let owner: Owner
  let front: { nginx: Nginx, caPem: string, httpsUrl: string, mqttsUrl: string }
  let door: PairedDevice
  const clients: MqttClient[] = []

  before(async () => {
    const three = await startThreeHubs(cluster, 'cluster-', { ownerOnA: true })
    ;({ redis, db, A, B, C } = three)
    owner = three.owner!
    const started = await startClusterNginx(join(three.dir, 'nginx'), hubs)
    front = { nginx: started.nginx, caPem: started.cert.caPem, httpsUrl: started.httpsUrl, mqttsUrl: started.mqttsUrl }
    door = await pairDevice(owner.on(A), A)
  })

  after(async () => {
    // A hub that died on its own says why here.
    reportExitedHubs(hubs)
    await end(...clients)
    await front?.nginx.stop()
    await stopThreeHubs(cluster)
  })

  it('shares one home: the owner paired through A is the owner on B and C, and nginx serves any of them', async () => {
    for (const hub of [A, B, C]) assert.equal((await owner.on(hub).me()).role, 'owner')
    const info = await request(`${front.httpsUrl}api/info`, { ca: front.caPem })
    assert.equal(info.status, 200, info.body)
    // The second and later hubs found an owner: none printed a setup code.
    for (const hub of [B, C]) assert.ok(!hub.proc.lines.some((l) => l.includes('no owner yet')), `${hub.name} printed no setup code`)
  })

  it('a ring published through A reaches the screens signed in on B and on C', async () => {
    const screenB = await pairScreen(owner.on(B), B, 'Hall screen')
    const screenC = await pairScreen(owner.on(C), C, 'Kitchen screen')
    const onB = await connectAs(B.mqttUrl, screenB)
    const onC = await connectAs(C.mqttUrl, screenC)
    const device = await connectAs(A.mqttUrl, door)
    clients.push(onB, onC, device)
    const seenB = ringsOf(onB)
    const seenC = ringsOf(onC)
    await onB.subscribeAsync(RINGS, { qos: 1 })
    await onC.subscribeAsync(RINGS, { qos: 1 })
    const r = ring(door)
    await device.publishAsync(r.topic, r.payload, { qos: 1 })
    await eventually('the ring on B', () => seenB.includes(r.ringId))
    await eventually('the ring on C', () => seenC.includes(r.ringId))
  })

  it('a member removed through B is disconnected on C at once, and refused by every hub', async () => {
    const screen = await pairScreen(owner.on(A), A, 'Guest tablet')
    const onC = await connectAs(C.mqttUrl, screen)
    clients.push(onC)
    const closed = new Promise<number>((resolve) => { onC.once('close', () => { resolve(Date.now()) }) })
    const removedAt = Date.now()
    await owner.on(B).removeMember(screen.memberId)
    const at = await Promise.race([closed, new Promise<number>((_resolve, reject) => setTimeout(() => { reject(new Error('the removed member is still connected to C after 5 s')) }, 5000))])
    console.log(`removed through B → disconnected on C: ${at - removedAt} ms`)
    for (const hub of [A, B, C]) {
      await assert.rejects(connectAs(hub.mqttUrl, screen), (err: Error & { code?: number }) => err.code === 4, `${hub.name} refuses the removed member as bad credentials`)
    }
  })

  it('an audit record written through C is in the owner\'s log on A, and PostgreSQL refuses to change or delete it', async () => {
    await owner.on(C).invite({ kind: 'viewer', role: 'guest', door: false })
    const log = await owner.on(A).audit({ limit: 1000 })
    assert.ok(log.some((r) => r.kind === 'invite' && r.message.startsWith('invited a guest')), 'the invitation made through C is in A\'s log')
    const cityUrl = 'city'
    // Even the superuser, who could drop the trigger, is refused while it stands.
    await assert.rejects(db.query('UPDATE audit SET message = $1', ['rewritten'], cityUrl), /append-only/)
    await assert.rejects(db.query('DELETE FROM audit', [], cityUrl), /append-only/)
    await assert.rejects(db.query('TRUNCATE audit', [], cityUrl), /append-only/)
    assert.equal((await db.query('SELECT count(*)::int AS n FROM audit WHERE message = $1', ['rewritten'], cityUrl)).rows[0].n, 0)
  })

  it('PostgreSQL down: sign-in and pairing fail closed with a clear error, rings go on, and the hubs recover when it is back', async () => {
    const screen = await pairScreen(owner.on(A), A, 'Porch screen')
    const invite = await owner.on(A).invite({ kind: 'viewer', role: 'resident' })
    const watcher = await connectAs(B.mqttUrl, screen)
    const device = await connectAs(C.mqttUrl, door)
    clients.push(watcher, device)
    const seen = ringsOf(watcher)
    await watcher.subscribeAsync(RINGS, { qos: 1 })
    await db.stop()
    try {
      // MQTT: "server unavailable" (3), which a screen retries, never "bad credentials" (4), which it takes as removed.
      await assert.rejects(connectAs(A.mqttUrl, screen), (err: Error & { code?: number }) => err.code === 3)
      await assert.rejects(owner.on(B).members(), (err: Error) => err instanceof ApiError && err.status === 503 && /cannot be checked now/.test(err.message))
      const pairing = await fetch(`${C.base}/api/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ kind: 'device', code: invite.code.replace('-', ''), id: newId('d'), name: 'Late door' }) })
      assert.equal(pairing.status, 503)
      assert.match((await pairing.json() as { error: string }).error, /cannot be checked now/)
      // Those already signed in go on: a ring through C still reaches the screen on B.
      const r = ring(door)
      await device.publishAsync(r.topic, r.payload, { qos: 1 })
      await eventually('the ring while PostgreSQL is down', () => seen.includes(r.ringId))
    } finally {
      await db.resume()
    }
    const back = await eventually('sign-in once PostgreSQL is back', async () => await connectAs(A.mqttUrl, screen).catch(() => null))
    clients.push(back)
    assert.equal((await owner.on(B).members()).some((m) => m.id === screen.memberId), true)
  })

  it('Redis restarted: the hubs reconnect and rings flow between them again', async () => {
    const screen = await pairScreen(owner.on(A), A, 'Lobby screen')
    const onA = await connectAs(A.mqttUrl, screen)
    const device = await connectAs(B.mqttUrl, door)
    clients.push(onA, device)
    const seen = ringsOf(onA)
    await onA.subscribeAsync(RINGS, { qos: 1 })
    await redis.stop('SIGKILL')
    await redis.run()
    await eventually('a ring from B on A after Redis came back', async () => {
      // Not awaited: while the hubs reconnect, a PUBACK may come late (mqtt.js resends it by itself).
      const r = ring(door)
      device.publish(r.topic, r.payload, { qos: 1 })
      await new Promise((resolve) => setTimeout(resolve, 300))
      return seen.includes(r.ringId)
    }, 20_000)
    for (const hub of [A, B, C]) assert.equal(hub.proc.proc.exitCode, null, `hub ${hub.name} is still running`)
  })

  it('SIGKILL a hub: its clients reconnect through nginx to another, and a QoS 1 ring pressed meanwhile is delivered', async () => {
    const screen = await pairScreen(owner.on(A), A, 'Desk screen')
    // Persistent session: the broker keeps the subscription and queues QoS 1 rings while the screen is away.
    const viewerClientId = `viewer-${screen.viewerId}-desk`
    const onFront = await connectAs(front.mqttsUrl, screen, { ca: front.caPem, clientId: viewerClientId, clean: false, reconnectPeriod: 200 })
    clients.push(onFront)
    const seen = ringsOf(onFront)
    await onFront.subscribeAsync(RINGS, { qos: 1 })
    const doorClient = await connectAs(front.mqttsUrl, door, { ca: front.caPem, reconnectPeriod: 200 })
    clients.push(doorClient)
    // Which hub nginx gave the screen: the one whose log shows its client id.
    const victim = await eventually('the screen\'s hub', () => [A, B, C].find((h) => h.proc.lines.some((l) => l.includes('client connected') && l.includes(viewerClientId))))
    const offline = new Promise<void>((resolve) => { onFront.once('offline', () => { resolve() }) })
    const killedAt = Date.now()
    await victim.stop('SIGKILL')
    await offline
    const r = ring(door)
    await doorClient.publishAsync(r.topic, r.payload, { qos: 1 })
    await eventually('the screen back through nginx', () => onFront.connected, 20_000)
    const backAt = Date.now()
    await eventually('the ring pressed while the screen was away', () => seen.includes(r.ringId), 20_000)
    console.log(`hub ${victim.name} killed → screen back through nginx: ${backAt - killedAt} ms`)
    const survivors = [A, B, C].filter((h) => h !== victim)
    assert.ok(survivors.some((h) => h.proc.lines.some((l) => l.includes('client connected') && l.includes(viewerClientId))), 'a surviving hub took the screen')
    await victim.restart()
    await ready(victim)
  })

  it('the sign-in and pairing limits are the cluster\'s: attempts spent on one hub count on the others', async () => {
    // Pairing: ten bad codes from one address through A, the eleventh from it through C is told to wait.
    const address = '10.77.0.1'
    const bad = { kind: 'device' as const, code: 'ABCDEFGHJK', id: newId('d'), name: 'Prober' }
    for (let i = 0; i < 10; i++) await assert.rejects(pairThrough(A, bad, address), (err: Error & { status?: number }) => err.status === 401)
    await new Promise((resolve) => setTimeout(resolve, 500))
    await assert.rejects(pairThrough(C, bad, address), (err: Error & { status?: number }) => err.status === 429)
    // Another address is not held back.
    await assert.rejects(pairThrough(C, bad, '10.77.0.2'), (err: Error & { status?: number }) => err.status === 401)

    // MQTT: fifteen wrong tokens for one member through A, then fifteen through B. One hub alone
    // allows 20 (and one more a second): only if B counts A's does it start saying "wait" (3).
    const screen = await pairScreen(owner.on(A), A, 'Limit screen')
    const wrong = { ...screen, token: `${screen.memberId}.${'x'.repeat(43)}` }
    const codes = async (hub: ClusterHub): Promise<number[]> => {
      const out: number[] = []
      for (let i = 0; i < 15; i++) out.push(await connectAs(hub.mqttUrl, wrong).then(() => 0, (err: Error & { code?: number }) => err.code ?? -1))
      return out
    }
    const onA = await codes(A)
    assert.deepEqual(onA, Array(15).fill(4), 'A: bad credentials, fifteen times')
    const onB = await codes(B)
    assert.ok(onB.every((c) => c === 4 || c === 3), `B: ${onB.join(',')}`)
    assert.ok(onB.includes(3), `B counted A's failures and said "wait" (${onB.join(',')})`)
    // Locked for that member at that address on B: its right token too is told to wait, not refused as removed.
    await assert.rejects(connectAs(B.mqttUrl, screen), (err: Error & { code?: number }) => err.code === 3)
  })
})
