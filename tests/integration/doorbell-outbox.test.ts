/**
 * The doorbell's own queue for the hub (issue 20), with real Aedes, mqtt.js and the mesh's mDNS:
 * - a ring pressed before the hub is found by mDNS is delivered once the hub is found;
 * - a ring pressed while the doorbell moves to a hub at a new address (the hub came back on
 *   another port) is delivered there;
 * both to a screen with a persistent session (`HubClient` with `session`), which was away too.
 * - a cause of a lost ring under repeated hub kills: after a reconnect mqtt.js first resends what
 *   it had in flight, one message at a time, and queues any publish made meanwhile behind that
 *   resend; if the connection drops before the resend ends, it drops that queue (its callbacks
 *   get "Connection closed"; the link gave none, so the ring was gone without a word). The link
 *   now takes such a message back into its outbox and sends it on the next connection.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aedes, type AedesOptions } from 'aedes'
import { startHub, type Hub } from '@doorbell/hub'
import { MqttLink, memoryLogger, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import { HubClient } from '@doorbell/viewer/lib'
import { RingEvent, type DeviceState } from '@doorbell/core'
import { eventually } from '../src/harness'
import { deviceInvite, pairViewer, type PairedViewer } from '../src/trust'

const ring = (ringId: string): RingEvent => ({ type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId, at: Date.now(), count: 1 })

/**
 * The doorbell's MqttLink to a stand-in hub: a real Aedes on loopback with the test's
 * `authorizePublish`, which the test can cut off (`cut`: every connection dropped and new ones
 * refused, until `accept`).
 */
async function linkToCuttableHub (authorizePublish: NonNullable<AedesOptions['authorizePublish']>, logged: string[] = []): Promise<{ link: MqttLink, cut: () => Promise<void>, accept: () => void, close: () => Promise<void> }> {
  const broker = await Aedes.createBroker()
  broker.authorizePublish = authorizePublish
  const sockets = new Set<Socket>()
  let accepting = true
  const server: Server = createServer((socket) => {
    if (!accepting) { socket.destroy(); return }
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    broker.handle(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const link = new MqttLink({ url: `mqtt://127.0.0.1:${port}`, homeId: 'home', deviceId: 'front-door', log: memoryLogger(logged, 'link'), auth: { memberId: 'm', token: 't', ca: null } })
  return {
    link,
    cut: async () => {
      accepting = false
      for (const s of sockets) s.destroy()
      await eventually('the link down', () => !link.client.connected, 5000)
    },
    accept: () => { accepting = true },
    close: async () => {
      await link.stop()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise((resolve) => server.close(resolve))
    }
  }
}

describe('the doorbell\'s own queue: rings before the hub is found, and across a move', () => {
  let dir: string
  const lines: string[] = []
  const mesh = { tcpPort: 0, directPort: 0 }
  let hub: Hub | null = null
  let device: Doorbell | null = null
  after(async () => {
    await device?.stop()
    await hub?.stop()
    // Retried: a file the stopped doorbell or hub was still closing can make one pass find the folder not empty.
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })
  })

  const startHomeHub = async (): Promise<Hub> => await startHub({ homeId: 'home', hubName: 'Home hub', host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dir, 'hub'), mesh }, { log: memoryLogger(lines, 'hub') })
  const startDevice = async (pairingUrl: string): Promise<Doorbell> => await startDoorbell({
    homeId: 'home',
    pairing: { url: pairingUrl },
    dataDir: join(dir, 'device'),
    mesh,
    ringTimeoutSeconds: 2,
    camera: { source: { kind: 'test-pattern', width: 160, height: 120, fps: 5 } }
  }, { log: memoryLogger(lines, 'device'), drivers: { button: new SimulatedButton(), lock: new SimulatedLock(() => {}) } })
  /** The screen, back after the hub is: its persistent session brings what was queued for it. */
  const screen = (h: Hub, paired: PairedViewer, got: string[], pictures: string[] = []): HubClient => {
    const c = new HubClient({ url: h.mqttUrl, homeId: 'home', viewerId: paired.viewerId, viewerName: paired.name, auth: { memberId: paired.memberId, token: paired.token }, session: 'kitchen', log: () => {} })
    c.on('ring', (r) => { got.push(r.ringId) })
    c.on('snapshot', (p) => { pictures.push(p.ringId) })
    return c
  }
  const portOf = (url: string): string => url.split(':').at(-1)!

  test('a ring pressed before mDNS finds the hub, and one pressed while the doorbell moves to the hub\'s new address, both reach the screen', { timeout: 180_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'doorbell-outbox-'))
    hub = await startHomeHub()
    const invite = await deviceInvite(hub, 'front-door')
    const paired = await pairViewer(hub, { name: 'Kitchen tablet' })
    // The screen's session exists on the hub (its subscriptions), then the screen goes away.
    const first = screen(hub, paired, [])
    await eventually('the screen subscribed', () => first.connected, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await first.close()
    // The doorbell is paired once, then everything stops.
    device = await startDevice(invite)
    await device.hubConnected(AbortSignal.timeout(30_000))
    await device.stop(); device = null
    await hub.stop(); hub = null

    // No hub on the network: the doorbell starts and the button is pressed.
    device = await startDevice(invite)
    assert.equal(device.link, null, 'no hub found yet')
    device.ring()
    const beforeFound = device.call.getSnapshot().context.ring?.ringId
    assert.ok(beforeFound, 'the press raised a ring')

    // The hub comes (its broker on a new port); mDNS finds it; the held ring goes out.
    hub = await startHomeHub()
    await device.hubConnected(AbortSignal.timeout(60_000))
    const got: string[] = []
    const pictures: string[] = []
    let c = screen(hub, paired, got, pictures)
    await eventually(`the ring pressed before the hub was found (${beforeFound})`, () => got.includes(beforeFound), 20_000)
    await eventually('its picture (taken at the press, held with the ring)', () => pictures.includes(beforeFound), 20_000)
    await c.close()
    const firstUrl = device.link!.url

    // The hub goes and comes back at a new address; the button is pressed in between.
    await eventually('the first ring over', () => device!.call.getSnapshot().matches('idle'), 10_000)
    await hub.stop(); hub = null
    device.ring()
    const duringMove = device.call.getSnapshot().context.ring?.ringId
    assert.ok(duringMove && duringMove !== beforeFound)
    hub = await startHomeHub()
    assert.notEqual(portOf(hub.mqttUrl), portOf(firstUrl), 'the hub is at a new address')
    await eventually('the doorbell moved to the new address', () => device!.link?.url.endsWith(`:${portOf(hub!.mqttUrl)}`) === true && device!.link.client.connected, 60_000)
    c = screen(hub, paired, got)
    await eventually(`the ring pressed during the move (${duringMove})`, () => got.includes(duringMove), 20_000)
    await c.close()
  })
})

describe('MqttLink: no ring lost when the hub goes away while the doorbell resends', () => {
  test('a ring pressed while mqtt.js resends what it stored, then the connection cut: it arrives on the next connection', { timeout: 60_000 }, async () => {
    const arrived: string[] = []
    /** The hub holds the first resent ring without acknowledging it, until told. */
    let holdFirst = false
    let held: (() => void) | null = null
    const { link, cut, accept, close } = await linkToCuttableHub((_client, packet, callback) => {
      if (!packet.topic.endsWith('/ring')) { callback(null); return }
      if (holdFirst) { holdFirst = false; held = () => { callback(null) }; return }
      arrived.push(RingEvent.parse(JSON.parse(packet.payload.toString())).ringId)
      callback(null)
    })
    try {
      await link.connected(AbortSignal.timeout(10_000))
      // A ring is on its way when the hub goes: mqtt.js keeps it and resends it on the next connection.
      holdFirst = true
      link.publishRing(ring('r1'))
      await eventually('the hub has r1 (not acknowledged)', () => held !== null, 5000)
      held = null
      await cut()
      // Back: mqtt.js resends r1, and the hub holds it again (no PUBACK): mqtt.js is still resending.
      holdFirst = true
      accept()
      await eventually('the resend of r1 held', () => held !== null, 10_000)
      // The button, now: mqtt.js would queue this publish behind its resend.
      link.publishRing(ring('r2'))
      // The hub goes again before acknowledging r1: mqtt.js drops what it queued behind the resend.
      await cut()
      accept()
      await eventually('both rings', () => ['r1', 'r2'].every((r) => arrived.includes(r)), 15_000)
        .catch((err: Error) => { throw new Error(`${err.message}: arrived ${arrived.join(', ') || 'none'}`) })
    } finally {
      await close()
    }
  })
})

describe('MqttLink: a long outage with signaling keeps every ring', () => {
  test('answers and byes sent while the hub is away are not held (useless after the outage); every ring pressed meanwhile arrives', { timeout: 60_000 }, async () => {
    const rings: string[] = []
    let signals = 0
    const logged: string[] = []
    const { link, cut, accept, close } = await linkToCuttableHub((_client, packet, callback) => {
      if (packet.topic.endsWith('/ring')) rings.push(RingEvent.parse(JSON.parse(packet.payload.toString())).ringId)
      if (packet.topic.endsWith('/to-viewer')) signals++
      callback(null)
    }, logged)
    try {
      await link.connected(AbortSignal.timeout(10_000))
      // Live, signaling goes out at once.
      link.sendToViewer('v1', 's0', { type: 'bye', sessionId: 's0', reason: 'device-ended' })
      await eventually('the live bye', () => signals === 1, 5000)
      await cut()
      // A long outage: rings pressed, and far more signaling than the outbox holds (MAX_HELD).
      const pressed: string[] = []
      for (let i = 0; i < 10; i++) {
        pressed.push(`o${i}`)
        link.publishRing(ring(`o${i}`))
        for (let j = 0; j < 100; j++) link.sendToViewer('v1', `s${i}`, { type: 'bye', sessionId: `s${i}`, reason: 'device-ended' })
      }
      assert.equal(link.outbox.size, 10, 'only the rings are held')
      assert.ok(!logged.some((l) => l.includes('dropped the oldest held event')), 'no ring pushed out')
      accept()
      await eventually('every ring pressed during the outage', () => pressed.every((r) => rings.includes(r)), 15_000)
        .catch((err: Error) => { throw new Error(`${err.message}: arrived ${rings.join(', ') || 'none'}`) })
      assert.equal(signals, 1, 'no stale signaling after the outage')
    } finally {
      await close()
    }
  })
})

describe('MqttLink: a state the hub never acknowledged is not sent again after a reconnect', () => {
  test('"ringing" in flight when the hub goes is dropped from mqtt.js\'s resend; the state now ("idle") is what the hub gets when it is back', { timeout: 60_000 }, async () => {
    const states: string[] = []
    /** The hub takes the first state without acknowledging it (killed before it could). */
    let holdNext = false
    let held = false
    const { link, cut, accept, close } = await linkToCuttableHub((_client, packet, callback) => {
      if (!packet.topic.endsWith('/state')) { callback(null); return }
      if (holdNext) { holdNext = false; held = true; return }
      states.push((JSON.parse(packet.payload.toString()) as DeviceState).call.status)
      callback(null)
    })
    const state = (status: 'ringing' | 'idle'): DeviceState => ({ deviceId: 'front-door', deviceName: 'Front door', call: { status, ringId: status === 'ringing' ? 'r1' : null, since: Date.now() }, participants: [], lock: null, lastRing: null, at: Date.now() })
    try {
      await link.connected(AbortSignal.timeout(10_000))
      holdNext = true
      link.publishState(state('ringing'))
      await eventually('the hub has "ringing" (not acknowledged)', () => held, 5000)
      await cut()
      // The ring ends while the hub is away.
      link.publishState(state('idle'))
      accept()
      await eventually('the state now, once the hub is back', () => states.includes('idle'), 15_000)
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.deepEqual(states, ['idle'], 'the old "ringing" was not sent again')
    } finally {
      await close()
    }
  })
})
