import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { Aedes } from 'aedes'
import { memoryLogger } from '@doorbell/core'
import { connectionGuard } from '../src/broker/connectionGuard'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'
import { handPubacks, wholePubacks } from '../src/broker/pubacks'

/**
 * A screen's PUBACKs handed to aedes as packets (pubacks.ts): only chunks of whole PUBACKs, only
 * when nothing is in between; everything else goes through the stream and mqtt-packet's parser as
 * before. Against real aedes, the real persistence and the real guard, with a raw socket so that
 * the test decides how the bytes are cut.
 */
const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as {
  generate: (p: object) => Buffer
  parser: () => { on: (e: 'packet', f: (p: { cmd: string, messageId?: number, payload?: Buffer }) => void) => void, parse: (b: Buffer) => number }
}
const root = mkdtempSync(join(tmpdir(), 'pubacks-'))
after(() => { rmSync(root, { recursive: true, force: true }) })

const puback = (id: number): Buffer => Buffer.from([0x40, 0x02, id >> 8, id & 0xff])

describe('wholePubacks', () => {
  test('one or more whole 3.1.1 PUBACKs give their packet ids', () => {
    assert.deepEqual(wholePubacks(puback(1)), [1])
    assert.deepEqual(wholePubacks(Buffer.concat([puback(0x1234), puback(65535), puback(7)])), [0x1234, 65535, 7])
  })

  test('anything else is left to the parser: a part, another packet beside, other flags or length, nothing', () => {
    assert.equal(wholePubacks(puback(1).subarray(0, 2)), null)
    assert.equal(wholePubacks(Buffer.concat([puback(1), puback(2).subarray(0, 3)])), null)
    assert.equal(wholePubacks(Buffer.concat([puback(1), Buffer.from([0xc0, 0x00, 0xc0, 0x00])])), null, 'PINGREQs after it')
    assert.equal(wholePubacks(Buffer.from([0x42, 0x02, 0x00, 0x01])), null, 'flags set (MQTT-2.2.2-2)')
    assert.equal(wholePubacks(Buffer.from([0x50, 0x02, 0x00, 0x01])), null, 'a PUBREC')
    assert.equal(wholePubacks(Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00])), null, 'MQTT 5 style, with a reason code')
    assert.equal(wholePubacks(Buffer.alloc(0)), null)
  })

  test('a client aedes is not idle for takes nothing', () => {
    const parser = { packet: { length: -1 }, _list: { length: 0 }, _stateCounter: 0, error: null, emitted: 0, emit () { this.emitted++; return true }, listenerCount () { return 1 } }
    const idle = { connackSent: true, closed: false, _parsingBatch: 0, _parser: parser }
    assert.equal(handPubacks({ ...idle, connackSent: false }, [1]), false, 'not signed in')
    assert.equal(handPubacks({ ...idle, closed: true }, [1]), false, 'closing')
    assert.equal(handPubacks({ ...idle, _paused: true }, [1]), false, 'paused')
    assert.equal(handPubacks({ ...idle, _parsingBatch: 1 }, [1]), false, 'handling a packet')
    assert.equal(handPubacks({ ...idle, _parser: { ...parser, packet: { length: 10 } } }, [1]), false, 'a packet half parsed')
    assert.equal(handPubacks({ ...idle, _parser: { ...parser, _list: { length: 2 } } }, [1]), false, 'bytes held')
    assert.equal(handPubacks({ ...idle, _parser: { ...parser, _stateCounter: 1 } }, [1]), false, 'a header byte read, its length not yet')
    assert.equal(handPubacks({ ...idle, _parser: { ...parser, listenerCount: () => 0 } }, [1]), false, 'nobody takes the parser\'s packets (an aedes that reads them otherwise)')
    assert.equal(handPubacks(null, [1]), false)
    assert.equal(parser.emitted, 0)
    assert.equal(handPubacks(idle, [1, 2]), true)
    assert.equal(parser.emitted, 2)
  })
})

describe('PUBACKs through the guard into aedes', () => {
  test('a persistent screen\'s queue is cleared by its PUBACKs however they are cut; whole ones skip the stream; a malformed one clears nothing and closes', async () => {
    const persistence = new SqlitePersistence({ dir: join(root, 'a') })
    const aedes = await Aedes.createBroker({ persistence: persistence as never })
    let taken = 0
    const guard = connectionGuard({ maxConnectBytes: 16 * 1024, maxPacketBytes: 256 * 1024, maxPending: 8, proxyProtocol: false }, memoryLogger(), (conn, ids) => {
      const took = handPubacks((conn as { client?: unknown }).client, ids)
      if (took) taken += ids.length
      return took
    })
    aedes.on('client', (client) => { guard.signedIn(client.conn) })
    const acked: number[] = []
    aedes.on('ack', (packet) => { if (packet !== undefined && packet !== null) acked.push((packet as { messageId: number }).messageId) })
    const server = createServer((s) => { const g = guard.admit(s, '127.0.0.1', true); if (g !== null) aedes.handle(g as never) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const sockets: Socket[] = []
    try {
      const open = async (): Promise<{ socket: Socket, got: Array<{ cmd: string, messageId?: number, payload?: Buffer }>, closed: Promise<void> }> => {
        const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
        socket.setNoDelay(true)
        sockets.push(socket)
        const got: Array<{ cmd: string, messageId?: number, payload?: Buffer }> = []
        const parser = mqttPacket.parser()
        parser.on('packet', (p) => got.push(p))
        socket.on('data', (b: Buffer) => { parser.parse(b) })
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
        socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'viewer-a-s1', keepalive: 60 }))
        socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'doorbell/home/+/ring', qos: 1 }] }))
        await until(() => got.some((p) => p.cmd === 'suback'))
        return { socket, got, closed }
      }
      const a = await open()
      for (let i = 0; i < 6; i++) {
        await new Promise<void>((resolve, reject) => { aedes.publish({ cmd: 'publish', topic: 'doorbell/home/d/ring', payload: Buffer.from(`ring ${i}`), qos: 1, retain: false, dup: false } as never, (err) => { if (err) reject(err); else resolve() }) })
      }
      await until(() => a.got.filter((p) => p.cmd === 'publish').length === 6)
      const ids = a.got.filter((p) => p.cmd === 'publish').map((p) => p.messageId!)
      const queued = async (): Promise<number> => { let k = 0; for await (const _ of persistence.outgoingStream({ id: 'viewer-a-s1' })) k++; return k }
      assert.equal(await queued(), 6)

      // One alone, then two in one chunk: taken as packets.
      a.socket.write(puback(ids[0]!))
      await until(() => acked.length === 1)
      a.socket.write(Buffer.concat([puback(ids[1]!), puback(ids[2]!)]))
      await until(() => acked.length === 3)
      assert.equal(taken, 3)
      // Split across two writes, then one with a PINGREQ behind it: through the stream, as before.
      a.socket.write(puback(ids[3]!).subarray(0, 2))
      await new Promise((resolve) => setTimeout(resolve, 30))
      a.socket.write(puback(ids[3]!).subarray(2))
      await until(() => acked.length === 4)
      a.socket.write(Buffer.concat([puback(ids[4]!), Buffer.from([0xc0, 0x00])]))
      await until(() => acked.length === 5 && a.got.some((p) => p.cmd === 'pingresp'))
      assert.equal(taken, 3, 'only whole PUBACKs alone skip the stream')
      assert.deepEqual(acked, ids.slice(0, 5))
      assert.equal(await queued(), 1, 'the one not acknowledged is still queued')

      // A PUBACK with its flags set is malformed (MQTT-2.2.2-2): the parser refuses it, the connection closes, nothing is cleared.
      a.socket.write(Buffer.from([0x42, 0x02, ids[5]! >> 8, ids[5]! & 0xff]))
      await a.closed
      assert.equal(taken, 3)
      assert.equal(acked.length, 5)
      assert.equal(await queued(), 1)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => resolve()); aedes.close() })
      await persistence.destroy()
    }
  })
})

async function until (ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
