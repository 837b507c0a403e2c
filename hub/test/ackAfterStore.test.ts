import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aedes, type Client } from 'aedes'
import mqtt from 'mqtt'
import { memoryLogger } from '@doorbell/core'
import { whenStored } from '../src/broker/ackAfterStore'
import { connectionGuard } from '../src/broker/connectionGuard'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'

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

/** Aedes behind the hub's connection guard, wired as brokerModule wires it. */
async function startBroker (persistence: SqlitePersistence, port = 0): Promise<{ port: number, kill: () => void, close: () => Promise<void> }> {
  const aedes = await Aedes.createBroker({ persistence: persistence as never })
  const guard = connectionGuard({ maxConnectBytes: 16 * 1024, maxPacketBytes: 256 * 1024, maxPending: 64, proxyProtocol: false }, memoryLogger())
  aedes.on('client', (client) => { guard.signedIn(client.conn) })
  whenStored(aedes, (id) => { guard.stored((aedes as unknown as { clients: Record<string, Client | undefined> }).clients[id]?.conn) })
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    const conn = guard.admit(socket, '127.0.0.1', true)
    if (conn !== null) aedes.handle(conn as never)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    // SIGKILL, as far as the clients can tell: every connection cut, nothing more written.
    kill: () => { server.close(); for (const s of sockets) s.destroy() },
    close: async () => { await new Promise<void>((resolve) => { server.close(() => resolve()); aedes.close() }) }
  }
}

const until = async (what: string, ok: () => boolean, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
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
