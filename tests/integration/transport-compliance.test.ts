/**
 * Both signaling transports pass the same compliance suite (tests/src/transportCompliance.ts):
 *   lan     a real hub (Aedes + gate) between the device's MqttLink and the viewer's HubClient,
 *           both paired with the hub's home (member id and token); raw input comes from another
 *           tab of the same viewer, so only the gate's checks stand between it and the device;
 *   direct  a real libp2p device peer (DirectServer, admitting members by a real DoorGuard) dialed
 *           over webrtc-direct by the viewer's DirectClient, with a grant signed by a home key made here;
 *   cloud   the device's CloudLink (IoT Core over mutual TLS, KVS master with credentials from the
 *           IoT credentials provider) and the viewer's CloudClient (IoT over the SigV4 WebSocket,
 *           KVS viewer), provisioned by the setup command, against the stand-ins (tests/src/cloud):
 *           the KVS emulator and mosquitto with mutual TLS, not AWS. Raw input to the device comes
 *           from another KVS viewer of the channel; raw input to the viewer from the doorbell's
 *           own IoT connection, as a broken doorbell would send it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { FsDatastore } from 'datastore-fs'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { startHub } from '@doorbell/hub'
import { MqttLink, DirectServer, memoryLogger, pairDevice, CloudLink } from '@doorbell/device'
import { CloudClient } from '@doorbell/viewer/cloud'
import { SignalingClient, Role } from 'amazon-kinesis-video-streams-webrtc'
import { GetSignalingChannelEndpointCommand, DescribeSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import type { MqttClient } from 'mqtt'
import { startCloud } from '../src/cloud'
import { HubClient } from '@doorbell/viewer/lib'
import { DirectClient } from '@doorbell/viewer/direct'
import {
  DoorGuard, Grant, MAX_FRAME_BYTES, PROTOCOLS, cloudTopics, exportPublicKey, generateSigningKey, sign, topics, type Possession, type Presence
} from '@doorbell/core'
import { createMeshPeer, directReachOf, type MeshNode } from '@doorbell/mesh'
import { DEVICE, HOME, VIEWER, transportCompliance, type TransportPair } from '../src/transportCompliance'
import { deviceInvite, pairViewer } from '../src/trust'

const bytes = (raw: string | Uint8Array): Uint8Array => typeof raw === 'string' ? new TextEncoder().encode(raw) : raw

transportCompliance('MQTT through the hub (lan)', async () => {
  const lines: string[] = []
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-compliance-hub-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false } }, { log: memoryLogger(lines, 'hub') })
  const paired = await pairDevice({ url: await deviceInvite(hub, DEVICE), deviceId: DEVICE, deviceName: 'Front door', log: memoryLogger(lines, 'pairing') })
  const kitchen = await pairViewer(hub, { name: 'Kitchen', role: 'owner', viewerId: VIEWER })
  const device = new MqttLink({ url: hub.mqttUrl, homeId: HOME, deviceId: DEVICE, log: memoryLogger(lines, 'device'), auth: { memberId: paired.memberId, token: paired.token, ca: paired.ca } })
  const viewer = new HubClient({ url: hub.mqttUrl, homeId: HOME, viewerId: VIEWER, viewerName: 'Kitchen', auth: { memberId: kitchen.memberId, token: kitchen.token }, log: () => {} })
  // Another tab of the same viewer: signed in, so what it sends is judged by the gate alone (which cuts it off; it reconnects).
  const raw = mqtt.connect(hub.mqttUrl, { clientId: `viewer-${VIEWER}-raw-injector`, username: kitchen.memberId, password: kitchen.token, reconnectPeriod: 200 })
  const publish = async (topic: string, payload: Uint8Array): Promise<void> => {
    await new Promise<void>((resolve) => { raw.publish(topic, Buffer.from(payload), { qos: 0 }, () => resolve()) })
  }
  const pair: TransportPair = {
    device,
    viewer,
    credential: kitchen.credential,
    injectToDevice: async (r) => { await publish(topics.session(HOME, DEVICE, VIEWER, 's-bad', 'to-device'), bytes(r)) },
    // The same frames the direct path gets, unwrapped onto the topic their kind names.
    injectToViewer: async (r) => {
      let topic = topics.ring(HOME, DEVICE)
      let payload = bytes(r)
      try {
        const f = JSON.parse(typeof r === 'string' ? r : '') as { kind?: string, payload?: unknown }
        if (f.kind === 'ring' || f.kind === 'state' || f.kind === 'snapshot') { topic = `doorbell/${HOME}/${DEVICE}/${f.kind}`; payload = bytes(JSON.stringify(f.payload)) }
      } catch {}
      await publish(topic, payload)
    },
    async close () {
      raw.end(true)
      await viewer.close()
      await device.stop()
      await hub.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
  return pair
})

async function meshPeer (dir: string): Promise<{ node: MeshNode, datastore: FsDatastore }> {
  const datastore = new FsDatastore(dir)
  await datastore.open()
  const node = await createMeshPeer({ datastore, host: '127.0.0.1', tcpPort: 0, directPort: 0, tcp: tcp(), discovery: [] })
  return { node, datastore }
}

transportCompliance('libp2p streams over webrtc-direct (direct)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-compliance-'))
  const lines: string[] = []
  const { node, datastore } = await meshPeer(join(dir, 'device'))
  const presence = (): Presence => ({ deviceId: DEVICE, online: true, at: Date.now(), ...(directReachOf(node) ? { direct: directReachOf(node)! } : {}) })
  // The home's key (the hub's, elsewhere) signs the viewer's grant; the device admits by it, as a paired doorbell does.
  const homeKey = await generateSigningKey(true)
  const viewerKey = await generateSigningKey(false)
  const credential = await sign(Grant, {
    v: 1, id: 'm-kitchen', home: HOME, sub: VIEWER, name: 'Kitchen', role: 'resident', door: true, zones: [],
    key: await exportPublicKey(viewerKey.publicKey), iat: Date.now(), exp: null
  }, homeKey.privateKey)
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKey.publicKey) })
  const admit = async (c: string, viewerId: string, possession: Possession) => await guard.admit(c, viewerId, possession)
  const device = new DirectServer(node, { homeId: HOME, deviceId: DEVICE, log: memoryLogger(lines, 'device'), presence, admit })
  await device.start()
  await node.start()

  // A rogue "device" the viewer also trusts with an address: what it writes on the events stream
  // is what injectToViewer sends. The viewer must check every frame, and that each device speaks for itself.
  const rogue = await meshPeer(join(dir, 'rogue'))
  let rogueIo: ReturnType<typeof lpStream> | null = null
  await rogue.node.handle(PROTOCOLS.events, (stream) => { rogueIo = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES }); void rogueIo.read().catch(() => {}) })
  await rogue.node.start()

  const viewer = new DirectClient({
    homeId: HOME,
    viewerId: VIEWER,
    viewerName: 'Kitchen',
    credential,
    key: viewerKey.privateKey,
    devices: () => [{ deviceId: DEVICE, reach: directReachOf(node)! }, { deviceId: 'rogue', reach: directReachOf(rogue.node)! }],
    log: (level, message) => { lines.push(`${level} [viewer] ${message}`) }
  })
  await viewer.start()

  // A second viewer connection, for raw frames into the device's signal protocol.
  const injector = await meshPeer(join(dir, 'injector'))
  await injector.node.start()
  const pair: TransportPair = {
    device,
    viewer,
    credential,
    injectToDevice: async (r) => {
      const stream = await injector.node.dialProtocol(node.getMultiaddrs(), PROTOCOLS.signal)
      await lpStream(stream).write(bytes(r))
      await stream.close().catch(() => {})
    },
    injectToViewer: async (r) => {
      if (!rogueIo) throw new Error('the viewer has not dialed the rogue')
      await rogueIo.write(bytes(r))
    },
    async close () {
      await viewer.close()
      await device.stop()
      for (const p of [{ node, datastore }, rogue, injector]) {
        await p.node.stop()
        await p.datastore.close()
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
  return pair
})

transportCompliance('AWS IoT Core + KVS signaling (cloud), against the stand-ins', async () => {
  const lines: string[] = []
  const cloud = await startCloud()
  // Until the pair is returned nobody else stops what was started (mosquitto among it).
  const started: Array<{ stop: () => Promise<void> | void }> = [cloud]
  try {
    return await cloudPair(cloud, lines, started)
  } catch (err) {
    for (const s of started.reverse()) await s.stop()
    throw err
  }
})

async function cloudPair (cloud: Awaited<ReturnType<typeof startCloud>>, lines: string[], started: Array<{ stop: () => Promise<void> | void }>): Promise<TransportPair> {
  const { device: deviceConfig, viewer: viewerConfig } = await cloud.provision(HOME, DEVICE)
  const device = new CloudLink(deviceConfig, { deviceId: DEVICE, log: memoryLogger(lines, 'device') })
  started.push(device)
  await device.start()
  const viewer = new CloudClient({ config: viewerConfig, credentials: cloud.resident, viewerId: VIEWER, log: (level, message) => { lines.push(`${level} [viewer] ${message}`) } })
  started.push({ stop: () => viewer.close() })
  // The transport passes the grant on; the device checks it (not this suite's concern), so any well-formed one does.
  const credential = 'e30.' + 'A'.repeat(86)

  // Another viewer of the channel, with the unmodified SDK: what it sends is raw input to the device.
  const kvs = new KinesisVideoClient({ region: viewerConfig.region, endpoint: viewerConfig.kvsEndpoint, credentials: cloud.resident })
  const channelARN = (await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: deviceConfig.channelName }))).ChannelInfo!.ChannelARN!
  const endpoints = await kvs.send(new GetSignalingChannelEndpointCommand({ ChannelARN: channelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS'], Role: 'VIEWER' } }))
  kvs.destroy()
  const intruder = new SignalingClient({ role: Role.VIEWER, clientId: 'v-intruder', channelARN, channelEndpoint: endpoints.ResourceEndpointList![0]!.ResourceEndpoint!, region: viewerConfig.region, credentials: cloud.resident })
  started.push({ stop: () => { intruder.close() } })
  const intruderOpen = new Promise<void>((resolve) => { intruder.once('open', () => resolve()) })
  intruder.open()
  await intruderOpen

  const iotClient = (): MqttClient => (device.iot as unknown as { client: MqttClient }).client
  const pair: TransportPair = {
    device,
    viewer,
    credential,
    // As the SDK carries it: a string goes as one of our payloads would, bytes as whatever JSON the SDK makes of them.
    injectToDevice: async (r) => { intruder.sendSdpOffer((typeof r === 'string' ? r : { raw: [...r] }) as never) },
    // The same frames the other paths get, unwrapped onto the IoT topic their kind names.
    injectToViewer: async (r) => {
      let topic = cloudTopics.of(deviceConfig.thingName, 'ring')
      let payload: Uint8Array = bytes(r)
      try {
        const f = JSON.parse(typeof r === 'string' ? r : '') as { kind?: string, payload?: unknown }
        if (f.kind === 'ring' || f.kind === 'state' || f.kind === 'snapshot') { topic = cloudTopics.of(deviceConfig.thingName, f.kind); payload = bytes(JSON.stringify(f.payload)) }
      } catch {}
      await new Promise<void>((resolve) => { iotClient().publish(topic, Buffer.from(payload), { qos: 1 }, () => resolve()) })
    },
    async close () {
      intruder.close()
      await viewer.close()
      await device.stop()
      await cloud.stop()
    }
  }
  return pair
}
