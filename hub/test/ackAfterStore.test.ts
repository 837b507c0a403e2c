import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Aedes, AedesOptions, Client } from 'aedes'
import { GuardedConnection } from '../src/broker/connectionGuard'
import mqtt from 'mqtt'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'
import { startGuardedBroker, until, type GuardedBroker } from './guardedBroker'

/**
 * The 20× SIGKILL soak's lost ring: Aedes 1 writes a QoS 1 PUBACK before it stores the message,
 * so a hub killed between the two had acknowledged a ring that was on no disk, and the doorbell,
 * told it was delivered, never sent it again. Deterministic: the persistence holds the commit of
 * the ring's queued copy (a test subclass of the real one) while the hub is "killed" (its sockets
 * cut, nothing more written); a broker started again on the same file must get the ring from the
 * doorbell, which may only have been told it was delivered once it was on disk.
 */
const root = mkdtempSync(join(tmpdir(), 'ack-after-store-'))
after(() => { rmSync(root, { recursive: true, force: true }) })

class HeldCommit extends SqlitePersistence {
  /** While set, queueing a message waits for it (the commit has not happened yet). */
  gate: Promise<void> | null = null
  override async outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: never): Promise<void> {
    if (this.gate !== null) await this.gate
    await super.outgoingEnqueueCombi(subs, packet)
  }
}

/** Holds the commit of each message whose payload is named in `gates` until its own gate opens. */
class HeldByMessage extends SqlitePersistence {
  readonly gates = new Map<string, { open: () => void, opened: Promise<void> }>()
  hold (payload: string): void {
    let open!: () => void
    const opened = new Promise<void>((resolve) => { open = resolve })
    this.gates.set(payload, { open, opened })
  }

  override async outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: never): Promise<void> {
    const gate = this.gates.get(String((packet as { payload: Buffer }).payload))
    if (gate !== undefined) await gate.opened
    await super.outgoingEnqueueCombi(subs, packet)
  }
}

/** Holds every commit while `gate` is set (a disk that stalls), or fails it while `fail` is set (a disk that errs). */
class SlowDisk extends SqlitePersistence {
  gate: Promise<void> | null = null
  fail: Error | null = null
  override async committed (): Promise<void> {
    if (this.gate !== null) await this.gate
    if (this.fail !== null) throw this.fail
    await super.committed()
  }
}

/** Aedes behind the hub's connection guard, wired as brokerModule wires it (guardedBroker.ts). */
async function startBroker (persistence: SqlitePersistence, port = 0, authorizePublish?: AedesOptions['authorizePublish']): Promise<GuardedBroker> {
  return await startGuardedBroker(persistence, { port, ...(authorizePublish !== undefined ? { options: { authorizePublish } } : {}) })
}

/** A persistent screen subscribed at QoS 1 to `filter`, and the payloads it has received, in order. */
async function screenOn (url: string, filter: string): Promise<{ screen: mqtt.MqttClient, got: string[] }> {
  const got: string[] = []
  const screen = await mqtt.connectAsync(url, { clientId: 'viewer-v1-s', clean: false, reconnectPeriod: 0 })
  screen.on('message', (_topic, payload) => { got.push(payload.toString()) })
  await screen.subscribeAsync(filter, { qos: 1 })
  return { screen, got }
}

test('a QoS 1 ring is acknowledged only once stored: a hub killed before its commit gets it again from the doorbell, and the screen has it', { timeout: 30_000 }, async () => {
  const dir = join(root, 'kill')
  const first = new HeldCommit({ dir })
  const hub = await startBroker(first)
  const url = `mqtt://127.0.0.1:${hub.port}`
  const got: string[] = []
  const screen = mqtt.connect(url, { clientId: 'viewer-v1-s', clean: false, reconnectPeriod: 100 })
  screen.on('message', (_topic, payload) => { got.push(payload.toString()) })
  await until('the screen connected', () => screen.connected)
  await screen.subscribeAsync('doorbell/home/+/ring', { qos: 1 })
  const device = mqtt.connect(url, { clientId: 'device-d', clean: false, reconnectPeriod: 100 })
  await until('the doorbell connected', () => device.connected)
  let again: SqlitePersistence | null = null
  let back: Awaited<ReturnType<typeof startBroker>> | null = null
  try {
    let release!: () => void
    first.gate = new Promise((resolve) => { release = resolve })
    let acknowledged = false
    device.publish('doorbell/home/d/ring', 'ring-1', { qos: 1 }, (err) => { if (!err) acknowledged = true })
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(acknowledged, false, 'no PUBACK while the ring is not on disk')

    // Killed before the commit; started again on the same file.
    hub.kill()
    await first.destroy()
    again = new SqlitePersistence({ dir })
    back = await startBroker(again, hub.port)
    await until('the ring on the screen, from the doorbell\'s resend to the hub started again', () => got.includes('ring-1'))
    await until('acknowledged by the hub that stored it', () => acknowledged)
    release()
  } finally {
    screen.end(true)
    device.end(true)
    await back?.close()
    await hub.close()
    await again?.destroy().catch(() => {})
  }
})

test('with nothing held, a QoS 1 message is acknowledged and delivered at once; a QoS 0 one is never held', { timeout: 20_000 }, async () => {
  const hub = await startBroker(new SqlitePersistence({ dir: join(root, 'live') }))
  const url = `mqtt://127.0.0.1:${hub.port}`
  const screen = await mqtt.connectAsync(url, { clientId: 'viewer-v1-s', clean: false, reconnectPeriod: 0 })
  const got: string[] = []
  screen.on('message', (_topic, payload) => { got.push(payload.toString()) })
  await screen.subscribeAsync('doorbell/home/+/#', { qos: 1 })
  const device = await mqtt.connectAsync(url, { clientId: 'device-d', clean: false, reconnectPeriod: 0 })
  try {
    for (let i = 0; i < 20; i++) await device.publishAsync('doorbell/home/d/ring', `ring-${i}`, { qos: 1 })
    await device.publishAsync('doorbell/home/d/inspect', 'batch', { qos: 0 })
    await until('every message on the screen', () => got.length === 21)
    assert.deepEqual(got.slice(0, 20), Array.from({ length: 20 }, (_, i) => `ring-${i}`), 'in order')
  } finally {
    await screen.endAsync()
    await device.endAsync()
    await hub.close()
  }
})

/** The guarded connection aedes holds for a client id now. */
const connOf = (aedes: Aedes, id: string): GuardedConnection => {
  const conn = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[id]?.conn
  assert.ok(conn instanceof GuardedConnection, `${id} is connected through the guard`)
  return conn
}

test('a session takeover mid-store: the old connection\'s stored ring does not release the new connection\'s PUBACK, which waits for its own ring', { timeout: 30_000 }, async () => {
  const persistence = new HeldByMessage({ dir: join(root, 'takeover') })
  const hub = await startBroker(persistence)
  const url = `mqtt://127.0.0.1:${hub.port}`
  const { screen, got } = await screenOn(url, 'doorbell/home/+/ring')
  const old = await mqtt.connectAsync(url, { clientId: 'device-d', clean: false, reconnectPeriod: 0 })
  let fresh: mqtt.MqttClient | null = null
  try {
    persistence.hold('ring-old')
    persistence.hold('ring-new')
    old.publish('doorbell/home/d/ring', 'ring-old', { qos: 1 }, () => {})
    const oldConn = await (async () => { await until('the old ring counted', () => connOf(hub.aedes, 'device-d').awaitingStore === 1); return connOf(hub.aedes, 'device-d') })()

    // The same client id again while the old connection is open: aedes closes the old one.
    fresh = await mqtt.connectAsync(url, { clientId: 'device-d', clean: false, reconnectPeriod: 0 })
    await until('the old connection closed', () => oldConn.destroyed)
    const newConn = connOf(hub.aedes, 'device-d')
    assert.notEqual(newConn, oldConn)
    let acknowledged = false
    fresh.publish('doorbell/home/d/ring', 'ring-new', { qos: 1 }, (err) => { if (!err) acknowledged = true })
    await until('the new ring counted', () => newConn.awaitingStore === 1)

    // The old connection's ring is stored (and forwarded) first.
    persistence.gates.get('ring-old')!.open()
    await until('the old ring on the screen', () => got.includes('ring-old'))
    assert.equal(newConn.awaitingStore, 1, 'the new connection still waits for its own ring')
    assert.equal(acknowledged, false, 'no PUBACK for a ring that is not on disk')

    persistence.gates.get('ring-new')!.open()
    await until('the new ring acknowledged once stored', () => acknowledged)
    await until('the new ring on the screen', () => got.includes('ring-new'))
    assert.equal(newConn.awaitingStore, 0)
  } finally {
    for (const gate of persistence.gates.values()) gate.open()
    screen.end(true)
    old.end(true)
    fresh?.end(true)
    await hub.close()
    await persistence.destroy().catch(() => {})
  }
})

test('a refused QoS 1 publish is never stored and holds nothing: the connection it closed is not left waiting, and the next QoS 1 message is acknowledged', { timeout: 30_000 }, async () => {
  const persistence = new HeldByMessage({ dir: join(root, 'refused') })
  // As the hub's gate does: a topic the client may not publish on is refused (and aedes closes the connection).
  const hub = await startBroker(persistence, 0, (_client, packet, callback) => {
    callback(packet.topic.endsWith('/forbidden') ? new Error('not yours') : null)
  })
  const url = `mqtt://127.0.0.1:${hub.port}`
  const refused: string[] = []
  hub.aedes.on('clientError', (_client, err) => { refused.push(err.message) })
  const { screen, got } = await screenOn(url, 'doorbell/home/+/#')
  const device = await mqtt.connectAsync(url, { clientId: 'device-d', clean: true, reconnectPeriod: 0 })
  let again: mqtt.MqttClient | null = null
  try {
    const first = connOf(hub.aedes, 'device-d')
    // Hold an allowed ring in the store on the same connection, so the refused one is counted while another is pending.
    persistence.hold('ring-1')
    let firstAcknowledged = false
    device.publish('doorbell/home/d/ring', 'ring-1', { qos: 1 }, (err) => { if (!err) firstAcknowledged = true })
    await until('the ring counted', () => first.awaitingStore === 1)
    device.publish('doorbell/home/d/forbidden', 'nope', { qos: 1 }, () => {})
    await until('the refusal', () => refused.includes('not yours'))
    await until('the connection closed', () => first.destroyed)
    assert.equal(first.awaitingStore, 0, 'nothing left counted on the closed connection')
    assert.equal(firstAcknowledged, false, 'a ring not stored was not acknowledged')
    persistence.gates.get('ring-1')!.open()

    again = await mqtt.connectAsync(url, { clientId: 'device-d', clean: true, reconnectPeriod: 0 })
    const second = connOf(hub.aedes, 'device-d')
    await again.publishAsync('doorbell/home/d/ring', 'ring-2', { qos: 1 })
    assert.equal(second.awaitingStore, 0, 'acknowledged once stored: nothing left held')
    await until('the allowed ring on the screen', () => got.includes('ring-2'))
    assert.ok(!got.includes('nope'), 'the refused message reached no one')
  } finally {
    for (const gate of persistence.gates.values()) gate.open()
    screen.end(true)
    device.end(true)
    again?.end(true)
    await hub.close()
    await persistence.destroy().catch(() => {})
  }
})

test('a stalled disk is not on a ring\'s way to the screens online: the screen has it at once, the doorbell\'s PUBACK waits for the commit', { timeout: 30_000 }, async () => {
  const persistence = new SlowDisk({ dir: join(root, 'slow-disk') })
  const hub = await startBroker(persistence)
  const url = `mqtt://127.0.0.1:${hub.port}`
  const { screen, got } = await screenOn(url, 'doorbell/home/+/ring')
  const device = await mqtt.connectAsync(url, { clientId: 'device-d', clean: false, reconnectPeriod: 0 })
  let release!: () => void
  persistence.gate = new Promise((resolve) => { release = resolve })
  try {
    let acknowledged = false
    device.publish('doorbell/home/d/ring', 'ring-1', { qos: 1 }, (err) => { if (!err) acknowledged = true })
    await until('the ring on the screen while its commit is held', () => got.includes('ring-1'))
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(acknowledged, false, 'no PUBACK before the commit')
    assert.equal(connOf(hub.aedes, 'device-d').awaitingStore, 1)
    release()
    await until('acknowledged once committed', () => acknowledged)
    assert.deepEqual(got, ['ring-1'], 'delivered once')
  } finally {
    release()
    screen.end(true)
    device.end(true)
    await hub.close()
    await persistence.destroy().catch(() => {})
  }
})

test('a commit that fails acknowledges nothing: the doorbell\'s connection is closed, and its resend is acknowledged once the disk works', { timeout: 30_000 }, async () => {
  const persistence = new SlowDisk({ dir: join(root, 'failing-disk') })
  const hub = await startBroker(persistence)
  const url = `mqtt://127.0.0.1:${hub.port}`
  const { screen, got } = await screenOn(url, 'doorbell/home/+/ring')
  // A doorbell as the real one is: a persistent session that reconnects and sends what was not acknowledged again.
  const device = mqtt.connect(url, { clientId: 'device-d', clean: false, reconnectPeriod: 100 })
  await until('the doorbell connected', () => device.connected)
  try {
    persistence.fail = new Error('disk I/O error')
    const first = connOf(hub.aedes, 'device-d')
    let acknowledged = false
    device.publish('doorbell/home/d/ring', 'ring-1', { qos: 1 }, (err) => { if (!err) acknowledged = true })
    await until('the doorbell\'s connection closed', () => first.destroyed)
    assert.equal(acknowledged, false, 'not acknowledged: it is on no disk')
    persistence.fail = null
    await until('the resend acknowledged on the next connection', () => acknowledged)
    assert.ok(got.includes('ring-1'), 'the screen has the ring')
    assert.equal(persistence.fail, null)
  } finally {
    screen.end(true)
    device.end(true)
    await hub.close()
    await persistence.destroy().catch(() => {})
  }
})

test('a retained QoS 1 state that no persistent session is queued for is acknowledged only once its commit is done too', { timeout: 30_000 }, async () => {
  const persistence = new SlowDisk({ dir: join(root, 'retained') })
  const hub = await startBroker(persistence)
  const url = `mqtt://127.0.0.1:${hub.port}`
  const device = await mqtt.connectAsync(url, { clientId: 'device-d', clean: false, reconnectPeriod: 0 })
  let release!: () => void
  persistence.gate = new Promise((resolve) => { release = resolve })
  try {
    let acknowledged = false
    device.publish('doorbell/home/d/state', 'unlocked', { qos: 1, retain: true }, (err) => { if (!err) acknowledged = true })
    await until('the state counted', () => connOf(hub.aedes, 'device-d').awaitingStore === 1)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(acknowledged, false, 'no PUBACK before the retained state is committed')
    release()
    await until('acknowledged once committed', () => acknowledged)
  } finally {
    release()
    device.end(true)
    await hub.close()
    await persistence.destroy().catch(() => {})
  }
})
