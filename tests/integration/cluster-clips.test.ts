import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import pg from 'pg'
import { CLIP_PART_BYTES, ClipFailed, ClipPart, EventsPage, RingEvent, encode, newId, topics, type HistoryEvent } from '@doorbell/core'
import { PgHistoryStore } from '@doorbell/hub'
import { connectAs, makeHomeKey, pairDevice, pairOwner, pairScreen, startClusterHub, type ClusterHub, type Owner, type PairedDevice, type PairedScreen } from '../src/cluster'
import { eventually } from '../src/harness'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'

/**
 * Ring clips on a cluster (issues 19 and 24): a clip the doorbell sends through hub A is kept in
 * PostgreSQL and plays from hub B byte for byte, with Range requests across the rows it is kept
 * in; an address signed by A plays on B (the key is derived from the home key), a forged one is
 * refused by both; a failure says why on every hub; retention counts the clip and takes it with
 * its event. The clip is a real MP4 made by ffmpeg, sent in parts as the doorbell sends it.
 */

const HOME = 'home'
/** The rows a clip is kept in (hub/src/cluster/pgClips.ts): the ranges below cross their boundaries. */
const ROW = 256 * 1024

describe('ring clips on a cluster of two hubs', { timeout: 240_000 }, () => {
  let dir: string
  let redis: TestRedis
  let db: TestPostgres
  let postgresUrl: string
  const hubs: ClusterHub[] = []
  let A: ClusterHub, B: ClusterHub
  let owner: Owner
  let resident: PairedScreen
  let door: PairedDevice
  let device: MqttClient
  let mp4: Buffer
  let event: HistoryEvent

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cluster-clips-'))
    const file = join(dir, 'clip.mp4')
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '2', '-vf', 'noise=alls=10:allf=t', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '20', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', file], { timeout: 120_000 })
    // Noise keeps the test pattern from compressing to a few KB: about 600 KB, three of PostgreSQL's rows.
    mp4 = readFileSync(file)
    assert.ok(mp4.length > 2 * ROW, `the clip spans three rows or more (${mp4.length} bytes)`)
    redis = await TestRedis.start()
    db = await TestPostgres.start()
    postgresUrl = await db.createDatabase('city')
    const homeKey = makeHomeKey(join(dir, 'provisioned'))
    // The hubs wait long for PostgreSQL: two tests below hold a clip's rows at a lock for a while.
    A = await startClusterHub(dir, 'a', { redis, postgresUrl, homeKey, config: { cluster: { nodeId: 'a', redisUrl: redis.url, postgresUrl, postgresTimeoutMs: 30_000 } } })
    hubs.push(A)
    owner = await pairOwner(A)
    B = await startClusterHub(dir, 'b', { redis, postgresUrl, homeKey, config: { cluster: { nodeId: 'b', redisUrl: redis.url, postgresUrl, postgresTimeoutMs: 30_000 } } })
    hubs.push(B)
    door = await pairDevice(owner.on(A), A)
    resident = await pairScreen(owner.on(B), B, 'Kitchen tablet')
    device = await connectAs(A.mqttUrl, door)
  })

  after(async () => {
    for (const hub of hubs) if (hub.proc.proc.exitCode !== null) console.log(`hub ${hub.name} exited ${hub.proc.proc.exitCode}:\n${hub.proc.lines.slice(-30).join('\n')}`)
    await device?.endAsync(true).catch(() => {})
    for (const hub of hubs) await hub.stop('SIGKILL')
    await redis?.destroy()
    await db?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const get = async (hub: ClusterHub, path: string, headers: Record<string, string> = {}): Promise<Response> => await fetch(`${hub.base}${path}`, { headers })
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
  async function eventOn (hub: ClusterHub, ringId: string): Promise<HistoryEvent | undefined> {
    const res = await get(hub, '/api/events?limit=50', bearer(owner.token))
    assert.equal(res.status, 200)
    return EventsPage.parse(await res.json()).events.find((e) => e.ringId === ringId)
  }
  async function ring (): Promise<string> {
    const ringId = newId('r')
    await device.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), { qos: 1 })
    await eventually('the ring in the history', async () => await eventOn(A, ringId) !== undefined, 30_000)
    return ringId
  }

  it('a clip sent through A is in PostgreSQL and plays from B byte for byte, whole and by ranges', async () => {
    const ringId = await ring()
    const parts = Math.ceil(mp4.length / CLIP_PART_BYTES)
    const sha256 = createHash('sha256').update(mp4).digest('hex')
    for (let part = 0; part < parts; part++) {
      const data = mp4.subarray(part * CLIP_PART_BYTES, (part + 1) * CLIP_PART_BYTES).toString('base64')
      await device.publishAsync(topics.clip(HOME, door.deviceId), encode(ClipPart, { type: 'clip', deviceId: door.deviceId, ringId, container: 'mp4', seconds: 3, bytes: mp4.length, sha256, part, parts, data }), { qos: 1 })
    }
    event = await eventually('the clip, seen through B', async () => { const e = await eventOn(B, ringId); return e?.clip && 'type' in e.clip ? e : undefined }, 30_000)
    assert.deepEqual(event.clip, { type: 'video/mp4', bytes: mp4.length, seconds: 3 })
    // In the database, not in either hub's folder.
    const rows = (await db.query('SELECT data FROM history_clip_parts WHERE event_id = $1 ORDER BY part', [event.id], 'city')).rows as Array<{ data: Buffer }>
    assert.ok(Buffer.concat(rows.map((r) => r.data)).equals(mp4), 'what A stored is the clip the doorbell sent')
    assert.equal(rows.length, Math.ceil(mp4.length / ROW))
    for (const hub of hubs) assert.equal(existsSync(join(dir, hub.name, 'history', 'clips', `${event.id}.mp4`)), false)

    const whole = await get(B, `/api/events/${event.id}/clip`, bearer(resident.token))
    assert.equal(whole.status, 200)
    assert.equal(whole.headers.get('content-type'), 'video/mp4')
    assert.equal(whole.headers.get('content-length'), String(mp4.length))
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(mp4), 'B serves the clip byte for byte')

    for (const [range, start, end] of [
      [`bytes=1000-${ROW + 5000}`, 1000, ROW + 5000], // across the first rows' boundary
      [`bytes=${ROW}-${2 * ROW - 1}`, ROW, 2 * ROW - 1], // exactly one row
      [`bytes=${mp4.length - 700}-`, mp4.length - 700, mp4.length - 1],
      ['bytes=-300', mp4.length - 300, mp4.length - 1]
    ] as const) {
      const res = await get(B, `/api/events/${event.id}/clip`, { ...bearer(owner.token), range })
      assert.equal(res.status, 206, range)
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${mp4.length}`, range)
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(mp4.subarray(start, end + 1)), `${range}: the same bytes`)
    }
    const past = await get(B, `/api/events/${event.id}/clip`, { ...bearer(owner.token), range: `bytes=${mp4.length}-` })
    assert.equal(past.status, 416)
    assert.equal(past.headers.get('content-range'), `bytes */${mp4.length}`)
  })

  it('while a clip B serves waits for PostgreSQL, B answers its API: serving a clip does not hold its event loop', async () => {
    // Every read of the clip's rows waits behind this lock until it is let go. A synchronous read
    // (Atomics.wait) would stop B's event loop there: the API request below would be answered only
    // after the clip had failed. Order is asserted, not time.
    const lock = new pg.Client({ connectionString: postgresUrl })
    await lock.connect()
    let settled = false
    let clip: Promise<Buffer> | undefined
    try {
      await lock.query('BEGIN')
      await lock.query('LOCK TABLE history_clip_parts IN ACCESS EXCLUSIVE MODE')
      clip = get(B, `/api/events/${event.id}/clip`, bearer(resident.token))
        .then(async (res) => { assert.equal(res.status, 200); return Buffer.from(await res.arrayBuffer()) })
        .finally(() => { settled = true })
      clip.catch(() => {}) // awaited below; this only keeps an early failure from being unhandled
      await eventually('B\'s read of the clip waiting at the lock', async () =>
        Number((await db.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT data FROM history_clip_parts%'")).rows[0].n) > 0, 60_000)
      const res = await get(B, '/api/events?limit=5', bearer(owner.token))
      assert.equal(res.status, 200)
      assert.ok(EventsPage.parse(await res.json()).events.some((e) => e.id === event.id))
      assert.equal(settled, false, 'B answered while its clip read was still waiting')
    } finally {
      await lock.query('ROLLBACK').catch(() => {})
      await lock.end()
    }
    assert.ok((await clip!).equals(mp4), 'once the lock is let go, the clip plays byte for byte')
  })

  it('while a clip A stores waits for PostgreSQL, A answers its API; the clip is kept once the lock is let go', async () => {
    const lock = new pg.Client({ connectionString: postgresUrl })
    await lock.connect()
    const ringId = await ring()
    const small = mp4.subarray(0, 5000)
    try {
      await lock.query('BEGIN')
      await lock.query('LOCK TABLE history_clip_parts IN ACCESS EXCLUSIVE MODE')
      await device.publishAsync(topics.clip(HOME, door.deviceId), encode(ClipPart, { type: 'clip', deviceId: door.deviceId, ringId, container: 'mp4', seconds: 1, bytes: small.length, sha256: createHash('sha256').update(small).digest('hex'), part: 0, parts: 1, data: small.toString('base64') }), { qos: 1 })
      await eventually('A\'s write of the clip waiting at the lock', async () =>
        Number((await db.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%history_clip%'")).rows[0].n) > 0, 60_000)
      const listed = await eventOn(A, ringId)
      assert.equal(listed?.clip, undefined, 'A answered while the clip was still being written (none yet)')
    } finally {
      await lock.query('ROLLBACK').catch(() => {})
      await lock.end()
    }
    const kept = await eventually('the clip, kept', async () => { const e = await eventOn(B, ringId); return e?.clip && 'type' in e.clip ? e : undefined }, 60_000)
    assert.deepEqual(kept.clip, { type: 'video/mp4', bytes: small.length, seconds: 1 })
    const res = await get(B, `/api/events/${kept.id}/clip`, bearer(owner.token))
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(small))
  })

  it('while what a clip is waits for PostgreSQL, B answers its API and its broker delivers: the clip\'s row lookup does not hold the event loop', async () => {
    // Every statement on `history_clips` waits behind this lock: B's lookup of what the clip is
    // (before any of its video) included. On the synchronous client, B's event loop would stop
    // there: no API answer, no ring delivered, until the lookup failed. Order is asserted, not time.
    const screen = await connectAs(B.mqttUrl, resident)
    const rings: string[] = []
    screen.on('message', (_t, payload) => { rings.push((JSON.parse(payload.toString()) as { ringId: string }).ringId) })
    await screen.subscribeAsync(topics.homeEvents(HOME)[0]!, { qos: 1 })
    const lock = new pg.Client({ connectionString: postgresUrl })
    await lock.connect()
    let settled = false
    let clip: Promise<Buffer> | undefined
    try {
      await lock.query('BEGIN')
      await lock.query('LOCK TABLE history_clips IN ACCESS EXCLUSIVE MODE')
      clip = get(B, `/api/events/${event.id}/clip`, bearer(resident.token))
        .then(async (res) => { assert.equal(res.status, 200); return Buffer.from(await res.arrayBuffer()) })
        .finally(() => { settled = true })
      clip.catch(() => {}) // awaited below; this only keeps an early failure from being unhandled
      await eventually('B\'s lookup of the clip waiting at the lock', async () =>
        Number((await db.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT container, bytes FROM history_clips%'")).rows[0].n) > 0, 60_000)
      const presence = await get(B, '/api/presence', bearer(owner.token))
      assert.equal(presence.status, 200, 'B answers its API')
      const ringId = newId('r')
      await device.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), { qos: 1 })
      await eventually('the ring delivered by B to its screen', () => rings.includes(ringId), 60_000)
      assert.equal(settled, false, 'B answered and delivered while its clip lookup was still waiting')
    } finally {
      await lock.query('ROLLBACK').catch(() => {})
      await lock.end()
      await screen.endAsync(true).catch(() => {})
    }
    assert.ok((await clip!).equals(mp4), 'once the lock is let go, the clip plays byte for byte')
  })

  it('while a clip\'s failure A records waits for PostgreSQL, A answers /api/events; the failure is recorded once the lock is let go', async () => {
    const ringId = await ring()
    const said = (): string[] => A.proc.lines.filter((l) => (l.includes('a ring has no clip') && l.includes(ringId)) || l.includes('could not take a clip'))
    const lock = new pg.Client({ connectionString: postgresUrl })
    await lock.connect()
    try {
      await lock.query('BEGIN')
      // Writes wait, reads pass: /api/events reads what each event's clip is.
      await lock.query('LOCK TABLE history_clips IN SHARE MODE')
      await device.publishAsync(topics.clip(HOME, door.deviceId), encode(ClipFailed, { type: 'clip-failed', deviceId: door.deviceId, ringId, reason: 'the camera was busy' }), { qos: 1 })
      await eventually('A\'s record of the failure waiting at the lock', async () =>
        Number((await db.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO history_clips (event_id, failed)%'")).rows[0].n) > 0, 60_000)
      const listed = await eventOn(A, ringId)
      assert.ok(listed !== undefined, 'A answered /api/events')
      assert.equal(listed.clip, undefined, 'nothing recorded yet')
      assert.deepEqual(said(), [], 'A answered while the record was still waiting (neither recorded nor failed)')
    } finally {
      await lock.query('ROLLBACK').catch(() => {})
      await lock.end()
    }
    const failed = await eventually('the failure, seen through B', async () => { const e = await eventOn(B, ringId); return e?.clip && 'failed' in e.clip ? e : undefined }, 60_000)
    assert.deepEqual(failed.clip, { failed: 'the camera was busy' })
    await eventually('A says it recorded it', () => said().length === 1, 30_000)
    assert.ok(said()[0]!.includes('a ring has no clip'))
  })

  it('an address signed by A plays on B (and A); a forged one or another event\'s is refused by both', async () => {
    const made = await get(A, `/api/events/${event.id}/clip-url`, bearer(resident.token))
    assert.equal(made.status, 200)
    const { url } = await made.json() as { url: string }
    for (const hub of hubs) {
      const res = await get(hub, url, { range: 'bytes=0-99' })
      assert.equal(res.status, 206, `${hub.name} takes A's address`)
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(mp4.subarray(0, 100)))
    }
    const ticket = new URL(url, A.base).searchParams.get('t')!
    const mac = ticket.slice(ticket.lastIndexOf('.') + 1)
    const forged = `${ticket.slice(0, ticket.lastIndexOf('.') + 1)}${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`
    const otherExpiry = ticket.replace(/\.(\d+)\./, (_m, at: string) => `.${Number(at) + 60_000}.`)
    const otherRing = await ring()
    const other = await eventOn(A, otherRing)
    for (const hub of hubs) {
      for (const [what, path] of [
        ['a changed signature', `/api/events/${event.id}/clip?t=${forged}`],
        ['a later expiry under the same signature', `/api/events/${event.id}/clip?t=${otherExpiry}`],
        ['another event', `/api/events/${other!.id}/clip?t=${ticket}`],
        ['not a ticket', `/api/events/${event.id}/clip?t=nonsense`]
      ] as const) {
        const res = await get(hub, path)
        assert.equal(res.status, 403, `${hub.name}: ${what}`)
      }
    }
  })

  it('a clip that failed says why through every hub; a second copy of the failure keeps a clip already kept', async () => {
    const ringId = await ring()
    await device.publishAsync(topics.clip(HOME, door.deviceId), encode(ClipFailed, { type: 'clip-failed', deviceId: door.deviceId, ringId, reason: 'the camera sent no picture to record' }), { qos: 1 })
    const failed = await eventually('the failure, seen through B', async () => { const e = await eventOn(B, ringId); return e?.clip && 'failed' in e.clip ? e : undefined }, 30_000)
    assert.deepEqual(failed.clip, { failed: 'the camera sent no picture to record' })
    const res = await get(A, `/api/events/${failed.id}/clip`, bearer(owner.token))
    assert.equal(res.status, 404)
    assert.match((await res.json() as { error: string }).error, /no picture to record/)

    await device.publishAsync(topics.clip(HOME, door.deviceId), encode(ClipFailed, { type: 'clip-failed', deviceId: door.deviceId, ringId: event.ringId!, reason: 'late' }), { qos: 1 })
    await eventually('A took the late failure', () => A.proc.lines.some((l) => l.includes('a ring has no clip') && l.includes('reason=late')), 30_000)
    assert.deepEqual((await eventOn(B, event.ringId!))?.clip, { type: 'video/mp4', bytes: mp4.length, seconds: 3 })
  })

  it('retention counts the clip with the pictures, and takes it with its event', async () => {
    const store = new PgHistoryStore({ url: postgresUrl, timeoutMs: 5000, nodeId: 'test' })
    try {
      // The cap just under the clip's size: the clip's event, the oldest, is the one to go (no
      // pictures here; the small clip stored later stays within the cap).
      assert.deepEqual(store.prune({ now: Date.now(), days: 30, maxBytes: mp4.length - 1 }), { events: 1, files: 0 })
      assert.equal(store.ringEventId(door.deviceId, event.ringId!), null)
    } finally {
      store.close()
    }
    assert.equal(Number((await db.query('SELECT count(*) AS n FROM history_clip_parts WHERE event_id = $1', [event.id], 'city')).rows[0].n), 0, 'its rows went with it')
    assert.equal((await get(B, `/api/events/${event.id}/clip`, bearer(owner.token))).status, 404)
  })
})
