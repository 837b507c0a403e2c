import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createServer, type Server } from 'node:https'
import { createServer as createTcpServer, type Socket } from 'node:net'
import mqtt from 'mqtt'
import { DeviceCloudConfig, memoryLogger, toKvsPayload, type SignalToDevice } from '@doorbell/core'
import { CloudLink } from '../src/paths/cloud/cloudLink'
import type { ChannelInfo, KvsControlPlane, SignalingClientLike } from '../src/paths/cloud/kvsMaster'
import { freePort, makePki, mosquitto, until, type Mosquitto, type TestPki } from './cloudFixtures'

const THING = 'doorbell-cloudlink'
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'

class FakeClient extends EventEmitter implements SignalingClientLike {
  sent: Array<[unknown, string | undefined]> = []
  open (): void { setImmediate(() => this.emit('open')) }
  close (): void { setImmediate(() => this.emit('close')) }
  sendSdpAnswer (payload: unknown, to?: string): void { this.sent.push([payload, to]) }
}

const channel: ChannelInfo = { channelARN: 'arn:aws:kinesisvideo:eu-west-1:123456789012:channel/d/1', wssEndpoint: 'wss://x', httpsEndpoint: 'https://x' }
const control: KvsControlPlane = {
  channel: async () => channel,
  iceServers: async () => [{ server: { urls: ['turn:10.0.0.1:3478'], username: 'u', credential: 'p' }, ttlSeconds: 300 }],
  clockOffsetMs: 0,
  destroy: () => {}
}

describe('CloudLink', () => {
  let pki: TestPki
  let broker: Mosquitto
  /** Stands in for the IoT credentials provider. */
  let provider: Server
  let providerEndpoint: string
  before(async () => {
    pki = makePki()
    broker = await mosquitto(pki)
    provider = createServer({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requestCert: true }, (_req, res) => {
      res.writeHead(200).end(JSON.stringify({ credentials: { accessKeyId: 'ASIATESTKEY00000001', secretAccessKey: 'secret-access-key-xxxxxxxxxx', sessionToken: 'token', expiration: new Date(Date.now() + 3_600_000).toISOString() } }))
    })
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve))
    providerEndpoint = `127.0.0.1:${(provider.address() as { port: number }).port}`
  })
  after(async () => {
    await new Promise((resolve) => provider.close(resolve))
    await broker.stop()
    pki.cleanup()
  })

  const config = (o: Partial<DeviceCloudConfig> = {}): DeviceCloudConfig => {
    const c = pki.client(THING)
    return DeviceCloudConfig.parse({
      region: 'eu-west-1',
      thingName: THING,
      iotEndpoint: `127.0.0.1:${broker.port}`,
      certFile: c.certFile,
      keyFile: c.keyFile,
      caFile: pki.caFile,
      credentialsEndpoint: '127.0.0.1:1',
      roleAlias: 'doorbell-role',
      channelName: 'doorbell-channel',
      ...o
    })
  }

  test('starts without the cloud: start() resolves at once, nothing connected, stop() is clean', async () => {
    const closed = await freePort()
    const lines: string[] = []
    const link = new CloudLink(config({ iotEndpoint: `127.0.0.1:${closed}`, credentialsEndpoint: `127.0.0.1:${closed}`, kvsEndpoint: `https://127.0.0.1:${closed}` }), { deviceId: 'frontdoor', log: memoryLogger(lines, 'cloud') })
    await link.start()
    assert.equal(link.path, 'cloud')
    assert.deepEqual(link.connected, { iot: false, kvs: false })
    // Sending never throws while the cloud is away.
    link.publishRing({ type: 'ring', deviceId: 'frontdoor', deviceName: 'Front door', ringId: 'r1', at: Date.now(), count: 1 })
    link.sendToViewer('viewer-a', 's1', { type: 'bye', sessionId: 's1', reason: 'device-ended' })
    await until('a KVS failure logged', () => (lines.some((l) => l.includes('[cloud/kvs]') && l.includes('could not prepare')) ? true : undefined), 5000)
    assert.ok(lines.some((l) => l.includes('could not reach the AWS IoT credentials provider')), lines.join('\n'))
    await link.stop()
  })

  test('start() does not wait for the cloud: it resolves while every endpoint holds its connection unanswered', { timeout: 20_000 }, async () => {
    // Accepts and never answers: a start() that waited for any of them would never resolve (the
    // event, not a wall-clock window, which a loaded machine stretches).
    const sockets = new Set<Socket>()
    const silent = createTcpServer((socket) => { sockets.add(socket) })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const at = `127.0.0.1:${(silent.address() as { port: number }).port}`
    const link = new CloudLink(config({ iotEndpoint: at, credentialsEndpoint: at, kvsEndpoint: `https://${at}` }), { deviceId: 'frontdoor', log: memoryLogger([], 'cloud') })
    try {
      await link.start()
      assert.deepEqual(link.connected, { iot: false, kvs: false })
    } finally {
      await link.stop()
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => silent.close(resolve))
    }
  })

  test('rejects start() with a clear error when the certificate is missing', async () => {
    const link = new CloudLink(config({ certFile: '/nonexistent/thing.crt' }), { deviceId: 'frontdoor', log: memoryLogger([], 'cloud') })
    await assert.rejects(link.start(), /could not read the thing's certificate/)
    await link.stop()
  })

  test('events go to IoT Core, signals come and go over KVS, ICE servers from KVS', async () => {
    const clients: FakeClient[] = []
    const link = new CloudLink(config({ kvsEndpoint: 'https://127.0.0.1:9', credentialsEndpoint: providerEndpoint }), {
      deviceId: 'frontdoor',
      log: memoryLogger([], 'cloud'),
      kvs: { controlPlane: control, createSignalingClient: () => { const c = new FakeClient(); clients.push(c); return c } }
    })
    const watcherCert = pki.client('watcher')
    const watcher = await mqtt.connectAsync(`mqtts://127.0.0.1:${broker.port}`, { cert: watcherCert.cert, key: watcherCert.key, ca: pki.ca, clientId: 'cloudlink-watcher' })
    const got: Array<{ topic: string, payload: any }> = []
    watcher.on('message', (topic, payload) => { got.push({ topic, payload: JSON.parse(payload.toString()) }) })
    await watcher.subscribeAsync(`things/${THING}/#`, { qos: 1 })
    try {
      const signals: Array<[string, SignalToDevice]> = []
      link.onSignal((viewerId, m) => { signals.push([viewerId, m]) })
      await link.start()
      await until('both connected', () => (link.connected.iot && link.connected.kvs ? true : undefined), 5000)
      link.publishRing({ type: 'ring', deviceId: 'frontdoor', deviceName: 'Front door', ringId: 'r9', at: Date.now(), count: 1 })
      const ring = await until('the ring', () => got.find((g) => g.topic === `things/${THING}/ring`))
      assert.equal(ring.payload.ringId, 'r9')

      clients[0]!.emit('sdpOffer', toKvsPayload({ type: 'offer', sessionId: 's1', viewerId: 'viewer-a', viewerName: 'Alice', sdp: SDP, credential: `p.${'A'.repeat(86)}`, proof: `p.${'A'.repeat(86)}` }), 'viewer-a')
      assert.equal(signals.length, 1)
      assert.equal(signals[0]![0], 'viewer-a')
      link.sendToViewer('viewer-a', 's1', { type: 'answer', sessionId: 's1', sdp: SDP })
      assert.equal(clients[0]!.sent.length, 1)
      assert.equal(clients[0]!.sent[0]![1], 'viewer-a')
      assert.deepEqual(link.iceServers(), [{ urls: ['turn:10.0.0.1:3478'], username: 'u', credential: 'p' }])
    } finally {
      await link.stop()
      await watcher.endAsync()
    }
    assert.deepEqual(link.connected, { iot: false, kvs: false })
    const presence = got.filter((g) => g.topic.endsWith('/presence')).map((g) => g.payload.online)
    assert.deepEqual(presence, [true, false])
  })
})
