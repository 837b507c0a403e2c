import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { createServer, type AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { memoryLogger } from '@doorbell/core'
import { whenStored } from '../src/broker/ackAfterStore'
import { connectionGuard, GuardedConnection } from '../src/broker/connectionGuard'
import { deliveryBytes, encodePublish, shareEncodings } from '../src/broker/sharedPublish'

/**
 * One encoding of a PUBLISH for all its deliveries (sharedPublish.ts): the bytes must be exactly
 * mqtt-packet's, delivery by delivery, and everything the fast path does not cover must still go
 * to mqtt-packet. Through real aedes and mqtt.js at the end.
 */

const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as {
  generate: (packet: unknown) => Buffer
  writeToStream: (packet: unknown, stream: Writable, opts?: unknown) => boolean
  parser: () => { on: (e: 'packet', f: (p: { cmd: string, messageId?: number, payload?: Buffer }) => void) => void, parse: (b: Buffer) => number }
}

interface Pub { cmd: 'publish', topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, dup: boolean, messageId?: number }

/** A stream that keeps what is written to it. */
class Sink extends Writable {
  chunks: Buffer[] = []
  override _write (chunk: Buffer, _e: BufferEncoding, cb: () => void): void { this.chunks.push(Buffer.from(chunk)); cb() }
  bytes (): Buffer { return Buffer.concat(this.chunks) }
}

describe('sharedPublish: the bytes', () => {
  const topics = ['a', 'doorbell/home/front-door/ring', 'doorbell/hôme/☃/ring', 'x'.repeat(300)]
  // Payload sizes around each Remaining Length boundary (1, 2 and 3 bytes of length).
  const sizes = [0, 1, 120, 127, 128, 16_380, 16_384, 70_000]
  const ids = [1, 255, 256, 0xa55a, 65535]

  test('every delivery is byte for byte what mqtt-packet writes, for each topic, size, QoS, flag and packet id', () => {
    let checked = 0
    for (const topic of topics) {
      for (const size of sizes) {
        const payload = Buffer.alloc(size, size % 251)
        for (const qos of [0, 1, 2] as const) {
          for (const retain of [false, true]) {
            for (const dup of [false, true]) {
              const base: Pub = { cmd: 'publish', topic, payload, qos, retain, dup }
              const e = encodePublish(mqttPacket.generate, base)
              assert.ok(e !== null, `${topic} ${size} ${qos}`)
              for (const messageId of qos === 0 ? [undefined] : ids) {
                const packet = { ...base, ...(messageId === undefined ? {} : { messageId }) }
                assert.deepEqual(deliveryBytes(e, packet), mqttPacket.generate(packet))
                checked++
              }
            }
          }
        }
      }
    }
    assert.ok(checked > 1000)
  })

  test('QoS 0 shares one Buffer; QoS 1 gives each delivery its own copy and leaves the shared one as it was', () => {
    const payload = Buffer.from('{"type":"ring"}')
    const q0 = encodePublish(mqttPacket.generate, { cmd: 'publish', topic: 't', payload, qos: 0, retain: false, dup: false })!
    const p0 = { cmd: 'publish' as const, topic: 't', payload, qos: 0 as const, retain: false, dup: false }
    assert.equal(deliveryBytes(q0, p0), deliveryBytes(q0, p0))
    const q1 = encodePublish(mqttPacket.generate, { cmd: 'publish', topic: 't', payload, qos: 1, retain: false, dup: false })!
    const shared = Buffer.from(q1.bytes)
    const a = deliveryBytes(q1, { ...p0, qos: 1, messageId: 7 })!
    const b = deliveryBytes(q1, { ...p0, qos: 1, messageId: 8 })!
    assert.notEqual(a, b)
    assert.equal(a.readUInt16BE(q1.idAt), 7)
    assert.equal(b.readUInt16BE(q1.idAt), 8)
    assert.deepEqual(q1.bytes, shared)
  })

  test('a delivery that does not match what was encoded, or has no valid packet id, is not patched (null)', () => {
    const payload = Buffer.from('x')
    const base: Pub = { cmd: 'publish', topic: 't', payload, qos: 1, retain: false, dup: false, messageId: 1 }
    const e = encodePublish(mqttPacket.generate, base)!
    assert.equal(deliveryBytes(e, { ...base, topic: 'u' }), null)
    assert.equal(deliveryBytes(e, { ...base, qos: 2 }), null)
    assert.equal(deliveryBytes(e, { ...base, retain: true }), null)
    assert.equal(deliveryBytes(e, { ...base, dup: true }), null)
    for (const messageId of [undefined, 0, 65536, 1.5, -1]) assert.equal(deliveryBytes(e, { ...base, messageId }), null, String(messageId))
    assert.equal(encodePublish(mqttPacket.generate, { ...base, qos: 3 as never }), null)
  })
})

describe('sharedPublish: in front of mqtt-packet', () => {
  test('only streams it applies to take the fast path; other packets and other streams get mqtt-packet\'s own bytes; taking it out restores the original', async () => {
    // mqtt-packet writes under cork and uncorks on the next tick.
    const flushed = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
    const original = mqttPacket.writeToStream
    const mine = new Sink()
    const other = new Sink()
    const unshare = shareEncodings((s) => s === mine)
    try {
      assert.notEqual(mqttPacket.writeToStream, original)
      const payload = Buffer.from('hello')
      const publish = { cmd: 'publish', topic: 'a/b', payload, qos: 1, retain: false, dup: false, messageId: 42 }
      // Not covered: a string payload, MQTT 5 properties, protocol options, other packets.
      const others: Array<[unknown, unknown?]> = [
        [{ ...publish, payload: 'a string' }],
        [{ ...publish, properties: { contentType: 'x' } }, { protocolVersion: 5 }],
        [publish, { protocolVersion: 5 }],
        [{ cmd: 'puback', messageId: 9 }],
        [{ cmd: 'pingresp' }]
      ]
      for (const [packet, opts] of [[publish] as [unknown], ...others]) {
        for (const s of [mine, other]) {
          s.chunks = []
          assert.equal(mqttPacket.writeToStream(packet, s, opts), true)
        }
        await flushed()
        assert.deepEqual(mine.bytes(), other.bytes())
      }
      // The fast path writes a PUBLISH in one piece; mqtt-packet in several.
      mine.chunks = []
      other.chunks = []
      mqttPacket.writeToStream(publish, mine)
      mqttPacket.writeToStream(publish, other)
      await flushed()
      assert.equal(mine.chunks.length, 1)
      assert.ok(other.chunks.length > 1)
      assert.deepEqual(mine.bytes(), mqttPacket.generate(publish))
      // The same payload sent again under another topic is encoded again, not patched.
      mine.chunks = []
      mqttPacket.writeToStream({ ...publish, topic: 'c' }, mine)
      await flushed()
      assert.deepEqual(mine.bytes(), mqttPacket.generate({ ...publish, topic: 'c' }))
      // Two installs (two hubs in one process): the original returns when both are out.
      const unshareToo = shareEncodings((s) => s === other)
      unshare()
      assert.notEqual(mqttPacket.writeToStream, original)
      unshareToo()
    } finally {
      unshare()
    }
    assert.equal(mqttPacket.writeToStream, original)
  })

  test('through real aedes and the guard: 20 subscribers at QoS 1 and QoS 0 each get every message intact, each QoS 1 delivery under its own packet id', async () => {
    const unshare = shareEncodings((s) => s instanceof GuardedConnection)
    const broker = await Aedes.createBroker()
    const guard = connectionGuard({ maxConnectBytes: 16_384, maxPacketBytes: 262_144, maxPending: 64, proxyProtocol: false }, memoryLogger())
    broker.on('client', (c) => { guard.signedIn(c.conn) })
    // As the broker module wires it: a publisher's PUBACK waits for the store (ackAfterStore.ts).
    whenStored(broker, (conn) => { guard.stored(conn) })
    const server = createServer((socket) => {
      const g = guard.admit(socket, '127.0.0.1', true)
      if (g !== null) broker.handle(g as never)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
    const clients: mqtt.MqttClient[] = []
    try {
      const messages = Array.from({ length: 10 }, (_, i) => Buffer.from(JSON.stringify({ i, pad: 'p'.repeat(i * 40) })))
      const got = new Map<number, Buffer[]>()
      const ids = new Map<number, Set<number>>()
      for (let k = 0; k < 20; k++) {
        const c = await mqtt.connectAsync(url, { clientId: `s${k}`, reconnectPeriod: 0 })
        clients.push(c)
        got.set(k, [])
        ids.set(k, new Set())
        c.on('message', (_t, payload, packet) => {
          got.get(k)!.push(Buffer.from(payload))
          if (packet.messageId !== undefined) ids.get(k)!.add(packet.messageId)
        })
        await c.subscribeAsync('d/+/ring', { qos: k % 2 === 0 ? 1 : 0 })
      }
      const pub = await mqtt.connectAsync(url, { clientId: 'pub', reconnectPeriod: 0 })
      clients.push(pub)
      for (const m of messages) await pub.publishAsync('d/front/ring', m, { qos: 1 })
      const deadline = Date.now() + 10_000
      while ([...got.values()].some((g) => g.length < messages.length) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      for (const [k, g] of got) {
        assert.deepEqual(g, messages, `subscriber ${k}`)
        assert.equal(ids.get(k)!.size, k % 2 === 0 ? messages.length : 0, `subscriber ${k}'s packet ids`)
      }
    } finally {
      await Promise.all(clients.map(async (c) => await c.endAsync()))
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
      unshare()
    }
  })
})
