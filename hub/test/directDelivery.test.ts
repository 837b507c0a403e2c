import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aedes, type AedesOptions } from 'aedes'
import mqtt from 'mqtt'
import { memoryLogger } from '@doorbell/core'
import { whenStored } from '../src/broker/ackAfterStore'
import { connectionGuard, GuardedConnection } from '../src/broker/connectionGuard'
import { deliverDirectly } from '../src/broker/directDelivery'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'
import { shareEncodings } from '../src/broker/sharedPublish'

/**
 * The direct deliverers (directDelivery.ts) against aedes's own, through real aedes, the guard,
 * the hub's SQLite persistence and mqtt.js: every scenario runs on both, and what each client
 * receives must be the same, and right (QoS 1 semantics: packet ids, PUBACK, the offline queue of
 * persistent sessions, forward-time refusals, downgrades, no-local, a subscriber that stops reading).
 */

type Delivery = 'direct' | 'aedes'
const DELIVERIES: Delivery[] = ['aedes', 'direct']

interface TestBroker { url: string, port: number, broker: Aedes, close: () => Promise<void> }

async function startBroker (delivery: Delivery, o: Partial<AedesOptions> & { sqlite?: boolean } = {}): Promise<TestBroker> {
  const unshare = shareEncodings((s) => s instanceof GuardedConnection)
  const dir = o.sqlite === true ? await mkdtemp(join(tmpdir(), 'doorbell-delivery-')) : null
  const persistence = dir === null ? undefined : new SqlitePersistence({ dir })
  const { sqlite: _sqlite, ...opts } = o
  const broker = await Aedes.createBroker({ ...opts, ...(persistence ? { persistence: persistence as never } : {}) })
  const guard = connectionGuard({ maxConnectBytes: 16_384, maxPacketBytes: 4 * 1024 * 1024, maxPending: 64, proxyProtocol: false }, memoryLogger())
  broker.on('client', (c) => { guard.signedIn(c.conn) })
  whenStored(broker, (conn) => { guard.stored(conn) })
  const server = createServer((socket) => {
    const g = guard.admit(socket, '127.0.0.1', true)
    if (g === null) return
    const client = broker.handle(g as never)
    if (delivery === 'direct') deliverDirectly(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    broker,
    async close () {
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await persistence?.destroy()
      if (dir !== null) await rm(dir, { recursive: true, force: true })
      unshare()
    }
  }
}

/** Waits for a condition, polling; fails with `what` after `ms` (generous: the machine is shared). */
async function until (what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

interface Got { topic: string, payload: string, qos: number, retain: boolean, messageId: number | undefined }

async function subscriber (url: string, clientId: string, filter: string, qos: 0 | 1, extra: mqtt.IClientOptions = {}): Promise<{ c: mqtt.MqttClient, got: Got[] }> {
  const got: Got[] = []
  const c = await mqtt.connectAsync(url, { clientId, reconnectPeriod: 0, ...extra })
  c.on('message', (topic, payload, packet) => { got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, messageId: packet.messageId }) })
  await c.subscribeAsync(filter, { qos })
  return { c, got }
}

/** Runs `scenario` on a broker with each delivery and returns both results, for comparison. */
async function onBoth<T> (o: Partial<AedesOptions> & { sqlite?: boolean }, scenario: (b: TestBroker, delivery: Delivery) => Promise<T>): Promise<Record<Delivery, T>> {
  const out: Partial<Record<Delivery, T>> = {}
  for (const d of DELIVERIES) {
    const b = await startBroker(d, o)
    try { out[d] = await scenario(b, d) } finally { await b.close() }
  }
  return out as Record<Delivery, T>
}

describe('directDelivery: the same deliveries as aedes\'s own', () => {
  test('fan-out at QoS 1 and 0: every subscriber gets every message once and in order; QoS 1 under its own rising packet ids; nothing stays in flight after the PUBACKs', async () => {
    const r = await onBoth({ sqlite: true }, async (b) => {
      const subs = await Promise.all(Array.from({ length: 12 }, async (_, k) => await subscriber(b.url, `s${k}`, 'd/+/ring', k % 4 === 0 ? 0 : 1, { clean: k % 2 === 0 })))
      const pub = await mqtt.connectAsync(b.url, { clientId: 'pub', reconnectPeriod: 0 })
      // Not awaited one by one: a burst, so many messages are in mqemitter at once.
      await Promise.all(Array.from({ length: 300 }, async (_, i) => await pub.publishAsync(`d/${i % 2 === 0 ? 'front' : 'back'}/ring`, `m${i}`, { qos: 1 })))
      await until('every delivery', () => subs.every((s) => s.got.length === 300))
      for (const [k, s] of subs.entries()) {
        const ids = s.got.map((g) => g.messageId)
        if (k % 4 === 0) assert.ok(ids.every((id) => id === undefined), `s${k} at QoS 0 has no packet ids`)
        else assert.equal(new Set(ids).size, 300, `s${k}: one packet id per delivery`)
      }
      // Persistent sessions (odd k, all at QoS 1) have nothing left queued once every PUBACK is in.
      const persistence = (b.broker as unknown as { persistence: SqlitePersistence }).persistence
      const left = async (id: string): Promise<number> => { let n = 0; for await (const _ of persistence.outgoingStream({ id } as never)) n++; return n }
      const queued: number[] = []
      for (let k = 1; k < 12; k += 2) {
        const deadline = Date.now() + 20_000
        let n = await left(`s${k}`)
        while (n > 0 && Date.now() < deadline) { await new Promise((resolve) => setTimeout(resolve, 20)); n = await left(`s${k}`) }
        queued.push(n)
      }
      assert.deepEqual(queued, [0, 0, 0, 0, 0, 0])
      await Promise.all([...subs.map(async (s) => await s.c.endAsync()), pub.endAsync()])
      return subs.map((s) => s.got.map((g) => `${g.topic} ${g.payload} q${g.qos}`))
    })
    assert.equal(r.direct[0]!.length, 300)
    assert.deepEqual(r.direct, r.aedes)
  })

  test('a persistent session: live messages, then the ones queued while it was away, each once; a PUBACKed message never comes again', async () => {
    const r = await onBoth({ sqlite: true }, async (b) => {
      const pub = await mqtt.connectAsync(b.url, { clientId: 'pub', reconnectPeriod: 0 })
      const first = await subscriber(b.url, 'screen', 'd/+/ring', 1, { clean: false })
      for (let i = 0; i < 5; i++) await pub.publishAsync('d/front/ring', `live${i}`, { qos: 1 })
      await until('the live messages', () => first.got.length === 5)
      await first.c.endAsync()
      for (let i = 0; i < 5; i++) await pub.publishAsync('d/front/ring', `away${i}`, { qos: 1 })
      const again: Got[] = []
      const back = await mqtt.connectAsync(b.url, { clientId: 'screen', clean: false, reconnectPeriod: 0, manualConnect: false })
      back.on('message', (topic, payload, packet) => { again.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, messageId: packet.messageId }) })
      await until('the queued messages', () => again.length >= 5)
      for (let i = 0; i < 3; i++) await pub.publishAsync('d/front/ring', `after${i}`, { qos: 1 })
      await until('the messages after', () => again.length >= 8)
      await back.endAsync()
      // Once more: everything was acknowledged, so nothing is sent again.
      const last: string[] = []
      const third = await mqtt.connectAsync(b.url, { clientId: 'screen', clean: false, reconnectPeriod: 0 })
      third.on('message', (_t, payload) => { last.push(payload.toString()) })
      await pub.publishAsync('d/front/ring', 'marker', { qos: 1 })
      await until('the marker', () => last.includes('marker'))
      await Promise.all([third.endAsync(), pub.endAsync()])
      return { first: first.got.map((g) => g.payload), again: again.map((g) => g.payload), last }
    })
    assert.deepEqual(r.direct.first, ['live0', 'live1', 'live2', 'live3', 'live4'])
    assert.deepEqual(r.direct.again, ['away0', 'away1', 'away2', 'away3', 'away4', 'after0', 'after1', 'after2'])
    assert.deepEqual(r.direct.last, ['marker'])
    assert.deepEqual(r.direct, r.aedes)
  })

  test('authorizeForward: a refused delivery is not sent, and a persistent session\'s queued copy of it is cleared (not sent at reconnect)', async () => {
    const refuse = (packet: { payload: Buffer | string }): boolean => packet.payload.toString().startsWith('no')
    const r = await onBoth({ sqlite: true, authorizeForward: (client, packet) => (client.id === 'screen' && refuse(packet)) ? null : packet }, async (b) => {
      const pub = await mqtt.connectAsync(b.url, { clientId: 'pub', reconnectPeriod: 0 })
      const screen = await subscriber(b.url, 'screen', 'd/+/ring', 1, { clean: false })
      const other = await subscriber(b.url, 'other', 'd/+/ring', 1)
      for (const m of ['yes0', 'no0', 'yes1', 'no1']) await pub.publishAsync('d/front/ring', m, { qos: 1 })
      await until('the other screen\'s messages', () => other.got.length === 4)
      await until('the screen\'s messages', () => screen.got.length === 2)
      await screen.c.endAsync()
      const back: string[] = []
      const c = await mqtt.connectAsync(b.url, { clientId: 'screen', clean: false, reconnectPeriod: 0 })
      c.on('message', (_t, payload) => { back.push(payload.toString()) })
      await pub.publishAsync('d/front/ring', 'yes2', { qos: 1 })
      await until('the next message', () => back.includes('yes2') && other.got.length === 5)
      await Promise.all([c.endAsync(), other.c.endAsync(), pub.endAsync()])
      return { screen: screen.got.map((g) => g.payload), other: other.got.map((g) => g.payload), back }
    })
    assert.deepEqual(r.direct, { screen: ['yes0', 'yes1'], other: ['yes0', 'no0', 'yes1', 'no1', 'yes2'], back: ['yes2'] })
    assert.deepEqual(r.direct, r.aedes)
  })

  // (MQTT 5's no-local is not tested: aedes 1.2 refuses MQTT 5 clients, as the hub does.)
  test('a QoS 1 message to an exact QoS 0 subscription goes at QoS 0; retained messages go at SUBSCRIBE, to a persistent session too', async () => {
    const r = await onBoth({}, async (b) => {
      const pub = await mqtt.connectAsync(b.url, { clientId: 'pub', reconnectPeriod: 0 })
      await pub.publishAsync('d/front/state', 'kept', { qos: 1, retain: true })
      const exact = await subscriber(b.url, 'exact', 'd/front/ring', 0)
      const retained = await subscriber(b.url, 'retained', 'd/+/state', 1, { clean: false })
      const wild = await subscriber(b.url, 'wild', 'd/+/ring', 1)
      await pub.publishAsync('d/front/ring', 'r1', { qos: 1 })
      await pub.publishAsync('d/front/ring', 'r2', { qos: 1 })
      await until('the deliveries', () => exact.got.length === 2 && retained.got.length === 1 && wild.got.length === 2)
      await Promise.all([exact.c.endAsync(), retained.c.endAsync(), wild.c.endAsync(), pub.endAsync()])
      return { exact: exact.got.map((g) => [g.payload, g.qos]), retained: retained.got.map((g) => [g.payload, g.qos, g.retain]), wild: wild.got.map((g) => [g.payload, g.qos]) }
    })
    assert.deepEqual(r.direct, { exact: [['r1', 0], ['r2', 0]], retained: [['kept', 1, true]], wild: [['r1', 1], ['r2', 1]] })
    assert.deepEqual(r.direct, r.aedes)
  })

  test('a subscriber that stops reading is dropped at aedes\'s drain timeout; the others get every message meanwhile', async () => {
    const r = await onBoth({ drainTimeout: 500 }, async (b) => {
      const dropped: string[] = []
      b.broker.on('clientError', (client, err) => { if (err.message === 'drain timeout') dropped.push(client.id) })
      // A raw client: CONNECT (client id "stuck") and SUBSCRIBE d/+/ring at QoS 1, then it never reads.
      const stuck = createConnection({ host: '127.0.0.1', port: b.port })
      await new Promise<void>((resolve) => stuck.once('connect', () => resolve()))
      const connect = Buffer.concat([Buffer.from([0x10, 0x11, 0x00, 0x04]), Buffer.from('MQTT'), Buffer.from([0x04, 0x02, 0x00, 0x3c, 0x00, 0x05]), Buffer.from('stuck')])
      const subscribe = Buffer.concat([Buffer.from([0x82, 0x0d, 0x00, 0x01, 0x00, 0x08]), Buffer.from('d/+/ring'), Buffer.from([0x01])])
      stuck.write(Buffer.concat([connect, subscribe]))
      await until('the stuck client\'s subscription', () => Object.values((b.broker as unknown as { clients: Record<string, { subscriptions: Record<string, unknown> }> }).clients).some((c) => 'd/+/ring' in c.subscriptions))
      stuck.pause()
      const reader = await subscriber(b.url, 'reader', 'd/+/ring', 1)
      const pub = await mqtt.connectAsync(b.url, { clientId: 'pub', reconnectPeriod: 0 })
      const big = Buffer.alloc(512 * 1024, 7)
      let sent = 0
      // Until the stuck client is gone (the kernel's buffers take a few MB first).
      while (dropped.length === 0 && sent < 200) { await pub.publishAsync('d/front/ring', big, { qos: 1 }); sent++ }
      await until('the stuck client dropped', () => dropped.length > 0)
      await until('every message at the reader', () => reader.got.length === sent)
      stuck.destroy()
      await Promise.all([reader.c.endAsync(), pub.endAsync()])
      // aedes reports the timeout once per delivery still waiting: how many is timing, who is not.
      return { dropped: [...new Set(dropped)], allIntact: reader.got.every((g) => g.payload.length === big.length) }
    })
    assert.deepEqual(r.direct, { dropped: ['stuck'], allIntact: true })
    assert.deepEqual(r.direct, r.aedes)
  })
})
