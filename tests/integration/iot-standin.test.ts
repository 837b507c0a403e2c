/**
 * The AWS IoT Core stand-in (tests/src/cloud/iot) as its clients meet it: mqtt.js over mutual TLS
 * (mosquitto) and over SigV4-presigned WSS, the unmodified @aws-sdk/client-iot and client-iam
 * against its control plane, and the credentials provider over mutual TLS.
 * Nothing here waits a fixed time: absence of a message is shown by a later message on the same
 * path (MQTT keeps order per connection, mosquitto handles one packet at a time).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpsRequest, Agent } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import WebSocket from 'ws'
import { SignatureV4 } from '@smithy/signature-v4'
import { Sha256 } from '@aws-crypto/sha256-js'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import {
  AttachPolicyCommand, AttachThingPrincipalCommand, CertificateStateException, CreateKeysAndCertificateCommand, CreatePolicyCommand,
  CreatePolicyVersionCommand, CreateRoleAliasCommand, CreateThingCommand, DeleteCertificateCommand, DeleteConflictException, DeletePolicyCommand,
  DeletePolicyVersionCommand, DeleteRoleAliasCommand, DeleteThingCommand, DescribeCertificateCommand, DescribeEndpointCommand,
  DescribeRoleAliasCommand, DescribeThingCommand, DetachPolicyCommand, DetachThingPrincipalCommand, GetPolicyCommand, GetPolicyVersionCommand,
  InvalidRequestException, IoTClient, ListAttachedPoliciesCommand, ListPolicyVersionsCommand, ListThingPrincipalsCommand,
  MalformedPolicyException, ResourceAlreadyExistsException, ResourceNotFoundException, SetDefaultPolicyVersionCommand, UpdateCertificateCommand,
  UpdateRoleAliasCommand, VersionConflictException, VersionsLimitExceededException
} from '@aws-sdk/client-iot'
import {
  AttachGroupPolicyCommand, AttachRolePolicyCommand, AttachUserPolicyCommand, CreatePolicyCommand as IamCreatePolicyCommand,
  CreatePolicyVersionCommand as IamCreatePolicyVersionCommand, CreateRoleCommand, DeleteConflictException as IamDeleteConflictException,
  DeletePolicyCommand as IamDeletePolicyCommand, DeletePolicyVersionCommand as IamDeletePolicyVersionCommand, DeleteRoleCommand,
  DeleteRolePolicyCommand, DetachGroupPolicyCommand, DetachRolePolicyCommand, DetachUserPolicyCommand, EntityAlreadyExistsException,
  GetPolicyCommand as IamGetPolicyCommand, GetPolicyVersionCommand as IamGetPolicyVersionCommand, GetRoleCommand, GetRolePolicyCommand, IAMClient,
  LimitExceededException, ListEntitiesForPolicyCommand, ListPolicyVersionsCommand as IamListPolicyVersionsCommand, MalformedPolicyDocumentException,
  NoSuchEntityException, PutRolePolicyCommand, SetDefaultPolicyVersionCommand as IamSetDefaultPolicyVersionCommand, UpdateAssumeRolePolicyCommand
} from '@aws-sdk/client-iam'
import { Pki } from '../src/cloud/pki'
import { CredentialStore, type AwsCredential } from '../src/cloud/sigv4'
import { IotStandIn, THING_POLICY_NAME } from '../src/cloud/iot'
import { IOT_MAX_PAYLOAD_BYTES, MAX_SNAPSHOT_MESSAGE_BYTES } from '@doorbell/core'

const TEST_TIMEOUT = 60_000
const ADMIN: AwsCredential = { accessKeyId: 'AKIAIOSTANDINADMIN01', secretAccessKey: 'admin-secret-key-for-the-iot-stand-in-000', principal: 'user/setup' }
const VIEWER: AwsCredential = { accessKeyId: 'ASIAIOSTANDINVIEWER1', secretAccessKey: 'viewer-secret-key-for-the-iot-stand-in-00', sessionToken: 'viewer-session-token/with+odd=chars', principal: 'viewer/alice' }
const TRUST_IOT_CREDENTIALS = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'credentials.iot.amazonaws.com' }, Action: 'sts:AssumeRole' }]
})

describe('AWS IoT Core stand-in', () => {
  let pki: Pki
  let store: CredentialStore
  let dir: string
  let iot: IotStandIn
  let iotClient: IoTClient
  let iamClient: IAMClient
  const clients: MqttClient[] = []

  before(async () => {
    pki = await Pki.create()
    store = new CredentialStore()
    store.add(ADMIN)
    store.add(VIEWER)
    dir = await mkdtemp(join(tmpdir(), 'iot-standin-'))
    iot = await IotStandIn.start({ pki, store, dir })
    const requestHandler = new NodeHttpHandler({ httpsAgent: new Agent({ ca: pki.serverCaPem }) })
    const common = { region: 'us-east-1', endpoint: iot.controlEndpoint, credentials: ADMIN, requestHandler, maxAttempts: 1 }
    iotClient = new IoTClient(common)
    iamClient = new IAMClient(common)
  })

  after(async () => {
    for (const client of clients) client.end(true)
    iotClient?.destroy()
    iamClient?.destroy()
    await iot?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  /** mqtt.js over mutual TLS to the data endpoint; resolves once connected, rejects if closed first. */
  async function connectDevice (clientId: string, identity: { certPem: string, keyPem: string } | undefined, extra: IClientOptions = {}): Promise<MqttClient> {
    const client = mqtt.connect(`mqtts://${iot.dataHost}:${iot.dataPort}`, {
      clientId,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ca: pki.serverCaPem,
      ...(identity !== undefined ? { cert: identity.certPem, key: identity.keyPem } : {}),
      ...extra
    })
    clients.push(client)
    client.on('error', () => {})
    await connected(client)
    return client
  }

  async function connectViewer (clientId: string, url: string, extra: IClientOptions = {}): Promise<MqttClient> {
    const client = mqtt.connect(url, { clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, wsOptions: { ca: pki.serverCaPem }, ...extra })
    clients.push(client)
    client.on('error', () => {})
    await connected(client)
    return client
  }

  /** `wss://.../mqtt` presigned as AWS IoT documents for browsers: service iotdevicegateway, the session token appended after signing. */
  async function presign (credential: AwsCredential, o: { signingDate?: Date, expiresIn?: number } = {}): Promise<string> {
    const url = new URL(iot.wssUrl)
    const signer = new SignatureV4({ service: 'iotdevicegateway', region: iot.region, credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey }, sha256: Sha256 })
    const signed = await signer.presign({ method: 'GET', protocol: 'wss:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers: { host: url.host }, query: {} }, { expiresIn: o.expiresIn ?? 300, signingDate: o.signingDate })
    const query = Object.entries(signed.query ?? {}).map(([k, v]) => `${strict(k)}=${strict(String(v))}`)
    if (credential.sessionToken !== undefined) query.push(`X-Amz-Security-Token=${strict(credential.sessionToken)}`)
    return `${iot.wssUrl}?${query.join('&')}`
  }

  test('a thing publishes and subscribes under its own prefix over mutual TLS; a retained state reaches a later subscriber', { timeout: TEST_TIMEOUT }, async () => {
    const porch = await iot.provisionThing('porch')
    const device = await connectDevice('porch', porch)
    await device.subscribeAsync('things/porch/cmd', { qos: 1 })
    const cmd = nextMessage(device, 'things/porch/cmd')
    await device.publishAsync('things/porch/cmd', 'ping', { qos: 1 })
    assert.equal((await cmd).payload, 'ping')

    await device.publishAsync('things/porch/state', JSON.stringify({ battery: 87 }), { qos: 1, retain: true })
    const later = await connectViewer('viewer-retained', await presign(VIEWER))
    const retained = nextMessage(later, 'things/porch/state')
    await later.subscribeAsync('things/porch/state', { qos: 1 })
    const message = await retained
    assert.equal(message.payload, JSON.stringify({ battery: 87 }))
    assert.equal(message.retain, true)
    await Promise.all([device.endAsync(), later.endAsync()])
  })

  test('a QoS 1 message published while the broker is down is delivered after it restarts (offline queue, persistent session)', { timeout: TEST_TIMEOUT }, async () => {
    const hall = await iot.provisionThing('hall')
    const url = await presign(VIEWER)
    const device = await connectDevice('hall', hall, { reconnectPeriod: 100 })
    // resubscribe: false — after the restart the subscription must come from the broker's saved session.
    const viewer = await connectViewer('viewer-persistent', url, { clean: false, reconnectPeriod: 100, resubscribe: false })
    await viewer.subscribeAsync('things/hall/ring', { qos: 1 })

    const deviceLost = onceEvent(device, 'close')
    const viewerLost = onceEvent(viewer, 'close')
    await iot.stopBroker()
    await Promise.all([deviceLost, viewerLost])
    assert.equal(iot.brokerRunning, false)

    // mqtt.js keeps the QoS 1 publish in its outgoing store until the broker acknowledges it.
    const delivered = nextMessage(viewer, 'things/hall/ring')
    const acked = device.publishAsync('things/hall/ring', 'ding-while-down', { qos: 1 })
    const viewerBack = new Promise<boolean>((resolve) => { viewer.once('connect', (connack) => { resolve(connack.sessionPresent) }) })
    await iot.startBroker()
    await acked
    assert.equal(await viewerBack, true, 'the viewer resumed its persistent session')
    const message = await delivered
    assert.equal(message.payload, 'ding-while-down')
    await Promise.all([device.endAsync(), viewer.endAsync()])
  })

  test('IoT Core\'s 128 KB payload limit: a ring\'s largest picture passes, a payload over 128 KB is dropped', { timeout: TEST_TIMEOUT }, async () => {
    const porch = await iot.provisionThing('porch-limit')
    const device = await connectDevice('porch-limit', porch)
    const viewer = await connectViewer('viewer-limit', await presign(VIEWER))
    await viewer.subscribeAsync(['things/porch-limit/snapshot', 'things/porch-limit/ring'], { qos: 1 })
    const seen: Array<{ topic: string, bytes: number }> = []
    viewer.on('message', (topic, payload) => { seen.push({ topic, bytes: payload.length }) })
    // The largest snapshot message the doorbell may send (core/src/snapshot.ts), then one over the limit, then a marker.
    const marker = nextMessage(viewer, 'things/porch-limit/ring')
    await device.publishAsync('things/porch-limit/snapshot', Buffer.alloc(MAX_SNAPSHOT_MESSAGE_BYTES, 0x61), { qos: 1 })
    await device.publishAsync('things/porch-limit/snapshot', Buffer.alloc(IOT_MAX_PAYLOAD_BYTES + 1, 0x62), { qos: 1 }).catch(() => {})
    await device.publishAsync('things/porch-limit/ring', 'after', { qos: 1 })
    await marker
    assert.deepEqual(seen.map((m) => [m.topic, m.bytes]), [['things/porch-limit/snapshot', MAX_SNAPSHOT_MESSAGE_BYTES], ['things/porch-limit/ring', 5]])
    assert.ok(MAX_SNAPSHOT_MESSAGE_BYTES < IOT_MAX_PAYLOAD_BYTES)
    await Promise.all([device.endAsync(), viewer.endAsync()])
  })

  test('a foreign topic is refused: publishes are dropped and nothing foreign is delivered', { timeout: TEST_TIMEOUT }, async () => {
    const mine = await iot.provisionThing('garage')
    const other = await iot.provisionThing('shed')
    const garage = await connectDevice('garage', mine)
    const shed = await connectDevice('shed', other)
    await shed.subscribeAsync('things/shed/#', { qos: 1 })
    // mosquitto 2.0 grants every SUBACK with an ACL file (its subscription check is a no-op) and
    // applies the read ACL to each message instead: the subscription below receives nothing.
    await garage.subscribeAsync('things/shed/#', { qos: 1 })
    await garage.subscribeAsync('things/garage/marker', { qos: 1 })

    const seenByShed: string[] = []
    const seenByGarage: string[] = []
    shed.on('message', (topic, payload) => { seenByShed.push(`${topic} ${String(payload)}`) })
    garage.on('message', (topic, payload) => { seenByGarage.push(`${topic} ${String(payload)}`) })

    const shedMarker = nextMessage(shed, 'things/shed/marker')
    await garage.publishAsync('things/shed/cmd', 'forged', { qos: 1 })
    await shed.publishAsync('things/shed/marker', 'after', { qos: 1 })
    await shedMarker
    assert.deepEqual(seenByShed, ['things/shed/marker after'], 'the forged publish was dropped')

    const garageMarker = nextMessage(garage, 'things/garage/marker')
    await garage.publishAsync('things/garage/marker', 'after', { qos: 1 })
    await garageMarker
    assert.deepEqual(seenByGarage, ['things/garage/marker after'], "garage received none of shed's messages")
    await Promise.all([garage.endAsync(), shed.endAsync()])
  })

  test('no client certificate, or one from another CA, is refused at the TLS handshake', { timeout: TEST_TIMEOUT }, async () => {
    await assert.rejects(connectDevice('porch', undefined), /certificate required/)
    const stranger = await (await Pki.create()).issueClient('porch')
    await assert.rejects(connectDevice('porch', stranger), /unknown ca/)
  })

  test('a client id that is not the thing name is disconnected, as IoT Core refuses it', { timeout: TEST_TIMEOUT }, async () => {
    const deck = await iot.provisionThing('deck')
    const client = await connectDevice('not-deck', deck)
    await onceEvent(client, 'close')
    assert.ok(iot.refusals.some((r) => r.clientId === 'not-deck' && /not the name of a thing/.test(r.reason)))
  })

  test('after UpdateCertificate INACTIVE the connected device is dropped, a new connection is closed and its publishes go nowhere', { timeout: TEST_TIMEOUT }, async () => {
    const gate = await iot.provisionThing('gate')
    const device = await connectDevice('gate', gate)
    const viewer = await connectViewer('viewer-gate', await presign(VIEWER))
    await viewer.subscribeAsync('things/gate/state', { qos: 1 })
    const seen: string[] = []
    viewer.on('message', (_topic, payload) => { seen.push(String(payload)) })

    const dropped = onceEvent(device, 'close')
    await iotClient.send(new UpdateCertificateCommand({ certificateId: gate.certificateId, newStatus: 'INACTIVE' }))
    await dropped
    const described = await iotClient.send(new DescribeCertificateCommand({ certificateId: gate.certificateId }))
    assert.equal(described.certificateDescription?.status, 'INACTIVE')

    // mosquitto still completes the handshake (the certificate chains to its CA), but the ACL has
    // no line for the certificate and the stand-in closes the connection right after CONNACK.
    const again = mqtt.connect(`mqtts://${iot.dataHost}:${iot.dataPort}`, { clientId: 'gate', protocolVersion: 4, reconnectPeriod: 0, ca: pki.serverCaPem, cert: gate.certPem, key: gate.keyPem })
    clients.push(again)
    again.on('error', () => {})
    const closedAgain = onceEvent(again, 'close')
    again.on('connect', () => { again.publish('things/gate/state', 'from-an-inactive-certificate', { qos: 0 }) })
    await closedAgain
    assert.ok(iot.refusals.some((r) => r.clientId === 'gate' && /INACTIVE/.test(r.reason)))

    // A fresh ACTIVE certificate for the same thing: its message is the first the viewer sees.
    const renewed = await iot.provisionThing('gate')
    const device2 = await connectDevice('gate', renewed)
    const marker = nextMessage(viewer, 'things/gate/state')
    await device2.publishAsync('things/gate/state', 'renewed', { qos: 1 })
    await marker
    assert.deepEqual(seen, ['renewed'])
    await Promise.all([device2.endAsync(), viewer.endAsync()])
  })

  test('the WSS front: a presigned viewer receives a ring, may not publish, and bad or expired URLs get 403', { timeout: TEST_TIMEOUT }, async () => {
    const door = await iot.provisionThing('door')
    const device = await connectDevice('door', door)
    await device.subscribeAsync('things/door/ring', { qos: 1 })
    const viewer = await connectViewer('viewer-door', await presign(VIEWER))
    await viewer.subscribeAsync('things/door/ring', { qos: 1 })

    const rang = nextMessage(viewer, 'things/door/ring')
    await device.publishAsync('things/door/ring', JSON.stringify({ at: 1 }), { qos: 1 })
    assert.equal((await rang).payload, JSON.stringify({ at: 1 }))

    // The viewer's own publish is acknowledged by mosquitto (MQTT 3.1.1 has no way to say no) and dropped.
    const deviceSaw: string[] = []
    device.on('message', (_topic, payload) => { deviceSaw.push(String(payload)) })
    await viewer.publishAsync('things/door/ring', 'forged-by-viewer', { qos: 1 })
    const marker = nextMessage(device, 'things/door/ring')
    await device.publishAsync('things/door/ring', 'real', { qos: 1 })
    await marker
    assert.deepEqual(deviceSaw.filter((p) => p !== JSON.stringify({ at: 1 })), ['real'])

    const good = await presign(VIEWER)
    const badSignature = good.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`)
    assert.notEqual(badSignature, good)
    assert.equal(await upgradeStatus(badSignature), 403)
    const expired = await presign(VIEWER, { signingDate: new Date(Date.now() - 10 * 60_000), expiresIn: 60 })
    assert.equal(await upgradeStatus(expired), 403)
    const unknownKey = await presign({ ...VIEWER, accessKeyId: 'ASIAUNKNOWNKEY000000' })
    assert.equal(await upgradeStatus(unknownKey), 403)
    const withoutToken = good.replace(/&X-Amz-Security-Token=[^&]*/, '')
    assert.equal(await upgradeStatus(withoutToken), 403)
    assert.equal(await upgradeStatus(good), 101)
    await assert.rejects(connectViewer('viewer-bad', badSignature), /403|closed before connecting/)
    await Promise.all([device.endAsync(), viewer.endAsync()])
  })

  test('IoTClient: endpoints, things, certificates, policies and role aliases, with the conflicts AWS raises', { timeout: TEST_TIMEOUT }, async () => {
    const data = await iotClient.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }))
    assert.equal(data.endpointAddress, `127.0.0.1:${iot.dataPort}`)
    const creds = await iotClient.send(new DescribeEndpointCommand({ endpointType: 'iot:CredentialProvider' }))
    assert.equal(creds.endpointAddress, iot.credentialsHost)

    const thing = await iotClient.send(new CreateThingCommand({ thingName: 'frontdoor' }))
    assert.equal(thing.thingArn, 'arn:aws:iot:us-east-1:123456789012:thing/frontdoor')
    const same = await iotClient.send(new CreateThingCommand({ thingName: 'frontdoor' }))
    assert.equal(same.thingId, thing.thingId, 'an identical CreateThing answers the existing thing')
    await assert.rejects(iotClient.send(new CreateThingCommand({ thingName: 'frontdoor', attributePayload: { attributes: { floor: '1' } } })), ResourceAlreadyExistsException)
    const described = await iotClient.send(new DescribeThingCommand({ thingName: 'frontdoor' }))
    assert.equal(described.defaultClientId, 'frontdoor')
    await assert.rejects(iotClient.send(new DescribeThingCommand({ thingName: 'nosuchthing' })), ResourceNotFoundException)

    const cert = await iotClient.send(new CreateKeysAndCertificateCommand({ setAsActive: true }))
    assert.match(cert.certificateId ?? '', /^[0-9a-f]{64}$/)
    assert.equal(cert.certificateArn, `arn:aws:iot:us-east-1:123456789012:cert/${cert.certificateId}`)
    assert.match(cert.keyPair?.PrivateKey ?? '', /PRIVATE KEY/)
    assert.match(cert.keyPair?.PublicKey ?? '', /PUBLIC KEY/)
    const principal = cert.certificateArn!
    const certDescription = (await iotClient.send(new DescribeCertificateCommand({ certificateId: cert.certificateId }))).certificateDescription
    assert.equal(certDescription?.status, 'ACTIVE')
    assert.equal(certDescription?.certificatePem, cert.certificatePem)
    assert.ok(certDescription?.creationDate instanceof Date)
    assert.ok((certDescription?.validity?.notAfter?.getTime() ?? 0) > Date.now())
    await iotClient.send(new AttachThingPrincipalCommand({ thingName: 'frontdoor', principal }))
    const principals = await iotClient.send(new ListThingPrincipalsCommand({ thingName: 'frontdoor' }))
    assert.deepEqual(principals.principals, [principal])

    const policyDocument = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] })
    const policy = await iotClient.send(new CreatePolicyCommand({ policyName: 'frontdoor-policy', policyDocument }))
    assert.equal(policy.policyArn, 'arn:aws:iot:us-east-1:123456789012:policy/frontdoor-policy')
    await assert.rejects(iotClient.send(new CreatePolicyCommand({ policyName: 'frontdoor-policy', policyDocument })), ResourceAlreadyExistsException)
    await assert.rejects(iotClient.send(new CreatePolicyCommand({ policyName: 'not-a-policy', policyDocument: '{"Effect":' })), MalformedPolicyException)
    assert.equal((await iotClient.send(new GetPolicyCommand({ policyName: 'frontdoor-policy' }))).policyDocument, policyDocument)
    await iotClient.send(new AttachPolicyCommand({ policyName: 'frontdoor-policy', target: principal }))
    const attached = await iotClient.send(new ListAttachedPoliciesCommand({ target: principal }))
    assert.deepEqual(attached.policies?.map((p) => p.policyName), ['frontdoor-policy'])
    await assert.rejects(iotClient.send(new DeletePolicyCommand({ policyName: 'frontdoor-policy' })), DeleteConflictException)

    // What the control plane created works on the data plane.
    const device = await connectDevice('frontdoor', { certPem: cert.certificatePem!, keyPem: cert.keyPair!.PrivateKey! })
    await device.subscribeAsync('things/frontdoor/state', { qos: 1 })
    const echoed = nextMessage(device, 'things/frontdoor/state')
    await device.publishAsync('things/frontdoor/state', 'created-by-the-sdk', { qos: 1 })
    assert.equal((await echoed).payload, 'created-by-the-sdk')

    await assert.rejects(iotClient.send(new DeleteCertificateCommand({ certificateId: cert.certificateId })), CertificateStateException)
    const dropped = onceEvent(device, 'close')
    await iotClient.send(new UpdateCertificateCommand({ certificateId: cert.certificateId, newStatus: 'INACTIVE' }))
    await dropped
    await assert.rejects(iotClient.send(new DeleteCertificateCommand({ certificateId: cert.certificateId })), DeleteConflictException, 'still attached to a thing')
    await assert.rejects(iotClient.send(new DeleteThingCommand({ thingName: 'frontdoor' })), /principal/)
    await iotClient.send(new DetachThingPrincipalCommand({ thingName: 'frontdoor', principal }))
    await assert.rejects(iotClient.send(new DeleteCertificateCommand({ certificateId: cert.certificateId })), DeleteConflictException, 'a policy is attached')
    await iotClient.send(new DetachPolicyCommand({ policyName: 'frontdoor-policy', target: principal }))
    await iotClient.send(new DeleteCertificateCommand({ certificateId: cert.certificateId }))
    await assert.rejects(iotClient.send(new DescribeCertificateCommand({ certificateId: cert.certificateId })), ResourceNotFoundException)
    await iotClient.send(new DeletePolicyCommand({ policyName: 'frontdoor-policy' }))
    await assert.rejects(iotClient.send(new DeleteThingCommand({ thingName: 'frontdoor', expectedVersion: 7 })), VersionConflictException)
    await iotClient.send(new DeleteThingCommand({ thingName: 'frontdoor' }))
    await assert.rejects(iotClient.send(new DescribeThingCommand({ thingName: 'frontdoor' })), ResourceNotFoundException)

    const roleArn = 'arn:aws:iam::123456789012:role/doorbell-kvs'
    const alias = await iotClient.send(new CreateRoleAliasCommand({ roleAlias: 'doorbell-kvs-alias', roleArn, credentialDurationSeconds: 3600 }))
    assert.equal(alias.roleAliasArn, 'arn:aws:iot:us-east-1:123456789012:rolealias/doorbell-kvs-alias')
    await assert.rejects(iotClient.send(new CreateRoleAliasCommand({ roleAlias: 'doorbell-kvs-alias', roleArn })), ResourceAlreadyExistsException)
    const aliasDescription = await iotClient.send(new DescribeRoleAliasCommand({ roleAlias: 'doorbell-kvs-alias' }))
    assert.equal(aliasDescription.roleAliasDescription?.roleArn, roleArn)
    assert.ok(aliasDescription.roleAliasDescription?.creationDate instanceof Date)
    await iotClient.send(new DeleteRoleAliasCommand({ roleAlias: 'doorbell-kvs-alias' }))
    await assert.rejects(iotClient.send(new DescribeRoleAliasCommand({ roleAlias: 'doorbell-kvs-alias' })), ResourceNotFoundException)

    const stranger = new IoTClient({ region: 'us-east-1', endpoint: iot.controlEndpoint, credentials: { accessKeyId: 'AKIANOBODY0000000000', secretAccessKey: 'x' }, requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: pki.serverCaPem }) }), maxAttempts: 1 })
    await assert.rejects(stranger.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' })), (err: Error) => err.name === 'UnrecognizedClientException')
    stranger.destroy()
  })

  test('IAMClient: roles, inline and managed policies, with the conflicts AWS raises', { timeout: TEST_TIMEOUT }, async () => {
    const created = await iamClient.send(new CreateRoleCommand({ RoleName: 'doorbell-test-role', AssumeRolePolicyDocument: TRUST_IOT_CREDENTIALS }))
    assert.equal(created.Role?.Arn, 'arn:aws:iam::123456789012:role/doorbell-test-role')
    assert.match(created.Role?.RoleId ?? '', /^AROA[A-Z0-9]{17}$/)
    await assert.rejects(iamClient.send(new CreateRoleCommand({ RoleName: 'doorbell-test-role', AssumeRolePolicyDocument: TRUST_IOT_CREDENTIALS })), EntityAlreadyExistsException)
    const role = await iamClient.send(new GetRoleCommand({ RoleName: 'doorbell-test-role' }))
    assert.ok(role.Role?.CreateDate instanceof Date)
    // As on AWS, the document comes back URL-encoded.
    assert.deepEqual(JSON.parse(decodeURIComponent(role.Role?.AssumeRolePolicyDocument ?? '')), JSON.parse(TRUST_IOT_CREDENTIALS))

    const kvs = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kinesisvideo:ConnectAsMaster'], Resource: 'arn:aws:kinesisvideo:*:*:channel/${credentials-iot:ThingName}/*' }] })
    await assert.rejects(iamClient.send(new PutRolePolicyCommand({ RoleName: 'doorbell-test-role', PolicyName: 'kvs', PolicyDocument: 'kinesisvideo:*' })), MalformedPolicyDocumentException)
    await iamClient.send(new PutRolePolicyCommand({ RoleName: 'doorbell-test-role', PolicyName: 'kvs', PolicyDocument: kvs }))
    const inline = await iamClient.send(new GetRolePolicyCommand({ RoleName: 'doorbell-test-role', PolicyName: 'kvs' }))
    assert.equal(decodeURIComponent(inline.PolicyDocument ?? ''), kvs)
    await assert.rejects(iamClient.send(new DeleteRoleCommand({ RoleName: 'doorbell-test-role' })), IamDeleteConflictException)
    await iamClient.send(new DeleteRolePolicyCommand({ RoleName: 'doorbell-test-role', PolicyName: 'kvs' }))
    await assert.rejects(iamClient.send(new GetRolePolicyCommand({ RoleName: 'doorbell-test-role', PolicyName: 'kvs' })), NoSuchEntityException)
    await iamClient.send(new DeleteRoleCommand({ RoleName: 'doorbell-test-role' }))
    await assert.rejects(iamClient.send(new GetRoleCommand({ RoleName: 'doorbell-test-role' })), NoSuchEntityException)

    const managed = await iamClient.send(new IamCreatePolicyCommand({ PolicyName: 'doorbell-managed', PolicyDocument: kvs }))
    assert.equal(managed.Policy?.Arn, 'arn:aws:iam::123456789012:policy/doorbell-managed')
    await assert.rejects(iamClient.send(new IamCreatePolicyCommand({ PolicyName: 'doorbell-managed', PolicyDocument: kvs })), EntityAlreadyExistsException)
    const got = await iamClient.send(new IamGetPolicyCommand({ PolicyArn: managed.Policy?.Arn }))
    assert.equal(got.Policy?.AttachmentCount, 0)
    assert.equal(got.Policy?.IsAttachable, true)
    await iamClient.send(new IamDeletePolicyCommand({ PolicyArn: managed.Policy?.Arn }))
    await assert.rejects(iamClient.send(new IamGetPolicyCommand({ PolicyArn: managed.Policy?.Arn })), NoSuchEntityException)

    const stranger = new IAMClient({ region: 'us-east-1', endpoint: iot.controlEndpoint, credentials: { accessKeyId: 'AKIANOBODY0000000000', secretAccessKey: 'x' }, requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: pki.serverCaPem }) }), maxAttempts: 1 })
    await assert.rejects(stranger.send(new GetRoleCommand({ RoleName: 'x' })), (err: Error) => err.name === 'InvalidClientTokenId')
    stranger.destroy()
  })

  test('IoTClient: policy versions (five at most, the default cannot be deleted) and role alias updates', { timeout: TEST_TIMEOUT }, async () => {
    const doc = (n: number): string => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `arn:aws:iot:us-east-1:123456789012:topic/v${n}` }] })
    const policyName = 'versioned-policy'
    const created = await iotClient.send(new CreatePolicyCommand({ policyName, policyDocument: doc(1) }))
    assert.equal(created.policyVersionId, '1')

    const second = await iotClient.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc(2), setAsDefault: true }))
    assert.deepEqual({ id: second.policyVersionId, isDefault: second.isDefaultVersion, arn: second.policyArn, document: second.policyDocument }, { id: '2', isDefault: true, arn: created.policyArn, document: doc(2) })
    const third = await iotClient.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc(3) }))
    assert.deepEqual([third.policyVersionId, third.isDefaultVersion], ['3', false])
    const policy = await iotClient.send(new GetPolicyCommand({ policyName }))
    assert.deepEqual([policy.defaultVersionId, policy.policyDocument], ['2', doc(2)], 'GetPolicy answers the default version')

    const first = await iotClient.send(new GetPolicyVersionCommand({ policyName, policyVersionId: '1' }))
    assert.deepEqual([first.policyName, first.policyArn, first.policyDocument, first.isDefaultVersion], [policyName, created.policyArn, doc(1), false])
    assert.ok(first.creationDate instanceof Date && first.lastModifiedDate instanceof Date)
    assert.ok((first.generationId ?? '') !== '')
    await assert.rejects(iotClient.send(new GetPolicyVersionCommand({ policyName, policyVersionId: '9' })), ResourceNotFoundException)
    await assert.rejects(iotClient.send(new GetPolicyVersionCommand({ policyName: 'no-such-policy', policyVersionId: '1' })), ResourceNotFoundException)
    await assert.rejects(iotClient.send(new CreatePolicyVersionCommand({ policyName, policyDocument: '{"Effect":' })), MalformedPolicyException)
    await assert.rejects(iotClient.send(new CreatePolicyVersionCommand({ policyName: 'no-such-policy', policyDocument: doc(1) })), ResourceNotFoundException)

    await iotClient.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc(4) }))
    await iotClient.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc(5) }))
    const listed = await iotClient.send(new ListPolicyVersionsCommand({ policyName }))
    assert.deepEqual(listed.policyVersions?.map((v) => [v.versionId, v.isDefaultVersion]), [['5', false], ['4', false], ['3', false], ['2', true], ['1', false]], 'newest first')
    assert.ok(listed.policyVersions?.every((v) => v.createDate instanceof Date))
    await assert.rejects(iotClient.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc(6), setAsDefault: true })), VersionsLimitExceededException)
    await assert.rejects(iotClient.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: '2' })), DeleteConflictException, 'the default version')

    // What the setup does on VersionsLimitExceeded: delete the oldest version that is not the default, then create again.
    const oldest = listed.policyVersions!.filter((v) => v.isDefaultVersion !== true).sort((a, b) => a.createDate!.getTime() - b.createDate!.getTime() || Number(a.versionId) - Number(b.versionId))[0]!
    assert.equal(oldest.versionId, '1')
    await iotClient.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: oldest.versionId }))
    await assert.rejects(iotClient.send(new GetPolicyVersionCommand({ policyName, policyVersionId: '1' })), ResourceNotFoundException)
    await assert.rejects(iotClient.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: '1' })), ResourceNotFoundException)
    const sixth = await iotClient.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc(6), setAsDefault: true }))
    assert.equal(sixth.policyVersionId, '6', 'a version number is never given twice')
    assert.equal((await iotClient.send(new GetPolicyCommand({ policyName }))).policyDocument, doc(6))
    assert.equal((await iotClient.send(new GetPolicyVersionCommand({ policyName, policyVersionId: '2' }))).isDefaultVersion, false)

    await iotClient.send(new SetDefaultPolicyVersionCommand({ policyName, policyVersionId: '3' }))
    const back = await iotClient.send(new GetPolicyCommand({ policyName }))
    assert.deepEqual([back.defaultVersionId, back.policyDocument], ['3', doc(3)])

    // A policy keeps its older versions until they are deleted; then it goes with its default version.
    await assert.rejects(iotClient.send(new DeletePolicyCommand({ policyName })), DeleteConflictException, 'non-default versions remain')
    for (const v of (await iotClient.send(new ListPolicyVersionsCommand({ policyName }))).policyVersions ?? []) {
      if (v.isDefaultVersion !== true) await iotClient.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: v.versionId }))
    }
    assert.deepEqual((await iotClient.send(new ListPolicyVersionsCommand({ policyName }))).policyVersions?.map((v) => v.versionId), ['3'])
    await iotClient.send(new DeletePolicyCommand({ policyName }))
    await assert.rejects(iotClient.send(new ListPolicyVersionsCommand({ policyName })), ResourceNotFoundException)

    // The stand-in's own thing policy (made without the control plane) has its one version, and gains more like any other.
    const vestibule = await iot.provisionThing('vestibule')
    const thingPolicy = await iotClient.send(new ListPolicyVersionsCommand({ policyName: THING_POLICY_NAME }))
    assert.deepEqual(thingPolicy.policyVersions?.map((v) => [v.versionId, v.isDefaultVersion]), [['1', true]])
    const thingDocument = (await iotClient.send(new GetPolicyCommand({ policyName: THING_POLICY_NAME }))).policyDocument!
    const again = await iotClient.send(new CreatePolicyVersionCommand({ policyName: THING_POLICY_NAME, policyDocument: thingDocument, setAsDefault: true }))
    assert.equal(again.policyVersionId, '2')
    await iotClient.send(new DeletePolicyVersionCommand({ policyName: THING_POLICY_NAME, policyVersionId: '1' }))

    // UpdateRoleAlias: the credentials provider follows the alias to its new role and duration.
    const role = await iamClient.send(new CreateRoleCommand({ RoleName: 'vestibule-kvs', AssumeRolePolicyDocument: TRUST_IOT_CREDENTIALS }))
    await iotClient.send(new CreateRoleAliasCommand({ roleAlias: 'vestibule-alias', roleArn: 'arn:aws:iam::123456789012:role/not-made-yet', credentialDurationSeconds: 3600 }))
    assert.equal((await getCredentials('vestibule-alias', 'vestibule', vestibule)).status, 403, 'the alias\'s role does not exist')
    const updated = await iotClient.send(new UpdateRoleAliasCommand({ roleAlias: 'vestibule-alias', roleArn: role.Role!.Arn!, credentialDurationSeconds: 900 }))
    assert.deepEqual([updated.roleAlias, updated.roleAliasArn], ['vestibule-alias', 'arn:aws:iot:us-east-1:123456789012:rolealias/vestibule-alias'])
    const described = (await iotClient.send(new DescribeRoleAliasCommand({ roleAlias: 'vestibule-alias' }))).roleAliasDescription
    assert.deepEqual([described?.roleArn, described?.credentialDurationSeconds], [role.Role!.Arn!, 900])
    assert.ok(described!.lastModifiedDate!.getTime() >= described!.creationDate!.getTime())
    const granted = await getCredentials('vestibule-alias', 'vestibule', vestibule)
    assert.equal(granted.status, 200, granted.body)
    const expiresIn = Date.parse((JSON.parse(granted.body) as { credentials: { expiration: string } }).credentials.expiration) - Date.now()
    assert.ok(expiresIn > 880_000 && expiresIn <= 900_000, `credentials for the alias's new 900 s, not ${expiresIn} ms`)
    await iotClient.send(new UpdateRoleAliasCommand({ roleAlias: 'vestibule-alias', credentialDurationSeconds: 1800 }))
    const partly = (await iotClient.send(new DescribeRoleAliasCommand({ roleAlias: 'vestibule-alias' }))).roleAliasDescription
    assert.deepEqual([partly?.roleArn, partly?.credentialDurationSeconds], [role.Role!.Arn!, 1800], 'what is not given stays')
    await assert.rejects(iotClient.send(new UpdateRoleAliasCommand({ roleAlias: 'vestibule-alias', credentialDurationSeconds: 60 })), InvalidRequestException)
    await assert.rejects(iotClient.send(new UpdateRoleAliasCommand({ roleAlias: 'vestibule-alias', roleArn: 'not-an-arn' })), InvalidRequestException)
    await assert.rejects(iotClient.send(new UpdateRoleAliasCommand({ roleAlias: 'no-such-alias', credentialDurationSeconds: 900 })), ResourceNotFoundException)
    await iotClient.send(new DeleteRoleAliasCommand({ roleAlias: 'vestibule-alias' }))
    await iamClient.send(new DeleteRoleCommand({ RoleName: 'vestibule-kvs' }))
  })

  test('IAMClient: managed policy versions (five at most, the default cannot be deleted), attachments and their listing', { timeout: TEST_TIMEOUT }, async () => {
    const doc = (n: number): string => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `arn:aws:iot:*:*:topicfilter/things/v${n}/*` }] })
    const created = await iamClient.send(new IamCreatePolicyCommand({ PolicyName: 'residents-versioned', PolicyDocument: doc(1) }))
    const PolicyArn = created.Policy!.Arn!
    assert.equal(created.Policy?.DefaultVersionId, 'v1')

    const second = await iamClient.send(new IamCreatePolicyVersionCommand({ PolicyArn, PolicyDocument: doc(2) }))
    assert.deepEqual([second.PolicyVersion?.VersionId, second.PolicyVersion?.IsDefaultVersion], ['v2', false])
    assert.ok(second.PolicyVersion?.CreateDate instanceof Date)
    assert.equal((await iamClient.send(new IamGetPolicyCommand({ PolicyArn }))).Policy?.DefaultVersionId, 'v1', 'not the default unless asked')
    const third = await iamClient.send(new IamCreatePolicyVersionCommand({ PolicyArn, PolicyDocument: doc(3), SetAsDefault: true }))
    assert.deepEqual([third.PolicyVersion?.VersionId, third.PolicyVersion?.IsDefaultVersion], ['v3', true])
    assert.equal((await iamClient.send(new IamGetPolicyCommand({ PolicyArn }))).Policy?.DefaultVersionId, 'v3')

    // As on AWS, the document comes back URL-encoded.
    const got = (await iamClient.send(new IamGetPolicyVersionCommand({ PolicyArn, VersionId: 'v3' }))).PolicyVersion
    assert.notEqual(got?.Document, doc(3))
    assert.equal(decodeURIComponent(got?.Document ?? ''), doc(3))
    assert.equal(got?.IsDefaultVersion, true)
    assert.equal(decodeURIComponent((await iamClient.send(new IamGetPolicyVersionCommand({ PolicyArn, VersionId: 'v1' }))).PolicyVersion?.Document ?? ''), doc(1))
    await assert.rejects(iamClient.send(new IamGetPolicyVersionCommand({ PolicyArn, VersionId: 'v9' })), NoSuchEntityException)
    await assert.rejects(iamClient.send(new IamGetPolicyVersionCommand({ PolicyArn: 'arn:aws:iam::123456789012:policy/absent', VersionId: 'v1' })), NoSuchEntityException)
    await assert.rejects(iamClient.send(new IamCreatePolicyVersionCommand({ PolicyArn, PolicyDocument: 'iot:*' })), MalformedPolicyDocumentException)

    await iamClient.send(new IamCreatePolicyVersionCommand({ PolicyArn, PolicyDocument: doc(4) }))
    await iamClient.send(new IamCreatePolicyVersionCommand({ PolicyArn, PolicyDocument: doc(5) }))
    const listed = await iamClient.send(new IamListPolicyVersionsCommand({ PolicyArn }))
    assert.deepEqual(listed.Versions?.map((v) => [v.VersionId, v.IsDefaultVersion]), [['v5', false], ['v4', false], ['v3', true], ['v2', false], ['v1', false]], 'newest first')
    assert.ok(listed.Versions?.every((v) => v.Document === undefined && v.CreateDate instanceof Date), 'listed without documents')
    assert.equal(listed.IsTruncated, false)
    const page1 = await iamClient.send(new IamListPolicyVersionsCommand({ PolicyArn, MaxItems: 2 }))
    assert.deepEqual([page1.Versions?.map((v) => v.VersionId), page1.IsTruncated], [['v5', 'v4'], true])
    const page2 = await iamClient.send(new IamListPolicyVersionsCommand({ PolicyArn, MaxItems: 2, Marker: page1.Marker }))
    const page3 = await iamClient.send(new IamListPolicyVersionsCommand({ PolicyArn, MaxItems: 2, Marker: page2.Marker }))
    assert.deepEqual([page2.Versions?.map((v) => v.VersionId), page3.Versions?.map((v) => v.VersionId), page3.IsTruncated, page3.Marker], [['v3', 'v2'], ['v1'], false, undefined])

    await assert.rejects(iamClient.send(new IamCreatePolicyVersionCommand({ PolicyArn, PolicyDocument: doc(6), SetAsDefault: true })),
      (err: Error) => err instanceof LimitExceededException && err.name === 'LimitExceededException', 'five versions at most')
    await assert.rejects(iamClient.send(new IamDeletePolicyVersionCommand({ PolicyArn, VersionId: 'v3' })), IamDeleteConflictException, 'the default version')
    await iamClient.send(new IamDeletePolicyVersionCommand({ PolicyArn, VersionId: 'v1' }))
    await assert.rejects(iamClient.send(new IamDeletePolicyVersionCommand({ PolicyArn, VersionId: 'v1' })), NoSuchEntityException)
    const sixth = await iamClient.send(new IamCreatePolicyVersionCommand({ PolicyArn, PolicyDocument: doc(6), SetAsDefault: true }))
    assert.equal(sixth.PolicyVersion?.VersionId, 'v6', 'a version number is never given twice')
    await iamClient.send(new IamSetDefaultPolicyVersionCommand({ PolicyArn, VersionId: 'v2' }))
    assert.equal((await iamClient.send(new IamGetPolicyCommand({ PolicyArn }))).Policy?.DefaultVersionId, 'v2')
    await assert.rejects(iamClient.send(new IamSetDefaultPolicyVersionCommand({ PolicyArn, VersionId: 'v1' })), NoSuchEntityException)

    // Attachments: none at first, then a role, a user and a group (the state makes users and groups).
    const empty = await iamClient.send(new ListEntitiesForPolicyCommand({ PolicyArn }))
    assert.deepEqual([empty.PolicyGroups, empty.PolicyUsers, empty.PolicyRoles, empty.IsTruncated], [[], [], [], false])
    const role = await iamClient.send(new CreateRoleCommand({ RoleName: 'resident-role', AssumeRolePolicyDocument: TRUST_IOT_CREDENTIALS }))
    const bob = iot.state.addIamUser('bob', '/residents/')
    const family = iot.state.addIamGroup('family')
    await iamClient.send(new AttachRolePolicyCommand({ RoleName: 'resident-role', PolicyArn }))
    await iamClient.send(new AttachUserPolicyCommand({ UserName: 'bob', PolicyArn }))
    await iamClient.send(new AttachUserPolicyCommand({ UserName: 'bob', PolicyArn }))
    await iamClient.send(new AttachGroupPolicyCommand({ GroupName: 'family', PolicyArn }))
    await assert.rejects(iamClient.send(new AttachUserPolicyCommand({ UserName: 'nobody', PolicyArn })), NoSuchEntityException)
    await assert.rejects(iamClient.send(new AttachGroupPolicyCommand({ GroupName: 'family', PolicyArn: 'arn:aws:iam::123456789012:policy/absent' })), NoSuchEntityException)
    assert.equal((await iamClient.send(new IamGetPolicyCommand({ PolicyArn }))).Policy?.AttachmentCount, 3)
    const entities = await iamClient.send(new ListEntitiesForPolicyCommand({ PolicyArn }))
    assert.deepEqual(entities.PolicyGroups, [{ GroupName: 'family', GroupId: family.id }])
    assert.deepEqual(entities.PolicyUsers, [{ UserName: 'bob', UserId: bob.id }])
    assert.deepEqual(entities.PolicyRoles, [{ RoleName: 'resident-role', RoleId: role.Role!.RoleId }])
    const users = await iamClient.send(new ListEntitiesForPolicyCommand({ PolicyArn, EntityFilter: 'User' }))
    assert.deepEqual([users.PolicyGroups, users.PolicyUsers?.map((u) => u.UserName), users.PolicyRoles], [[], ['bob'], []])
    const underResidents = await iamClient.send(new ListEntitiesForPolicyCommand({ PolicyArn, PathPrefix: '/residents/' }))
    assert.deepEqual([underResidents.PolicyGroups?.length, underResidents.PolicyUsers?.length, underResidents.PolicyRoles?.length], [0, 1, 0])
    const paged = await iamClient.send(new ListEntitiesForPolicyCommand({ PolicyArn, MaxItems: 2 }))
    assert.equal(paged.IsTruncated, true)
    const rest = await iamClient.send(new ListEntitiesForPolicyCommand({ PolicyArn, MaxItems: 2, Marker: paged.Marker }))
    assert.deepEqual([paged.PolicyGroups!.length + paged.PolicyUsers!.length + paged.PolicyRoles!.length, rest.PolicyRoles?.map((r) => r.RoleName), rest.IsTruncated], [2, ['resident-role'], false])
    await assert.rejects(iamClient.send(new ListEntitiesForPolicyCommand({ PolicyArn: 'arn:aws:iam::123456789012:policy/absent' })), NoSuchEntityException)

    await assert.rejects(iamClient.send(new IamDeletePolicyCommand({ PolicyArn })), IamDeleteConflictException, 'attached')
    await assert.rejects(iamClient.send(new DeleteRoleCommand({ RoleName: 'resident-role' })), IamDeleteConflictException, 'a managed policy is attached')
    // What the setup's teardown does when DeletePolicy is refused: detach from everyone listed, delete the older versions, delete again.
    for (const u of entities.PolicyUsers ?? []) await iamClient.send(new DetachUserPolicyCommand({ UserName: u.UserName, PolicyArn }))
    for (const g of entities.PolicyGroups ?? []) await iamClient.send(new DetachGroupPolicyCommand({ GroupName: g.GroupName, PolicyArn }))
    for (const r of entities.PolicyRoles ?? []) await iamClient.send(new DetachRolePolicyCommand({ RoleName: r.RoleName, PolicyArn }))
    await assert.rejects(iamClient.send(new DetachUserPolicyCommand({ UserName: 'bob', PolicyArn })), NoSuchEntityException, 'no longer attached')
    await assert.rejects(iamClient.send(new DetachGroupPolicyCommand({ GroupName: 'nobody', PolicyArn })), NoSuchEntityException)
    assert.equal((await iamClient.send(new IamGetPolicyCommand({ PolicyArn }))).Policy?.AttachmentCount, 0)
    assert.equal(bob.attachedPolicies.size + family.attachedPolicies.size, 0)
    await assert.rejects(iamClient.send(new IamDeletePolicyCommand({ PolicyArn })), IamDeleteConflictException, 'non-default versions remain')
    for (const v of (await iamClient.send(new IamListPolicyVersionsCommand({ PolicyArn }))).Versions ?? []) {
      if (v.IsDefaultVersion !== true) await iamClient.send(new IamDeletePolicyVersionCommand({ PolicyArn, VersionId: v.VersionId }))
    }
    await iamClient.send(new IamDeletePolicyCommand({ PolicyArn }))
    await assert.rejects(iamClient.send(new IamListPolicyVersionsCommand({ PolicyArn })), NoSuchEntityException)

    // A role's trust policy can be replaced (the setup's update of a drifted trust).
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: ['credentials.iot.amazonaws.com'] }, Action: 'sts:AssumeRole' }] })
    await iamClient.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'resident-role', PolicyDocument: trust }))
    assert.equal(decodeURIComponent((await iamClient.send(new GetRoleCommand({ RoleName: 'resident-role' }))).Role?.AssumeRolePolicyDocument ?? ''), trust)
    await assert.rejects(iamClient.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'resident-role', PolicyDocument: '{' })), MalformedPolicyDocumentException)
    await iamClient.send(new DeleteRoleCommand({ RoleName: 'resident-role' }))
  })

  test('the credentials provider trades a thing certificate for temporary credentials the stand-ins accept', { timeout: TEST_TIMEOUT }, async () => {
    const role = await iamClient.send(new CreateRoleCommand({ RoleName: 'doorbell-device', AssumeRolePolicyDocument: TRUST_IOT_CREDENTIALS }))
    await iotClient.send(new CreateRoleAliasCommand({ roleAlias: 'doorbell-device-alias', roleArn: role.Role!.Arn! }))
    const bell = await iot.provisionThing('bell')
    const other = await iot.provisionThing('bell-neighbour')

    const granted = await getCredentials('doorbell-device-alias', 'bell', bell)
    assert.equal(granted.status, 200)
    const { credentials } = JSON.parse(granted.body) as { credentials: { accessKeyId: string, secretAccessKey: string, sessionToken: string, expiration: string } }
    assert.match(credentials.accessKeyId, /^ASIA/)
    assert.ok(Date.parse(credentials.expiration) > Date.now())
    const stored = store.get(credentials.accessKeyId)
    assert.equal(stored?.principal, 'thing/bell')
    assert.equal(stored?.sessionToken, credentials.sessionToken)

    // The temporary credentials sign requests the stand-ins accept (here: the IoT control plane).
    const asThing = new IoTClient({ region: 'us-east-1', endpoint: iot.controlEndpoint, credentials: { ...credentials, expiration: new Date(credentials.expiration) }, requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: pki.serverCaPem }) }), maxAttempts: 1 })
    assert.equal((await asThing.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }))).endpointAddress, `127.0.0.1:${iot.dataPort}`)
    asThing.destroy()

    assert.equal((await getCredentials('doorbell-device-alias', 'bell', other)).status, 403, 'a certificate not attached to that thing')
    assert.equal((await getCredentials('doorbell-device-alias', 'bell', undefined)).status, 403, 'no certificate')
    assert.equal((await getCredentials('no-such-alias', 'bell', bell)).status, 403, 'an unknown role alias')
    assert.equal((await getCredentials('doorbell-device-alias', undefined, bell)).status, 403, 'no thing name header')
    const stranger = await (await Pki.create()).issueClient('bell')
    assert.equal((await getCredentials('doorbell-device-alias', 'bell', stranger)).status, 403, 'a certificate from another CA')
  })

  async function getCredentials (alias: string, thingName: string | undefined, identity: { certPem: string, keyPem: string } | undefined): Promise<{ status: number, body: string }> {
    const [host, port] = iot.credentialsHost.split(':') as [string, string]
    return await new Promise((resolve, reject) => {
      const req = httpsRequest({
        host,
        port: Number(port),
        path: `/role-aliases/${encodeURIComponent(alias)}/credentials`,
        method: 'GET',
        ca: pki.serverCaPem,
        ...(identity !== undefined ? { cert: identity.certPem, key: identity.keyPem } : {}),
        headers: thingName !== undefined ? { 'x-amzn-iot-thingname': thingName } : {},
        agent: false
      }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
      })
      req.on('error', reject)
      req.end()
    })
  }

  /** The HTTP status of a WebSocket upgrade to `url` (101 when accepted). */
  async function upgradeStatus (url: string): Promise<number> {
    return await new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'mqtt', { ca: pki.serverCaPem })
      ws.on('upgrade', (res) => { resolve(res.statusCode ?? 0); ws.terminate() })
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate() })
      ws.on('error', (err) => { reject(err) })
    })
  }
})

async function connected (client: MqttClient): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onConnect = (): void => { cleanup(); resolve() }
    const onError = (err: Error): void => { cleanup(); client.end(true); reject(err) }
    const onClose = (): void => { cleanup(); client.end(true); reject(new Error('the connection closed before connecting')) }
    const cleanup = (): void => { client.off('connect', onConnect); client.off('error', onError); client.off('close', onClose) }
    client.on('connect', onConnect)
    client.on('error', onError)
    client.on('close', onClose)
  })
}

async function onceEvent (client: MqttClient, event: 'close' | 'connect'): Promise<void> {
  await new Promise<void>((resolve) => { client.once(event, () => { resolve() }) })
}

/** The first message on `topic` from now on. */
async function nextMessage (client: MqttClient, topic: string): Promise<{ payload: string, retain: boolean }> {
  return await new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer, packet: { retain?: boolean }): void => {
      if (t !== topic) return
      client.off('message', onMessage)
      resolve({ payload: payload.toString('utf8'), retain: packet.retain === true })
    }
    client.on('message', onMessage)
  })
}

/** RFC 3986 percent-encoding, as SigV4 canonicalises. */
function strict (text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}
