import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Listeners, type SignalToDevice, type SignalToViewer, type ViewerTransport, type ViewerTransportEvents } from '@doorbell/core'
import { Paths } from '../src/lib/paths/router'
import { AddressBook } from '../src/lib/paths/direct/addressBook'
import type { DirectClient } from '../src/lib/paths/direct/directClient'
import type { HubClient } from '../src/lib/paths/lan/hubClient'
import { createActor } from 'xstate'
import { linkMachine, pathOf, type LinkPath } from '@doorbell/machines'
import { lanPath } from '../src/lib/paths/lan/lanPath'

const PEER = '12D3KooWKs2NjjcuWMEbp4LUiGxieNra8CTAJX83Hi862JGPdrVP'
const ADDR = `/ip4/192.168.1.20/udp/4102/webrtc-direct/certhash/uEiAmoVCjnORlaK81OBsKQERErQufnnLi8uCAyJ2GNxEsTw/p2p/${PEER}`

function memoryStorage (): Pick<Storage, 'getItem' | 'setItem'> & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => { data.set(k, v) } }
}

/** A transport whose state the test sets, recording what is sent on it. */
function fakeTransport (path: 'lan' | 'direct' | 'cloud') {
  const listeners = new Listeners<ViewerTransportEvents>()
  const sessions = new Map<string, (m: SignalToViewer) => void>()
  const sent: SignalToDevice[] = []
  const t = {
    path,
    connected: false,
    on: (e: keyof ViewerTransportEvents, l: never) => listeners.on(e, l),
    onSession: (id: string, l: (m: SignalToViewer) => void) => { sessions.set(id, l); return () => { sessions.delete(id) } },
    sendToDevice: (_d: string, _s: string, m: SignalToDevice) => { sent.push(m) },
    close: async () => {},
    listeners,
    sessions,
    sent
  }
  return t as typeof t & ViewerTransport
}

test('the address book learns direct addresses from presence, keeps them across loads, ignores a bad store', () => {
  const storage = memoryStorage()
  const book = new AddressBook(storage)
  book.learn({ deviceId: 'front-door', online: true, at: 1 })
  assert.deepEqual(book.list(), [], 'a presence without addresses teaches nothing')
  book.learn({ deviceId: 'front-door', online: true, at: 2, direct: { peerId: PEER, addrs: [ADDR] } })
  assert.deepEqual(new AddressBook(storage).list(), [{ deviceId: 'front-door', reach: { peerId: PEER, addrs: [ADDR] } }])
  for (const bad of ['not json', '{"front-door":{"peerId":"x","addrs":[]}}', '[1,2]']) {
    storage.data.set('doorbell.direct', bad)
    assert.deepEqual(new AddressBook(storage).list(), [], bad)
  }
})

test('paths: the hub when it is up, else the direct connections; events of both reach the same listeners; a session hears both', () => {
  const hub = fakeTransport('lan')
  const direct = fakeTransport('direct')
  // The link machine's path, as its snapshot says (the test sets it with the transports' states).
  let route: LinkPath | null = null
  const paths = new Paths(hub as unknown as HubClient, () => route)
  const rings: string[] = []
  paths.on('ring', (r) => { rings.push(r.ringId) })
  const heard: SignalToViewer[] = []
  paths.onSession('s1', (m) => { heard.push(m) })
  paths.attach(direct as unknown as DirectClient)
  assert.ok(direct.sessions.has('s1'), 'a session that started before the direct path was attached hears it too')

  const offer: SignalToDevice = { type: 'offer', sessionId: 's1', viewerId: 'v1', viewerName: 'K', sdp: 'v=0\r\nm=video 9 x\r\n', credential: 'e30.' + 'A'.repeat(86), proof: 'e30.' + 'A'.repeat(86) }
  hub.connected = true
  route = 'lan'
  paths.sendToDevice('front-door', 's1', offer)
  assert.equal(hub.sent.length, 1)
  hub.connected = false
  direct.connected = true
  route = 'direct'
  assert.equal(paths.path, 'direct')
  paths.sendToDevice('front-door', 's1', { type: 'bye', sessionId: 's1', reason: 'hang-up' })
  assert.deepEqual(direct.sent.map((m) => m.type), ['bye'])

  const ring = { type: 'ring' as const, deviceId: 'front-door', deviceName: 'Front door', ringId: 'r1', at: 1, count: 1 }
  hub.listeners.emit('ring', ring)
  direct.listeners.emit('ring', { ...ring, ringId: 'r2' })
  assert.deepEqual(rings, ['r1', 'r2'])
  direct.sessions.get('s1')!({ type: 'answer', sessionId: 's1', sdp: 'v=0' })
  assert.equal(heard.length, 1)

  paths.detach(direct as unknown as DirectClient)
  route = null
  direct.listeners.emit('ring', { ...ring, ringId: 'r3' })
  assert.deepEqual(rings, ['r1', 'r2'], 'a detached path is no longer heard')
  assert.equal(paths.connected, false)
})

test('paths: a call on the cloud path gets the cloud\'s ICE servers; on the hub none; a late detach of a replaced path changes nothing', async () => {
  const hub = fakeTransport('lan')
  const cloud = Object.assign(fakeTransport('cloud'), { iceServers: async () => [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'p' }] })
  const direct = fakeTransport('direct')
  let route: LinkPath | null = null
  const paths = new Paths(hub as unknown as HubClient, () => route)
  hub.connected = true
  route = 'lan'
  paths.attach(cloud as unknown as DirectClient)
  cloud.connected = true
  assert.deepEqual(await paths.iceServers('front-door'), [])
  hub.connected = false
  route = 'cloud'
  assert.equal(paths.path, 'cloud')
  assert.deepEqual(await paths.iceServers('front-door'), [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'p' }])
  paths.detach(direct as unknown as DirectClient)
  assert.equal(paths.path, 'cloud', 'detaching a path that is not attached keeps the one that is')
})

test('paths: routing reads the link machine alone, not the transports\' own flags; no path up fails an offer at once', () => {
  const hub = fakeTransport('lan')
  const direct = fakeTransport('direct')
  let route: LinkPath | null = 'direct'
  const paths = new Paths(hub as unknown as HubClient, () => route)
  paths.attach(direct as unknown as DirectClient)
  hub.connected = true // the hub's client says it is connected, but the machine has not taken it yet
  const offer: SignalToDevice = { type: 'offer', sessionId: 's1', viewerId: 'v1', viewerName: 'K', sdp: 'v=0\r\nm=video 9 x\r\n', credential: 'e30.' + 'A'.repeat(86), proof: 'e30.' + 'A'.repeat(86) }
  paths.sendToDevice('front-door', 's1', offer)
  assert.deepEqual([hub.sent.length, direct.sent.length], [0, 1], 'the machine says direct: the offer goes direct')
  route = 'cloud'
  assert.equal(paths.connected, false, 'the machine says cloud, and no cloud client is attached')
  route = null
  const heard: SignalToViewer[] = []
  paths.onSession('s2', (m) => { heard.push(m) })
  paths.sendToDevice('front-door', 's2', { ...offer, sessionId: 's2' })
  assert.deepEqual(heard.map((m) => m.type === 'bye' && m.reason), ['failed'], 'no path up: the offer fails at once instead of arriving late')
  assert.deepEqual([hub.sent.length, direct.sent.length], [0, 1])
})

test('the hub\'s actor: a hub already up counts at once; its link events move the link machine; stopping the machine stops listening', () => {
  const hub = fakeTransport('lan')
  hub.connected = true
  const link = createActor(linkMachine.provide({ actors: { lan: lanPath(hub as unknown as HubClient) } }), { input: {} })
  link.start()
  assert.equal(pathOf(link.getSnapshot().value), 'lan')
  hub.listeners.emit('link', false)
  assert.deepEqual(link.getSnapshot().value, { lan: 'connecting' })
  hub.listeners.emit('link', true)
  assert.equal(pathOf(link.getSnapshot().value), 'lan')
  link.stop()
  hub.listeners.emit('link', false)
  assert.equal(pathOf(link.getSnapshot().value), 'lan', 'a stopped machine no longer hears the hub')
})
