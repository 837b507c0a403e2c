import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import { memoryLogger, type DeviceState, type RingEvent } from '@doorbell/core'
import { IotLink } from '../src/paths/cloud/iotLink'
import { makePki, mosquitto, until, type Mosquitto, type TestPki } from './cloudFixtures'

/** IotLink against a real mosquitto with mutual TLS standing in for AWS IoT Core. */

const THING = 'doorbell-thing-1'
const DEVICE = 'frontdoor'

interface Got { topic: string, payload: any, retain: boolean }

function ring (n: number): RingEvent {
  return { type: 'ring', deviceId: DEVICE, deviceName: 'Front door', ringId: `r${n}`, at: Date.now(), count: 1 }
}

function state (status: 'idle' | 'ringing'): DeviceState {
  return {
    deviceId: DEVICE,
    deviceName: 'Front door',
    call: { status, ringId: null, since: 0 },
    participants: [],
    lock: { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null },
    lastRing: null,
    at: Date.now()
  }
}

describe('IotLink (mosquitto with mTLS as IoT Core)', () => {
  let pki: TestPki
  let broker: Mosquitto
  const links: IotLink[] = []
  const watchers: MqttClient[] = []

  before(async () => {
    pki = makePki()
    broker = await mosquitto(pki)
  })
  after(async () => {
    for (const l of links) await l.stop()
    for (const w of watchers) await w.endAsync(true)
    await broker.stop()
    pki.cleanup()
  })

  const link = (lines: string[] = [], thing = THING): IotLink => {
    const c = pki.client(thing)
    const l = new IotLink({
      iotEndpoint: `127.0.0.1:${broker.port}`,
      thingName: thing,
      certFile: c.certFile,
      keyFile: c.keyFile,
      caFile: pki.caFile,
      deviceId: DEVICE,
      log: memoryLogger(lines, 'iot'),
      minReconnectMs: 200,
      maxReconnectMs: 800
    })
    links.push(l)
    return l
  }

  /** A viewer-like subscriber with its own certificate; a persistent session unless told otherwise. */
  const watch = async (clientId: string, thing = THING, clean = false): Promise<{ client: MqttClient, got: Got[] }> => {
    const c = pki.client('watcher')
    const got: Got[] = []
    const client = mqtt.connect(`mqtts://127.0.0.1:${broker.port}`, {
      clientId, clean, cert: c.cert, key: c.key, ca: pki.ca, reconnectPeriod: 100, connectTimeout: 3000
    })
    watchers.push(client)
    client.on('message', (topic, payload, packet) => { got.push({ topic, payload: JSON.parse(payload.toString()), retain: packet.retain }) })
    client.on('error', () => {})
    await new Promise<void>((resolve) => client.once('connect', () => resolve()))
    await client.subscribeAsync(`things/${thing}/#`, { qos: 1 })
    return { client, got }
  }

  const up = async (l: IotLink): Promise<void> => {
    if (l.connected) return
    await new Promise<void>((resolve) => { const off = l.on('up', () => { off(); resolve() }) })
  }

  test('connects with the thing certificate, says online (retained), publishes ring (not retained) and state (retained)', async () => {
    const { got } = await watch('w-basic', THING, true)
    const l = link()
    const ups: number[] = []
    l.on('up', () => ups.push(Date.now()))
    await l.start()
    await up(l)
    assert.equal(l.connected, true)
    assert.equal(l.url, `mqtts://127.0.0.1:${broker.port}`)
    l.publishState(state('ringing'))
    l.publishRing(ring(1))
    l.publishCall({ deviceId: DEVICE, ringId: 'r1', startedAt: 1, endedAt: 2, outcome: 'missed', answeredBy: [], unlocks: [] })
    const calls = await until('the call record', () => got.find((g) => g.topic.endsWith('/calls')))
    assert.equal(calls.payload.outcome, 'missed')
    const presence = got.find((g) => g.topic === `things/${THING}/presence`)
    assert.equal(presence?.payload.online, true)
    assert.equal(presence?.payload.deviceId, DEVICE)
    assert.equal(got.find((g) => g.topic.endsWith('/ring'))?.payload.ringId, 'r1')
    assert.equal(got.find((g) => g.topic.endsWith('/state'))?.payload.call.status, 'ringing')
    assert.equal(ups.length, 1)
  })

  test('a late subscriber sees the retained state and presence, not the ring', async () => {
    const l = link([], 'doorbell-thing-late')
    await l.start()
    await up(l)
    l.publishRing(ring(2))
    l.publishState(state('idle'))
    // A QoS 1 round trip of our own makes sure the broker has both before the late subscriber comes.
    const { got } = await watch('w-late', 'doorbell-thing-late', true)
    const st = await until('the retained state', () => got.find((g) => g.topic.endsWith('/state')))
    assert.equal(st.retain, true)
    assert.equal(st.payload.call.status, 'idle')
    assert.equal(got.find((g) => g.topic.endsWith('/presence'))?.payload.online, true)
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(got.filter((g) => g.topic.endsWith('/ring')).length, 0)
  })

  test('a ring raised while IoT Core is unreachable arrives once it is back (same port), with the state again', async () => {
    const { got } = await watch('w-offline')
    const lines: string[] = []
    const l = link(lines, 'doorbell-thing-offline')
    await watchers.at(-1)!.subscribeAsync('things/doorbell-thing-offline/#', { qos: 1 })
    await l.start()
    await up(l)
    l.publishState(state('idle'))
    await until('the first state', () => got.find((g) => g.topic.endsWith('/state')))

    const downs: number[] = []
    l.on('down', () => downs.push(Date.now()))
    await broker.stop()
    await until('the link to go down', () => (l.connected ? undefined : true))
    l.publishRing(ring(3))
    l.publishState(state('ringing'))
    // Let it fail to reconnect a few times (backoff) before IoT Core comes back.
    await new Promise((r) => setTimeout(r, 1200))
    assert.equal(got.filter((g) => g.topic.endsWith('/ring')).length, 0)
    await broker.start()

    const r = await until('the queued ring', () => got.find((g) => g.topic.endsWith('/ring')), 10_000)
    assert.equal(r.payload.ringId, 'r3')
    await until('the state published again on connect', () => got.find((g) => g.topic.endsWith('/state') && g.payload.call.status === 'ringing'), 5000)
    assert.equal(downs.length, 1)
    assert.ok(lines.some((x) => x.includes('lost AWS IoT Core')), lines.join('\n'))
    assert.ok(lines.filter((x) => x.includes('connected to AWS IoT Core')).length >= 2)
  })

  test('while IoT Core stays away the retries back off', async () => {
    const l = link([], 'doorbell-thing-backoff')
    await l.start()
    await up(l)
    const client = (l as unknown as { client: MqttClient }).client
    // The wait the link's machine had just waited before each attempt: its own figures, not a
    // count of attempts in a wall-clock window (which a loaded machine stretches).
    const attempts: number[] = []
    client.on('reconnect', () => attempts.push(l.retry!.waitMs))
    await broker.stop()
    await until('three retries', () => (attempts.length >= 3 ? true : undefined), 20_000)
    await broker.start()
    // 200 → 400 → 800 ms, each ±25 %, where a fixed 200 ms would stay at 200.
    const [first, second, third] = attempts as [number, number, number]
    assert.ok(first >= 150 && first <= 250, `the first wait ${first}`)
    assert.ok(second >= 300 && second <= 500 && third >= 600 && third <= 1000, `waits ${attempts.join(', ')}`)
    await up(l)
    // Connected: the backoff starts over (the next loss is retried after 200 ms again).
    assert.equal(l.retry?.attempt, 0)
    assert.ok(attempts.length >= 3 && l.retry?.waitMs !== undefined && l.retry.waitMs > 200, `the last wait ${l.retry?.waitMs} grew`)
  })

  test('stop() says offline (retained)', async () => {
    const l = link([], 'doorbell-thing-stop')
    await l.start()
    await up(l)
    await l.stop()
    assert.equal(l.connected, false)
    const { got } = await watch('w-stop', 'doorbell-thing-stop', true)
    const p = await until('the retained presence', () => got.find((g) => g.topic.endsWith('/presence')))
    assert.equal(p.payload.online, false)
    assert.equal(p.retain, true)
  })

  test('the will marks the doorbell offline when its process dies', async () => {
    const thing = 'doorbell-thing-will'
    const c = pki.client(thing)
    const { got } = await watch('w-will', thing, true)
    const src = fileURLToPath(new URL('../src/paths/cloud/iotLink.ts', import.meta.url))
    const code = [
      `import { IotLink } from ${JSON.stringify(src)}`,
      "import { memoryLogger } from '@doorbell/core'",
      `const l = new IotLink({ ...${JSON.stringify({ iotEndpoint: `127.0.0.1:${broker.port}`, thingName: thing, certFile: c.certFile, keyFile: c.keyFile, caFile: pki.caFile, deviceId: DEVICE })}, log: memoryLogger() })`,
      "l.on('up', () => { console.log('UP') })",
      'await l.start()',
      'setInterval(() => {}, 1000)'
    ].join('\n')
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    try {
      await until('the child to connect', () => (out.includes('UP') ? true : undefined), 15_000)
      await until('online', () => got.find((g) => g.topic.endsWith('/presence') && g.payload.online === true))
    } catch (err) {
      child.kill('SIGKILL')
      throw new Error(`${(err as Error).message}; child said: ${out}`)
    }
    child.kill('SIGKILL')
    const offline = await until('the will', () => got.find((g) => g.topic.endsWith('/presence') && g.payload.online === false), 5000)
    assert.equal(offline.payload.deviceId, DEVICE)
  })

  test('a certificate from a CA IoT Core does not know never connects, and says so', async () => {
    const other = makePki('Somebody else\'s CA')
    try {
      const c = other.client(THING)
      const lines: string[] = []
      const l = new IotLink({ iotEndpoint: `127.0.0.1:${broker.port}`, thingName: 'doorbell-stranger', certFile: c.certFile, keyFile: c.keyFile, caFile: pki.caFile, deviceId: DEVICE, log: memoryLogger(lines, 'iot'), minReconnectMs: 100, maxReconnectMs: 200 })
      links.push(l)
      await l.start()
      await until('a connection error', () => (lines.some((x) => x.includes('connection error')) ? true : undefined), 5000)
      assert.equal(l.connected, false)
      await l.stop()
    } finally {
      other.cleanup()
    }
  })
})
