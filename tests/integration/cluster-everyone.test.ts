import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { CLIP_PART_BYTES, CallRecord, ClipPart, EventsPage, KeptRing, RingEvent, encode, newId, topics, type HistoryEvent } from '@doorbell/core'
import { ApiError, HubApi } from '@doorbell/viewer/lib'
import { connectAs, pairDevice, pairScreen, reportExitedHubs, startThreeHubs, stopThreeHubs, type ClusterHub, type Owner, type PairedDevice, type PairedScreen, type ThreeHubs } from '../src/cluster'
import { eventually } from '../src/harness'
import type { TestPostgres } from '../src/postgres'

/**
 * A cluster's history and a hub that was down (issues 19 and 24). "Dismissed by everyone" per
 * screen: a screen is one hub connection (its MQTT client id), whichever hub it is on. One member
 * has two screens, on hubs A and B; the doorbell is on hub C, which holds no screen and learns them
 * from the cluster's shared presence (Redis). After A's screen dismisses the ring it is dismissed
 * but not by everyone; after B's too, it is, and hub C's history says so. And a clip the doorbell
 * kept while no hub was reachable, handed over with its kept ring through B, then again through A:
 * stored once in PostgreSQL, served by C with ranges. Real parts: three hub processes, Redis,
 * PostgreSQL, mqtt.js, ffmpeg.
 */

const HOME = 'home'

describe('a cluster of three hubs: "dismissed by everyone" with one member\'s screens on two hubs, and a clip kept while no hub was reachable', { timeout: 240_000 }, () => {
  const hubs: ClusterHub[] = []
  const cluster: ThreeHubs = { hubs }
  let A: ClusterHub, B: ClusterHub, C: ClusterHub
  let db: TestPostgres
  let dir: string
  let owner: Owner
  let ann: PairedScreen
  let door: PairedDevice
  const clients: MqttClient[] = []

  before(async () => {
    const three = await startThreeHubs(cluster, 'cluster-everyone-', { ownerOnA: true })
    ;({ db, dir, A, B, C } = three)
    owner = three.owner!
    door = await pairDevice(owner.on(A), A)
    ann = await pairScreen(owner.on(A), A, 'Ann')
  })

  after(async () => {
    reportExitedHubs(hubs)
    for (const c of clients) await c.endAsync(true).catch(() => {})
    await stopThreeHubs(cluster)
  })

  const connect = async (hub: ClusterHub, who: PairedScreen | PairedDevice): Promise<MqttClient> => {
    const client = await connectAs(hub.mqttUrl, who)
    clients.push(client)
    return client
  }
  const eventOn = async (hub: ClusterHub, ringId: string): Promise<HistoryEvent | undefined> => {
    const res = await fetch(`${hub.base}/api/events?limit=50`, { headers: { authorization: `Bearer ${owner.token}` } })
    assert.equal(res.status, 200)
    return EventsPage.parse(await res.json()).events.find((e) => e.ringId === ringId)
  }

  it('dismissed on A\'s screen: not everyone; on B\'s too: everyone, seen from C; another member naming a screen of Ann\'s is refused', async () => {
    const onA = await connect(A, ann)
    const onB = await connect(B, ann)
    const screenA = onA.options.clientId!
    const screenB = onB.options.clientId!
    assert.notEqual(screenA, screenB, 'two screens of one member')
    // The doorbell on C, which holds no screen: it must learn them from the shared presence.
    const device = await connect(C, door)
    await eventually('both screens in the cluster\'s presence', async () => {
      const res = await fetch(`${C.base}/api/presence`, { headers: { authorization: `Bearer ${owner.token}` } })
      const ids = ((await res.json()) as { connected: Array<{ clientId: string }> }).connected.map((c) => c.clientId)
      return ids.includes(screenA) && ids.includes(screenB)
    }, 20_000)

    // A ring through C, over and missed.
    const ringId = newId('r')
    const at = Date.now()
    await device.publishAsync(topics.ring(HOME, door.deviceId), encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at, count: 1 }), { qos: 1 })
    await device.publishAsync(topics.calls(HOME, door.deviceId), encode(CallRecord, { deviceId: door.deviceId, ringId, startedAt: at, endedAt: at + 30_000, outcome: 'missed', answeredBy: [], unlocks: [] }), { qos: 1 })
    const missed = await eventually('the ring missed, on C', async () => { const e = await eventOn(C, ringId); return e?.outcome === 'missed' ? e : undefined }, 20_000)
    // C noted both of Ann's screens (on A and on B) as shown the ring, and nothing else.
    const shown = await eventually('the screens shown the ring noted', async () => {
      const rows = (await db.query('SELECT member_id, screen FROM history_ring_shown_screens WHERE event_id = $1 ORDER BY screen', [missed.id], 'city')).rows as Array<{ member_id: string, screen: string }>
      return rows.length === 2 ? rows : undefined
    }, 20_000)
    assert.deepEqual(shown.map((r) => [r.member_id, r.screen]), [[ann.memberId, screenA], [ann.memberId, screenB]].sort((x, y) => x[1]!.localeCompare(y[1]!)))

    // A's screen dismisses it: dismissed by Ann, but not by everyone (her screen on B has not).
    const annOnA = new HubApi({ base: A.base, token: ann.token })
    assert.deepEqual(await annOnA.dismissRing(door.deviceId, ringId, { screen: screenA }), { outcome: 'dismissed' })
    const first = await eventually('dismissed, seen from C', async () => { const e = await eventOn(C, ringId); return e?.outcome === 'dismissed' ? e : undefined }, 10_000)
    assert.deepEqual(first.who, ['Ann'])
    assert.equal(first.everyoneDismissed, false, 'Ann\'s screen on B was shown it and did not dismiss it')

    // The owner naming Ann's screen: refused (400), nothing recorded.
    const asOwner = new HubApi({ base: B.base, token: owner.token })
    await assert.rejects(asOwner.dismissRing(door.deviceId, ringId, { screen: screenB }), (err: unknown) => err instanceof ApiError && err.status === 400 && /not one of this member's screens/.test(err.message))
    assert.deepEqual(await eventOn(C, ringId), first)

    // B's screen dismisses it too: every screen shown it did, on whichever hub.
    const annOnB = new HubApi({ base: B.base, token: ann.token })
    assert.deepEqual(await annOnB.dismissRing(door.deviceId, ringId, { screen: screenB }), { outcome: 'dismissed' })
    const both = await eventually('dismissed by everyone, seen from C', async () => { const e = await eventOn(C, ringId); return e?.everyoneDismissed === true ? e : undefined }, 10_000)
    assert.deepEqual(both.who, ['Ann'], 'the wording names the member once')
    assert.equal(both.outcome, 'dismissed')
    for (const hub of [A, B]) assert.equal((await eventOn(hub, ringId))?.everyoneDismissed, true, `the same on ${hub.name}`)
    const steps = (await db.query('SELECT version FROM doorbell_migrations ORDER BY version', [], 'city')).rows.map((r: { version: number }) => Number(r.version))
    assert.ok(steps.includes(9), 'migration 9 (the screens) applied')
  })

  it('a clip the doorbell kept while no hub was reachable, handed over with its kept ring through B and again through A: stored once, served by C with ranges', async () => {
    const file = join(dir, 'kept.mp4')
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', file], { timeout: 120_000 })
    const mp4 = readFileSync(file)
    const side = await pairDevice(owner.on(A), A)
    const ringId = newId('r')
    const at = Date.now() - 120_000
    const kept: KeptRing = {
      type: 'kept',
      deviceId: side.deviceId,
      ring: { type: 'ring', deviceId: side.deviceId, deviceName: 'Side', ringId, at, count: 1 },
      snapshot: null,
      record: { deviceId: side.deviceId, ringId, startedAt: at, endedAt: at + 30_000, outcome: 'missed', answeredBy: [], unlocks: [] }
    }
    const sha256 = createHash('sha256').update(mp4).digest('hex')
    const parts = Math.ceil(mp4.length / CLIP_PART_BYTES)
    // As the doorbell hands them over (clipKeep.ts): the kept ring acknowledged, then the clip's parts.
    const handOver = async (hub: ClusterHub): Promise<void> => {
      const client = await connectAs(hub.mqttUrl, side)
      await client.publishAsync(topics.kept(HOME, side.deviceId), encode(KeptRing, kept), { qos: 1 })
      for (let part = 0; part < parts; part++) {
        const data = mp4.subarray(part * CLIP_PART_BYTES, (part + 1) * CLIP_PART_BYTES).toString('base64')
        await client.publishAsync(topics.clip(HOME, side.deviceId), encode(ClipPart, { type: 'clip', deviceId: side.deviceId, ringId, container: 'mp4', seconds: 2, bytes: mp4.length, sha256, part, parts, data }), { qos: 1 })
      }
      await client.endAsync()
    }
    await handOver(B)
    const event = await eventually('the kept ring with its clip, seen from C', async () => { const e = await eventOn(C, ringId); return e?.clip && 'type' in e.clip ? e : undefined }, 30_000)
    assert.deepEqual(event.clip, { type: 'video/mp4', bytes: mp4.length, seconds: 2 })
    assert.equal(event.outcome, 'missed')
    const clipUrl = await owner.on(C).eventClipUrl(event.id)
    const whole = await fetch(clipUrl.url)
    assert.equal(whole.status, 200)
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(mp4), 'C serves the clip byte for byte')
    const range = await fetch(clipUrl.url, { headers: { range: 'bytes=10-109' } })
    assert.equal(range.status, 206)
    assert.ok(Buffer.from(await range.arrayBuffer()).equals(mp4.subarray(10, 110)))

    // Handed over again through A (an acknowledgement lost): nothing changes, nothing stored twice.
    await handOver(A)
    await eventually('A says it had it', () => A.proc.lines.some((l) => l.includes('the hub has this clip already') && l.includes(ringId)), 30_000)
    assert.deepEqual(await eventOn(C, ringId), event)
    assert.ok(!A.proc.lines.some((l) => l.includes('kept a ring\'s clip') && l.includes(ringId)), 'A did not store it again')
    assert.ok(B.proc.lines.some((l) => l.includes('kept a ring\'s clip') && l.includes(ringId)), 'B stored it')
    assert.equal((await db.query("SELECT count(*) AS n FROM history_events WHERE ring_id = $1", [ringId], 'city')).rows[0].n, '1')
  })
})
