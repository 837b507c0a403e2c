import { test } from 'node:test'
import { CREDENTIAL } from './fixtures'
import assert from 'node:assert/strict'
import {
  AwsCredentials, DeviceConfig, HubConfig, KVS_PAYLOAD_MAX, ViewerCloudConfig, cloudTopics, decodeKvsToDevice, decodeKvsToViewer,
  kvsPayloadSize, parseCloudTopic, parseConfig, toKvsPayload, type SignalToDevice
} from '../src/index'

const offer: SignalToDevice = { type: 'offer', sessionId: 's1', viewerId: 'v1', viewerName: 'Küche 🚪', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n', credential: CREDENTIAL, proof: CREDENTIAL }

test('a KVS payload is ASCII JSON text that btoa takes, and decodes back to the same message', () => {
  const payload = toKvsPayload(offer)
  assert.match(payload, /^[\x20-\x7e]*$/)
  // What the SDK does with it on each side.
  const wire = btoa(JSON.stringify(payload))
  const back = JSON.parse(atob(wire)) as unknown
  assert.deepEqual(decodeKvsToDevice(back), { ok: true, message: offer })
  assert.equal(kvsPayloadSize(payload), wire.length)
})

test('what is not one of our messages is refused with a reason, never thrown', () => {
  for (const payload of [{ type: 'offer', sdp: 'v=0' }, 'not json', '{"type":"offer"}', 42, null, JSON.stringify({ ...offer, sessionId: '../x' })]) {
    const r = decodeKvsToDevice(payload)
    assert.equal(r.ok, false)
    if (!r.ok) assert.ok(r.error.length > 0)
  }
  assert.equal(decodeKvsToViewer(toKvsPayload({ type: 'answer', sessionId: 's1', sdp: offer.sdp })).ok, true)
  assert.equal(decodeKvsToViewer(toKvsPayload(offer)).ok, false, 'an offer is not something a viewer receives')
})

test('the payload limit is what KVS counts', () => {
  const big = toKvsPayload({ ...offer, sdp: `${offer.sdp}${'a=x\r\n'.repeat(2000)}` })
  assert.ok(kvsPayloadSize(big) > KVS_PAYLOAD_MAX)
  assert.ok(kvsPayloadSize(toKvsPayload(offer)) < KVS_PAYLOAD_MAX)
})

test('IoT topics are per thing, and only ours parse', () => {
  assert.deepEqual(cloudTopics.events('doorbell-home-front'), ['things/doorbell-home-front/ring', 'things/doorbell-home-front/state', 'things/doorbell-home-front/presence', 'things/doorbell-home-front/calls', 'things/doorbell-home-front/snapshot'])
  assert.deepEqual(parseCloudTopic('things/doorbell-home-front/ring'), { thing: 'doorbell-home-front', kind: 'ring' })
  assert.deepEqual(parseCloudTopic('things/doorbell-home-front/snapshot'), { thing: 'doorbell-home-front', kind: 'snapshot' })
  for (const t of ['things/a/b/ring', 'things/+/ring', 'things/x/audit', 'doorbell/home/front/ring', 'things//ring']) assert.equal(parseCloudTopic(t), null, t)
})

test('cloud configs: a good one parses; a bad one names each problem', () => {
  const device = parseConfig(DeviceConfig, {
    hubUrl: 'mqtt://127.0.0.1:1883',
    cloud: { region: 'eu-west-1', thingName: 'doorbell-home-front', iotEndpoint: 'abc-ats.iot.eu-west-1.amazonaws.com', certFile: 'c.pem', keyFile: 'k.pem', credentialsEndpoint: 'xyz.credentials.iot.eu-west-1.amazonaws.com', roleAlias: 'doorbell-home-front-kvs', channelName: 'doorbell-home-front' }
  }, 'test')
  assert.equal(device.cloud?.renewAfterSeconds, 3300)
  assert.throws(() => parseConfig(DeviceConfig, { hubUrl: 'mqtt://h', cloud: { region: 'Europe', thingName: 'a b', iotEndpoint: 'h', certFile: '', keyFile: 'k', credentialsEndpoint: 'h', roleAlias: 'r', channelName: 'c' } }, 'test'),
    (e: Error) => /cloud\.region: an AWS region/.test(e.message) && /cloud\.thingName/.test(e.message) && /cloud\.certFile/.test(e.message))
  const viewer = { region: 'us-east-1', iotEndpoint: '127.0.0.1:8443', iotWssUrl: 'wss://127.0.0.1:8443/mqtt', kvsEndpoint: 'https://127.0.0.1:9443', devices: [{ deviceId: 'front-door', thingName: 'doorbell-home-front-door', channelName: 'doorbell-home-front-door' }] }
  assert.equal(ViewerCloudConfig.safeParse(viewer).success, true)
  assert.equal(parseConfig(HubConfig, { host: '127.0.0.1', tls: 'off', cloud: viewer }, 'test').cloud?.devices.length, 1)
  assert.equal(ViewerCloudConfig.safeParse({ ...viewer, kvsEndpoint: 'http://127.0.0.1:9443' }).success, false, 'plain http is refused')
  assert.equal(ViewerCloudConfig.safeParse({ ...viewer, devices: [] }).success, false)
})

test('credentials: the shapes AWS issues pass, typos do not', () => {
  assert.equal(AwsCredentials.safeParse({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }).success, true)
  assert.equal(AwsCredentials.safeParse({ accessKeyId: 'akia lower', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }).success, false)
  assert.equal(AwsCredentials.safeParse({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'short' }).success, false)
})
