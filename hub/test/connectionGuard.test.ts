import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Duplex, PassThrough } from 'node:stream'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { memoryLogger } from '@doorbell/core'
import { PacketSizeLimit, connectionGuard } from '../src/broker/connectionGuard'
import { parseProxyHeader } from '../src/broker/proxyProtocol'

/**
 * The MQTT connection guard's rules on their own: packet sizes read from each fixed header as the
 * bytes pass (MQTT 3.1.1 §2.2), the bound on connections waiting to sign in, and the PROXY header.
 * Against the real hub under abuse: tests/integration/broker-abuse.test.ts.
 */

/** A fixed header: type, then the Remaining Length as MQTT encodes it (§2.2.3). */
function header (type: number, length: number): Buffer {
  const bytes = [type << 4]
  let x = length
  do {
    let b = x % 128
    x = Math.floor(x / 128)
    if (x > 0) b |= 0x80
    bytes.push(b)
  } while (x > 0)
  return Buffer.from(bytes)
}

describe('PacketSizeLimit', () => {
  test('a CONNECT declared over the limit is refused from its header alone, before any of its body', () => {
    const limit = new PacketSizeLimit(() => 16 * 1024)
    assert.match(limit.feed(header(1, 200 * 1024 * 1024)) ?? '', /a packet of 209715200 bytes \(at most 16384 here\)/)
  })

  test('the first packet must be a CONNECT (MQTT-3.1.0-1)', () => {
    assert.equal(new PacketSizeLimit(() => 1000).feed(header(3, 10)), 'the first packet is not a CONNECT')
    assert.equal(new PacketSizeLimit(() => 1000).feed(Buffer.from('PROXY TCP4 ')), 'the first packet is not a CONNECT')
  })

  test('headers and bodies split across chunks anywhere are followed; the limit can grow after sign-in', () => {
    let max = 100
    const limit = new PacketSizeLimit(() => max)
    const stream = Buffer.concat([header(1, 60), Buffer.alloc(60), header(12, 0), header(3, 300), Buffer.alloc(300)])
    // Byte by byte up to the PUBLISH: nothing is over 100.
    const publishAt = 2 + 60 + 2
    for (let i = 0; i < publishAt; i++) assert.equal(limit.feed(stream.subarray(i, i + 1)), null, `byte ${i}`)
    max = 1000
    assert.equal(limit.feed(stream.subarray(publishAt)), null, 'the 300-byte PUBLISH fits once signed in')
    max = 100
    assert.match(limit.feed(Buffer.concat([header(3, 101), Buffer.alloc(101)])) ?? '', /a packet of 101 bytes/)
  })

  test('a Remaining Length of more than four bytes is malformed', () => {
    const limit = new PacketSizeLimit(() => 1000)
    assert.equal(limit.feed(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01])), 'malformed Remaining Length (more than four bytes)')
  })
})

describe('connectionGuard', () => {
  test('bad limits are refused with a clear error', () => {
    assert.throws(() => connectionGuard({ maxConnectBytes: 0, maxPacketBytes: 10, maxPending: 1, proxyProtocol: false }, memoryLogger()), /maxConnectBytes must be a whole number ≥ 1/)
    assert.throws(() => connectionGuard({ maxConnectBytes: 10, maxPacketBytes: 10, maxPending: 1.5, proxyProtocol: false }, memoryLogger()), /maxPending must be a whole number ≥ 1/)
  })

  test('past maxPending connections waiting to sign in, a new one is closed at once; one signing in or closing makes room', async () => {
    const log: string[] = []
    const guard = connectionGuard({ maxConnectBytes: 1024, maxPacketBytes: 4096, maxPending: 2, proxyProtocol: false }, memoryLogger(log))
    const a = guard.admit(new PassThrough(), '192.0.2.1', true)!
    const b = guard.admit(new PassThrough(), '192.0.2.2', true)!
    const third = new PassThrough()
    assert.equal(guard.admit(third, '192.0.2.3', true), null)
    assert.equal(third.destroyed, true, 'closed at once')
    assert.ok(log.some((l) => l.includes('too many waiting to sign in')))
    guard.signedIn(a)
    assert.equal(guard.pending, 1)
    b.destroy()
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(guard.pending, 0)
    assert.notEqual(guard.admit(new PassThrough(), '192.0.2.4', true), null)
  })

  test('an oversize packet closes the connection and passes none of its bytes on', async () => {
    const guard = connectionGuard({ maxConnectBytes: 64, maxPacketBytes: 4096, maxPending: 4, proxyProtocol: false }, memoryLogger())
    const inner = new PassThrough()
    const conn = guard.admit(inner, '192.0.2.1', true)!
    const passed: Buffer[] = []
    conn.on('data', (d: Buffer) => passed.push(d))
    inner.write(Buffer.concat([header(1, 65), Buffer.alloc(10)]))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(conn.destroyed, true)
    assert.deepEqual(passed, [])
  })

  test('a PROXY header from loopback gives the client\'s address and is not passed on; from elsewhere it closes the connection', async () => {
    const guard = connectionGuard({ maxConnectBytes: 64, maxPacketBytes: 4096, maxPending: 4, proxyProtocol: true }, memoryLogger())
    const inner = new PassThrough()
    const conn = guard.admit(inner, '127.0.0.1', true)!
    const passed: Buffer[] = []
    conn.on('data', (d: Buffer) => passed.push(d))
    inner.write('PROXY TCP4 203.0.113.7 127.0.0.1 5555 8883\r')
    inner.write(Buffer.concat([Buffer.from('\n'), header(1, 2), Buffer.from([0, 0])]))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(conn.remoteAddress, '203.0.113.7')
    assert.deepEqual(Buffer.concat(passed), Buffer.concat([header(1, 2), Buffer.from([0, 0])]))

    const direct = guard.admit(new PassThrough(), '127.0.0.1', true)!
    direct.on('data', () => {})
    ;(direct as unknown as { inner: PassThrough }).inner.write(Buffer.concat([header(1, 2), Buffer.from([0, 0])]))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(direct.remoteAddress, '127.0.0.1', 'a local client without the header is itself')
    assert.equal(direct.destroyed, false)

    const outsider = new PassThrough()
    const forged = guard.admit(outsider, '192.0.2.9', true)!
    outsider.write('PROXY TCP4 10.0.0.1 127.0.0.1 1 2\r\n')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(forged.destroyed, true, 'only a proxy on this machine may say where a client comes from')
    assert.equal(forged.remoteAddress, '192.0.2.9')
  })
})

describe('parseProxyHeader', () => {
  const v2 = (command: number, family: number, body: number[]): Buffer => Buffer.concat([
    Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20 | command, family, body.length >> 8, body.length & 0xff]),
    Buffer.from(body)
  ])

  test('version 1: TCP4, TCP6 and UNKNOWN; a partial line waits for more', () => {
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 5555 8883\r\nrest')), { kind: 'header', length: 43, address: '203.0.113.7' })
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 5555 8883\r\n')), { kind: 'header', length: 38, address: '2001:db8::1' })
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'header', length: 15, address: null })
    assert.deepEqual(parseProxyHeader(Buffer.from('PROX')), { kind: 'need-more' })
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7')), { kind: 'need-more' })
    assert.deepEqual(parseProxyHeader(Buffer.from([0x10, 0x02])), { kind: 'none' })
  })

  test('version 1: bad lines are refused with a reason', () => {
    assert.equal(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)).kind, 'bad')
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.300 10.0.0.1 1 2\r\n')).kind, 'bad')
    assert.equal(parseProxyHeader(Buffer.from('PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n')).kind, 'bad')
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 99999 2\r\n')).kind, 'bad')
  })

  test('version 2: PROXY over IPv4 and IPv6, LOCAL; another version or a huge body is refused', () => {
    assert.deepEqual(parseProxyHeader(v2(1, 0x11, [203, 0, 113, 7, 10, 0, 0, 1, 0x15, 0xb3, 0x22, 0xb3])), { kind: 'header', length: 28, address: '203.0.113.7' })
    const six = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1, ...Array(15).fill(0), 1, 0, 1, 0, 2]
    assert.deepEqual(parseProxyHeader(v2(1, 0x21, six)), { kind: 'header', length: 52, address: '2001:db8:0:0:0:0:0:1' })
    assert.deepEqual(parseProxyHeader(v2(0, 0x00, [])), { kind: 'header', length: 16, address: null })
    assert.deepEqual(parseProxyHeader(v2(1, 0x11, [203, 0, 113]).subarray(0, 18)), { kind: 'need-more' })
    const wrongVersion = v2(1, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2])
    wrongVersion[12] = 0x31
    assert.equal(parseProxyHeader(wrongVersion).kind, 'bad')
    const huge = v2(1, 0x11, [])
    huge.writeUInt16BE(60_000, 14)
    assert.equal(parseProxyHeader(huge).kind, 'bad')
  })
})

describe('GuardedConnection writes', () => {
  test('while a QoS 1 PUBLISH of the client is being stored, what is written to it waits (its PUBACK first), then leaves in order; QoS 0 holds nothing', async () => {
    const guard = connectionGuard({ maxConnectBytes: 64, maxPacketBytes: 4096, maxPending: 4, proxyProtocol: false }, memoryLogger())
    // The socket: what the client sends is pushed in; what is written to it is kept.
    const out: string[] = []
    const inner = new Duplex({ read () {}, write (chunk: Buffer, _e, cb) { out.push(chunk.toString()); cb() } })
    const conn = guard.admit(inner, '192.0.2.1', true)!
    conn.resume()
    const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
    inner.push(Buffer.concat([header(1, 2), Buffer.alloc(2)]))
    guard.signedIn(conn)
    // A QoS 0 PUBLISH (flags 0): nothing waits.
    inner.push(Buffer.concat([Buffer.from([0x30, 2]), Buffer.alloc(2)]))
    await tick()
    let written = 0
    conn.write(Buffer.from('a'), () => { written++ })
    await tick()
    assert.deepEqual(out, ['a'])
    // Two QoS 1 PUBLISHes (flags 0b0010) in one chunk: what is written waits for both to be stored.
    inner.push(Buffer.concat([Buffer.from([0x32, 2]), Buffer.alloc(2), Buffer.from([0x32, 2]), Buffer.alloc(2)]))
    await tick()
    conn.write(Buffer.from('puback-1'), () => { written++ })
    conn.write(Buffer.from('puback-2'), () => { written++ })
    await tick()
    assert.deepEqual(out, ['a'], 'nothing leaves before the store')
    assert.equal(written, 3, 'the writes are taken at once: no backpressure for Aedes to wait on')
    guard.stored(conn)
    await tick()
    assert.deepEqual(out, ['a'], 'one of the two is still being stored')
    guard.stored(conn)
    await tick()
    assert.equal(out.join(''), 'apuback-1puback-2')
    conn.write(Buffer.from('b'))
    await tick()
    assert.equal(out.join(''), 'apuback-1puback-2b')
    guard.stored({}) // not a guarded connection: ignored
    conn.destroy()
  })

  test('a long backlog that keeps being stored is not closed; a store that stalls for the whole timeout is', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const guard = connectionGuard({ maxConnectBytes: 64, maxPacketBytes: 4096, maxPending: 4, proxyProtocol: false }, memoryLogger())
    const inner = new Duplex({ read () {}, write (_chunk: Buffer, _e, cb) { cb() } })
    const conn = guard.admit(inner, '192.0.2.1', true)!
    conn.resume()
    const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
    inner.push(Buffer.concat([header(1, 2), Buffer.alloc(2)]))
    guard.signedIn(conn)
    // Twenty QoS 1 PUBLISHes at once (a doorbell's backlog), each stored 9 s after the one before.
    inner.push(Buffer.concat(Array.from({ length: 20 }, () => Buffer.concat([Buffer.from([0x32, 2]), Buffer.alloc(2)]))))
    await tick()
    for (let i = 0; i < 19; i++) {
      t.mock.timers.tick(9_000)
      guard.stored(conn)
      await tick()
      assert.equal(conn.destroyed, false, `still open after ${(i + 1) * 9} s of steady progress`)
    }
    // The last one never reports back: closed after the timeout.
    t.mock.timers.tick(10_001)
    await tick()
    assert.equal(conn.destroyed, true)
  })

  test('the pieces of one packet written under cork leave in one write to the socket, in order, each callback called', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
    const inner = await new Promise<Socket>((resolve) => server.once('connection', resolve))
    try {
      const guard = connectionGuard({ maxConnectBytes: 64, maxPacketBytes: 4096, maxPending: 4, proxyProtocol: false }, memoryLogger())
      const conn = guard.admit(inner, '127.0.0.1', true)!
      // Count what reaches the socket's own write paths (one per syscall on a TCP_NODELAY socket).
      let socketWrites = 0
      const s = inner as unknown as { _writev: (...a: unknown[]) => void, _write: (...a: unknown[]) => void }
      const [writev, write] = [s._writev.bind(inner), s._write.bind(inner)]
      s._writev = (...a) => { socketWrites++; writev(...a) }
      s._write = (...a) => { socketWrites++; write(...a) }
      const pieces = ['0', '\x10', 'topic', 'id', 'payload'].map((x) => Buffer.from(x))
      const received = new Promise<Buffer>((resolve) => {
        let got = Buffer.alloc(0)
        client.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); if (got.length >= 16) resolve(got) })
      })
      let called = 0
      conn.cork()
      for (const p of pieces) conn.write(p, () => { called++ })
      process.nextTick(() => conn.uncork())
      assert.equal((await received).toString(), '0\x10topicidpayload')
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(called, pieces.length)
      assert.equal(socketWrites, 1)
      // After the socket is gone, a write is an error, not a throw.
      inner.destroy()
      conn.on('error', () => {}) // aedes listens for it; the callback is what is checked here
      const err = await new Promise<Error | null | undefined>((resolve) => { conn.cork(); conn.write(Buffer.from('a')); conn.write(Buffer.from('b'), resolve); conn.uncork() })
      assert.match(String(err), /closed|destroyed/)
    } finally {
      client.destroy()
      server.close()
    }
  })
})
