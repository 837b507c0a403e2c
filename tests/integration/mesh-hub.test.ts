/**
 * The hub side of the LAN mesh, in one network namespace: a doorbell with no hub address finds
 * the hub of its home among two (by mDNS on this host), the hub lists it with its direct
 * addresses, and viewers learn those from its retained presence. Bad input on the mesh's
 * protocols, and a viewer hello without a member's credential, is answered with a clear refusal
 * and changes nothing. The hubs serve plain HTTP/MQTT on loopback (tls 'off'; mesh-discovery
 * covers the mesh over TLS); the doorbell pairs with the home hub on its first start.
 */

/** A SYNTACTICALLY valid signed token that no home signed (payload `{}`, a zero signature). */
const FORGED = 'e30.' + 'A'.repeat(86)

/** GET /api/devices as a member of that hub's home (the list is for members only). */
async function devicesOf (hub: Hub, member: PairedViewer): Promise<{ devices: Array<{ deviceId: string, peerId: string, direct?: { addrs: string[] } }> }> {
  const res = await fetch(new URL('/api/devices', hub.url), { headers: { Authorization: `Bearer ${member.token}` } })
  assert.equal(res.status, 200, `GET /api/devices: ${res.status}`)
  return await res.json() as { devices: Array<{ deviceId: string, peerId: string, direct?: { addrs: string[] } }> }
}
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsDatastore } from 'datastore-fs'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { startHub, type Hub } from '@doorbell/hub'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import { HubClient } from '@doorbell/viewer/lib'
import { EventFrame, HELLO_SESSION, HubReply, MAX_FRAME_BYTES, PROTOCOLS, ViewerHello, decode, signViewClaim, type Presence } from '@doorbell/core'
import { createMeshPeer, type MeshNode } from '@doorbell/mesh'
import { eventually } from '../src/harness'
import { deviceInvite, pairViewer, type PairedViewer } from '../src/trust'

const utf8 = new TextEncoder()

describe('LAN mesh: the hub of a home, found by its devices', () => {
  let dir: string
  let home: Hub
  let other: Hub
  let device: Doorbell
  let probe: { node: MeshNode, datastore: FsDatastore }
  let homeMember: PairedViewer
  let otherMember: PairedViewer
  const lines: string[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'doorbell-mesh-hub-'))
    const mesh = { tcpPort: 0, directPort: 0 }
    home = await startHub({ homeId: 'home', hubName: 'Home hub', host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dir, 'home'), mesh }, { log: memoryLogger(lines, 'home-hub') })
    other = await startHub({ homeId: 'next-door', hubName: 'Next door', host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dir, 'other'), mesh }, { log: memoryLogger(lines, 'other-hub') })
    device = await startDoorbell({
      homeId: 'home',
      pairing: { url: await deviceInvite(home, 'front-door') },
      dataDir: join(dir, 'device'),
      mesh,
      camera: { source: { kind: 'test-pattern', width: 160, height: 120, fps: 5 } }
    }, { log: memoryLogger(lines, 'device'), drivers: { button: new SimulatedButton(), lock: new SimulatedLock(() => {}) } })
    homeMember = await pairViewer(home, { name: 'Probe', viewerId: 'v-probe' })
    otherMember = await pairViewer(other, { name: 'Neighbour' })
    const datastore = new FsDatastore(join(dir, 'probe'))
    await datastore.open()
    probe = { node: await createMeshPeer({ datastore, host: '127.0.0.1', tcpPort: 0, directPort: 0, tcp: tcp(), discovery: [] }), datastore }
    await probe.node.start()
  })

  after(async () => {
    await probe?.node.stop()
    await probe?.datastore.close()
    await device?.stop()
    await other?.stop()
    await home?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('a device with no hubUrl connects to the broker of its own home, never to the other', async () => {
    await device.hubConnected(AbortSignal.timeout(20_000)).catch((err: Error) => { throw new Error(`${err.message}\n${lines.join('\n')}`) })
    assert.ok(device.link!.url.endsWith(`:${home.mqttUrl.split(':').at(-1)}`), `connected to ${device.link!.url}, the home hub's broker is ${home.mqttUrl}`)
    await eventually('the other hub to refuse it', () => lines.some((l) => l.includes('[other-hub/mesh] a device of another home asked; not ours device=front-door')))
    assert.equal(other.broker.connectedClients, 0)
  })

  test('the hub lists the device it found, with its direct addresses; viewers learn them from its presence', async () => {
    const anonymous = await fetch(new URL('/api/devices', home.url))
    assert.equal(anonymous.status, 401, 'the device list is for members only')
    assert.match((await anonymous.json() as { error: string }).error, /sign in first/)
    const body = await devicesOf(home, homeMember)
    assert.equal(body.devices.length, 1)
    assert.equal(body.devices[0]!.deviceId, 'front-door')
    assert.equal(body.devices[0]!.peerId, device.mesh!.node.peerId.toString())
    assert.ok(body.devices[0]!.direct!.addrs.every((a) => a.includes('/webrtc-direct/certhash/')))
    const none = await devicesOf(other, otherMember)
    assert.deepEqual(none.devices, [])

    const paired = homeMember
    const viewer = new HubClient({ url: home.mqttUrl, homeId: 'home', viewerId: paired.viewerId, viewerName: paired.name, auth: { memberId: paired.memberId, token: paired.token }, log: () => {} })
    const presence = await new Promise<Presence>((resolve, reject) => {
      setTimeout(() => reject(new Error('no presence within 10 s')), 10_000).unref()
      viewer.on('presence', (p) => { if (p.online) resolve(p) })
    })
    await viewer.close()
    assert.deepEqual(presence.direct, device.mesh!.direct())
  })

  test('the hub protocol refuses a malformed hello and a device of another home, and keeps serving', async () => {
    const ask = async (payload: string): Promise<HubReply> => {
      const stream = await probe.node.dialProtocol(home.mesh!.node.getMultiaddrs(), PROTOCOLS.hub)
      const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      await io.write(utf8.encode(payload))
      const reply = decode(HubReply, (await io.read()).subarray(), 'test')
      assert.ok(reply.ok, 'the hub answers with a well-formed reply')
      return reply.value
    }
    const bad = await ask('{"homeId":"home"')
    assert.deepEqual([bad.ok, !bad.ok && bad.error], [false, 'bad-request'])
    assert.match(!bad.ok ? bad.message : '', /not JSON/)
    const wrongShape = await ask(JSON.stringify({ homeId: 'home', deviceId: '../etc', deviceName: 'x' }))
    assert.deepEqual([wrongShape.ok, !wrongShape.ok && wrongShape.error], [false, 'bad-request'])
    const otherHome = await ask(JSON.stringify({ homeId: 'elsewhere', deviceId: 'gate', deviceName: 'Gate' }))
    assert.deepEqual([otherHome.ok, !otherHome.ok && otherHome.error], [false, 'other-home'])
    const listed = await devicesOf(home, homeMember)
    assert.deepEqual(listed.devices.map((d) => d.deviceId), ['front-door'], 'nothing was added')
    const good = await ask(JSON.stringify({ homeId: 'home', deviceId: 'gate', deviceName: 'Gate' }))
    assert.equal(good.ok, true)
    assert.equal(good.ok && good.mqttPort, Number(home.mqttUrl.split(':').at(-1)))
  })

  test('the device\'s events protocol refuses a viewer of another home or a bad hello, and keeps serving', async () => {
    const hello = async (payload: string): Promise<EventFrame> => {
      const stream = await probe.node.dialProtocol(device.mesh!.node.getMultiaddrs(), PROTOCOLS.events)
      const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      await io.write(utf8.encode(payload))
      const frame = decode(EventFrame, (await io.read()).subarray(), 'test')
      assert.ok(frame.ok)
      await stream.close().catch(() => {})
      return frame.value
    }
    const paired = await pairViewer(home, { name: 'OK', viewerId: 'v-ok' })
    // A fresh proof by the member's own key for this doorbell: each refusal below is for what it names.
    const proof = async (): Promise<string> => await signViewClaim({ key: paired.key, home: 'home', device: 'front-door', session: HELLO_SESSION })
    const refused = await hello(JSON.stringify({ homeId: 'elsewhere', viewerId: 'v-x', viewerName: 'X', credential: FORGED, proof: await proof() } satisfies ViewerHello))
    assert.equal(refused.kind, 'refused')
    assert.match(refused.kind === 'refused' ? refused.message : '', /another home/)
    assert.equal((await hello('not json')).kind, 'refused')
    // A hello of this home without a credential (an anonymous viewer), with one no home signed, or with another viewer's.
    const anonymous = await hello(JSON.stringify({ homeId: 'home', viewerId: 'v-ok', viewerName: 'OK' }))
    assert.equal(anonymous.kind, 'refused')
    assert.match(anonymous.kind === 'refused' ? anonymous.message : '', /credential/)
    const forged = await hello(JSON.stringify({ homeId: 'home', viewerId: 'v-ok', viewerName: 'OK', credential: FORGED, proof: await proof() } satisfies ViewerHello))
    assert.equal(forged.kind, 'refused')
    assert.match(forged.kind === 'refused' ? forged.message : '', /not from this home/)
    const borrowed = await hello(JSON.stringify({ homeId: 'home', viewerId: 'v-x', viewerName: 'X', credential: paired.credential, proof: await proof() } satisfies ViewerHello))
    assert.equal(borrowed.kind, 'refused')
    assert.match(borrowed.kind === 'refused' ? borrowed.message : '', /another viewer/)
    assert.equal(device.mesh!.server.viewers, 0)
    // A member of this home gets the presence first.
    const first = await hello(JSON.stringify({ homeId: 'home', viewerId: paired.viewerId, viewerName: paired.name, credential: paired.credential, proof: await proof() } satisfies ViewerHello))
    assert.equal(first.kind, 'presence')
    assert.equal(first.kind === 'presence' && first.payload.deviceId, 'front-door')
  })
})
