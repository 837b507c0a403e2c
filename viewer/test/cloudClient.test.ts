import { test, mock } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { IClientOptions } from 'mqtt'
import { toKvsPayload, type CallRecord, type DeviceState, type Presence, type RingEvent, type SignalToDevice, type SignalToViewer, type ViewerCloudConfig } from '@doorbell/core'
import { CloudClient, describeCloudError, PREVIEW_UNAVAILABLE, type KvsControlPlane, type SignalingConfig } from '../src/lib/paths/cloud/cloudClient'

const config: ViewerCloudConfig = {
  region: 'eu-west-1',
  iotEndpoint: 'a1b2c3-ats.iot.eu-west-1.amazonaws.com',
  devices: [
    { deviceId: 'front-door', thingName: 'thing-front', channelName: 'chan-front' },
    { deviceId: 'back-door', thingName: 'thing-back', channelName: 'chan-back' }
  ]
}
const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }
const ARN = (name: string) => `arn:aws:kinesisvideo:eu-west-1:123456789012:channel/${name}/1700000000000`
const SDP = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
const offer = (sessionId: string, sdp = SDP): SignalToDevice => ({ type: 'offer', sessionId, viewerId: 'v1', viewerName: 'Kitchen', sdp, credential: 'e30.' + 'A'.repeat(86), proof: 'e30.' + 'A'.repeat(86) })
const answer = (sessionId: string): SignalToViewer => ({ type: 'answer', sessionId, sdp: SDP })

const ring = (deviceId: string): RingEvent => ({ type: 'ring', deviceId, deviceName: 'Front', ringId: 'r1', at: 1, count: 1 })
const state = (deviceId: string): DeviceState => ({
  deviceId,
  deviceName: 'Front',
  call: { status: 'idle', ringId: null, since: 1 },
  participants: [],
  lock: { status: 'locked', relockAt: null, version: 0, boot: 'b1', error: null },
  lastRing: null,
  at: 1
})
const presence = (deviceId: string): Presence => ({ deviceId, online: true, at: 1 })
const record = (deviceId: string): CallRecord => ({ deviceId, ringId: 'r1', startedAt: 1, endedAt: 2, outcome: 'missed', answeredBy: [], unlocks: [] })

class FakeMqtt extends EventEmitter {
  connected = false
  subscribed: string[] = []
  ended = false
  constructor (readonly url: string, readonly options: IClientOptions) { super() }
  subscribe (topics: string[], opts: { qos: 1 }, cb: (err: Error | null, granted?: Array<{ topic: string, qos: number }>) => void): void {
    assert.equal(opts.qos, 1)
    this.subscribed.push(...topics)
    cb(null, topics.map((topic) => ({ topic, qos: 1 })))
  }
  end (_force: boolean, _o: object, cb: () => void): void { this.ended = true; this.connected = false; cb() }
  up (): void { this.connected = true; this.emit('connect') }
  down (): void { this.connected = false; this.emit('close') }
  deliver (topic: string, body: unknown): void { this.emit('message', topic, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))) }
}

class FakeSignaling extends EventEmitter {
  sent: unknown[] = []
  opened = 0
  closed = 0
  constructor (readonly config: SignalingConfig) { super() }
  open (): void { this.opened++ }
  close (): void { this.closed++; this.emit('close') }
  sendSdpOffer (payload: unknown): void { this.sent.push(payload) }
  /** The device's message as the SDK hands it over (already base64- and JSON-decoded). */
  fromDevice (message: unknown): void { this.emit('sdpAnswer', typeof message === 'string' ? message : toKvsPayload(message as SignalToViewer)) }
}

const tick = async (n = 3): Promise<void> => { for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve)) }

function harness (o: { control?: Partial<KvsControlPlane>, idleMs?: number, openTimeoutMs?: number } = {}) {
  const logs: string[] = []
  const mqtts: FakeMqtt[] = []
  const signalings: FakeSignaling[] = []
  const asked: string[] = []
  const control: KvsControlPlane = {
    channel: async (device) => { asked.push(`channel:${device.channelName}`); return { channelARN: ARN(device.channelName), wssEndpoint: `wss://v-${device.channelName}.example`, httpsEndpoint: `https://r-${device.channelName}.example` } },
    iceServers: async (channel, clientId) => {
      asked.push(`ice:${clientId}`)
      return { servers: [{ urls: ['turn:1.2.3.4:443?transport=udp', 'turns:1.2.3.4:443?transport=tcp'], username: 'u', credential: 'p' }], ttlSeconds: 300 }
    },
    ...o.control
  }
  const client = new CloudClient({
    config,
    credentials,
    viewerId: 'v1',
    log: (level, message) => { logs.push(`${level}: ${message}`) },
    createMqtt: (url, options) => { const m = new FakeMqtt(url, options); mqtts.push(m); return m },
    createSignalingClient: (c) => { const s = new FakeSignaling(c); signalings.push(s); return s },
    controlPlane: control,
    ...(o.idleMs !== undefined ? { idleMs: o.idleMs } : {}),
    ...(o.openTimeoutMs !== undefined ? { openTimeoutMs: o.openTimeoutMs } : {})
  })
  const heard: SignalToViewer[] = []
  const events: string[] = []
  client.on('ring', (r) => { events.push(`ring:${r.deviceId}`) })
  client.on('state', (s) => { events.push(`state:${s.deviceId}`) })
  client.on('presence', (p) => { events.push(`presence:${p.deviceId}`) })
  client.on('call', (c) => { events.push(`call:${c.deviceId}`) })
  client.on('link', (up) => { events.push(`link:${up}`) })
  return { client, logs, mqtts, signalings, asked, heard, events }
}

test('events: presigned IoT URL, subscribe QoS 1 to every doorbell, link up and down', async () => {
  const h = harness()
  await tick()
  const m = h.mqtts[0]!
  assert.equal(m.url, 'wss://a1b2c3-ats.iot.eu-west-1.amazonaws.com/mqtt')
  assert.equal(m.options.clean, false, 'a persistent session: rings during a short loss are kept')
  assert.equal(m.options.reconnectPeriod, 2000)
  const url = new URL(m.options.transformWsUrl!('ignored', m.options, null as never))
  assert.equal(url.searchParams.get('X-Amz-Credential')?.split('/')[3], 'iotdevicegateway')
  assert.equal(h.client.connected, false)
  m.up()
  assert.equal(h.client.connected, true)
  assert.deepEqual(m.subscribed, [
    'things/thing-front/ring', 'things/thing-front/state', 'things/thing-front/presence', 'things/thing-front/calls', 'things/thing-front/snapshot',
    'things/thing-back/ring', 'things/thing-back/state', 'things/thing-back/presence', 'things/thing-back/calls', 'things/thing-back/snapshot'
  ])
  m.down()
  m.down()
  m.up()
  assert.deepEqual(h.events, ['link:true', 'link:false', 'link:true'], 'transitions only')
  await h.client.close()
})

test('events: a reconnect gets a freshly signed URL', async () => {
  mock.timers.enable({ apis: ['Date'], now: Date.UTC(2025, 0, 1, 12, 0, 0) })
  try {
    const h = harness()
    await tick()
    const m = h.mqtts[0]!
    const first = m.options.transformWsUrl!('', m.options, null as never)
    m.up()
    mock.timers.setTime(Date.UTC(2025, 0, 1, 13, 0, 0))
    m.down()
    await tick()
    const second = m.options.transformWsUrl!('', m.options, null as never)
    assert.notEqual(second, first)
    assert.equal(new URL(second).searchParams.get('X-Amz-Date'), '20250101T130000Z')
    await h.client.close()
  } finally {
    mock.timers.reset()
  }
})

test('events: schema-checked; a spoofed deviceId, an unknown thing, a malformed payload are dropped', async () => {
  const h = harness()
  await tick()
  const m = h.mqtts[0]!
  m.up()
  m.deliver('things/thing-front/ring', ring('front-door'))
  m.deliver('things/thing-front/state', state('front-door'))
  m.deliver('things/thing-back/presence', presence('back-door'))
  m.deliver('things/thing-back/calls', record('back-door'))
  const before = h.events.length
  m.deliver('things/thing-front/ring', ring('back-door')) // the front doorbell speaking for the back one
  m.deliver('things/thing-back/state', state('front-door'))
  m.deliver('things/stranger/ring', ring('front-door')) // not a doorbell of this home
  m.deliver('things/thing-front/ring', '{"type":"ring"') // not JSON
  m.deliver('things/thing-front/ring', { ...ring('front-door'), extra: 1 }) // not the schema
  m.deliver('things/thing-front/state', ring('front-door')) // a ring where a state belongs
  m.deliver('things/thing-front/other', ring('front-door')) // not one of our topics
  m.deliver('home/x/ring', ring('front-door'))
  assert.deepEqual(h.events, ['link:true', 'ring:front-door', 'state:front-door', 'presence:back-door', 'call:back-door'])
  assert.equal(h.events.length, before)
  const rejected = h.logs.filter((l) => l.includes('rejected'))
  assert.equal(rejected.length, 8, rejected.join('\n'))
  assert.ok(rejected.some((l) => /spoke for back-door/.test(l)))
  assert.ok(rejected.some((l) => /stranger is not a doorbell/.test(l)))
  await h.client.close()
})

test('signaling: lazy VIEWER connection, queued until open, reused; answers routed by session; foreign ones dropped', async () => {
  const h = harness()
  await tick()
  assert.equal(h.signalings.length, 0, 'nothing opened before a call')
  const s1: SignalToViewer[] = []
  const s2: SignalToViewer[] = []
  h.client.onSession('s1', (m) => { s1.push(m) })
  h.client.onSession('s2', (m) => { s2.push(m) })
  h.client.sendToDevice('front-door', 's1', offer('s1'))
  await tick()
  const sig = h.signalings[0]!
  assert.deepEqual(sig.config, { role: 'VIEWER', clientId: 'v1', region: 'eu-west-1', channelARN: ARN('chan-front'), channelEndpoint: 'wss://v-chan-front.example', credentials })
  assert.equal(sig.opened, 1)
  assert.deepEqual(sig.sent, [], 'queued until open')
  sig.emit('open')
  assert.deepEqual(sig.sent, [toKvsPayload(offer('s1'))], 'sent as our JSON text')

  h.client.sendToDevice('front-door', 's2', offer('s2'))
  assert.equal(h.signalings.length, 1, 'one connection per channel, reused')
  assert.equal(sig.sent.length, 2)

  sig.fromDevice(answer('s2'))
  sig.fromDevice(answer('s1'))
  assert.deepEqual(s1, [answer('s1')])
  assert.deepEqual(s2, [answer('s2')])

  // Dropped: unknown session, a stock KVS answer (bare session description), not JSON, not the schema.
  sig.fromDevice(answer('nobody'))
  sig.emit('sdpAnswer', { type: 'answer', sdp: SDP })
  sig.fromDevice('{"type":')
  sig.fromDevice({ type: 'answer', sessionId: 's1', sdp: 'not an sdp' })
  // The back doorbell's channel cannot speak for a session with the front one.
  h.client.sendToDevice('back-door', 's3', offer('s3'))
  await tick()
  const back = h.signalings[1]!
  back.emit('open')
  back.fromDevice({ type: 'bye', sessionId: 's1', reason: 'device-ended' })
  assert.equal(s1.length, 1)
  assert.equal(h.logs.filter((l) => l.includes('rejected')).length, 5, h.logs.join('\n'))

  sig.fromDevice({ type: 'bye', sessionId: 's1', reason: 'device-ended' })
  assert.deepEqual(s1.at(-1), { type: 'bye', sessionId: 's1', reason: 'device-ended' })
  // A bye from the viewer goes the same way.
  h.client.sendToDevice('front-door', 's2', { type: 'bye', sessionId: 's2', reason: 'hang-up' })
  assert.equal(sig.sent.at(-1), toKvsPayload({ type: 'bye', sessionId: 's2', reason: 'hang-up' }))
  await h.client.close()
})

test('signaling: an offer over the KVS limit is not sent; its session hears why', async () => {
  const h = harness()
  await tick()
  const heard: SignalToViewer[] = []
  h.client.onSession('big', (m) => { heard.push(m) })
  h.client.sendToDevice('front-door', 'big', offer('big', SDP + 'a=x'.repeat(3000)))
  await tick()
  assert.deepEqual(heard, [{ type: 'bye', sessionId: 'big', reason: 'failed', message: 'the offer is too large for the cloud signaling channel' }])
  assert.equal(h.signalings.length, 0)
  await h.client.close()
})

test('signaling: a refused or unreachable channel fails the waiting offers at once, with what to do; the next call tries again', async () => {
  const failures: Array<[unknown, RegExp]> = [
    [Object.assign(new Error('The security token included in the request is invalid.'), { name: 'UnrecognizedClientException', $metadata: { httpStatusCode: 403 } }), /^cloud signaling refused the credentials: check them in Settings$/],
    [Object.assign(new Error('nope'), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } }), /no signaling channel "chan-front" in eu-west-1/],
    [Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }), /may not use the signaling channel "chan-front"/],
    [new TypeError('fetch failed'), /cannot reach AWS/]
  ]
  for (const [error, expected] of failures) {
    let calls = 0
    const h = harness({ control: { channel: async () => { calls++; throw error } } })
    await tick()
    const heard: SignalToViewer[] = []
    h.client.onSession('s1', (m) => { heard.push(m) })
    h.client.onSession('s2', (m) => { heard.push(m) })
    h.client.sendToDevice('front-door', 's1', offer('s1'))
    h.client.sendToDevice('front-door', 's2', offer('s2'))
    await tick()
    assert.equal(heard.length, 2)
    for (const m of heard) {
      assert.equal(m.type, 'bye')
      assert.equal(m.type === 'bye' && m.reason, 'failed')
      assert.match(m.type === 'bye' ? m.message ?? '' : '', expected)
    }
    h.client.sendToDevice('front-door', 's1', offer('s1'))
    await tick()
    assert.equal(calls, 2, 'a failure is not cached')
    await h.client.close()
  }
})

test('signaling: the WebSocket refused before open, or never opening, fails the offer; closing before the answer too', async () => {
  const h = harness({ openTimeoutMs: 50 })
  await tick()
  const heard: SignalToViewer[] = []
  h.client.onSession('s1', (m) => { heard.push(m) })
  h.client.sendToDevice('front-door', 's1', offer('s1'))
  await tick()
  h.signalings[0]!.emit('error', new Error('WebSocket error'))
  await tick()
  assert.match(heard[0]?.type === 'bye' ? heard[0].message ?? '' : '', /refused or could not be opened/)

  h.client.onSession('s2', (m) => { heard.push(m) })
  h.client.sendToDevice('front-door', 's2', offer('s2'))
  await new Promise((resolve) => setTimeout(resolve, 80))
  assert.match(heard[1]?.type === 'bye' ? heard[1].message ?? '' : '', /did not open in time/)
  assert.ok(h.signalings[1]!.closed >= 1, 'the stuck connection is closed')

  h.client.onSession('s3', (m) => { heard.push(m) })
  h.client.onSession('s4', (m) => { heard.push(m) })
  h.client.sendToDevice('front-door', 's3', offer('s3'))
  h.client.sendToDevice('front-door', 's4', offer('s4'))
  await tick()
  const sig = h.signalings[2]!
  sig.emit('open')
  sig.fromDevice(answer('s4'))
  sig.emit('close')
  await tick()
  assert.deepEqual(heard.slice(2).map((m) => `${m.type}:${m.sessionId}`), ['answer:s4', 'bye:s3'], 'only the unanswered session fails')
  await h.client.close()
})

test('signaling: a hang-up before the channel opened sends neither the offer nor the bye', async () => {
  const h = harness()
  await tick()
  h.client.sendToDevice('front-door', 's1', offer('s1'))
  h.client.sendToDevice('front-door', 's1', { type: 'bye', sessionId: 's1', reason: 'hang-up' })
  await tick()
  h.signalings[0]!.emit('open')
  assert.deepEqual(h.signalings[0]!.sent, [])
  await h.client.close()
})

test('signaling: a ring warms the channel and the TURN servers; ICE servers in the browser shape, cached', async () => {
  const h = harness()
  await tick()
  h.mqtts[0]!.up()
  h.mqtts[0]!.deliver('things/thing-back/ring', ring('back-door'))
  await tick()
  assert.equal(h.signalings.length, 1, 'opened on the ring')
  assert.equal(h.signalings[0]!.config.channelARN, ARN('chan-back'))
  const servers = await h.client.iceServers('back-door')
  assert.deepEqual(servers, [
    { urls: 'stun:stun.kinesisvideo.eu-west-1.amazonaws.com:443' },
    { urls: ['turn:1.2.3.4:443?transport=udp', 'turns:1.2.3.4:443?transport=tcp'], username: 'u', credential: 'p' }
  ])
  await h.client.iceServers('back-door')
  assert.deepEqual(h.asked, ['channel:chan-back', 'ice:v1'], 'the control plane is asked once per channel')
  assert.deepEqual(await h.client.iceServers('nobody'), [])
  await h.client.close()
})

test('signaling: ICE server failures resolve to [] and are logged', async () => {
  const h = harness({ control: { iceServers: async () => { throw Object.assign(new Error('x'), { name: 'ExpiredTokenException', $metadata: { httpStatusCode: 403 } }) } } })
  await tick()
  assert.deepEqual(await h.client.iceServers('front-door'), [])
  assert.ok(h.logs.some((l) => /session token has expired/.test(l)))
  await h.client.close()
})

test('signaling: an idle connection is closed, and the next call opens a new one', async () => {
  const h = harness({ idleMs: 30 })
  await tick()
  h.client.onSession('s1', () => {})
  h.client.sendToDevice('front-door', 's1', offer('s1'))
  await tick()
  const first = h.signalings[0]!
  first.emit('open')
  await new Promise((resolve) => setTimeout(resolve, 60))
  assert.equal(first.closed, 0, 'kept while an offer waits for its answer')
  first.fromDevice(answer('s1'))
  await new Promise((resolve) => setTimeout(resolve, 60))
  assert.equal(first.closed, 0, 'kept while the call is in progress: the doorbell\'s bye must still arrive')
  h.client.sendToDevice('front-door', 's1', { type: 'bye', sessionId: 's1', reason: 'hang-up' })
  await new Promise((resolve) => setTimeout(resolve, 60))
  assert.equal(first.closed, 1, 'closed once idle')
  h.client.sendToDevice('front-door', 's2', offer('s2'))
  await tick()
  assert.equal(h.signalings.length, 2)
  await h.client.close()
})

test('signaling: a connection closed under a call in progress is opened again, so the doorbell\'s bye still arrives', async () => {
  const h = harness()
  await tick()
  const heard: SignalToViewer[] = []
  h.client.onSession('s1', (m) => { heard.push(m) })
  h.client.sendToDevice('front-door', 's1', offer('s1'))
  await tick()
  const first = h.signalings[0]!
  first.emit('open')
  await tick()
  first.fromDevice(answer('s1'))
  first.emit('close')
  await tick()
  assert.equal(h.signalings.length, 2, 'opened again')
  const second = h.signalings[1]!
  second.emit('open')
  second.fromDevice({ type: 'bye', sessionId: 's1', reason: 'device-ended' })
  await tick()
  assert.deepEqual(heard.map((m) => m.type), ['answer', 'bye'])
  await h.client.close()
})

test('signaling: a live preview gives its KVS connection back as soon as it ends (the doorbell\'s bye, or a dismiss); an answered call keeps it until idle', async () => {
  const preview = (sessionId: string): SignalToDevice => ({ ...offer(sessionId), preview: true } as SignalToDevice)
  const h = harness()
  await tick()
  const heard: SignalToViewer[] = []
  for (const id of ['p1', 'p2', 'p3', 'c1']) h.client.onSession(id, (m) => { heard.push(m) })

  // Ended by the doorbell (answered elsewhere): closed at once, after the bye reached the session.
  h.client.sendToDevice('front-door', 'p1', preview('p1'))
  await tick()
  const first = h.signalings[0]!
  first.emit('open')
  first.fromDevice(answer('p1'))
  await tick()
  assert.equal(first.closed, 0, 'kept while the preview is up')
  first.fromDevice({ type: 'bye', sessionId: 'p1', reason: 'device-ended', message: 'Answered on Hall' })
  await tick()
  assert.deepEqual(heard.map((m) => m.type), ['answer', 'bye'])
  assert.equal(first.closed, 1, 'the KVS slot is given back at once')
  first.fromDevice({ type: 'bye', sessionId: 'p1', reason: 'device-ended' })
  assert.equal(heard.length, 2, 'nothing more is heard on the closed connection')

  // Dismissed on this screen: the bye goes out, then the connection closes; not while another session is up.
  h.client.sendToDevice('front-door', 'p2', preview('p2'))
  h.client.sendToDevice('front-door', 'c1', offer('c1'))
  await tick()
  const second = h.signalings[1]!
  second.emit('open')
  second.fromDevice(answer('p2'))
  second.fromDevice(answer('c1'))
  h.client.sendToDevice('front-door', 'p2', { type: 'bye', sessionId: 'p2', reason: 'hang-up' })
  await tick()
  assert.equal(second.sent.length, 3, 'both offers and the bye went out')
  assert.equal(second.closed, 0, 'kept: another session with the doorbell is up')
  h.client.sendToDevice('front-door', 'c1', { type: 'bye', sessionId: 'c1', reason: 'hang-up' })
  await tick()
  assert.equal(second.sent.length, 4)
  assert.equal(second.closed, 1, 'closed once nothing uses it')

  // A call that was never a preview keeps its connection until idle, as before.
  h.client.onSession('c2', () => {})
  h.client.sendToDevice('front-door', 'c2', offer('c2'))
  await tick()
  const third = h.signalings[2]!
  third.emit('open')
  third.fromDevice(answer('c2'))
  third.fromDevice({ type: 'bye', sessionId: 'c2', reason: 'device-ended' })
  await tick()
  assert.equal(third.closed, 0)
  await h.client.close()
})

test('signaling: a preview ended before its channel opened sends nothing and gives the connection back once it opens', async () => {
  const h = harness()
  await tick()
  h.client.sendToDevice('front-door', 'p1', { ...offer('p1'), preview: true } as SignalToDevice)
  h.client.sendToDevice('front-door', 'p1', { type: 'bye', sessionId: 'p1', reason: 'hang-up' })
  await tick()
  h.signalings[0]!.emit('open')
  await tick()
  assert.deepEqual(h.signalings[0]!.sent, [])
  assert.equal(h.signalings[0]!.closed, 1, 'the KVS slot is not held until the idle close')
  await h.client.close()
})

test('signaling: a preview whose connection KVS refused (its 10 viewers taken) says live preview is unavailable; a call says what to check; a preview on bad credentials says that', async () => {
  const preview = (sessionId: string): SignalToDevice => ({ ...offer(sessionId), preview: true } as SignalToDevice)
  const h = harness()
  await tick()
  const heard: SignalToViewer[] = []
  h.client.onSession('p1', (m) => { heard.push(m) })
  h.client.onSession('c1', (m) => { heard.push(m) })
  h.client.sendToDevice('front-door', 'p1', preview('p1'))
  h.client.sendToDevice('front-door', 'c1', offer('c1'))
  await tick()
  h.signalings[0]!.emit('error', new Error('WebSocket error'))
  await tick()
  const said = Object.fromEntries(heard.map((m) => [m.sessionId, m.type === 'bye' ? m.message : '']))
  assert.equal(said.p1, PREVIEW_UNAVAILABLE)
  assert.match(said.c1 ?? '', /refused or could not be opened: check the credentials/)
  await h.client.close()

  const bad = harness({ control: { channel: async () => { throw Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }) } } })
  await tick()
  const heard2: SignalToViewer[] = []
  bad.client.onSession('p2', (m) => { heard2.push(m) })
  bad.client.sendToDevice('front-door', 'p2', preview('p2'))
  await tick()
  assert.match(heard2[0]?.type === 'bye' ? heard2[0].message ?? '' : '', /may not use the signaling channel/)
  await bad.client.close()
})

test('close: afterwards nothing is emitted, nothing is sent, nothing throws', async () => {
  const h = harness()
  await tick()
  const m = h.mqtts[0]!
  m.up()
  const heard: SignalToViewer[] = []
  h.client.onSession('s1', (x) => { heard.push(x) })
  h.client.sendToDevice('front-door', 's1', offer('s1'))
  await tick()
  const sig = h.signalings[0]!
  sig.emit('open')
  const eventsBefore = h.events.length
  await h.client.close()
  assert.ok(m.ended)
  assert.ok(sig.closed >= 1)
  m.deliver('things/thing-front/ring', ring('front-door'))
  m.down()
  sig.fromDevice(answer('s1'))
  h.client.sendToDevice('front-door', 's2', offer('s2'))
  await tick()
  assert.equal(h.events.length, eventsBefore)
  assert.deepEqual(heard, [])
  assert.equal(sig.sent.length, 1)
  assert.equal(h.client.connected, false)
})

test('invalid config or credentials: nothing starts, offers fail with the reason', async () => {
  const logs: string[] = []
  const client = new CloudClient({ config, credentials: { ...credentials, accessKeyId: 'nope' }, viewerId: 'v1', log: (_l, m) => { logs.push(m) }, createMqtt: () => { throw new Error('must not connect') } })
  assert.match(client.problem ?? '', /AWS credentials are not valid/)
  const heard: SignalToViewer[] = []
  client.onSession('s1', (m) => { heard.push(m) })
  client.sendToDevice('front-door', 's1', offer('s1'))
  await tick()
  assert.match(heard[0]?.type === 'bye' ? heard[0].message ?? '' : '', /not valid/)
  assert.deepEqual(await client.iceServers('front-door'), [])
  await client.close()
})

test('describeCloudError: clock skew and unknown statuses are said plainly', () => {
  const d = { channelName: 'c' }
  assert.match(describeCloudError(Object.assign(new Error('Signature expired: 20250101T000000Z is now earlier than ...'), { name: 'InvalidSignatureException', $metadata: { httpStatusCode: 403 } }), d, 'eu-west-1'), /clock/)
  assert.match(describeCloudError(Object.assign(new Error('boom'), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } }), d, 'eu-west-1'), /InternalFailure 500: boom/)
  assert.match(describeCloudError(Object.assign(new Error('x'), { name: 'TimeoutError' }), d, 'eu-west-1'), /did not answer in time/)
})
