import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { RingEvent, RingPush, encode, newId, topics } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'
import { connectAs, makeHomeKey, pairDevice, pairOwner, pairScreen, startClusterHub, type ClusterHub, type Owner, type PairedDevice, type PairedScreen } from '../src/cluster'
import { eventually } from '../src/harness'
import { TestPostgres } from '../src/postgres'
import { startPushService, type PushServiceStandIn } from '../src/pushService'
import { TestRedis } from '../src/redis'

/**
 * Web Push on a cluster (issues 19 and 24): two hubs, Redis and PostgreSQL started by the test,
 * and the push-service stand-in (tests/src/pushService.ts), which checks each push's VAPID token
 * and decrypts its body with the screen's own keys. One VAPID key for the cluster, sealed in
 * PostgreSQL; a screen subscribed through B is pushed once per ring by A, where the doorbell is,
 * also when the ring reaches B too (a doorbell that reconnected); a 404/410 and a removed member
 * prune through any hub for all.
 */

const HOME = 'home'

describe('Web Push on a cluster of two hubs', { timeout: 240_000 }, () => {
  let dir: string
  let redis: TestRedis
  let db: TestPostgres
  let postgresUrl: string
  let service: PushServiceStandIn
  const hubs: ClusterHub[] = []
  let A: ClusterHub, B: ClusterHub
  let owner: Owner
  let resident: PairedScreen
  let door: PairedDevice
  let device: MqttClient | null = null

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cluster-push-'))
    redis = await TestRedis.start()
    db = await TestPostgres.start()
    postgresUrl = await db.createDatabase('city')
    service = await startPushService()
    const homeKey = makeHomeKey(join(dir, 'provisioned'))
    const config = { push: { allowLoopbackEndpoints: true } }
    A = await startClusterHub(dir, 'a', { redis, postgresUrl, homeKey, config })
    hubs.push(A)
    owner = await pairOwner(A)
    B = await startClusterHub(dir, 'b', { redis, postgresUrl, homeKey, config })
    hubs.push(B)
    door = await pairDevice(owner.on(A), A)
    resident = await pairScreen(owner.on(B), B, 'Kitchen tablet')
  })

  after(async () => {
    for (const hub of hubs) if (hub.proc.proc.exitCode !== null) console.log(`hub ${hub.name} exited ${hub.proc.proc.exitCode}:\n${hub.proc.lines.slice(-30).join('\n')}`)
    await device?.endAsync(true).catch(() => {})
    for (const hub of hubs) await hub.stop('SIGKILL')
    await service?.close()
    await redis?.destroy()
    await db?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const residentOn = (hub: ClusterHub): HubApi => new HubApi({ base: hub.base, token: resident.token })
  const kept = async (memberId: string): Promise<number> => Number((await db.query('SELECT count(*) AS n FROM push_subscriptions WHERE member_id = $1', [memberId], 'city')).rows[0].n)

  async function ring (through: ClusterHub, ringId = newId('r')): Promise<string> {
    if (device === null) device = await connectAs(through.mqttUrl, door)
    await device.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), { qos: 1 })
    return ringId
  }
  const pushesOf = (ringId: string): string[] => service.received.filter((r) => RingPush.parse(r.json).ringId === ringId).map((r) => r.screen).sort()

  it('one VAPID key for the cluster: the same from every hub, sealed in PostgreSQL, in no hub\'s data folder', async () => {
    const a = await owner.on(A).pushKey()
    const b = await residentOn(B).pushKey()
    assert.equal(Buffer.from(a.publicKey, 'base64url').length, 65)
    assert.equal(b.publicKey, a.publicKey)
    for (const hub of hubs) assert.equal(existsSync(join(dir, hub.name, 'push', 'vapid.json')), false, `no key file on ${hub.name}`)
    const rows = (await db.query('SELECT sealed FROM push_vapid', [], 'city')).rows as Array<{ sealed: Buffer }>
    assert.equal(rows.length, 1)
    // Sealed: version byte, iv, tag, then the PKCS#8 DER encrypted (a DER sequence would start 0x30 0x81/0x82).
    assert.equal(rows[0]!.sealed[0], 1)
    assert.ok(!rows[0]!.sealed.includes(Buffer.from(a.publicKey, 'base64url')), 'the public point is not in the sealed bytes in clear')
  })

  it('bad subscriptions through B are refused and keep nothing', async () => {
    const screen = service.screen('refused')
    for (const [what, body] of [
      ['an http endpoint off loopback', { subscription: { ...screen.subscription, endpoint: 'http://192.0.2.1/push/x' } }],
      ['a short auth secret', { subscription: { ...screen.subscription, keys: { ...screen.subscription.keys, auth: 'AAAA' } } }]
    ] as const) {
      const res = await fetch(`${B.base}/api/push/subscriptions`, { method: 'POST', headers: { authorization: `Bearer ${resident.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      assert.equal(res.status, 400, what)
    }
    assert.equal(await kept(resident.memberId), 0)
  })

  it('a screen subscribed through B gets one push per ring, signed by the cluster\'s key, when the doorbell rings on A; also when the ring reaches B again', async () => {
    const { publicKey } = await residentOn(B).pushKey()
    await residentOn(B).subscribePush(service.screen('tablet').subscription, 'Tablet')
    await owner.on(A).subscribePush(service.screen('phone').subscription, 'Phone')
    assert.equal((await residentOn(A).pushKey()).subscriptions, 1, 'A sees the subscription made through B')

    const first = await ring(A)
    await eventually('the first ring\'s pushes', () => pushesOf(first).length >= 2, 30_000)
    // The doorbell reconnects through B and sends the same ring again (its QoS 1 resend): no second push.
    await device!.endAsync()
    device = null
    await ring(B, first)
    // A later ring through A: once its pushes are in, any second push of the first would be too.
    const second = await ring(A)
    await eventually('the second ring\'s pushes', () => pushesOf(second).length >= 2, 30_000)
    assert.equal(service.refused.length, 0, JSON.stringify(service.refused))
    assert.deepEqual(pushesOf(first), ['phone', 'tablet'], 'one push per screen for the first ring')
    assert.deepEqual(pushesOf(second), ['phone', 'tablet'], 'one push per screen for the second ring')
    for (const r of service.received) {
      const push = RingPush.parse(r.json)
      assert.equal(push.deviceId, door.deviceId)
      assert.equal(r.vapidKey, publicKey, 'signed with the key B gave the screen')
      assert.equal(r.claims.aud, service.url)
    }
    assert.ok(A.proc.lines.some((l) => l.includes('ring pushed') && l.includes(first)), 'A pushed the first ring')
    // B heard the resent ring from the doorbell itself and found it claimed.
    await eventually('B finds the ring claimed', () => B.proc.lines.some((l) => l.includes('ring pushed by another hub') && l.includes(first)), 30_000)
    assert.ok(!B.proc.lines.some((l) => l.includes('ring pushed') && l.includes(first) && !l.includes('another hub')), 'B did not push it again')
    assert.deepEqual(pushesOf(first), ['phone', 'tablet'], 'still one push per screen')
  })

  it('a screen the push service forgot (410) is pruned for every hub; a removed member\'s subscriptions go, through any hub', async () => {
    service.forget('tablet')
    const r = await ring(A)
    await eventually('the 410', () => service.refused.some((x) => x.screen === 'tablet' && x.status === 410) && pushesOf(r).length >= 1, 30_000)
    await eventually('the tablet pruned, seen through B', async () => (await residentOn(B).pushKey()).subscriptions === 0)

    await residentOn(B).subscribePush(service.screen('laptop').subscription, 'Laptop')
    assert.equal(await kept(resident.memberId), 1)
    await owner.on(A).removeMember(resident.memberId)
    await eventually('the removed member\'s subscriptions deleted', async () => await kept(resident.memberId) === 0)
    assert.equal((await owner.on(B).pushKey()).subscriptions, 1, 'the owner\'s phone stays')
  })
})
