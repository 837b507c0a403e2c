import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'
import { BROKER_DB_FILE } from '../src/broker/persistence/store'

/**
 * The hub's broker persistence across restarts: what one instance wrote, the next one reads (on
 * its own, and under a real Aedes with real mqtt.js clients); bad options and a newer file are
 * refused before anything is written. The conformance suite is brokerPersistence.abstract.test.ts.
 */
const root = mkdtempSync(join(tmpdir(), 'broker-persistence-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
let n = 0
const fresh = (): string => join(root, String(n++))
const broker = { id: 'broker-1' }
const drain = async <T>(s: AsyncIterable<T>): Promise<T[]> => { const out: T[] = []; for await (const x of s) out.push(x); return out }
const publish = (topic: string, payload: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, brokerId: 'broker-1', brokerCounter: ++n, ...extra })

describe('SqlitePersistence across a restart', () => {
  test('retained messages, subscriptions and queued messages are read back; deletions stay deleted', async () => {
    const dir = fresh()
    const a = new SqlitePersistence({ dir })
    await a.setup(broker)
    await a.storeRetained(publish('doorbell/home/d/state', '{"s":1}', { retain: true }) as never)
    await a.storeRetained(publish('doorbell/home/e/state', '{"s":2}', { retain: true }) as never)
    await a.storeRetained(publish('doorbell/home/e/state', '', { retain: true }) as never)
    await a.addSubscriptions({ id: 'viewer-v1-a' }, [{ topic: 'doorbell/home/+/ring', qos: 1 }, { topic: 'doorbell/home/+/state', qos: 0 }])
    const ring1 = publish('doorbell/home/d/ring', 'one')
    const ring2 = publish('doorbell/home/d/ring', 'two')
    await a.outgoingEnqueueCombi([{ clientId: 'viewer-v1-a' }], ring1 as never)
    await a.outgoingEnqueueCombi([{ clientId: 'viewer-v1-a' }], ring2 as never)
    await a.outgoingUpdate({ id: 'viewer-v1-a' }, { ...ring1, messageId: 7 } as never)
    await a.outgoingUpdate({ id: 'viewer-v1-a' }, { ...ring2, messageId: 8 } as never)
    await a.outgoingClearMessageId({ id: 'viewer-v1-a' }, { messageId: 7 })
    await a.destroy()

    const b = new SqlitePersistence({ dir })
    await b.setup(broker)
    const retained = await drain(b.createRetainedStreamCombi(['doorbell/home/+/state'])) as Array<{ topic: string, payload: Buffer }>
    assert.deepEqual(retained.map((p) => [p.topic, p.payload.toString()]), [['doorbell/home/d/state', '{"s":1}']])
    assert.deepEqual((await b.subscriptionsByClient({ id: 'viewer-v1-a' })).map((s) => [s.topic, s.qos]), [['doorbell/home/+/ring', 1], ['doorbell/home/+/state', 0]])
    assert.deepEqual((await b.subscriptionsByTopic('doorbell/home/d/ring')).map((s) => s.clientId), ['viewer-v1-a'], 'QoS 1 subscriptions are matched again')
    assert.deepEqual(await b.subscriptionsByTopic('doorbell/home/d/state'), [], 'QoS 0 ones are restored to the client, never queued for')
    // The packet id it was last sent under is not kept: aedes sends the queue again under new ones.
    const queued = await drain(b.outgoingStream({ id: 'viewer-v1-a' })) as Array<{ payload: Buffer, messageId: number | undefined, brokerCounter: number }>
    assert.deepEqual(queued.map((p) => [p.payload.toString(), p.messageId, p.brokerCounter]), [['two', undefined, ring2.brokerCounter]])
    await b.cleanSubscriptions({ id: 'viewer-v1-a' })
    await b.destroy()
    const c = new SqlitePersistence({ dir })
    await c.setup(broker)
    assert.deepEqual(await c.subscriptionsByClient({ id: 'viewer-v1-a' }), [])
    await c.destroy()
  })

  test('a client\'s queue is bounded: past maxQueuedPerClient the oldest messages go, on disk too', async () => {
    const dir = fresh()
    const a = new SqlitePersistence({ dir, maxQueuedPerClient: 3 })
    await a.setup(broker)
    for (const i of [1, 2, 3, 4, 5]) await a.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', String(i)) as never)
    await a.destroy()
    const b = new SqlitePersistence({ dir, maxQueuedPerClient: 3 })
    await b.setup(broker)
    assert.deepEqual((await drain(b.outgoingStream({ id: 'c' })) as Array<{ payload: Buffer }>).map((p) => p.payload.toString()), ['3', '4', '5'])
    await b.destroy()
  })

  test('bad input: a queue bound that is not a whole number ≥ 1, and a file from a newer hub, are refused with a clear error', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new SqlitePersistence({ dir: fresh(), maxQueuedPerClient: bad }), /maxQueuedPerClient must be a whole number/)
    const dir = fresh()
    const a = new SqlitePersistence({ dir })
    await a.setup(broker)
    await a.storeRetained(publish('x', 'kept', { retain: true }) as never)
    await a.destroy()
    const db = new DatabaseSync(join(dir, BROKER_DB_FILE))
    db.exec('PRAGMA user_version = 99')
    db.close()
    await assert.rejects(new SqlitePersistence({ dir }).setup(broker), /written by a newer hub \(schema 99/)
    const check = new DatabaseSync(join(dir, BROKER_DB_FILE))
    assert.equal((check.prepare('SELECT count(*) AS n FROM retained').get() as { n: number }).n, 1, 'nothing changed')
    check.close()
  })
})

/** A real Aedes on loopback with the SQLite persistence in `dir`. */
async function startBroker (dir: string, port = 0): Promise<{ aedes: Aedes, server: Server, port: number, close: () => Promise<void> }> {
  const aedes = await Aedes.createBroker({ persistence: new SqlitePersistence({ dir }) })
  const server = createServer((s) => aedes.handle(s))
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    aedes,
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise<void>((resolve) => { server.close(() => resolve()); aedes.close() })
    }
  }
}

describe('a real Aedes on the SQLite persistence', () => {
  test('a message queued for an offline persistent session, and a retained state, outlive the broker', { timeout: 20_000 }, async () => {
    const dir = fresh()
    const first = await startBroker(dir)
    const opts = { clientId: 'screen-1', clean: false, reconnectPeriod: 0, connectTimeout: 5000 }
    const screen = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.port}`, opts)
    await screen.subscribeAsync('doorbell/home/+/ring', { qos: 1 })
    await screen.endAsync()
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.port}`, { clientId: 'device-1', reconnectPeriod: 0 })
    await device.publishAsync('doorbell/home/d/state', 'locked', { qos: 1, retain: true })
    await device.publishAsync('doorbell/home/d/ring', 'ring-1', { qos: 1 }) // acknowledged: on disk
    await device.endAsync()
    await first.close()

    const second = await startBroker(dir, first.port)
    try {
      const got: string[] = []
      const back = mqtt.connect(`mqtt://127.0.0.1:${second.port}`, opts)
      back.on('message', (topic, payload) => { got.push(`${topic}=${payload.toString()}`) })
      await new Promise<void>((resolve, reject) => { back.once('connect', (ack) => { assert.equal(ack.sessionPresent, true, 'the session is there'); resolve() }); back.once('error', reject) })
      const deadline = Date.now() + 5000
      while (got.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      assert.deepEqual(got, ['doorbell/home/d/ring=ring-1'])
      const reader = await mqtt.connectAsync(`mqtt://127.0.0.1:${second.port}`, { clientId: 'reader', reconnectPeriod: 0 })
      const retained = new Promise<string>((resolve) => reader.once('message', (_t, p) => resolve(p.toString())))
      await reader.subscribeAsync('doorbell/home/d/state', { qos: 1 })
      assert.equal(await retained, 'locked')
      await back.endAsync()
      await reader.endAsync()
    } finally {
      await second.close()
    }
  })
})

describe('SqlitePersistence: a persistent screen\'s queue', () => {
  test('a queued copy is taken in memory at once and committed a turn after what the broker sends in that turn; committed() settles once it is on disk', async () => {
    const dir = fresh()
    const p = new SqlitePersistence({ dir })
    await p.setup(broker)
    const reader = new DatabaseSync(join(dir, BROKER_DB_FILE), { readOnly: true })
    const onDisk = (): number => Number((reader.prepare('SELECT count(*) AS n FROM outgoing').get() as { n: number }).n)
    try {
      const order: string[] = []
      await p.outgoingEnqueueCombi([{ clientId: 'viewer-v1-a' }, { clientId: 'viewer-v1-b' }], publish('doorbell/home/d/ring', 'ring') as never)
      // As aedes forwards it: a delivery written a turn later, after the enqueue resolved.
      setImmediate(() => { order.push(`delivery written (${onDisk()} on disk)`) })
      assert.equal(onDisk(), 0, 'resolved before the commit')
      assert.equal((await drain(p.outgoingStream({ id: 'viewer-v1-a' }))).length, 1, 'in memory at once')
      await p.committed()
      order.push(`committed (${onDisk()} on disk)`)
      assert.deepEqual(order, ['delivery written (0 on disk)', 'committed (2 on disk)'])
      await p.committed()
      assert.equal(onDisk(), 2, 'nothing pending: settles at once')
    } finally {
      reader.close()
      await p.destroy()
    }
    await assert.rejects(p.committed(), /not set up|destroyed/, 'a destroyed store commits nothing')
  })

  test('a message refused at forward time (no packet id yet) clears only itself, never the first queued message not yet sent', async () => {
    const p = new SqlitePersistence({ dir: fresh() })
    await p.setup(broker)
    const screen = { id: 'viewer-v1-abc' }
    const ring = publish('doorbell/home/d/ring', 'ring')
    const refused = publish('doorbell/home/gone/state', 'refused')
    await p.outgoingEnqueueCombi([{ clientId: screen.id }], ring as never)
    await p.outgoingEnqueueCombi([{ clientId: screen.id }], refused as never)
    // What aedes passes when authorizeForward says no to a persistent client: the packet, no packet id.
    const { messageId: _none, ...withoutId } = refused as { messageId?: number }
    const cleared = await p.outgoingClearMessageId(screen, withoutId)
    assert.equal((cleared as { payload: Buffer } | undefined)?.payload.toString(), 'refused')
    assert.equal(await p.outgoingClearMessageId(screen, { messageId: undefined }), undefined, 'no packet id and no broker mark (a retained copy): nothing')
    const left = await drain(p.outgoingStream(screen)) as Array<{ payload: Buffer }>
    assert.deepEqual(left.map((q) => q.payload.toString()), ['ring'], 'the queued ring is still there')
    await p.destroy()
  })

  test('dropSessions forgets a removed member\'s sessions (subscriptions and queue), on disk too; other sessions stay', async () => {
    const dir = fresh()
    const a = new SqlitePersistence({ dir })
    await a.setup(broker)
    for (const id of ['viewer-v1-tab1', 'viewer-v1-x-tab2', 'viewer-v2-tab3']) {
      await a.addSubscriptions({ id }, [{ topic: 'doorbell/home/+/ring', qos: 1 }])
      await a.outgoingEnqueueCombi([{ clientId: id }], publish('doorbell/home/d/ring', id) as never)
    }
    const { sessionsOf } = await import('../src/broker/gate')
    const dropped = await a.dropSessions(sessionsOf({ kind: 'viewer', subject: 'v1' }))
    assert.deepEqual(dropped, ['viewer-v1-tab1'], 'member v1-x\'s session is not v1\'s')
    assert.deepEqual((await a.subscriptionsByTopic('doorbell/home/d/ring')).map((s) => s.clientId).sort(), ['viewer-v1-x-tab2', 'viewer-v2-tab3'])
    await a.destroy()
    const b = new SqlitePersistence({ dir })
    await b.setup(broker)
    assert.deepEqual(await drain(b.outgoingStream({ id: 'viewer-v1-tab1' })), [])
    assert.deepEqual(await b.subscriptionsByClient({ id: 'viewer-v1-tab1' }), [])
    assert.equal((await drain(b.outgoingStream({ id: 'viewer-v2-tab3' }))).length, 1)
    await b.destroy()
  })
})
