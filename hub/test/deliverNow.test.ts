import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from 'aedes'
import mqtt from 'mqtt'
import { RingEvent, encode, memoryLogger, newId, topics } from '@doorbell/core'
import { startHub } from '../src/index'
import { GuardedConnection } from '../src/broker/connectionGuard'
import { deliverNow } from '../src/broker/deliverNow'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'
import { shareEncodings } from '../src/broker/sharedPublish'
import { startGuardedBroker, until } from './guardedBroker'
import { pairDevice, pairScreen } from './pairedViewer'

/**
 * The hub's same-turn delivery (src/broker/deliverNow.ts) on a real Aedes with the hub's own
 * SQLite persistence, behind the hub's connection guard, and mqtt.js screens on loopback: each
 * screen's copy of a ring is written as soon as it is prepared (aedes prepares all of them first),
 * and what aedes guarantees per delivery still holds: a packet id recorded before the write (an
 * acknowledged ring is not queued any more), the forward-time check (a refused screen gets
 * nothing, and its queued copy goes), a screen offline at the ring gets it when it is back.
 */
const root = mkdtempSync(join(tmpdir(), 'deliver-now-'))
after(() => { rmSync(root, { recursive: true, force: true }) })

const RING = 'doorbell/home/front/ring'
// One encoding of each PUBLISH, one write per delivery on the guard's connections, as brokerModule wires it.
after(shareEncodings((stream) => stream instanceof GuardedConnection))

interface Broker { url: string, persistence: SqlitePersistence, events: string[], close: () => Promise<void> }

/** `now`: the hub's delivery; otherwise aedes's own. `events` logs each forward-time check and each write of a ring, by screen. */
async function startBroker (name: string, now: boolean, refuse: (clientId: string) => boolean = () => false): Promise<Broker> {
  const persistence = new SqlitePersistence({ dir: join(root, name) })
  const events: string[] = []
  const broker = await startGuardedBroker(persistence, {
    options: {
      authorizeForward: (client, packet) => {
        if (packet.topic !== RING) return packet
        events.push(`check ${client.id}`)
        return refuse(client.id) ? null : packet
      }
    },
    accepted: (conn, socket) => {
      const client = (conn as unknown as { client: Client }).client
      // What reaches the socket (whichever way the guard passes it on).
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
      socket.write = ((...args: unknown[]) => {
        const bytes = args[0]
        if (Buffer.isBuffer(bytes) && bytes.includes(RING)) events.push(`write ${client.id}`)
        return write(...args)
      }) as typeof socket.write
      if (now) deliverNow(client, (c, packet) => persistence.outgoingUpdateNow(c, packet))
    }
  })
  return {
    url: broker.url,
    persistence,
    events,
    close: async () => {
      await broker.close()
      await persistence.destroy()
    }
  }
}

/** A persistent screen subscribed at QoS 1 to the rings, and what it received. */
async function screen (url: string, id: string): Promise<{ client: mqtt.MqttClient, got: string[] }> {
  const got: string[] = []
  const client = await mqtt.connectAsync(url, { clientId: id, clean: false, reconnectPeriod: 0 })
  client.on('message', (_topic, payload) => { got.push(payload.toString()) })
  await client.subscribeAsync(RING, { qos: 1 })
  return { client, got }
}

/** The queued copies the persistence still holds for `id` (a delivered and acknowledged ring is not among them). */
async function queued (persistence: SqlitePersistence, id: string): Promise<string[]> {
  const out: string[] = []
  for await (const p of persistence.outgoingStream({ id })) out.push(String((p as { payload: Buffer }).payload))
  return out
}

/** Waits until nothing is queued for `id` (its acknowledgement arrived); fails with what is left. */
async function untilEmpty (persistence: SqlitePersistence, id: string): Promise<void> {
  const deadline = Date.now() + 5000
  let left = await queued(persistence, id)
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    left = await queued(persistence, id)
  }
  assert.deepEqual(left, [], `nothing left queued for ${id}`)
}

const IDS = ['viewer-a-1', 'viewer-b-1', 'viewer-c-1', 'viewer-d-1', 'viewer-e-1']

for (const now of [true, false]) {
  test(now
    ? 'the hub\'s delivery: each screen\'s copy of a ring is written as soon as it is checked, and acknowledged copies leave the queue'
    : 'aedes\'s own delivery, for contrast: every screen is checked before the first copy is written', { timeout: 30_000 }, async () => {
    const broker = await startBroker(now ? 'now' : 'aedes', now)
    const screens: Array<Awaited<ReturnType<typeof screen>>> = []
    for (const id of IDS) screens.push(await screen(broker.url, id))
    const device = await mqtt.connectAsync(broker.url, { clientId: 'device-front', reconnectPeriod: 0 })
    try {
      broker.events.length = 0
      await device.publishAsync(RING, 'ring-1', { qos: 1 })
      await until('every screen has the ring', () => screens.every((s) => s.got.includes('ring-1')))
      const order = broker.events.map((e) => e.split(' ')[0])
      assert.equal(order.filter((e) => e === 'write').length, IDS.length, `one write per screen: ${broker.events.join(', ')}`)
      if (now) assert.deepEqual(order, IDS.flatMap(() => ['check', 'write']), `checked, written, checked, written: ${broker.events.join(', ')}`)
      else assert.deepEqual(order, [...IDS.map(() => 'check'), ...IDS.map(() => 'write')], `aedes checks all, then writes: ${broker.events.join(', ')}`)
      // Each screen acknowledges its copy (mqtt.js does): then none is queued for it any more.
      for (const id of IDS) await untilEmpty(broker.persistence, id)
    } finally {
      for (const s of screens) s.client.end(true)
      device.end(true)
      await broker.close()
    }
  })
}

test('the hub\'s delivery keeps the forward-time check and the persistent session: a refused screen gets nothing and keeps no copy; a screen away gets the ring when it is back, once', { timeout: 30_000 }, async () => {
  const broker = await startBroker('rules', true, (id) => id === 'viewer-refused-1')
  const kept = await screen(broker.url, 'viewer-kept-1')
  const refused = await screen(broker.url, 'viewer-refused-1')
  const away = await screen(broker.url, 'viewer-away-1')
  await new Promise<void>((resolve) => { away.client.end(false, {}, () => resolve()) })
  const device = await mqtt.connectAsync(broker.url, { clientId: 'device-front', reconnectPeriod: 0 })
  let back: Awaited<ReturnType<typeof screen>> | null = null
  try {
    await device.publishAsync(RING, 'ring-2', { qos: 1 })
    await until('the kept screen has the ring', () => kept.got.includes('ring-2'))
    assert.deepEqual(await queued(broker.persistence, 'viewer-away-1'), ['ring-2'], 'queued for the screen that is away')
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepEqual(refused.got, [], 'the refused screen got nothing')
    assert.deepEqual(await queued(broker.persistence, 'viewer-refused-1'), [], 'and keeps no copy')

    back = { client: await mqtt.connectAsync(broker.url, { clientId: 'viewer-away-1', clean: false, reconnectPeriod: 0 }), got: [] }
    const got = back.got
    back.client.on('message', (_topic, payload) => { got.push(payload.toString()) })
    await until('the screen that was away has the ring', () => got.includes('ring-2'))
    await device.publishAsync(RING, 'ring-3', { qos: 1 })
    await until('and the next one live', () => got.includes('ring-3') && kept.got.includes('ring-3'))
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepEqual(got, ['ring-2', 'ring-3'], 'each once, in order')
    assert.deepEqual(kept.got, ['ring-2', 'ring-3'])
    for (const id of ['viewer-kept-1', 'viewer-away-1']) await untilEmpty(broker.persistence, id)
  } finally {
    for (const c of [kept.client, refused.client, back?.client]) c?.end(true)
    device.end(true)
    await broker.close()
  }
})

test('the hub wires it: a ring to three persistent screens of the home is written to each as soon as it is checked', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(root, 'hub-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false } }, { log: memoryLogger() })
  const clients: mqtt.MqttClient[] = []
  const write = Socket.prototype.write
  t.after(async () => {
    Socket.prototype.write = write
    for (const c of clients) c.end(true)
    await hub.stop()
  })
  const topic = topics.ring('home', 'front')
  const events: string[] = []
  const check = hub.broker.authorizeForward
  hub.broker.authorizeForward = (client, packet) => {
    if (packet.topic === topic) events.push(`check ${client.id}`)
    return check.call(hub.broker, client, packet)
  }
  // What reaches each screen's socket, by its client id (the guard's socket is its `inner`).
  const screenOf = new WeakMap<object, string>()
  hub.broker.on('client', (client) => { screenOf.set((client.conn as unknown as { inner: object }).inner, client.id) })
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    if (Buffer.isBuffer(args[0]) && args[0].includes(topic)) events.push(`write ${screenOf.get(this) ?? '?'}`)
    return (write as (...a: unknown[]) => boolean).apply(this, args)
  } as typeof write
  const ids: string[] = []
  const got = new Map<string, number>()
  for (let i = 0; i < 3; i++) {
    const s = await pairScreen(hub, 'resident')
    const id = `viewer-${s.viewerId}-a`
    const c = await mqtt.connectAsync(hub.mqttUrl, { clientId: id, username: s.memberId, password: s.token, clean: false, reconnectPeriod: 0 })
    clients.push(c)
    c.on('message', () => { got.set(id, (got.get(id) ?? 0) + 1) })
    await c.subscribeAsync(`doorbell/home/+/ring`, { qos: 1 })
    ids.push(id)
  }
  const d = await pairDevice(hub, 'front')
  const device = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'device-front', username: d.memberId, password: d.token, reconnectPeriod: 0 })
  clients.push(device)
  await device.publishAsync(topic, encode(RingEvent, { type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId: newId('r'), at: Date.now(), count: 1 }), { qos: 1 })
  await until('every screen has the ring', () => ids.every((id) => got.get(id) === 1))
  assert.deepEqual(events.map((e) => e.split(' ')[0]), ids.flatMap(() => ['check', 'write']), events.join(', '))
  assert.deepEqual(new Set(events.map((e) => e.split(' ')[1])), new Set(ids))
})
