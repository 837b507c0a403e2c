import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import type { MqttClient } from 'mqtt'
import { CallRecord, EventsPage, RingEvent, SnapshotEvent, encode, newId, topics } from '@doorbell/core'
import { HISTORY_RETENTION_LOCK, PgHistoryStore } from '@doorbell/hub'
import { connectAs, pairDevice, pairScreen, type ClusterHub, type Owner, type PairedDevice, type PairedScreen, reportExitedHubs, startThreeHubs, stopThreeHubs, type ThreeHubs } from '../src/cluster'
import { eventually } from '../src/harness'
import type { TestPostgres } from '../src/postgres'
import type { TestRedis } from '../src/redis'

/**
 * A cluster's event history (issue 24): one history in the PostgreSQL the three hubs share. A ring
 * and its picture published through A are in /api/events on B and C; seen marks are a member's on
 * every hub; the owner deletes through any hub; retention runs on one hub at a time, once per
 * interval; PostgreSQL down answers 503 and the history is back with it.
 */

const HOME = 'home'
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(3000, 9), Buffer.from([0xff, 0xd9])])
const LATER = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe1]), Buffer.alloc(4000, 3), Buffer.from([0xff, 0xd9])])

async function api (hub: ClusterHub, path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(`${hub.base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}) } })
}

async function page (hub: ClusterHub, token: string, query = ''): Promise<EventsPage> {
  const res = await api(hub, `/api/events${query}`, token)
  assert.equal(res.status, 200, `${hub.name}: ${res.status}`)
  return EventsPage.parse(await res.json())
}

describe('the history of a cluster of three hubs, in PostgreSQL', { timeout: 240_000 }, () => {
  let redis: TestRedis
  let db: TestPostgres
  let postgresUrl: string
  const hubs: ClusterHub[] = []
  const cluster: ThreeHubs = { hubs }
  let A: ClusterHub, B: ClusterHub, C: ClusterHub
  let owner: Owner
  let resident: PairedScreen
  let door: PairedDevice
  let device: MqttClient

  before(async () => {
    const three = await startThreeHubs(cluster, 'cluster-history-', { ownerOnA: true })
    ;({ redis, db, postgresUrl, A, B, C } = three)
    owner = three.owner!
    door = await pairDevice(owner.on(A), A)
    resident = await pairScreen(owner.on(C), C, 'Kitchen tablet')
    device = await connectAs(A.mqttUrl, door)
  })

  after(async () => {
    reportExitedHubs(hubs)
    await device?.endAsync(true).catch(() => {})
    await stopThreeHubs(cluster)
  })

  /** A missed ring through A, with pictures: `seq` 1 then 2 (the later replaces the earlier). */
  async function missedRing (): Promise<string> {
    const ringId = newId('r')
    const at = Date.now()
    await device.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at, count: 1 }), { qos: 1 })
    for (const [seq, jpeg] of [[1, JPEG], [2, LATER]] as const) {
      await device.publishAsync(topics.snapshot(HOME, door.deviceId), encode(SnapshotEvent, { type: 'snapshot', deviceId: door.deviceId, ringId, at, seq, jpeg: jpeg.toString('base64') }), { qos: 1 })
    }
    await device.publishAsync(topics.calls(HOME, door.deviceId), encode(CallRecord, { deviceId: door.deviceId, ringId, startedAt: at, endedAt: at + 30_000, outcome: 'missed', answeredBy: [], unlocks: [] }), { qos: 1 })
    return ringId
  }

  it('a ring through A is in /api/events on B and C, with its latest picture, missed, once', async () => {
    const ringId = await missedRing()
    const onB = await eventually('the missed ring with its picture on B', async () => {
      const p = await page(B, owner.token, '?filter=missed')
      return p.events.find((e) => e.ringId === ringId && e.snapshot) ?? null
    }, 15_000)
    assert.equal(onB.outcome, 'missed')
    assert.equal(onB.unseen, true)
    const onC = (await page(C, resident.token)).events.filter((e) => e.ringId === ringId)
    assert.deepEqual(onC.map((e) => e.id), [onB.id], 'one row, the same id on every hub')
    const jpeg = await api(C, `/api/events/${onB.id}/snapshot`, owner.token)
    assert.equal(jpeg.status, 200)
    assert.equal(jpeg.headers.get('content-type'), 'image/jpeg')
    assert.deepEqual(Buffer.from(await jpeg.arrayBuffer()), LATER, 'seq 2 replaced seq 1')
    // The same ring delivered again (a doorbell's resend) through B changes nothing.
    const again = await connectAs(B.mqttUrl, door, { clientId: `device-${door.deviceId}` })
    await again.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), { qos: 1 })
    await again.endAsync(true)
    device = await connectAs(A.mqttUrl, door)
    assert.equal((await page(A, owner.token)).events.filter((e) => e.ringId === ringId).length, 1)
    assert.equal((await page(A, owner.token)).events.find((e) => e.ringId === ringId)?.outcome, 'missed')
  })

  it('seen marks are the member\'s on every hub; the owner deletes through any hub, others may not', async () => {
    const ringId = await missedRing()
    const event = await eventually('the ring on A', async () => (await page(A, owner.token)).events.find((e) => e.ringId === ringId && e.outcome === 'missed') ?? null, 15_000)
    const unseenBefore = (await page(C, resident.token)).unseen
    const seen = await api(B, '/api/events/seen', owner.token, { method: 'POST', body: JSON.stringify({ ids: [event.id] }) })
    assert.equal(seen.status, 200)
    assert.equal(((await seen.json()) as { marked: number }).marked, 1)
    assert.equal((await page(C, owner.token)).events.find((e) => e.id === event.id)?.unseen, false, 'seen through B, seen on C')
    assert.equal((await page(A, resident.token)).events.find((e) => e.id === event.id)?.unseen, true, 'still unseen for the resident')
    assert.equal((await page(A, resident.token)).unseen, unseenBefore)

    // Bad input and the wrong member: refused, nothing changes.
    assert.equal((await api(B, `/api/events/${event.id}`, resident.token, { method: 'DELETE' })).status, 403)
    assert.equal((await api(B, '/api/events/x1', owner.token, { method: 'DELETE' })).status, 404)
    assert.equal((await api(B, '/api/events/999999999', owner.token, { method: 'DELETE' })).status, 404)
    assert.equal((await api(C, '/api/events?limit=100000', owner.token)).status, 400)
    assert.ok((await page(A, owner.token)).events.some((e) => e.id === event.id))

    const deleted = await api(B, `/api/events/${event.id}`, owner.token, { method: 'DELETE' })
    assert.equal(deleted.status, 200)
    for (const hub of [A, B, C]) assert.ok(!(await page(hub, owner.token)).events.some((e) => e.id === event.id), `gone on ${hub.name}`)
    assert.equal((await api(A, `/api/events/${event.id}/snapshot`, owner.token)).status, 404, 'its picture went with it')
    assert.equal(Number((await db.query('SELECT count(*) AS n FROM history_pictures WHERE event_id = $1', [event.id], 'city')).rows[0].n), 0)
  })

  it('retention: one hub at a time (advisory lock), once per interval across hubs, rows and pictures together', async () => {
    // Two stores as two hubs would hold them, on the same database.
    const one = new PgHistoryStore({ url: postgresUrl, timeoutMs: 5000, nodeId: 'one' })
    const two = new PgHistoryStore({ url: postgresUrl, timeoutMs: 5000, nodeId: 'two' })
    const holder = new pg.Client({ connectionString: postgresUrl })
    await holder.connect()
    try {
      const now = Date.now()
      const old = one.addRing({ type: 'ring', deviceId: 'd-old', deviceName: 'Old door', ringId: 'r-old', at: now - 40 * 86_400_000, count: 1 })
      assert.equal(one.setSnapshot(old, 1, JPEG), true)
      assert.equal(two.setSnapshot(old, 1, LATER), false, 'the same seq through another hub is ignored')
      assert.deepEqual(two.snapshot(old), JPEG)
      const settings = { now, days: 30, maxBytes: 1 << 30 }

      // Another hub is at it (holds the lock): this one skips, deleting nothing.
      await holder.query('SELECT pg_advisory_lock($1)', [HISTORY_RETENTION_LOCK])
      assert.deepEqual(two.prune(settings), { events: 0, files: 0 })
      assert.notEqual(one.ringEventId('d-old', 'r-old'), null)
      await holder.query('SELECT pg_advisory_unlock($1)', [HISTORY_RETENTION_LOCK])

      // The hubs ran it at their start (the first; the others found it done): the hourly run skips.
      assert.deepEqual(one.prune({ ...settings, unlessWithinMs: 3_600_000 }), { events: 0, files: 0 })
      assert.notEqual(one.ringEventId('d-old', 'r-old'), null)
      assert.deepEqual(one.prune(settings), { events: 1, files: 1 })
      assert.equal(two.ringEventId('d-old', 'r-old'), null)
      assert.equal(Number((await holder.query('SELECT count(*) AS n FROM history_pictures WHERE event_id = $1', [old])).rows[0].n), 0)

      // Ran a moment ago through `one`: `two`'s timed run skips; an explicit run does not.
      const again = two.addRing({ type: 'ring', deviceId: 'd-old', deviceName: 'Old door', ringId: 'r-old2', at: now - 40 * 86_400_000, count: 1 })
      assert.deepEqual(two.prune({ ...settings, unlessWithinMs: 60_000 }), { events: 0, files: 0 })
      assert.notEqual(two.ringEventId('d-old', 'r-old2'), null)
      assert.deepEqual(two.prune(settings), { events: 1, files: 0 })
      assert.equal(one.ringEventId('d-old', 'r-old2'), null, `event ${again} gone`)

      // The size cap: the oldest pictures' events go until the rest fit.
      const ids = [0, 1, 2].map((i) => {
        // Older than the rings of the tests above, so these are the oldest pictures.
        const id = one.addRing({ type: 'ring', deviceId: 'd-cap', deviceName: 'Cap door', ringId: `r-cap${i}`, at: now - 3 * 86_400_000 + i, count: 1 })
        one.setSnapshot(id, 1, JPEG)
        return id
      })
      const total = Number((await holder.query('SELECT sum(snapshot_bytes) AS n FROM history_events')).rows[0].n)
      assert.deepEqual(one.prune({ ...settings, maxBytes: total - JPEG.length }), { events: 1, files: 1 })
      assert.deepEqual(ids.map((id) => one.snapshot(id) !== null), [false, true, true])
    } finally {
      await holder.end()
      one.close()
      two.close()
    }
  })

  it('PostgreSQL down: /api/events answers 503 with a reason; back up, the history is there again', async () => {
    await db.stop('fast')
    try {
      const res = await api(B, '/api/events', owner.token)
      assert.equal(res.status, 503)
      assert.match(((await res.json()) as { error: string }).error, /PostgreSQL/)
    } finally {
      await db.resume()
    }
    const back = await eventually('the history through B again', async () => {
      const res = await api(B, '/api/events', owner.token)
      return res.status === 200 ? EventsPage.parse(await res.json()) : null
    }, 30_000)
    assert.ok(back.events.some((e) => e.kind === 'ring'))
  })
})
