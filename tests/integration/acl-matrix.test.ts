import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { startHub, type Hub } from '@doorbell/hub'
import {
  CallRecord, CommandResult, DeviceState, DoorAttempt, DoorCommand, InspectBatch, Presence, RingEvent, SignalToDevice, SignalToViewer,
  encode, exportPublicKey, generateSigningKey, integrationTopics, memoryLogger, newId, topics, type Member
} from '@doorbell/core'
import { pairDevice } from '@doorbell/device'
import { HubApi } from '@doorbell/viewer/lib'
import { makeHomeKey } from '../src/cluster'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'
import { deviceInvite, pairViewer } from '../src/trust'

/**
 * The broker's access control, cell by cell: a real hub (aedes and its gate), real mqtt.js clients
 * signed in as each kind of member, every kind of topic, publish and subscribe. A subscription's
 * verdict is its SUBACK code (128 refused; the client stays connected); a publish's is whether it
 * reached the broker's routing and a subscribed watcher (allowed), or closed the publisher's
 * connection and reached nobody (refused). The expected verdicts are the tables below.
 */

const HOME = 'home'
const NORTH_CAM = 'cam-n'
const FRONT_DOOR = 'front-door'
const ELSEWHERE = 'elsewhere'
const WAIT_MS = 3000

type Verdict = 'A' | 'D'
const ROWS = ['owner', 'resident', 'guest', 'operator', NORTH_CAM, FRONT_DOOR, 'integration'] as const
type Row = typeof ROWS[number]

interface Who {
  row: Row
  kind: 'viewer' | 'device' | 'integration'
  /** Viewer id, device id, or the integration's own id. */
  subject: string
  username: string
  password: string
}

const clientIdOf = (w: Who): string => w.kind === 'device' ? `device-${w.subject}` : w.kind === 'integration' ? `integration-${w.subject}` : `viewer-${w.subject}-${newId().slice(0, 6)}`

// ---------------------------------------------------------------- the expected verdicts
// Columns: owner, resident, guest, operator (zone north), cam-n (a device in zone north), front-door (a device, no zone),
// integration (Home Assistant's MQTT credential).

interface Ctx { who: Who, owner: Who, resident: Who }
/** Another member's viewer id: for the owner the resident's, for everyone else the owner's. */
const someoneElse = (c: Ctx): string => c.who.row === 'owner' ? c.resident.subject : c.owner.subject

const SUBSCRIBE: Array<{ name: string, filter: (c: Ctx) => string, expect: string }> = [
  { name: 'ring cam-n', filter: () => topics.ring(HOME, NORTH_CAM), expect: 'A A A A D D D' },
  { name: 'ring front-door', filter: () => topics.ring(HOME, FRONT_DOOR), expect: 'A A A D D D D' },
  { name: 'ring, every device (+)', filter: () => `doorbell/${HOME}/+/ring`, expect: 'A A A D D D D' },
  { name: 'state cam-n', filter: () => topics.state(HOME, NORTH_CAM), expect: 'A A A A D D D' },
  { name: 'presence cam-n', filter: () => topics.presence(HOME, NORTH_CAM), expect: 'A A A A D D D' },
  { name: 'calls cam-n', filter: () => topics.calls(HOME, NORTH_CAM), expect: 'A A A A D D D' },
  { name: 'audit cam-n', filter: () => topics.audit(HOME, NORTH_CAM), expect: 'D D D D D D D' },
  { name: 'inspect (+)', filter: () => topics.homeInspection(HOME), expect: 'A D D D D D D' },
  { name: 'to-device, cam-n inbox', filter: () => topics.deviceInbox(HOME, NORTH_CAM), expect: 'D D D D A D D' },
  { name: 'to-viewer, own inbox', filter: (c) => topics.viewerInbox(HOME, c.who.kind === 'viewer' ? c.who.subject : '+'), expect: 'A A A A D D D' },
  { name: 'to-viewer, another\'s inbox', filter: (c) => topics.viewerInbox(HOME, someoneElse(c)), expect: 'D D D D D D D' },
  { name: 'revocations', filter: () => topics.revocations(HOME), expect: 'D D D D A A D' },
  { name: 'replaced grants', filter: () => topics.grants(HOME), expect: 'A A A A A A D' },
  { name: 'commands, cam-n inbox', filter: () => topics.commandInbox(HOME, NORTH_CAM), expect: 'D D D D A D D' },
  { name: 'command results, own', filter: (c) => topics.commandResults(HOME, c.who.kind === 'viewer' ? c.who.subject : '+'), expect: 'A A A A D D D' },
  { name: 'command results, another\'s', filter: (c) => topics.commandResults(HOME, someoneElse(c)), expect: 'D D D D D D D' },
  { name: '$SYS/#', filter: () => '$SYS/#', expect: 'D D D D D D D' },
  { name: 'doorbell/#', filter: () => 'doorbell/#', expect: 'D D D D D D D' },
  { name: '#', filter: () => '#', expect: 'D D D D D D D' },
  { name: 'another home', filter: () => `doorbell/${ELSEWHERE}/+/ring`, expect: 'D D D D D D D' },
  { name: 'HA discovery (homeassistant/+/+/config)', filter: () => 'homeassistant/+/+/config', expect: 'D D D D D D A' },
  { name: 'HA discovery prefix (homeassistant/#)', filter: () => 'homeassistant/#', expect: 'D D D D D D A' },
  { name: 'HA entities (doorbell/home/+/ha/+)', filter: () => integrationTopics.homeEntities(HOME), expect: 'D D D D D D A' },
  { name: 'HA lock commands', filter: () => integrationTopics.lockCommand(HOME, FRONT_DOOR), expect: 'D D D D D D D' },
  { name: 'HA entities of another home', filter: () => integrationTopics.homeEntities(ELSEWHERE), expect: 'D D D D D D D' }
]

const at = (): number => Date.now()
/** Shaped as a signed token: the broker checks the shape; the doorbell, the signature. */
const SIGNED_SHAPE = `e30.${'A'.repeat(86)}`

/** Each publish carries a unique marker (in an id), so a watcher can tell this message from any other. */
const PUBLISH: Array<{ name: string, topic: (c: Ctx, m: string) => string, payload: (c: Ctx, m: string) => string, mark?: (m: string) => string, expect: string }> = [
  {
    name: 'ring cam-n',
    topic: () => topics.ring(HOME, NORTH_CAM),
    payload: (_c, m) => encode(RingEvent, { type: 'ring', deviceId: NORTH_CAM, deviceName: 'North camera', ringId: m, at: at(), count: 1 }),
    expect: 'D D D D A D D'
  },
  {
    name: 'state cam-n',
    topic: () => topics.state(HOME, NORTH_CAM),
    payload: (_c, m) => encode(DeviceState, {
      deviceId: NORTH_CAM,
      deviceName: 'North camera',
      call: { status: 'idle', ringId: m, since: 0 },
      participants: [],
      lock: { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null },
      lastRing: null,
      at: at()
    }),
    expect: 'D D D D A D D'
  },
  {
    name: 'presence cam-n',
    topic: () => topics.presence(HOME, NORTH_CAM),
    // Presence has no id of its own: the marker is its time.
    payload: (_c, m) => encode(Presence, { deviceId: NORTH_CAM, online: true, at: Number(m.slice(1)) }),
    mark: (m) => `"at":${m.slice(1)}`,
    expect: 'D D D D A D D'
  },
  {
    name: 'calls cam-n',
    topic: () => topics.calls(HOME, NORTH_CAM),
    payload: (_c, m) => encode(CallRecord, { deviceId: NORTH_CAM, ringId: m, startedAt: at(), endedAt: at(), outcome: 'missed', answeredBy: [], unlocks: [] }),
    expect: 'D D D D A D D'
  },
  {
    name: 'audit cam-n',
    topic: () => topics.audit(HOME, NORTH_CAM),
    payload: (_c, m) => encode(DoorAttempt, { id: m, deviceId: NORTH_CAM, at: at(), outcome: 'denied', reason: 'malformed', message: 'acl matrix', memberId: null, viewerId: null, viewerName: 'acl', role: null, path: 'lan' }),
    expect: 'D D D D A D D'
  },
  {
    name: 'inspect, own source',
    topic: (c) => topics.inspect(HOME, c.who.kind === 'device' ? c.who.subject : `viewer-${c.who.subject}-insp`),
    payload: (c, m) => encode(InspectBatch, {
      source: { kind: c.who.kind === 'device' ? 'device' : 'viewer', id: c.who.kind === 'device' ? c.who.subject : `viewer-${c.who.subject}-insp`, name: 'acl' },
      events: [{ type: 'event', at: at(), from: null, to: 'x', event: m }]
    }),
    expect: 'A A A A A A D'
  },
  {
    name: 'inspect, another source',
    topic: (c) => topics.inspect(HOME, c.who.subject === NORTH_CAM ? FRONT_DOOR : NORTH_CAM),
    payload: (c, m) => encode(InspectBatch, {
      source: { kind: 'device', id: c.who.subject === NORTH_CAM ? FRONT_DOOR : NORTH_CAM, name: 'acl' },
      events: [{ type: 'event', at: at(), from: null, to: 'x', event: m }]
    }),
    expect: 'D D D D D D D'
  },
  {
    name: 'to-device cam-n, own viewer level',
    topic: (c, m) => topics.session(HOME, NORTH_CAM, c.who.kind === 'viewer' ? c.who.subject : c.owner.subject, m, 'to-device'),
    payload: (_c, m) => encode(SignalToDevice, { type: 'bye', sessionId: m, reason: 'hang-up' }),
    expect: 'A A A A D D D'
  },
  {
    name: 'to-device front-door, own viewer level',
    topic: (c, m) => topics.session(HOME, FRONT_DOOR, c.who.kind === 'viewer' ? c.who.subject : c.owner.subject, m, 'to-device'),
    payload: (_c, m) => encode(SignalToDevice, { type: 'bye', sessionId: m, reason: 'hang-up' }),
    expect: 'A A A D D D D'
  },
  {
    name: 'to-device, as another viewer',
    topic: (c, m) => topics.session(HOME, NORTH_CAM, someoneElse(c), m, 'to-device'),
    payload: (_c, m) => encode(SignalToDevice, { type: 'bye', sessionId: m, reason: 'hang-up' }),
    expect: 'D D D D D D D'
  },
  {
    name: 'to-viewer cam-n (to the owner)',
    topic: (c, m) => topics.session(HOME, NORTH_CAM, c.owner.subject, m, 'to-viewer'),
    payload: (_c, m) => encode(SignalToViewer, { type: 'bye', sessionId: m, reason: 'device-ended' }),
    expect: 'D D D D A D D'
  },
  {
    name: 'command cam-n, own viewer level',
    topic: (c) => topics.command(HOME, NORTH_CAM, c.who.kind === 'viewer' ? c.who.subject : c.owner.subject),
    payload: (_c, m) => encode(DoorCommand, { type: 'unlock', id: m, credential: SIGNED_SHAPE, proof: SIGNED_SHAPE }),
    expect: 'A A A A D D D'
  },
  {
    name: 'command front-door, own viewer level',
    topic: (c) => topics.command(HOME, FRONT_DOOR, c.who.kind === 'viewer' ? c.who.subject : c.owner.subject),
    payload: (_c, m) => encode(DoorCommand, { type: 'unlock', id: m, credential: SIGNED_SHAPE, proof: SIGNED_SHAPE }),
    expect: 'A A A D D D D'
  },
  {
    name: 'command, as another viewer',
    topic: (c) => topics.command(HOME, NORTH_CAM, someoneElse(c)),
    payload: (_c, m) => encode(DoorCommand, { type: 'unlock', id: m, credential: SIGNED_SHAPE, proof: SIGNED_SHAPE }),
    expect: 'D D D D D D D'
  },
  {
    name: 'command result cam-n (to the owner)',
    topic: (c) => topics.commandResult(HOME, NORTH_CAM, c.owner.subject),
    payload: (_c, m) => encode(CommandResult, { ok: true, id: m, type: 'unlock' }),
    expect: 'D D D D A D D'
  },
  {
    name: 'revocations',
    topic: () => topics.revocations(HOME),
    payload: (_c, m) => JSON.stringify({ list: `${m}.${'A'.repeat(86)}` }),
    expect: 'D D D D D D D'
  },
  {
    name: 'replaced grants',
    topic: () => topics.grants(HOME),
    payload: (_c, m) => JSON.stringify({ list: `${m}.${'A'.repeat(86)}` }),
    expect: 'D D D D D D D'
  },
  {
    name: '$SYS',
    topic: (_c, m) => `$SYS/acl/${m}`,
    payload: (_c, m) => m,
    expect: 'D D D D D D D'
  },
  {
    name: 'another home\'s ring',
    topic: (c) => topics.ring(ELSEWHERE, c.who.kind === 'device' ? c.who.subject : NORTH_CAM),
    payload: (c, m) => encode(RingEvent, { type: 'ring', deviceId: c.who.kind === 'device' ? c.who.subject : NORTH_CAM, deviceName: 'North camera', ringId: m, at: at(), count: 1 }),
    expect: 'D D D D D D D'
  },
  {
    name: 'HA status (birth)',
    topic: () => 'homeassistant/status',
    payload: () => 'online',
    mark: () => 'online',
    expect: 'D D D D D D A'
  },
  {
    name: 'HA lock command OPEN',
    topic: () => integrationTopics.lockCommand(HOME, FRONT_DOOR),
    payload: () => 'OPEN',
    mark: () => 'OPEN',
    expect: 'D D D D D D A'
  },
  {
    name: 'HA discovery config',
    topic: (_c, m) => `homeassistant/device/${m}/config`,
    payload: (_c, m) => JSON.stringify({ device: { identifiers: [m], name: m }, origin: { name: m }, components: {} }),
    expect: 'D D D D D D D'
  },
  {
    name: 'HA entity state',
    topic: () => integrationTopics.entity(HOME, FRONT_DOOR, 'lock'),
    payload: () => 'UNLOCKED',
    mark: () => 'UNLOCKED',
    expect: 'D D D D D D D'
  },
  {
    name: 'HA lock command, another home',
    topic: () => integrationTopics.lockCommand(ELSEWHERE, FRONT_DOOR),
    payload: () => 'OPEN',
    mark: () => 'OPEN',
    expect: 'D D D D D D D'
  }
]

const verdicts = (s: string): Verdict[] => {
  const v = s.split(' ') as Verdict[]
  assert.equal(v.length, ROWS.length, `a verdict for each of ${ROWS.join(', ')}: ${s}`)
  return v
}

// ---------------------------------------------------------------- clients

type Connected = { ok: true, client: MqttClient } | { ok: false, code: number | undefined, message: string }

async function connect (hub: Hub, o: { clientId: string, username?: string, password?: string }): Promise<Connected> {
  const client = mqtt.connect(hub.mqttUrl, {
    clientId: o.clientId,
    ...(o.username !== undefined ? { username: o.username } : {}),
    ...(o.password !== undefined ? { password: o.password } : {}),
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS
  })
  const result = await new Promise<Connected>((resolve) => {
    const timer = setTimeout(() => { resolve({ ok: false, code: undefined, message: `no CONNACK within ${WAIT_MS} ms` }) }, WAIT_MS + 500)
    client.once('connect', () => { clearTimeout(timer); resolve({ ok: true, client }) })
    client.once('error', (err) => { clearTimeout(timer); resolve({ ok: false, code: (err as { code?: number }).code, message: err.message }) })
  })
  client.on('error', () => {})
  if (!result.ok) client.end(true)
  return result
}

/** The SUBACK's return codes: mqtt.js rejects a SUBACK with a 128 in it, and keeps the packet on the error. */
async function subackCodes (client: MqttClient, filter: string): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filter, { qos: 1 })).map((g) => g.qos)
  } catch (err) {
    const granted = (err as { packet?: { granted?: Array<number | { qos: number }> } }).packet?.granted
    if (!granted) throw err
    return granted.map((g) => typeof g === 'number' ? g : g.qos)
  }
}

async function end (client: MqttClient): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 1000)
    client.end(true, {}, () => { clearTimeout(timer); resolve() })
  })
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Whether `check` comes true within `ms` (the caller's assertion says what was awaited). */
async function until (check: () => boolean, ms = WAIT_MS): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await sleep(10)
  }
  return check()
}

// ---------------------------------------------------------------- the test

test('the broker\'s ACL: every member kind × every topic kind × publish and subscribe, and who may sign in', { timeout: 120_000 }, async (t) => {
  await aclMatrix(t, {})
})

// The same matrix on a cluster's hub (docs/cluster.md): members in PostgreSQL, the broker on Redis.
test('the broker\'s ACL on a cluster\'s hub (Redis, PostgreSQL): the same matrix', { timeout: 180_000 }, async (t) => {
  await aclMatrix(t, { cluster: true })
})

async function aclMatrix (t: TestContext, o: { cluster?: boolean }): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'doorbell-acl-'))
  const lines: string[] = []
  const servers = o.cluster ? await clusterServers(dataDir) : null
  let started: Hub | null = null
  // The hub first, then its Redis and PostgreSQL (it would wait for them while stopping).
  t.after(async () => { await started?.stop(); await servers?.stop(); rmSync(dataDir, { recursive: true, force: true }) })
  const hub = started = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false }, ...(servers ? { cluster: servers.cluster } : {}) }, { log: memoryLogger(lines, 'hub') })

  // The members, paired as people pair them (one-time codes over the hub's HTTP API).
  const ownerP = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const residentP = await pairViewer(hub, { name: 'Resident', role: 'resident' })
  const guestP = await pairViewer(hub, { name: 'Guest', role: 'guest' })
  const operatorKeys = await generateSigningKey(false)
  const operatorId = newId('v')
  const operatorPaired = await new HubApi({ base: hub.url }).pair({
    kind: 'viewer',
    code: (await hub.trust.invite('console', { kind: 'viewer', role: 'operator', zones: ['north'] }, hub.url)).code,
    id: operatorId,
    name: 'Night operator',
    key: await exportPublicKey(operatorKeys.publicKey)
  })
  const quiet = memoryLogger([], 'device')
  const camN = await pairDevice({ url: await deviceInvite(hub, NORTH_CAM, 'north'), deviceId: NORTH_CAM, deviceName: 'North camera', log: quiet })
  const front = await pairDevice({ url: await deviceInvite(hub, FRONT_DOOR), deviceId: FRONT_DOOR, deviceName: 'Front door', log: quiet })
  const viewer = (row: Row, p: { viewerId: string, memberId: string, token: string }): Who => ({ row, kind: 'viewer', subject: p.viewerId, username: p.memberId, password: p.token })
  const device = (row: Row, id: string, p: { memberId: string, token: string }): Who => ({ row, kind: 'device', subject: id, username: p.memberId, password: p.token })
  // Home Assistant's credential, made by the owner over the API as Home settings do.
  const ha = await new HubApi({ base: hub.url, token: ownerP.token }).createIntegration({ name: 'Home Assistant' })
  const who: Record<Row, Who> = {
    owner: viewer('owner', ownerP),
    resident: viewer('resident', residentP),
    guest: viewer('guest', guestP),
    operator: viewer('operator', { viewerId: operatorId, memberId: operatorPaired.member.id, token: operatorPaired.token }),
    [NORTH_CAM]: device(NORTH_CAM, NORTH_CAM, camN),
    [FRONT_DOOR]: device(FRONT_DOOR, FRONT_DOOR, front),
    integration: { row: 'integration', kind: 'integration', subject: ha.member.subject, username: ha.username, password: ha.password }
  } as Record<Row, Who>
  const ctx = (w: Who): Ctx => ({ who: w, owner: who.owner, resident: who.resident })

  // Watchers: the broker's own routing (a publish the gate refused never gets there), and a second
  // tab of the owner subscribed to everything an owner may see.
  const routed: Array<{ topic: string, payload: string }> = []
  const onPublish = (packet: { topic: string, payload: Buffer | string }): void => { routed.push({ topic: packet.topic, payload: packet.payload.toString() }) }
  hub.broker.on('publish', onPublish)
  t.after(() => { hub.broker.removeListener('publish', onPublish) })
  const watcher = await connect(hub, { clientId: `viewer-${who.owner.subject}-watch`, username: who.owner.username, password: who.owner.password })
  assert.ok(watcher.ok, 'the owner\'s watcher signs in')
  t.after(() => end(watcher.client))
  const heard: Array<{ topic: string, payload: string }> = []
  watcher.client.on('message', (topic, payload) => { heard.push({ topic, payload: payload.toString() }) })
  const watched = [...topics.homeEvents(HOME), topics.homeInspection(HOME), topics.viewerInbox(HOME, who.owner.subject)]
  const granted = await watcher.client.subscribeAsync(watched, { qos: 1 })
  assert.deepEqual(granted.map((g) => g.qos), watched.map(() => 1))
  const ownerWatches = (topic: string): boolean => watched.some((f) => {
    const a = f.split('/')
    const b = topic.split('/')
    return a.length === b.length && a.every((level, i) => level === '+' || level === b[i])
  })

  // ------------------------------------------------------------ subscribe
  const subGrid: Record<string, Verdict[]> = {}
  for (const row of ROWS) {
    const w = who[row]
    const c = await connect(hub, { clientId: clientIdOf(w), username: w.username, password: w.password })
    assert.ok(c.ok, `${row} signs in (${c.ok ? '' : c.message})`)
    const got: string[] = []
    c.client.on('message', (topic) => { got.push(topic) })
    for (const col of SUBSCRIBE) {
      const filter = col.filter(ctx(w))
      const from = lines.length
      const g: number[] | null = await Promise.race([
        subackCodes(c.client, filter),
        sleep(WAIT_MS).then(() => null)
      ])
      assert.ok(g !== null, `${row} got a SUBACK for ${filter}`)
      assert.equal(g.length, 1)
      const verdict: Verdict = g[0] === 128 ? 'D' : 'A'
      ;(subGrid[col.name] ??= []).push(verdict)
      const want = verdicts(col.expect)[ROWS.indexOf(row)]
      assert.equal(verdict, want, `${row} subscribing to ${filter} (${col.name}): SUBACK ${g[0]}, expected ${want === 'A' ? 'granted' : 'refused (128)'}`)
      if (verdict === 'D') {
        assert.ok(lines.slice(from).some((l) => l.includes('refused a subscription') && l.includes(`topic=${filter}`) && /reason=\S/.test(l)), `the hub says why ${row} may not subscribe to ${filter}`)
      }
      assert.equal(c.client.connected, true, `${row} is still connected after subscribing to ${filter}`)
    }
    // A device that may subscribe to the revocations gets the hub's retained, signed list; no one else does.
    if (w.kind === 'device') assert.ok(await until(() => got.includes(topics.revocations(HOME))), `${row} got the revocation list`)
    else assert.ok(!got.includes(topics.revocations(HOME)), `${row} did not get the revocation list`)
    await end(c.client)
  }

  // ------------------------------------------------------------ publish
  const pubGrid: Record<string, Verdict[]> = {}
  let n = 0
  for (const row of ROWS) {
    const w = who[row]
    let live: MqttClient | null = null
    for (const col of PUBLISH) {
      // A refused publish costs the connection (MQTT-3.3.5-2): sign in again for the next cell.
      if (live === null || !live.connected) {
        const c = await connect(hub, { clientId: clientIdOf(w), username: w.username, password: w.password })
        assert.ok(c.ok, `${row} signs in again (${c.ok ? '' : c.message})`)
        live = c.client
      }
      const client: MqttClient = live
      const marker = `m${1_000_000 + ++n}`
      const topic = col.topic(ctx(w), marker)
      const payload = col.payload(ctx(w), marker)
      const from = lines.length
      const outcome = await new Promise<'puback' | 'closed' | 'timeout'>((resolve) => {
        const timer = setTimeout(() => { resolve('timeout') }, WAIT_MS)
        client.once('close', () => { clearTimeout(timer); resolve('closed') })
        client.publish(topic, payload, { qos: 1 }, (err) => { if (!err) { clearTimeout(timer); resolve('puback') } })
      })
      const mark = col.mark?.(marker) ?? marker
      const mine = (m: { topic: string, payload: string }): boolean => m.topic === topic && m.payload.includes(mark)
      let got: Verdict
      if (outcome === 'puback') {
        assert.ok(await until(() => routed.some(mine)), `${row} → ${topic}: acknowledged and routed`)
        if (ownerWatches(topic)) assert.ok(await until(() => heard.some(mine)), `${row} → ${topic}: the owner's watcher heard it`)
        await sleep(20)
        assert.equal(client.connected, true, `${row} → ${topic}: still connected`)
        got = 'A'
      } else {
        assert.equal(outcome, 'closed', `${row} → ${topic}: neither acknowledged nor refused within ${WAIT_MS} ms`)
        await sleep(100)
        assert.ok(!routed.some(mine), `${row} → ${topic}: refused, and not routed`)
        assert.ok(!heard.some(mine), `${row} → ${topic}: refused, and nobody heard it`)
        assert.ok(lines.slice(from).some((l) => l.includes('refused a publish') && l.includes(`topic=${topic}`) && /reason=\S/.test(l)), `the hub says why ${row} may not publish to ${topic}`)
        got = 'D'
      }
      ;(pubGrid[col.name] ??= []).push(got)
      const want = verdicts(col.expect)[ROWS.indexOf(row)]
      assert.equal(got, want, `${row} publishing to ${topic} (${col.name}): ${got === 'A' ? 'allowed' : 'refused'}, expected ${want === 'A' ? 'allowed' : 'refused'}`)
    }
    if (live) await end(live)
  }
  // What cam-n reported reached the audit log; what front-door tried to report for it did not.
  const audited = hub.trust.audit.all().filter((r) => r.kind === 'open-door')
  assert.equal(audited.length, 1, `one audit record, from cam-n itself: ${JSON.stringify(audited)}`)

  // ------------------------------------------------------------ who may sign in at all
  const gone = await pairViewer(hub, { name: 'Former lodger', role: 'resident' })
  const ownerMember = hub.trust.members().find((m) => m.id === who.owner.username) as Member
  await hub.trust.revoke(ownerMember, gone.memberId)
  const brief = await pairViewer(hub, { name: 'Brief visitor', role: 'guest', accessHours: 0.0002 })
  await sleep(800) // 0.72 s of access, then over
  const forged = `${who.resident.username}.${'A'.repeat(43)}`
  const signIns: Array<{ name: string, clientId: string, username?: string, password?: string, code: 4 | 5 }> = [
    { name: 'wrong password', clientId: clientIdOf(who.resident), username: who.resident.username, password: forged, code: 4 },
    { name: 'anonymous (no credentials)', clientId: clientIdOf(who.resident), code: 4 },
    { name: 'a user name but no password', clientId: clientIdOf(who.resident), username: who.resident.username, code: 4 },
    { name: 'another member\'s token under this user name', clientId: clientIdOf(who.resident), username: who.resident.username, password: who.guest.password, code: 4 },
    { name: 'a revoked member', clientId: `viewer-${gone.viewerId}-x1`, username: gone.memberId, password: gone.token, code: 4 },
    { name: 'a guest whose access ended', clientId: `viewer-${brief.viewerId}-x1`, username: brief.memberId, password: brief.token, code: 4 },
    { name: 'a client id of another viewer', clientId: clientIdOf(who.owner), username: who.resident.username, password: who.resident.password, code: 5 },
    { name: 'a viewer taking a device\'s client id', clientId: `device-${NORTH_CAM}`, username: who.resident.username, password: who.resident.password, code: 5 },
    { name: 'a device taking another device\'s client id', clientId: `device-${FRONT_DOOR}`, username: who[NORTH_CAM].username, password: who[NORTH_CAM].password, code: 5 },
    { name: 'a viewer id with no tab', clientId: `viewer-${who.resident.subject}`, username: who.resident.username, password: who.resident.password, code: 5 },
    { name: 'a client id that is not an id', clientId: `viewer-${who.resident.subject}-a/b`, username: who.resident.username, password: who.resident.password, code: 5 },
    { name: 'an integration with any other client id', clientId: `mqtt-${newId()}`, username: who.integration.username, password: who.integration.password, code: 5 },
    { name: 'a viewer taking the integration\'s client id', clientId: `integration-${who.integration.subject}`, username: who.resident.username, password: who.resident.password, code: 5 }
  ]
  const signInRows: string[] = []
  for (const s of signIns) {
    const from = lines.length
    const c = await connect(hub, s)
    if (c.ok) await end(c.client)
    assert.ok(!c.ok, `${s.name}: refused`)
    assert.equal(c.code, s.code, `${s.name}: CONNACK ${s.code} (${c.message})`)
    assert.ok(lines.slice(from).some((l) => l.includes('refused a client') && /reason=\S/.test(l)), `the hub says why (${s.name})`)
    signInRows.push(`  ${s.name.padEnd(44)} CONNACK ${c.code}`)
  }
  // And the same members with their own client ids still sign in: the refusals above were about them.
  for (const row of ROWS) {
    const c = await connect(hub, { clientId: clientIdOf(who[row]), username: who[row].username, password: who[row].password })
    assert.ok(c.ok, `${row} still signs in`)
    await end(c.client)
  }
  assert.equal(watcher.client.connected, true, 'the owner\'s watcher was never cut off')

  const grid = (title: string, g: Record<string, Verdict[]>): string => {
    const head = `  ${title.padEnd(40)} ${ROWS.map((r) => r.padEnd(12)).join('')}`
    return [head, ...Object.entries(g).map(([name, v]) => `  ${name.padEnd(40)} ${v.map((x) => (x === 'A' ? 'allow' : '-').padEnd(12)).join('')}`)].join('\n')
  }
  console.log(`ACL matrix (hub ${hub.mqttUrl}):\n${grid('subscribe', subGrid)}\n\n${grid('publish', pubGrid)}\n\nsign-in refused:\n${signInRows.join('\n')}`)
}

/** Redis and PostgreSQL for one cluster hub, and its provisioned home key. */
async function clusterServers (dataDir: string): Promise<{ cluster: { nodeId: string, redisUrl: string, postgresUrl: string }, stop: () => Promise<void> }> {
  const redis = await TestRedis.start()
  const db = await TestPostgres.start().catch(async (err: unknown) => { await redis.destroy(); throw err })
  const stop = async (): Promise<void> => { await redis.destroy(); await db.destroy() }
  try {
    makeHomeKey(join(dataDir, 'trust'))
    return { cluster: { nodeId: 'acl', redisUrl: redis.url, postgresUrl: await db.createDatabase('acl') }, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
