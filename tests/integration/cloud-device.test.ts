/**
 * The device's cloud transport (device/src/cloud: CloudLink = IotLink + KvsMaster + IotCredentials)
 * against the cloud stand-ins: the IoT Core stand-in (mosquitto with mutual TLS, the credentials
 * provider, the SigV4 WSS front viewers use) and the KVS signaling emulator, driven on the viewer
 * side by the unmodified KVS WebRTC SDK and AWS SDK v3 clients. These paths are tested against
 * stand-ins, not AWS.
 *
 * In this process Node trusts the stand-ins' CA through trustCa; one test runs the device in a
 * child process that trusts it the way a doorbell would, with NODE_EXTRA_CA_CERTS.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import { SignatureV4 } from '@smithy/signature-v4'
import { Sha256 } from '@aws-crypto/sha256-js'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { CreateRoleAliasCommand, IoTClient } from '@aws-sdk/client-iot'
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam'
import { DescribeSignalingChannelCommand, GetSignalingChannelEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { Role, SignalingClient } from 'amazon-kinesis-video-streams-webrtc'
import {
  decodeKvsToViewer, memoryLogger, toKvsPayload,
  type DeviceCloudConfig, type DeviceState, type SignalToDevice, type SignalToViewer
} from '@doorbell/core'
import { CloudLink } from '../../device/src/paths/cloud/cloudLink'
import { Pki } from '../src/cloud/pki'
import { CredentialStore, type AwsCredential } from '../src/cloud/sigv4'
import { trustCa } from '../src/cloud/trust'
import { IotStandIn } from '../src/cloud/iot'
import { KvsEmulator } from '../src/cloud/kvs/emulator'

const TEST_TIMEOUT = 60_000
const REGION = 'us-east-1'
const ROLE_ALIAS = 'doorbell-kvs-alias'
const ADMIN: AwsCredential = { accessKeyId: 'AKIACLOUDDEVICEADMIN', secretAccessKey: 'admin-secret-key-for-the-cloud-device-test', principal: 'user/setup' }
const VIEWER: AwsCredential = { accessKeyId: 'ASIACLOUDDEVICEVIEW1', secretAccessKey: 'viewer-secret-key-for-the-cloud-device-00', sessionToken: 'viewer-session/token+=', principal: 'viewer/alice' }
const viewerCreds = { accessKeyId: VIEWER.accessKeyId, secretAccessKey: VIEWER.secretAccessKey, sessionToken: VIEWER.sessionToken! }
const TURN = { Uris: ['turn:127.0.0.1:3478?transport=udp'], Username: 'turn-user', Password: 'turn-pass', Ttl: 300 }
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
const CREDENTIAL = `grant.${'A'.repeat(86)}`
const DEVICE_ID = 'frontdoor'

let pki: Pki
let store: CredentialStore
let dir: string
let iot: IotStandIn
let kvs: KvsEmulator
let untrust: () => void
const cleanups: Array<() => Promise<void> | void> = []

before(async () => {
  pki = await Pki.create()
  store = new CredentialStore()
  store.add(ADMIN)
  store.add(VIEWER)
  untrust = trustCa(pki.serverCaPem)
  dir = await mkdtemp(join(tmpdir(), 'cloud-device-'))
  iot = await IotStandIn.start({ pki, store, dir: join(dir, 'iot'), region: REGION })
  kvs = await KvsEmulator.start({ pki, store, region: REGION, iceServers: () => [TURN] })
  await writeFile(join(dir, 'ca.pem'), pki.serverCaPem)

  // The cloud setup's part, through the real clients: a role KVS may be used with, and its alias for the credentials provider.
  const requestHandler = new NodeHttpHandler({ httpsAgent: new Agent({ ca: pki.serverCaPem }) })
  const common = { region: REGION, endpoint: iot.controlEndpoint, credentials: ADMIN, requestHandler, maxAttempts: 1 }
  const iam = new IAMClient(common)
  const iotControl = new IoTClient(common)
  const role = await iam.send(new CreateRoleCommand({
    RoleName: 'doorbell-kvs',
    AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'credentials.iot.amazonaws.com' }, Action: 'sts:AssumeRole' }] })
  }))
  await iotControl.send(new CreateRoleAliasCommand({ roleAlias: ROLE_ALIAS, roleArn: role.Role!.Arn! }))
  iam.destroy()
  iotControl.destroy()
})

after(async () => {
  for (const c of cleanups.reverse()) await c()
  await kvs?.stop()
  await iot?.stop()
  untrust?.()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** A provisioned thing (certificate attached, IoT policy), its files, its KVS channel, and the device's cloud config. */
async function doorbell (name: string, extra: Partial<DeviceCloudConfig> = {}): Promise<DeviceCloudConfig> {
  const thing = await iot.provisionThing(name)
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  await writeFile(certFile, thing.certPem)
  await writeFile(keyFile, thing.keyPem, { mode: 0o600 })
  kvs.createChannel(`${name}-channel`)
  return {
    region: REGION,
    acceptUnsignedOpenDoor: false,
    seedTopics: false,
    thingName: name,
    iotEndpoint: `${iot.dataHost}:${iot.dataPort}`,
    certFile,
    keyFile,
    caFile: join(dir, 'ca.pem'),
    credentialsEndpoint: iot.credentialsHost,
    roleAlias: ROLE_ALIAS,
    channelName: `${name}-channel`,
    kvsEndpoint: kvs.endpoint,
    renewAfterSeconds: 3300,
    ...extra
  }
}

async function startLink (config: DeviceCloudConfig, lines: string[] = []): Promise<CloudLink> {
  const link = new CloudLink(config, { deviceId: DEVICE_ID, log: memoryLogger(lines, 'cloud'), iot: { minReconnectMs: 200, maxReconnectMs: 1000 }, kvs: { backoff: { initialMs: 200, maxMs: 1000 } } })
  cleanups.push(async () => { await link.stop() })
  await link.start()
  return link
}

async function until<T> (what: string, check: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** A viewer on the KVS channel, as a browser would be: the unmodified SDK, role VIEWER. */
interface KvsViewer { client: SignalingClient, got: SignalToViewer[], send: (m: SignalToDevice) => void }

async function kvsViewer (channelName: string, clientId: string): Promise<KvsViewer> {
  const control = new KinesisVideoClient({ region: REGION, endpoint: kvs.endpoint, credentials: viewerCreds, maxAttempts: 1 })
  const arn = (await control.send(new DescribeSignalingChannelCommand({ ChannelName: channelName }))).ChannelInfo!.ChannelARN!
  const endpoints = await control.send(new GetSignalingChannelEndpointCommand({ ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' } }))
  control.destroy()
  const client = new SignalingClient({
    role: Role.VIEWER, clientId, region: REGION, channelARN: arn, credentials: viewerCreds,
    channelEndpoint: endpoints.ResourceEndpointList!.find((e) => e.Protocol === 'WSS')!.ResourceEndpoint!
  })
  const got: SignalToViewer[] = []
  client.on('sdpAnswer', (payload: unknown) => {
    const d = decodeKvsToViewer(payload)
    if (d.ok) got.push(d.message)
  })
  client.on('error', () => {})
  client.open()
  await once(client, 'open')
  cleanups.push(() => { client.close() })
  return { client, got, send: (m) => { client.sendSdpOffer(toKvsPayload(m) as any) } }
}

/** A viewer of the doorbell's IoT events over the stand-in's SigV4 WSS front (as a browser connects to IoT Core). */
async function iotViewer (thing: string, clientId: string, clean = true, topic = `things/${thing}/#`): Promise<{ client: MqttClient, got: Array<{ topic: string, payload: any, retain: boolean }> }> {
  const url = new URL(iot.wssUrl)
  const signer = new SignatureV4({ service: 'iotdevicegateway', region: REGION, credentials: { accessKeyId: VIEWER.accessKeyId, secretAccessKey: VIEWER.secretAccessKey }, sha256: Sha256 })
  const signed = await signer.presign({ method: 'GET', protocol: 'wss:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers: { host: url.host }, query: {} }, { expiresIn: 3600 })
  const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  const query = [...Object.entries(signed.query ?? {}).map(([k, v]) => `${enc(k)}=${enc(String(v))}`), `X-Amz-Security-Token=${enc(VIEWER.sessionToken!)}`]
  const client = mqtt.connect(`${iot.wssUrl}?${query.join('&')}`, { clientId, clean, protocolVersion: 4, reconnectPeriod: 200, connectTimeout: 10_000, wsOptions: { ca: pki.serverCaPem } })
  const got: Array<{ topic: string, payload: any, retain: boolean }> = []
  client.on('message', (topic, payload, packet) => { got.push({ topic, payload: JSON.parse(payload.toString()), retain: packet.retain }) })
  client.on('error', () => {})
  await new Promise<void>((resolve) => { client.once('connect', () => { resolve() }) })
  await client.subscribeAsync(topic, { qos: 1 })
  cleanups.push(async () => { await client.endAsync(true) })
  return { client, got }
}

function state (status: 'idle' | 'ringing'): DeviceState {
  return {
    deviceId: DEVICE_ID,
    deviceName: 'Front door',
    call: { status, ringId: null, since: 0 },
    participants: [],
    lock: { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null },
    lastRing: null,
    at: Date.now()
  }
}

const offer = (sessionId: string, viewerId: string): SignalToDevice => ({ type: 'offer', sessionId, viewerId, viewerName: 'Alice', sdp: SDP, credential: CREDENTIAL, proof: CREDENTIAL })

describe('the device\'s cloud transport against the stand-ins', () => {
  test('connects to both with the thing certificate and credentials from the credentials provider; ICE servers from KVS', { timeout: TEST_TIMEOUT }, async () => {
    const lines: string[] = []
    const link = await startLink(await doorbell('bell-connect'), lines)
    await until('IoT and KVS connected', () => (link.connected.iot && link.connected.kvs ? true : undefined))
    assert.equal(kvs.connections('bell-connect-channel').master, true)
    assert.deepEqual(link.iceServers(), [{ urls: TURN.Uris, username: TURN.Username, credential: TURN.Password }])
    // The stand-in refuses a client whose id is not its thing's name, or a certificate it does not know.
    assert.deepEqual(iot.refusals.filter((r) => r.clientId === 'bell-connect'), [])
    const creds = link.credentials.peek()
    assert.ok(creds)
    assert.equal(store.get(creds.accessKeyId)?.principal, 'thing/bell-connect')
  })

  test('ring, state and presence reach a viewer over IoT; the state is retained for a late one', { timeout: TEST_TIMEOUT }, async () => {
    const config = await doorbell('bell-events')
    const early = await iotViewer('bell-events', 'viewer-events-1')
    const link = await startLink(config)
    await until('IoT connected', () => (link.connected.iot ? true : undefined))
    link.publishState(state('ringing'))
    link.publishRing({ type: 'ring', deviceId: DEVICE_ID, deviceName: 'Front door', ringId: 'r1', at: Date.now(), count: 1 })
    const ring = await until('the ring', () => early.got.find((g) => g.topic === 'things/bell-events/ring'))
    assert.equal(ring.payload.ringId, 'r1')
    assert.equal(early.got.find((g) => g.topic === 'things/bell-events/presence')?.payload.online, true)
    const late = await iotViewer('bell-events', 'viewer-events-2')
    const st = await until('the retained state', () => late.got.find((g) => g.topic === 'things/bell-events/state'))
    assert.equal(st.retain, true)
    assert.equal(st.payload.call.status, 'ringing')
  })

  test('seedTopics: each ring is also published to doorbell/<channel>/ring in the seed\'s payload; off, it is not', { timeout: TEST_TIMEOUT }, async () => {
    const on = await doorbell('bell-seed', { seedTopics: true })
    const off = await doorbell('bell-noseed')
    const seedViewer = await iotViewer('bell-seed', 'viewer-seed-1', true, 'doorbell/+/ring')
    const [a, b] = [await startLink(on), await startLink(off)]
    await until('IoT connected', () => (a.connected.iot && b.connected.iot ? true : undefined))
    const at = Date.now()
    b.publishRing({ type: 'ring', deviceId: DEVICE_ID, deviceName: 'Back door', ringId: 'r0', at, count: 1 })
    a.publishRing({ type: 'ring', deviceId: DEVICE_ID, deviceName: 'Front door', ringId: 'r1', at, count: 1 })
    const ring = await until('the seed\'s ring', () => seedViewer.got.find((g) => g.topic === 'doorbell/bell-seed-channel/ring'))
    // Exactly the seed's payload: its event, its channel, unix seconds.
    assert.deepEqual(ring.payload, { event: 'ring', channel: 'bell-seed-channel', timestamp: Math.floor(at / 1000) })
    assert.equal(ring.retain, false)
    // The off doorbell's ring went out first on the same broker: had it published, it would be here by now.
    assert.deepEqual(seedViewer.got.map((g) => g.topic), ['doorbell/bell-seed-channel/ring'])
  })

  test('a ring raised while IoT Core is down arrives when it is back', { timeout: TEST_TIMEOUT }, async () => {
    const config = await doorbell('bell-offline')
    const viewer = await iotViewer('bell-offline', 'viewer-offline', false)
    const link = await startLink(config)
    await until('IoT connected', () => (link.connected.iot ? true : undefined))
    await iot.stopBroker()
    try {
      await until('IoT down', () => (link.connected.iot ? undefined : true))
      link.publishRing({ type: 'ring', deviceId: DEVICE_ID, deviceName: 'Front door', ringId: 'r-offline', at: Date.now(), count: 1 })
    } finally {
      await iot.startBroker()
    }
    const ring = await until('the queued ring', () => viewer.got.find((g) => g.topic === 'things/bell-offline/ring'), 30_000)
    assert.equal(ring.payload.ringId, 'r-offline')
  })

  test('an offer over KVS reaches the device; its answer and bye reach the viewer; a bye only from the offer\'s viewer', { timeout: TEST_TIMEOUT }, async () => {
    const lines: string[] = []
    const config = await doorbell('bell-call')
    const link = await startLink(config, lines)
    const signals: Array<[string, SignalToDevice]> = []
    link.onSignal((viewerId, m) => { signals.push([viewerId, m]) })
    await until('KVS connected', () => (link.connected.kvs ? true : undefined))

    const alice = await kvsViewer('bell-call-channel', 'viewer-alice')
    const mallory = await kvsViewer('bell-call-channel', 'viewer-mallory')
    alice.send(offer('s1', 'viewer-alice'))
    const [from, got] = await until('the offer', () => signals[0])
    assert.equal(from, 'viewer-alice')
    assert.equal(got.type, 'offer')

    link.sendToViewer('viewer-alice', 's1', { type: 'answer', sessionId: 's1', sdp: SDP })
    const answer = await until('the answer', () => alice.got[0])
    assert.deepEqual(answer, { type: 'answer', sessionId: 's1', sdp: SDP })
    assert.equal(mallory.got.length, 0)

    // Someone else's offer in Alice's name, and a bye for her session: neither reaches the device.
    mallory.send(offer('s2', 'viewer-alice'))
    mallory.send({ type: 'bye', sessionId: 's1', reason: 'hang-up' })
    await until('both refused', () => (lines.filter((l) => l.startsWith('warn') && /viewer id is not its KVS sender|did not offer the session/.test(l)).length === 2 ? true : undefined))
    alice.send({ type: 'bye', sessionId: 's1', reason: 'hang-up' })
    await until('Alice\'s bye', () => (signals.length === 2 ? true : undefined))
    assert.deepEqual(signals[1], ['viewer-alice', { type: 'bye', sessionId: 's1', reason: 'hang-up' }])

    link.sendToViewer('viewer-alice', 's1', { type: 'bye', sessionId: 's1', reason: 'device-ended' })
    await until('the device\'s bye', () => alice.got[1])
    // A bare session description (a stock KVS viewer) is dropped with a warning.
    alice.client.sendSdpOffer({ type: 'offer', sdp: SDP } as any)
    await until('the stranger\'s offer refused', () => (lines.some((l) => l.includes('not a doorbell message')) ? true : undefined))
    assert.equal(signals.length, 2)
  })

  test('reconnects after KVS drops the connection, and renews it on schedule', { timeout: TEST_TIMEOUT }, async () => {
    const lines: string[] = []
    const link = await startLink(await doorbell('bell-renew', { renewAfterSeconds: 2 }), lines)
    const signals: Array<[string, SignalToDevice]> = []
    link.onSignal((viewerId, m) => { signals.push([viewerId, m]) })
    await until('KVS connected', () => (link.connected.kvs ? true : undefined))

    kvs.drop('bell-renew-channel')
    await until('KVS lost', () => (lines.some((l) => l.includes('lost the KVS signaling connection')) ? true : undefined))
    await until('KVS back', () => (link.connected.kvs && kvs.connections('bell-renew-channel').master ? true : undefined))

    // The emulator closes the older master connection as the newer connects (the newest wins, as KVS documents).
    await until('a renewal', () => (lines.some((l) => l.includes('renewing the KVS signaling connection')) ? true : undefined), 10_000)
    await until('connected after the renewal', () => (link.connected.kvs && kvs.connections('bell-renew-channel').master ? true : undefined))
    const viewer = await kvsViewer('bell-renew-channel', 'viewer-renew')
    viewer.send(offer('s-renew', 'viewer-renew'))
    await until('the offer after renewal', () => signals.find(([, m]) => m.sessionId === 's-renew'))
    link.sendToViewer('viewer-renew', 's-renew', { type: 'answer', sessionId: 's-renew', sdp: SDP })
    await until('the answer after renewal', () => viewer.got[0])
    const connects = kvs.log.filter((e) => e.channel === 'bell-renew-channel' && e.action === 'CONNECT' && e.outcome === 'refused')
    assert.deepEqual(connects, [])
  })

  test('stop() says offline (retained) and leaves the channel', { timeout: TEST_TIMEOUT }, async () => {
    const config = await doorbell('bell-stop')
    const link = await startLink(config)
    await until('connected', () => (link.connected.iot && link.connected.kvs ? true : undefined))
    await link.stop()
    assert.deepEqual(link.connected, { iot: false, kvs: false })
    await until('the master gone', () => (kvs.connections('bell-stop-channel').master ? undefined : true))
    const late = await iotViewer('bell-stop', 'viewer-stop')
    const presence = await until('the retained presence', () => late.got.find((g) => g.topic === 'things/bell-stop/presence'))
    assert.equal(presence.payload.online, false)
    assert.equal(presence.retain, true)
  })

  test('a doorbell process trusting the stand-ins\' CA through NODE_EXTRA_CA_CERTS answers a viewer', { timeout: TEST_TIMEOUT }, async () => {
    const config = await doorbell('bell-process')
    const deviceDir = fileURLToPath(new URL('../../device/', import.meta.url))
    const code = [
      "import { CloudLink } from './src/paths/cloud/cloudLink.ts'",
      "import { memoryLogger } from '@doorbell/core'",
      'const link = new CloudLink(JSON.parse(process.env.CLOUD_CONFIG), { deviceId: \'frontdoor\', log: memoryLogger() })',
      'link.onSignal((viewerId, m) => {',
      "  if (m.type === 'offer') link.sendToViewer(viewerId, m.sessionId, { type: 'answer', sessionId: m.sessionId, sdp: m.sdp })",
      '})',
      'await link.start()',
      "const t = setInterval(() => { if (link.connected.kvs && link.connected.iot) { clearInterval(t); console.log('READY') } }, 50)",
      "process.on('SIGTERM', () => { void link.stop().then(() => process.exit(0)) })"
    ].join('\n')
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: deviceDir,
      env: { ...process.env, CLOUD_CONFIG: JSON.stringify(config), NODE_EXTRA_CA_CERTS: config.caFile! },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = once(child, 'exit')
    cleanups.push(async () => { if (child.exitCode === null) { child.kill('SIGKILL'); await exited } })
    try {
      await until('the device process connected', () => (out.includes('READY') ? true : undefined), 30_000)
      const viewer = await kvsViewer('bell-process-channel', 'viewer-process')
      viewer.send(offer('s-process', 'viewer-process'))
      const answer = await until('the answer from the device process', () => viewer.got[0])
      assert.deepEqual(answer, { type: 'answer', sessionId: 's-process', sdp: SDP })
    } catch (err) {
      throw new Error(`${(err as Error).message}; the device process said: ${out}`)
    } finally {
      child.kill('SIGTERM')
      await exited
    }
  })
})
