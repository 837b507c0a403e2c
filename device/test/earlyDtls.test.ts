import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Event, type RTCDtlsTransport } from 'werift'
import { MAX_EARLY_RECORDS, isDtlsRecord, keepEarlyDtls, wasHandedOver } from '../src/peer/earlyDtls'
import { clientHello } from '../src/peer/setupTiming'
import { asDtlsServer } from '../src/peer/session'
import { createPeerConnection, withoutDefaultStun } from '../src/peer/werift'

/**
 * A viewer's ClientHello that arrives before werift's DTLS server listens is kept and handed to
 * the server when it starts (peer/earlyDtls.ts), instead of being dropped until the viewer resends.
 */

/** A DTLS 1.2 ClientHello record as a browser sends it (RFC 6347 4.2.1), with or without a cookie. */
function hello (cookie: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.concat([Buffer.from([0xfe, 0xfd]), Buffer.alloc(32, 7), Buffer.from([0]), Buffer.from([cookie.length]), cookie, Buffer.from([0, 2, 0xc0, 0x2b, 1, 0])])
  const handshake = Buffer.alloc(12)
  handshake[0] = 1
  handshake.writeUIntBE(body.length, 1, 3)
  handshake.writeUIntBE(body.length, 9, 3)
  const header = Buffer.from([22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  header.writeUInt16BE(handshake.length + body.length, 11)
  return Buffer.concat([header, handshake, body])
}
const STUN = Buffer.concat([Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]), Buffer.alloc(12)])

/** werift's two parts as keepEarlyDtls sees them, driven by the test in werift's order. */
function fakePeer () {
  const ice = { onData: new Event<[Buffer]>() }
  const dtls = { state: 'new' as RTCDtlsTransport['state'], role: 'auto' as RTCDtlsTransport['role'], onStateChange: new Event<[RTCDtlsTransport['state']]>() }
  /** What werift's start() does: the role, 'connecting', and the server listening in the same turn. */
  const start = (role: 'server' | 'client'): Buffer[] => {
    const heard: Buffer[] = []
    dtls.role = role
    dtls.state = 'connecting'
    dtls.onStateChange.execute('connecting')
    ice.onData.subscribe((b) => { if (isDtlsRecord(b)) heard.push(b) })
    return heard
  }
  return { ice, dtls, start }
}

test('a ClientHello record is told apart, with its cookie or without', () => {
  assert.deepEqual(clientHello(hello()), { cookie: false })
  assert.deepEqual(clientHello(hello(Buffer.alloc(32, 1))), { cookie: true })
  assert.equal(clientHello(STUN), null)
  assert.equal(clientHello(hello().subarray(0, 40)), null, 'too short to be one')
  const other = hello()
  other[13] = 11 // a Certificate, not a hello
  assert.equal(clientHello(other), null)
  assert.equal(isDtlsRecord(hello()), true)
  assert.equal(isDtlsRecord(STUN), false)
  assert.equal(isDtlsRecord(Buffer.from([0x80, 0x60, ...Buffer.alloc(20)])), false, 'RTP is not DTLS')
})

test('a hello that came before the server listened reaches it once, just after it starts; nothing else is kept', async () => {
  const p = fakePeer()
  keepEarlyDtls(p)
  const early = hello()
  p.ice.onData.execute(STUN)
  p.ice.onData.execute(early)
  const heard = p.start('server')
  assert.deepEqual(heard, [], 'not before the server exists')
  await Promise.resolve()
  assert.equal(heard.length, 1)
  assert.deepEqual(heard[0], early)
  assert.equal(wasHandedOver(heard[0]!), true, 'marked, so the set-up log does not count it as a resend')
  // Later records go to the server as they come, once each.
  const later = hello(Buffer.alloc(32, 2))
  p.ice.onData.execute(later)
  await Promise.resolve()
  assert.deepEqual(heard, [early, later])
  assert.equal(wasHandedOver(later), false)
})

test('nothing is handed over to a DTLS client, nor when nothing came early, and at most a flight is kept', async () => {
  const client = fakePeer()
  keepEarlyDtls(client)
  client.ice.onData.execute(hello())
  const heardByClient = client.start('client')
  await Promise.resolve()
  assert.deepEqual(heardByClient, [])

  const quiet = fakePeer()
  keepEarlyDtls(quiet)
  const heardQuiet = quiet.start('server')
  await Promise.resolve()
  assert.deepEqual(heardQuiet, [])

  const flood = fakePeer()
  keepEarlyDtls(flood)
  for (let i = 0; i < MAX_EARLY_RECORDS + 5; i++) flood.ice.onData.execute(hello())
  const heardFlood = flood.start('server')
  await Promise.resolve()
  assert.equal(heardFlood.length, MAX_EARLY_RECORDS)

  const closed = fakePeer()
  const stop = keepEarlyDtls(closed)
  closed.ice.onData.execute(hello())
  stop()
  const heardClosed = closed.start('server')
  await Promise.resolve()
  assert.deepEqual(heardClosed, [], 'a session closed before DTLS started hands nothing over')
})

test('werift makes its DTLS server in the same turn as it says "connecting" (what the hand-over relies on)', async () => {
  const viewer = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
  const doorbell = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
  try {
    viewer.createDataChannel('control')
    const offer = await viewer.createOffer()
    withoutDefaultStun(viewer, [])
    await viewer.setLocalDescription(offer)
    await doorbell.setRemoteDescription(viewer.localDescription!)
    withoutDefaultStun(doorbell, [])
    const dtls = doorbell.dtlsTransports[0]!
    const seen = new Promise<{ role: string, listening: boolean }>((resolve) => {
      dtls.onStateChange.subscribe((s) => {
        if (s === 'connecting') queueMicrotask(() => { resolve({ role: dtls.role, listening: (dtls as unknown as { dtls?: unknown }).dtls !== undefined }) })
      })
    })
    await doorbell.setLocalDescription(asDtlsServer(await doorbell.createAnswer()))
    await viewer.setRemoteDescription(doorbell.localDescription!)
    assert.deepEqual(await seen, { role: 'server', listening: true })
  } finally {
    await viewer.close()
    await doorbell.close()
  }
})
