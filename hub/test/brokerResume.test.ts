import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'
import { until } from './guardedBroker'

/**
 * A persistent session resumed while messages for it keep coming (the 20× SIGKILL soak's lost
 * ring): aedes subscribes the returning client again *before* it streams the stored queue, so a
 * message queued in between goes out twice, live and from the stream. Whichever comes second used
 * to find the entry already acknowledged and gone: `no such packet`, and aedes closed the
 * screen's connection in the middle of its queue. Deterministic: the stream is held (a test
 * subclass of the real persistence) until the screen has acknowledged the live copy.
 */
const root = mkdtempSync(join(tmpdir(), 'broker-resume-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
let n = 0

/** The real persistence; the next queue stream is taken after `hook.queued` and read after `hook.read`. */
class HeldStream extends SqlitePersistence {
  hook: { queued: (client: { id: string }) => Promise<void>, read: () => Promise<void> } | null = null
  override outgoingStream (client: { id: string }): Readable {
    const hook = this.hook
    if (hook === null) return super.outgoingStream(client)
    this.hook = null
    const take = (): Readable => super.outgoingStream(client)
    return Readable.from((async function * () {
      await hook.queued(client)
      const stream = take()
      await hook.read()
      yield * stream
    })())
  }
}

async function startBroker (persistence: SqlitePersistence): Promise<{ aedes: Aedes, port: number, errors: string[], close: () => Promise<void> }> {
  const aedes = await Aedes.createBroker({ persistence: persistence as never })
  const errors: string[] = []
  aedes.on('clientError', (client, err) => { errors.push(`${client.id}: ${err.message}`) })
  const server = createServer((s) => aedes.handle(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    aedes,
    port: (server.address() as AddressInfo).port,
    errors,
    close: async () => { await new Promise<void>((resolve) => { server.close(() => resolve()); aedes.close() }) }
  }
}

const publish = async (aedes: Aedes, payload: string): Promise<number> => await new Promise((resolve, reject) => {
  const counter = (aedes as unknown as { counter: number }).counter + 1
  aedes.publish({ cmd: 'publish', topic: 'doorbell/home/d/ring', payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (err) => { if (err) reject(err); else resolve(counter) })
})

describe('a persistent session resumed while messages for it arrive', () => {
  test('a message queued while the screen resumes goes out once; the queue is delivered whole and the connection stays', { timeout: 20_000 }, async () => {
    const persistence = new HeldStream({ dir: join(root, String(n++)) })
    const broker = await startBroker(persistence)
    try {
      const opts = { clientId: 'viewer-v1-s', clean: false, reconnectPeriod: 0, connectTimeout: 5000 }
      const first = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, opts)
      await first.subscribeAsync('doorbell/home/+/ring', { qos: 1 })
      await first.endAsync()
      for (let i = 1; i <= 5; i++) await publish(broker.aedes, `queued-${i}`)

      // While the screen resumes: one more ring, queued and sent live; the stream is read only
      // after the screen has acknowledged that live copy.
      let acked = false
      persistence.hook = {
        queued: async (client) => {
          const counter = await publish(broker.aedes, 'during-resume')
          broker.aedes.on('ack', (packet, c) => { if (c.id === client.id && (packet as { brokerCounter?: number } | undefined)?.brokerCounter === counter) acked = true })
        },
        read: async () => { await until('the live copy acknowledged', () => acked, 5000) }
      }
      const got: string[] = []
      const back = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, opts)
      let closed = false
      back.on('close', () => { closed = true })
      back.on('message', (_topic, payload) => { got.push(payload.toString()) })
      await until('every ring on the screen', () => ['queued-1', 'queued-2', 'queued-3', 'queued-4', 'queued-5', 'during-resume'].every((p) => got.includes(p)), 5000)
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.deepEqual(broker.errors, [], 'the broker found every entry it went to send')
      assert.equal(closed, false, 'the screen\'s connection stayed up')
      assert.deepEqual(got.filter((p) => p === 'during-resume'), ['during-resume'], 'sent once: the stream skips what the screen has acknowledged')
      assert.deepEqual(await drain(persistence.outgoingStream({ id: 'viewer-v1-s' })), [], 'nothing left queued')
      await back.endAsync()
    } finally {
      await broker.close()
    }
  })

  test('a live message whose entry the queue\'s copy already delivered is sent again (QoS 1 allows it), never a broken connection', async () => {
    const p = new SqlitePersistence({ dir: join(root, String(n++)) })
    await p.setup({ id: 'broker-1' })
    const screen = { id: 'viewer-v1-s' }
    const ring = { cmd: 'publish', topic: 'doorbell/home/d/ring', payload: Buffer.from('r'), qos: 1, retain: false, dup: false, brokerId: 'broker-1', brokerCounter: 7 }
    await p.outgoingEnqueueCombi([{ clientId: screen.id }], ring as never)
    await p.outgoingUpdate(screen, { ...ring, messageId: 11 } as never) // from the stream
    await p.outgoingClearMessageId(screen, { messageId: 11 }) // acknowledged
    await p.outgoingUpdate(screen, { ...ring, messageId: 12 } as never) // the live copy: no entry left, and no error
    assert.deepEqual(await drain(p.outgoingStream(screen)), [], 'nothing is queued again for it')
    // A PUBREL (QoS 2) for a packet id the session does not have is still refused.
    await assert.rejects(p.outgoingUpdate(screen, { cmd: 'pubrel', messageId: 99 } as never), /no such packet/)
    await p.destroy()
  })
})

async function drain<T> (s: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of s) out.push(x)
  return out
}
