/**
 * The doorbell's own queue for the hub (issue 20), with real Aedes, mqtt.js and the mesh's mDNS:
 * - a ring pressed before the hub is found by mDNS is delivered once the hub is found;
 * - a ring pressed while the doorbell moves to a hub at a new address (the hub came back on
 *   another port) is delivered there;
 * both to a screen with a persistent session (`HubClient` with `session`), which was away too.
 * - rings pressed while the hub is away, with the connection cut again in the middle of the
 *   resend after the first reconnect and another press meanwhile: every ring arrives (the link
 *   hands its outbox to mqtt.js only on a live connection; what mqtt.js had in flight it resends).
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import { startHub, type Hub } from '@doorbell/hub'
import { MqttLink, memoryLogger, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import { HubClient } from '@doorbell/viewer/lib'
import { RingEvent } from '@doorbell/core'
import { eventually } from '../src/harness'
import { deviceInvite, pairViewer, type PairedViewer } from '../src/trust'

const ring = (ringId: string): RingEvent => ({ type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId, at: Date.now(), count: 1 })

describe('the doorbell\'s own queue: rings before the hub is found, and across a move', () => {
  let dir: string
  const lines: string[] = []
  const mesh = { tcpPort: 0, directPort: 0 }
  let hub: Hub | null = null
  let device: Doorbell | null = null
  after(async () => {
    await device?.stop()
    await hub?.stop()
    await rm(dir, { recursive: true, force: true })
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
  const screen = (h: Hub, paired: PairedViewer, got: string[]): HubClient => {
    const c = new HubClient({ url: h.mqttUrl, homeId: 'home', viewerId: paired.viewerId, viewerName: paired.name, auth: { memberId: paired.memberId, token: paired.token }, session: 'kitchen', log: () => {} })
    c.on('ring', (r) => { got.push(r.ringId) })
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
    let c = screen(hub, paired, got)
    await eventually(`the ring pressed before the hub was found (${beforeFound})`, () => got.includes(beforeFound), 20_000)
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

describe('MqttLink: no ring lost when the connection drops in the middle of a resend', () => {
  test('offline presses, a reconnect cut after the first resent ring, another offline press: all three arrive', { timeout: 60_000 }, async () => {
    const broker = await Aedes.createBroker()
    const arrived: string[] = []
    let cutAfterFirst = false
    const sockets = new Set<Socket>()
    let accepting = true
    broker.authorizePublish = (client, packet, callback) => {
      if (packet.topic.endsWith('/ring') && cutAfterFirst) {
        // The hub dies holding the first resent ring, before it acknowledges it.
        cutAfterFirst = false
        accepting = false
        for (const s of sockets) s.destroy()
        return
      }
      if (packet.topic.endsWith('/ring')) arrived.push(RingEvent.parse(JSON.parse(packet.payload.toString())).ringId)
      callback(null)
    }
    const server: Server = createServer((socket) => {
      if (!accepting) { socket.destroy(); return }
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      broker.handle(socket)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const link = new MqttLink({ url: `mqtt://127.0.0.1:${port}`, homeId: 'home', deviceId: 'front-door', log: memoryLogger([], 'link'), auth: { memberId: 'm', token: 't', ca: null } })
    try {
      await link.connected(AbortSignal.timeout(10_000))
      // The hub goes away; two presses.
      accepting = false
      for (const s of sockets) s.destroy()
      await eventually('offline', () => !link.client.connected, 5000)
      link.publishRing(ring('r1'))
      link.publishRing(ring('r2'))
      // It comes back, and dies again with the first resent ring; a third press while it is away.
      cutAfterFirst = true
      accepting = true
      await eventually('the cut', () => !cutAfterFirst && !link.client.connected, 10_000)
      link.publishRing(ring('r3'))
      accepting = true
      await eventually('every ring', () => ['r1', 'r2', 'r3'].every((r) => arrived.includes(r)), 15_000)
        .catch((err: Error) => { throw new Error(`${err.message}: arrived ${arrived.join(', ')}`) })
      assert.deepEqual([...new Set(arrived)].sort(), ['r1', 'r2', 'r3'])
    } finally {
      await link.stop()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
