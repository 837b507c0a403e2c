/**
 * The hub's MQTT port under abuse, with a real hub process on loopback: strangers declaring huge
 * CONNECTs, CONNECTs that never finish, idle connections past the bound, a member's oversize
 * publish (mosquitto's own clients and raw sockets, as a person would try it). The hub's memory
 * (VmRSS of the process this test started) stays within a bound the test sets, it stays up, and a
 * real ring still reaches a screen. Then sign-in limits: a stranger failing from a member's
 * address does not stop that member or the doorbell; through a proxy's PROXY header, a stranger
 * who tries a member's own identity locks it only at the stranger's address.
 * Every loop is bounded in count and time; all traffic is on 127.0.0.1.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { RingEvent, encode, newId, topics } from '@doorbell/core'
import { kill, startHomeHub } from '../src/hubProcess'
import { connectPacket, fixedHeader, mosquittoClient, pairDeviceAndScreen, push, rssMiB, signInRaw, type Credentials } from '../src/mqttAbuse'

const DEVICE = 'front-door'
const RING = topics.ring('home', DEVICE)
const ring = (): string => encode(RingEvent, { type: 'ring', deviceId: DEVICE, deviceName: 'Front door', ringId: newId('r'), at: Date.now(), count: 1 })
const as = (c: Credentials, port: number): string[] => ['-h', '127.0.0.1', '-p', String(port), '-i', c.clientId, '-u', c.memberId, '-P', c.token]

/**
 * A ring published by the doorbell (mosquitto_pub) reaches the screen (mosquitto_sub): the screen
 * subscribes in a persistent session (-c) and leaves once acknowledged (-E), the doorbell rings,
 * and the screen, back, gets the ring queued for it.
 */
async function ringArrives (port: number, device: Credentials, screen: Credentials): Promise<void> {
  const payload = ring()
  const subscribed = await mosquittoClient('mosquitto_sub', [...as(screen, port), '-c', '-t', 'doorbell/home/+/ring', '-q', '1', '-E'], { timeoutMs: 10_000 })
  assert.equal(subscribed.code, 0, `the screen subscribed: ${subscribed.stderr}`)
  const pub = await mosquittoClient('mosquitto_pub', [...as(device, port), '-t', RING, '-q', '1', '-m', payload], { timeoutMs: 10_000 })
  assert.equal(pub.code, 0, `the doorbell publishes: ${pub.stderr}`)
  const got = await mosquittoClient('mosquitto_sub', [...as(screen, port), '-c', '-t', 'doorbell/home/+/ring', '-q', '1', '-C', '1', '-W', '10'], { timeoutMs: 15_000 })
  assert.equal(got.code, 0, `mosquitto_sub: ${got.stderr}${got.stdout}`)
  assert.equal(got.stdout.trim(), payload, 'the screen got the ring')
}

test('oversize and slow CONNECTs, idle connections and oversize publishes: the hub\'s memory stays bounded, it stays up, a ring still arrives', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-broker-abuse-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir, { mesh: { enabled: false }, mqtt: { connectTimeoutMs: 2000, maxPendingConnections: 16 } })
  t.after(async () => { await kill(home.hub, 'SIGTERM') })
  const port = Number(new URL(home.mqttUrl).port)
  const pid = home.hub.proc.pid!
  const { device, screen } = await pairDeviceAndScreen(home.base, home.asOwner, DEVICE)
  await ringArrives(port, device, screen)
  const before = rssMiB(pid)

  // Three strangers, each declaring a 200 MB CONNECT and sending 48 MiB of it: closed at the header.
  const strangers = await Promise.all([0, 1, 2].map(async () => await push(port, fixedHeader(1, 200_000_000), 48 * 1024 * 1024, 5000)))
  for (const s of strangers) assert.ok(s.closedAfterMs !== null && s.closedAfterMs < 2000, `a 200 MB CONNECT is hung up on at once: ${JSON.stringify(s)}`)
  // A stranger's PUBLISH before any CONNECT, 32 MiB: the first packet must be a CONNECT.
  const early = await push(port, fixedHeader(3, 32 * 1024 * 1024), 32 * 1024 * 1024, 5000)
  assert.ok(early.closedAfterMs !== null && early.closedAfterMs < 2000, JSON.stringify(early))
  // A CONNECT just over the 16 KiB allowed before sign-in.
  const big = await push(port, fixedHeader(1, 16 * 1024 + 1), 16 * 1024 + 1, 3000)
  assert.ok(big.closedAfterMs !== null && big.closedAfterMs < 2000, JSON.stringify(big))

  // Slow CONNECTs: a valid start, then nothing: closed by the 2 s connect timeout.
  const slow = await Promise.all([0, 1, 2, 3, 4].map(async () => {
    const s = createConnection({ host: '127.0.0.1', port })
    s.on('error', () => {})
    const start = Date.now()
    s.once('connect', () => { s.write(connectPacket('slow', 'x', 'y').subarray(0, 10)) })
    const closedAfter = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 6000)
      s.once('close', () => { clearTimeout(timer); resolve(Date.now() - start) })
    })
    s.destroy()
    return closedAfter
  }))
  for (const ms of slow) assert.ok(ms !== null && ms >= 1500 && ms < 5000, `a CONNECT that never finishes is closed after the connect timeout: ${slow.join(', ')} ms`)

  // 40 idle connections at once: past the 16 waiting to sign in, the rest are closed at once.
  const idle = await Promise.all(Array.from({ length: 40 }, async () => {
    const s = createConnection({ host: '127.0.0.1', port })
    s.on('error', () => {})
    const start = Date.now()
    const closedAfter = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 6000)
      s.once('close', () => { clearTimeout(timer); resolve(Date.now() - start) })
    })
    s.destroy()
    return closedAfter
  }))
  assert.ok(idle.every((ms) => ms !== null), 'every idle connection is closed, by the bound or the timeout')
  assert.ok(idle.filter((ms) => ms! < 1000).length >= 40 - 16, `at least 24 closed at once by the bound: ${idle.join(', ')}`)

  // The doorbell (a member) publishing 1 MiB: over the 256 KiB after sign-in, its connection is closed.
  const oversize = await mosquittoClient('mosquitto_pub', [...as(device, port), '-t', RING, '-q', '1', '-s'], { timeoutMs: 10_000, input: Buffer.alloc(1024 * 1024, 0x7b) })
  assert.notEqual(oversize.code, 0, 'mosquitto_pub sees its connection closed')
  assert.ok(home.hub.lines.some((l) => l.includes('dropped an MQTT connection') && /a packet of 10486\d\d bytes \(at most 262144 here\)/.test(l)), `the hub says why:\n${home.hub.lines.filter((l) => l.includes('dropped')).join('\n')}`)

  const after = rssMiB(pid)
  assert.equal(home.hub.proc.exitCode, null, 'the hub is up')
  assert.ok(after - before < 40, `the hub's memory stays within 40 MiB of where it was: ${before.toFixed(0)} → ${after.toFixed(0)} MiB`)
  await ringArrives(port, device, screen)
  t.diagnostic(`hub RSS ${before.toFixed(1)} → ${after.toFixed(1)} MiB; strangers closed after ${strangers.map((s) => s.closedAfterMs).join(', ')} ms; slow CONNECTs after ${slow.join(', ')} ms`)
})

test('a stranger failing sign-ins from a member\'s address does not stop the member or the doorbell; behind a proxy, a member\'s identity is locked only at the stranger\'s address', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-broker-signin-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir, { mesh: { enabled: false }, mqtt: { proxyProtocol: true } })
  t.after(async () => { await kill(home.hub, 'SIGTERM') })
  const port = Number(new URL(home.mqttUrl).port)
  const { device, screen } = await pairDeviceAndScreen(home.base, home.asOwner, DEVICE)

  // The stranger, on 127.0.0.1 like everyone behind the proxy: made-up identities, as fast as it can (bounded).
  let strangerFailures = 0
  let stop = false
  const stranger = (async () => {
    for (let i = 0; i < 400 && !stop; i++) {
      const code = await signInRaw(port, connectPacket(`viewer-x${i}-a`, `m-x${i % 7}`, `m-x${i % 7}.${'A'.repeat(43)}`))
      if (code !== 0) strangerFailures++
    }
  })()
  const results: Array<number | null> = []
  try {
    for (let i = 0; i < 8; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300))
      const pub = await mosquittoClient('mosquitto_pub', [...as(device, port), '-t', RING, '-q', '1', '-m', ring()], { timeoutMs: 10_000 })
      results.push(pub.code)
      const viewer = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: screen.clientId, username: screen.memberId, password: screen.token, reconnectPeriod: 0, connectTimeout: 5000 })
      await viewer.endAsync()
    }
  } finally {
    stop = true
    await stranger
  }
  assert.deepEqual(results, Array(8).fill(0), 'the doorbell signed in and published 8 times out of 8 (the screen too: connectAsync would have thrown)')
  assert.ok(strangerFailures >= 40, `the stranger failed ${strangerFailures} times meanwhile`)

  // Through the proxy: a stranger at 203.0.113.7 tries the screen's own member id with a wrong token.
  const proxyV1 = (address: string): Buffer => Buffer.from(`PROXY TCP4 ${address} 127.0.0.1 40000 8883\r\n`)
  const wrong = connectPacket(screen.clientId, screen.memberId, `${screen.memberId}.${'B'.repeat(43)}`)
  const codes: Array<number | 'closed'> = []
  for (let i = 0; i < 40 && codes.at(-1) !== 3; i++) codes.push(await signInRaw(port, wrong, proxyV1('203.0.113.7')))
  assert.equal(codes.at(-1), 3, `the stranger's address is told to wait: ${codes.join(',')}`)
  const right = connectPacket(screen.clientId, screen.memberId, screen.token)
  assert.equal(await signInRaw(port, right, proxyV1('203.0.113.7')), 3, 'that identity is locked at the stranger\'s address, even with the right token')
  assert.equal(await signInRaw(port, right, proxyV1('198.51.100.2')), 0, 'the member at its own address signs in')
  assert.equal(await signInRaw(port, right), 0, 'and directly on this machine')
  assert.ok(home.hub.lines.some((l) => l.includes('too many failed sign-ins for this member from this address')))
})
