import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { IClientOptions } from 'mqtt'
import { describeStockReply, type StockDoorbell } from '@doorbell/core'
import { StockDoorbells, type StockRing } from '../src/lib/paths/cloud/stockDoorbells'
import { StockCall, answerTakesAudio, type StockPeerConnection } from '../src/lib/paths/cloud/stockCall'
import { loadStockDoorbells, saveStockDoorbells, validateStockForm, emptyStockForm, defaultRingTopic, STOCK_DOORBELLS_KEY } from '../src/lib/paths/cloud/stockSettings'
import type { SignalingConfig } from '../src/lib/paths/cloud/aws'

const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }
const ARN = 'arn:aws:kinesisvideo:eu-west-1:123456789012:channel/seed-door/1700000000000'
const seed: StockDoorbell = { id: 'kvs-seed0001', name: 'Seed door', region: 'eu-west-1', channel: 'seed-door', iotEndpoint: 'a1b2c3-ats.iot.eu-west-1.amazonaws.com', ringTopic: 'doorbell/seed-door/ring' }
const other: StockDoorbell = { ...seed, id: 'kvs-back0001', name: 'Back', channel: ARN.replace('seed-door', 'back-door'), ringTopic: 'doorbell/back-door/ring' }

class FakeMqtt extends EventEmitter {
  connected = false
  subscribed: string[] = []
  constructor (readonly url: string, readonly options: IClientOptions) { super() }
  subscribe (topics: string[], _o: { qos: 1 }, cb: (err: Error | null, granted?: Array<{ topic: string, qos: number }>) => void): void {
    this.subscribed.push(...topics)
    cb(null, topics.map((topic) => ({ topic, qos: 1 })))
  }
  end (_f: boolean, _o: object, cb: () => void): void { this.connected = false; cb() }
  up (): void { this.connected = true; this.emit('connect') }
  deliver (topic: string, body: unknown): void { this.emit('message', topic, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))) }
}

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)) }

test('rings: the seed\'s payload on each doorbell\'s topic rings it; malformed ones are ignored with the reason', async () => {
  const mqtts: FakeMqtt[] = []
  const logs: string[] = []
  const client = new StockDoorbells({
    doorbells: [seed, other],
    credentials,
    viewerId: 'v1',
    log: (_l, m) => { logs.push(m) },
    createMqtt: (url, o) => { const m = new FakeMqtt(url, o); mqtts.push(m); return m as never }
  })
  const rings: StockRing[] = []
  const links: boolean[] = []
  client.on('ring', (r) => { rings.push(r) })
  client.on('link', (up) => { links.push(up) })
  await settle()
  assert.equal(mqtts.length, 1, 'one IoT connection for one endpoint')
  const m = mqtts[0]!
  m.up()
  assert.deepEqual(m.subscribed.sort(), ['doorbell/back-door/ring', 'doorbell/seed-door/ring'])
  assert.deepEqual(links, [true])

  m.deliver('doorbell/seed-door/ring', { event: 'ring', channel: 'seed-door', timestamp: 1733400000 })
  m.deliver('doorbell/back-door/ring', { event: 'ring', channel: 'back-door', timestamp: 1733400001 })
  assert.deepEqual(rings.map((r) => [r.doorbellId, r.at]), [['kvs-seed0001', 1733400000000], ['kvs-back0001', 1733400001000]])

  const bad: Array<[string, unknown, RegExp]> = [
    ['doorbell/seed-door/ring', 'ring!', /not JSON/],
    ['doorbell/seed-door/ring', { event: 'ring', channel: 'seed-door', timestamp: 1733400000000 }, /malformed ring .*timestamp/],
    ['doorbell/seed-door/ring', { event: 'ring', channel: 'seed-door' }, /malformed ring .*timestamp/],
    ['doorbell/seed-door/ring', { event: 'ring', channel: 'back-door', timestamp: 1733400000 }, /names the channel back-door/],
    ['doorbell/seed-door/ring', 'x'.repeat(2000), /not the seed's ring/],
    ['doorbell/else/ring', { event: 'ring', channel: 'else', timestamp: 1733400000 }, /no KVS doorbell rings there/]
  ]
  for (const [topic, body, why] of bad) {
    const before = logs.length
    m.deliver(topic, body)
    assert.match(logs.slice(before).join('\n'), why)
  }
  assert.equal(rings.length, 2, 'nothing malformed rang')
  assert.ok(client.call('kvs-nope') === null)
  await client.close()
})

class FakeSignaling extends EventEmitter {
  offers: unknown[] = []
  candidates: unknown[] = []
  constructor (readonly config: SignalingConfig) { super() }
  open (): void { queueMicrotask(() => this.emit('open')) }
  close (): void {}
  sendSdpOffer (p: unknown): void { this.offers.push(p) }
  sendIceCandidate (c: unknown): void { this.candidates.push(c) }
}

class FakePc {
  transceivers: Array<{ kind: string, direction: string }> = []
  channels: Array<{ label: string, readyState: string, sent: string[], send: (t: string) => void, onmessage: ((e: { data: string }) => void) | null }> = []
  remote: unknown = null
  added: unknown[] = []
  connectionState = 'new' as RTCPeerConnectionState
  localDescription = null as RTCSessionDescription | null
  onicecandidate: StockPeerConnection['onicecandidate'] = null
  ontrack: StockPeerConnection['ontrack'] = null
  onconnectionstatechange: (() => void) | null = null
  constructor (readonly config: RTCConfiguration) {}
  addTransceiver (kind: string, init: { direction: string }) { this.transceivers.push({ kind, direction: init.direction }); return { sender: { kind } } as never }
  createDataChannel (label: string) {
    const c = { label, readyState: 'open', sent: [] as string[], send (t: string) { this.sent.push(t) }, onmessage: null }
    this.channels.push(c)
    return c as never
  }
  async createOffer () { return { type: 'offer', sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n' } as never }
  async setLocalDescription (d: RTCSessionDescriptionInit) { this.localDescription = d as RTCSessionDescription }
  async setRemoteDescription (d: RTCSessionDescriptionInit) { this.remote = d }
  async addIceCandidate (c: RTCIceCandidateInit) { this.added.push(c) }
  close () { this.connectionState = 'closed' }
}

test('a stock call: a plain offer, trickle ICE both ways (early candidates wait for the answer), talk when the answer takes audio, OPEN_DOOR on "commands"; bad input is dropped and the call goes on', async () => {
  let signaling: FakeSignaling | null = null
  let pc: FakePc | null = null
  const logs: string[] = []
  const call = new StockCall({
    doorbell: { ...seed, channel: ARN },
    credentials,
    clientId: 'viewer-v1-abc',
    log: (_l, m) => { logs.push(m) },
    controlPlane: {
      channel: async (name) => { assert.equal(name, 'seed-door', 'an ARN names its channel'); return { channelARN: ARN, wssEndpoint: 'wss://kvs.example', httpsEndpoint: 'https://kvs.example' } },
      iceServers: async () => ({ servers: [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'p' }], ttlSeconds: 300 })
    },
    createSignalingClient: (c) => { signaling = new FakeSignaling(c); return signaling as never },
    createPeerConnection: (c) => { pc = new FakePc(c); return pc as never }
  })
  const events: string[] = []
  call.on('connected', () => { events.push('connected') })
  call.on('talk', () => { events.push('talk') })
  call.on('reply', (t) => { events.push(`reply ${t}`) })
  call.on('failed', (m) => { events.push(`failed ${m}`) })
  call.start()
  await settle()
  assert.ok(signaling && pc)
  const s = signaling as FakeSignaling
  const p = pc as FakePc
  assert.equal(s.config.role, 'VIEWER')
  assert.equal(s.config.channelARN, ARN)
  assert.deepEqual((p.config.iceServers ?? []).map((i) => i.urls), ['stun:stun.kinesisvideo.eu-west-1.amazonaws.com:443', ['turn:127.0.0.1:3478']], 'KVS\'s STUN of the region, then its TURN')
  assert.deepEqual(p.transceivers, [{ kind: 'video', direction: 'recvonly' }, { kind: 'audio', direction: 'sendrecv' }])
  assert.equal(p.channels[0]!.label, 'commands')
  assert.equal(s.offers.length, 1)
  assert.deepEqual(Object.keys(s.offers[0] as object).sort(), ['sdp', 'type'], 'a bare session description, no envelope')

  // Our candidates trickle out.
  p.onicecandidate!({ candidate: { toJSON: () => ({ candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 }) } })
  assert.equal(s.candidates.length, 1)
  // The master's candidates: one before the answer waits; a malformed one is dropped with why.
  s.emit('iceCandidate', { candidate: 'candidate:2 1 udp 2122260223 127.0.0.1 50001 typ host', sdpMid: '0', sdpMLineIndex: 0 })
  s.emit('iceCandidate', { candidate: 'garbage', sdpMid: '0' })
  assert.match(logs.join('\n'), /dropped a malformed ICE candidate/)
  assert.equal(p.added.length, 0)
  // Our own envelope on this channel is not the stock protocol: dropped with why.
  s.emit('sdpAnswer', '{"type":"answer","sessionId":"s1","sdp":"v=0"}')
  assert.match(logs.join('\n'), /not a plain SDP answer/)
  s.emit('sdpAnswer', { type: 'answer', sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n' })
  await settle()
  assert.deepEqual(p.remote, { type: 'answer', sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n' })
  assert.equal(p.added.length, 1, 'the early candidate is added after the answer')
  s.emit('iceCandidate', { candidate: 'candidate:3 1 udp 1 127.0.0.1 50002 typ host', sdpMid: '0', sdpMLineIndex: 0 })
  assert.equal(p.added.length, 2)
  assert.ok(events.includes('talk'), 'the answer takes our audio')
  p.connectionState = 'connected'
  p.onconnectionstatechange!()
  assert.ok(events.includes('connected'))

  assert.equal(call.openDoor(), true)
  assert.deepEqual(p.channels[0]!.sent, ['{"command":"OPEN_DOOR"}'])
  p.channels[0]!.onmessage!({ data: '{"result":"refused","message":"no"}' })
  assert.ok(events.includes('reply {"result":"refused","message":"no"}'))
  assert.ok(!events.some((e) => e.startsWith('failed')), 'bad input did not end the call')
  call.close()
  assert.equal(call.openDoor(), false)
})

test('what an answer and a reply say', () => {
  assert.equal(answerTakesAudio('v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n'), true)
  assert.equal(answerTakesAudio('v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n'), false)
  assert.equal(answerTakesAudio('v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\n'), false)
  assert.equal(answerTakesAudio('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'), false)
  assert.equal(describeStockReply('{"result":"opened","message":"DOOR UNLOCKED"}'), 'The doorbell says: DOOR UNLOCKED')
  assert.match(describeStockReply('{"result":"refused","message":"off"}'), /refused: off/)
  assert.equal(describeStockReply('ok'), 'The doorbell says: ok')
})

test('settings: the form defaults the ring topic, names bad fields, refuses a channel twice; storage keeps only valid entries', () => {
  assert.equal(defaultRingTopic(''), 'doorbell/<channel>/ring')
  assert.equal(defaultRingTopic(ARN), 'doorbell/seed-door/ring')
  const f = { ...emptyStockForm(), name: 'Seed', region: 'eu-west-1', channel: 'seed-door', iotEndpoint: 'a1b2c3-ats.iot.eu-west-1.amazonaws.com' }
  const ok = validateStockForm(f, [], 'kvs-abcd1234')
  assert.ok(ok.ok)
  assert.equal(ok.ok && ok.value.ringTopic, 'doorbell/seed-door/ring')
  const bad = validateStockForm({ ...f, region: 'nowhere', ringTopic: 'doorbell/#', channel: 'a b' })
  assert.ok(!bad.ok)
  assert.deepEqual(Object.keys(!bad.ok ? bad.errors : {}).sort(), ['channel', 'region', 'ringTopic'])
  const twice = validateStockForm(f, [seed])
  assert.ok(!twice.ok && /already added/.test(twice.errors.channel ?? ''))

  const store = new Map<string, string>()
  const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => { store.set(k, v) }, removeItem: (k: string) => { store.delete(k) } }
  assert.deepEqual(saveStockDoorbells([seed], storage), { ok: true })
  assert.deepEqual(loadStockDoorbells(storage), { doorbells: [seed], problem: null })
  const refused = saveStockDoorbells([{ ...seed, region: 'x' }], storage)
  assert.ok(!refused.ok)
  assert.deepEqual(loadStockDoorbells(storage).doorbells, [seed], 'nothing changed')
  store.set(STOCK_DOORBELLS_KEY, JSON.stringify({ v: 1, doorbells: [seed, { ...seed, id: 'bad' }] }))
  const loaded = loadStockDoorbells(storage)
  assert.deepEqual(loaded.doorbells, [seed])
  assert.match(loaded.problem ?? '', /stored KVS doorbell 2 ignored/)
  store.set(STOCK_DOORBELLS_KEY, '{nope')
  assert.match(loadStockDoorbells(storage).problem ?? '', /not JSON/)
})

test('a stock call whose offer is over KVS\'s 10 KB fails with a clear message and sends nothing', async () => {
  let signaling: FakeSignaling | null = null
  const failed: string[] = []
  const call = new StockCall({
    doorbell: seed,
    credentials,
    clientId: 'viewer-v1-big',
    log: () => {},
    controlPlane: {
      channel: async () => ({ channelARN: ARN, wssEndpoint: 'wss://kvs.example', httpsEndpoint: 'https://kvs.example' }),
      iceServers: async () => ({ servers: [], ttlSeconds: 300 })
    },
    createSignalingClient: (c) => { signaling = new FakeSignaling(c); return signaling as never },
    createPeerConnection: (c) => {
      const pc = new FakePc(c)
      pc.createOffer = async () => ({ type: 'offer', sdp: `v=0\r\n${'a=x-padding:0123456789abcdef\r\n'.repeat(400)}` }) as never
      return pc as never
    }
  })
  call.on('failed', (m) => { failed.push(m) })
  call.start()
  await settle()
  assert.deepEqual(failed, ['the offer is too large for the cloud signaling channel'])
  assert.equal((signaling as FakeSignaling | null)?.offers.length, 0)
})
