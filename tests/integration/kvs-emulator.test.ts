import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  CreateSignalingChannelCommand, DeleteSignalingChannelCommand, DescribeSignalingChannelCommand, GetSignalingChannelEndpointCommand,
  KinesisVideoClient, ListSignalingChannelsCommand
} from '@aws-sdk/client-kinesis-video'
import { GetIceServerConfigCommand, KinesisVideoSignalingClient } from '@aws-sdk/client-kinesis-video-signaling'
import { Role, SignalingClient, SigV4RequestSigner } from 'amazon-kinesis-video-streams-webrtc'
import { WebSocket as WsClient } from 'ws'
import { KvsEmulator, MASTER, type IceServerSpec, type KvsLimits } from '../src/cloud/kvs/emulator'
import { Pki } from '../src/cloud/pki'
import { CredentialStore, type AwsCredential } from '../src/cloud/sigv4'
import { trustCa } from '../src/cloud/trust'

/**
 * The KVS signaling stand-in, driven by the unmodified clients a doorbell and a browser use: the
 * AWS SDK v3 control-plane clients and the KVS WebRTC SDK's SignalingClient (on Node's global
 * WebSocket). Node trusts the stand-in's CA through trustCa, as a device would through
 * NODE_EXTRA_CA_CERTS.
 */

const REGION = 'us-east-1'
const device: AwsCredential = { accessKeyId: 'ASIADEVICE000001', secretAccessKey: 'device-secret', sessionToken: 'device-session-token/+=', principal: 'role/doorbell' }
const sdkCredentials = { accessKeyId: device.accessKeyId, secretAccessKey: device.secretAccessKey, sessionToken: device.sessionToken! }
const TEST_TIMEOUT = 30_000

let pki: Pki
let store: CredentialStore
let untrust: () => void
const emulators: KvsEmulator[] = []

before(async () => {
  pki = await Pki.create()
  store = new CredentialStore()
  store.add(device)
  untrust = trustCa(pki.serverCaPem)
})

after(async () => {
  await Promise.all(emulators.map((e) => e.stop()))
  untrust()
})

async function emulator (o: { limits?: Partial<KvsLimits>, iceServers?: () => IceServerSpec[] } = {}): Promise<KvsEmulator> {
  const e = await KvsEmulator.start({ pki, store, ...o })
  emulators.push(e)
  return e
}

function controlPlane (e: KvsEmulator, credentials = sdkCredentials): KinesisVideoClient {
  return new KinesisVideoClient({ region: REGION, endpoint: e.endpoint, credentials, maxAttempts: 1 })
}

/** Values pushed by events, taken by predicate in arrival order; waiting is bounded by the test's timeout. */
class Inbox<T> {
  private readonly items: T[] = []
  private readonly waiters: Array<{ match: (x: T) => boolean, resolve: (x: T) => void }> = []
  push (x: T): void {
    const i = this.waiters.findIndex((w) => w.match(x))
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(x)
    else this.items.push(x)
  }

  take (match: (x: T) => boolean = () => true): Promise<T> {
    const i = this.items.findIndex(match)
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]!)
    return new Promise((resolve) => { this.waiters.push({ match, resolve }) })
  }

  get pending (): readonly T[] { return this.items }
}

interface Received { kind: 'sdpOffer' | 'sdpAnswer' | 'iceCandidate' | 'statusResponse', body: Record<string, unknown>, from?: string }

interface Peer {
  client: SignalingClient
  inbox: Inbox<Received>
  /** Resolves when the signaling connection closes, for whatever reason. */
  closed: Promise<void>
}

/** The endpoint a role gets from GetSignalingChannelEndpoint, through the real client. */
async function wssEndpoint (e: KvsEmulator, arn: string, role: 'MASTER' | 'VIEWER'): Promise<string> {
  const out = await controlPlane(e).send(new GetSignalingChannelEndpointCommand({
    ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: role }
  }))
  const endpoint = out.ResourceEndpointList?.find((x) => x.Protocol === 'WSS')?.ResourceEndpoint
  assert.ok(endpoint)
  return endpoint
}

/** Opens the SDK's SignalingClient; rejects with the SDK's error if the connection is refused. */
async function connect (e: KvsEmulator, arn: string, clientId?: string, credentials = sdkCredentials): Promise<Peer> {
  const client = new SignalingClient({
    channelARN: arn,
    channelEndpoint: await wssEndpoint(e, arn, clientId === undefined ? 'MASTER' : 'VIEWER'),
    role: clientId === undefined ? Role.MASTER : Role.VIEWER,
    region: REGION,
    credentials,
    ...(clientId !== undefined ? { clientId } : {})
  })
  const inbox = new Inbox<Received>()
  client.on('sdpOffer', (body: Record<string, unknown>, from?: string) => { inbox.push({ kind: 'sdpOffer', body, ...(from ? { from } : {}) }) })
  client.on('sdpAnswer', (body: Record<string, unknown>, from?: string) => { inbox.push({ kind: 'sdpAnswer', body, ...(from ? { from } : {}) }) })
  client.on('iceCandidate', (body: Record<string, unknown>, from?: string) => { inbox.push({ kind: 'iceCandidate', body, ...(from ? { from } : {}) }) })
  client.on('statusResponse', (body: Record<string, unknown>) => { inbox.push({ kind: 'statusResponse', body }) })
  const closed = new Promise<void>((resolve) => { client.on('close', () => { resolve() }) })
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => { resolve() })
    client.once('error', (err: unknown) => { reject(err instanceof Error ? err : new Error('signaling connection refused')) })
    client.open()
  })
  // The SDK emits every later WebSocket error too; the tests look at `closed` instead.
  client.on('error', () => {})
  return { client, inbox, closed }
}

/** A URL presigned by the SDK's own signer, for raw `ws` clients that look at the HTTP answer. */
async function presigned (e: KvsEmulator, arn: string, clientId?: string, credentials = sdkCredentials): Promise<string> {
  return await new SigV4RequestSigner(REGION, credentials).getSignedURL(
    e.endpoint.replace('https://', 'wss://'),
    { 'X-Amz-ChannelARN': arn, ...(clientId !== undefined ? { 'X-Amz-ClientId': clientId } : {}) }
  )
}

type RawResult = { ws: WsClient, inbox: Inbox<Record<string, unknown>>, closed: Promise<{ code: number, reason: string }> } | { status: number, errorType: string }

/** A plain `ws` client: shows the exact frames delivered, or the HTTP status of a refused upgrade. */
function raw (url: string): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const ws = new WsClient(url, { ca: pki.serverCaPem })
    const inbox = new Inbox<Record<string, unknown>>()
    const closed = new Promise<{ code: number, reason: string }>((resolveClose) => {
      ws.on('close', (code, reason) => { resolveClose({ code, reason: reason.toString() }) })
    })
    ws.on('message', (data) => { inbox.push(JSON.parse(data.toString()) as Record<string, unknown>) })
    ws.on('open', () => { resolve({ ws, inbox, closed }) })
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, errorType: String(res.headers['x-amzn-errortype']) })
      res.resume()
      ws.terminate()
    })
    ws.on('error', (err) => { reject(err) })
  })
}

async function rawOpen (url: string): Promise<Extract<RawResult, { ws: WsClient }>> {
  const r = await raw(url)
  assert.ok('ws' in r, `expected the upgrade to succeed, got ${JSON.stringify(r)}`)
  return r
}

/** Waits for a condition the emulator reaches after a client-side event (e.g. it sees a close a little after the client does). */
async function until (what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  assert.fail(`never happened: ${what}`)
}

/** An AWS SDK v3 error with this name (and HTTP status). */
function awsError (name: string, status?: number): (err: unknown) => true {
  return (err) => {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } }
    assert.equal(e.name, name, e.message)
    if (status !== undefined) assert.equal(e.$metadata?.httpStatusCode, status)
    return true
  }
}

const sdp = (type: 'offer' | 'answer', tag: string): RTCSessionDescription => ({ type, sdp: `v=0\r\no=- ${tag} 2 IN IP4 127.0.0.1\r\n` }) as RTCSessionDescription
const candidate = (tag: string): RTCIceCandidate => ({ candidate: `candidate:${tag} 1 udp 2122260223 127.0.0.1 5000 typ host`, sdpMid: '0', sdpMLineIndex: 0 }) as RTCIceCandidate

describe('KVS emulator: control plane through the AWS SDK v3 clients', () => {
  it('creates, describes, lists and deletes channels; gets endpoints per role and ICE servers', { timeout: TEST_TIMEOUT }, async () => {
    const ice: IceServerSpec[] = [{ Uris: ['turn:127.0.0.1:3478?transport=udp'], Username: '1700000000:viewer', Password: 'pw', Ttl: 300 }]
    const e = await emulator({ iceServers: () => ice })
    const kv = controlPlane(e)
    const created = await kv.send(new CreateSignalingChannelCommand({ ChannelName: 'front-door' }))
    assert.match(created.ChannelARN!, /^arn:aws:kinesisvideo:us-east-1:123456789012:channel\/front-door\/\d+$/)
    assert.equal(e.createChannel('front-door'), created.ChannelARN, 'createChannel is idempotent')

    // The flow a device runs: DescribeSignalingChannel → GetSignalingChannelEndpoint → GetIceServerConfig.
    const described = await kv.send(new DescribeSignalingChannelCommand({ ChannelName: 'front-door' }))
    assert.equal(described.ChannelInfo?.ChannelARN, created.ChannelARN)
    assert.equal(described.ChannelInfo?.ChannelStatus, 'ACTIVE')
    assert.equal(described.ChannelInfo?.ChannelType, 'SINGLE_MASTER')
    assert.ok(described.ChannelInfo?.CreationTime instanceof Date)
    for (const role of ['MASTER', 'VIEWER'] as const) {
      const endpoints = await kv.send(new GetSignalingChannelEndpointCommand({
        ChannelARN: created.ChannelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: role }
      }))
      const byProtocol = Object.fromEntries(endpoints.ResourceEndpointList!.map((x) => [x.Protocol, x.ResourceEndpoint]))
      assert.deepEqual(byProtocol, { WSS: e.endpoint.replace('https://', 'wss://'), HTTPS: e.endpoint })
    }
    const signaling = new KinesisVideoSignalingClient({ region: REGION, endpoint: e.endpoint, credentials: sdkCredentials, maxAttempts: 1 })
    const config = await signaling.send(new GetIceServerConfigCommand({ ChannelARN: created.ChannelARN, ClientId: 'viewer-1' }))
    assert.deepEqual(config.IceServerList, ice)

    const listed = await kv.send(new ListSignalingChannelsCommand({ ChannelNameCondition: { ComparisonOperator: 'BEGINS_WITH', ComparisonValue: 'front' } }))
    assert.deepEqual(listed.ChannelInfoList?.map((c) => c.ChannelName), ['front-door'])

    await assert.rejects(kv.send(new CreateSignalingChannelCommand({ ChannelName: 'front-door' })), awsError('ResourceInUseException', 400))
    await kv.send(new DeleteSignalingChannelCommand({ ChannelARN: created.ChannelARN }))
    await assert.rejects(kv.send(new DescribeSignalingChannelCommand({ ChannelARN: created.ChannelARN })), awsError('ResourceNotFoundException', 404))
    await assert.rejects(signaling.send(new GetIceServerConfigCommand({ ChannelARN: created.ChannelARN })), awsError('ResourceNotFoundException', 404))
  })

  it('refuses requests with a wrong secret, an unknown key, a missing token or another region', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const describe = new DescribeSignalingChannelCommand({ ChannelName: 'x' })
    await assert.rejects(controlPlane(e, { ...sdkCredentials, secretAccessKey: 'wrong' }).send(describe), awsError('InvalidSignatureException', 403))
    await assert.rejects(controlPlane(e, { ...sdkCredentials, accessKeyId: 'ASIAUNKNOWN' }).send(describe), awsError('UnrecognizedClientException', 403))
    const { sessionToken: _token, ...noToken } = sdkCredentials
    await assert.rejects(controlPlane(e, noToken as typeof sdkCredentials).send(describe), awsError('UnrecognizedClientException', 403))
    const elsewhere = new KinesisVideoClient({ region: 'eu-west-1', endpoint: e.endpoint, credentials: sdkCredentials, maxAttempts: 1 })
    await assert.rejects(elsewhere.send(describe), awsError('InvalidSignatureException', 403))
    const res = await fetch(`${e.endpoint}/describeSignalingChannel`, { method: 'POST', body: '{}' })
    assert.equal(res.status, 403)
    assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException')
  })

  it('answers CORS preflights the way a browser needs', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const origin = 'https://viewer.example'
    const preflight = await fetch(`${e.endpoint}/getSignalingChannelEndpoint`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,x-amz-date,x-amz-security-token' }
    })
    assert.equal(preflight.status, 200)
    assert.equal(preflight.headers.get('access-control-allow-origin'), origin)
    const allowed = preflight.headers.get('access-control-allow-headers')!.split(/,\s*/)
    for (const h of ['authorization', 'content-type', 'x-amz-date', 'x-amz-security-token', 'x-amz-user-agent', 'x-amz-content-sha256', 'amz-sdk-invocation-id', 'amz-sdk-request']) {
      assert.ok(allowed.includes(h), h)
    }
    const refused = await fetch(`${e.endpoint}/describeSignalingChannel`, { method: 'POST', headers: { Origin: origin }, body: '{}' })
    assert.equal(refused.headers.get('access-control-allow-origin'), origin, 'errors carry CORS headers too, or the browser hides them')
    assert.match(refused.headers.get('access-control-expose-headers')!, /x-amzn-errortype/)
  })
})

describe('KVS emulator: signaling through the KVS WebRTC SDK', () => {
  it('routes offers, answers and ICE candidates between one master and several viewers', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const arn = e.createChannel('porch')
    const master = await connect(e, arn)
    const viewers = await Promise.all(['viewer-a', 'viewer-b', 'viewer-c'].map(async (id) => ({ id, peer: await connect(e, arn, id) })))
    assert.deepEqual(e.connections('porch'), { master: true, viewers: ['viewer-a', 'viewer-b', 'viewer-c'] })

    for (const v of viewers) v.peer.client.sendSdpOffer(sdp('offer', v.id))
    for (const v of viewers) {
      const offer = await master.inbox.take((m) => m.kind === 'sdpOffer' && m.from === v.id)
      assert.deepEqual(offer.body, sdp('offer', v.id))
      master.client.sendSdpAnswer(sdp('answer', `for-${v.id}`), v.id)
      master.client.sendIceCandidate(candidate(`m-${v.id}`), v.id)
      v.peer.client.sendIceCandidate(candidate(`v-${v.id}`))
    }
    for (const v of viewers) {
      const answer = await v.peer.inbox.take((m) => m.kind === 'sdpAnswer')
      assert.deepEqual(answer.body, sdp('answer', `for-${v.id}`), 'each viewer gets the answer meant for it')
      assert.equal(answer.from, undefined, 'messages from the master carry no senderClientId')
      assert.deepEqual((await v.peer.inbox.take((m) => m.kind === 'iceCandidate')).body, candidate(`m-${v.id}`))
      const ice = await master.inbox.take((m) => m.kind === 'iceCandidate' && m.from === v.id)
      assert.deepEqual(ice.body, candidate(`v-${v.id}`))
      assert.equal(v.peer.inbox.pending.length, 0, 'nothing meant for another viewer arrived')
    }
    const routed = e.log.filter((x) => x.outcome === 'routed')
    assert.equal(routed.length, 12)
    assert.ok(routed.some((x) => x.from === 'viewer-b' && x.to === MASTER && x.action === 'SDP_OFFER'))
    assert.ok(routed.some((x) => x.from === MASTER && x.to === 'viewer-b' && x.action === 'SDP_ANSWER'))

    for (const v of viewers) v.peer.client.close()
    await Promise.all(viewers.map((v) => v.peer.closed))
    master.client.close()
    await master.closed
  })

  it('relays payloads byte for byte and never parses them', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const arn = e.createChannel('bytes')
    const master = await rawOpen(await presigned(e, arn))
    const viewer = await rawOpen(await presigned(e, arn, 'viewer-1'))
    // Not JSON, not even valid base64: the service does not care.
    const odd = Buffer.from([0, 1, 2, 253, 254, 255, 34, 92]).toString('base64') + '=?*'
    viewer.ws.send(JSON.stringify({ action: 'SDP_OFFER', messagePayload: odd, recipientClientId: 'ignored-for-viewers' }))
    assert.deepEqual(await master.inbox.take(), { messageType: 'SDP_OFFER', messagePayload: odd, senderClientId: 'viewer-1' })
    const answer = 'eyJ0eXBlIjoiYW5zd2VyIn0='
    master.ws.send(JSON.stringify({ action: 'SDP_ANSWER', messagePayload: answer, recipientClientId: 'viewer-1' }))
    assert.deepEqual(await viewer.inbox.take(), { messageType: 'SDP_ANSWER', messagePayload: answer })
    master.ws.close()
    viewer.ws.close()
    await Promise.all([master.closed, viewer.closed])
  })

  it('answers a bad message with a STATUS_RESPONSE when it has a correlationId, and drops it otherwise', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator({ limits: { payloadBytes: 2048 } })
    const arn = e.createChannel('errors')
    const master = await connect(e, arn)
    const viewer = await connect(e, arn, 'viewer-1')

    const big = sdp('offer', 'x'.repeat(2048))
    viewer.client.sendSdpOffer(big, undefined, 'too-big-1')
    const tooBig = await viewer.inbox.take((m) => m.kind === 'statusResponse')
    assert.equal(tooBig.body.correlationId, 'too-big-1')
    assert.equal(tooBig.body.errorType, 'InvalidArgumentException')
    assert.equal(tooBig.body.statusCode, '400')
    assert.match(String(tooBig.body.description), /over the limit of 2048/)

    master.client.sendSdpAnswer(sdp('answer', 'nobody'), undefined, 'no-recipient')
    assert.equal((await master.inbox.take((m) => m.kind === 'statusResponse')).body.correlationId, 'no-recipient')
    master.client.sendSdpAnswer(sdp('answer', 'gone'), 'viewer-not-here', 'absent-1')
    const absent = await master.inbox.take((m) => m.kind === 'statusResponse')
    assert.deepEqual({ ...absent.body, description: undefined }, { correlationId: 'absent-1', errorType: 'ResourceNotFoundException', statusCode: '404', description: undefined })

    // Without a correlationId the same mistake is dropped silently; the next message still flows.
    viewer.client.sendSdpOffer(big)
    viewer.client.sendSdpOffer(sdp('offer', 'small'))
    assert.deepEqual((await master.inbox.take((m) => m.kind === 'sdpOffer')).body, sdp('offer', 'small'))
    assert.equal(viewer.inbox.pending.length, 0)
    const refused = e.log.filter((x) => x.outcome === 'refused')
    assert.deepEqual(refused.map((x) => [x.from, x.to, x.action]), [
      ['viewer-1', '', 'SDP_OFFER'], [MASTER, '', 'SDP_ANSWER'], [MASTER, 'viewer-not-here', 'SDP_ANSWER'], ['viewer-1', '', 'SDP_OFFER']
    ])

    // A viewer whose master is not connected.
    master.client.close()
    await master.closed
    await until('the emulator sees the master go', () => !e.connections('errors').master)
    viewer.client.sendIceCandidate(candidate('late'), undefined, 'no-master')
    const noMaster = await viewer.inbox.take((m) => m.kind === 'statusResponse')
    assert.equal(noMaster.body.correlationId, 'no-master')
    assert.equal(noMaster.body.errorType, 'ResourceNotFoundException')
    viewer.client.close()
    await viewer.closed
  })

  it('drops malformed frames without closing the connection', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const arn = e.createChannel('malformed')
    const master = await rawOpen(await presigned(e, arn))
    const viewer = await rawOpen(await presigned(e, arn, 'viewer-1'))
    viewer.ws.send('not json')
    viewer.ws.send(JSON.stringify({ action: 'HELLO', messagePayload: 'AA==', correlationId: 'c1' }))
    assert.deepEqual(await viewer.inbox.take(), { messageType: 'STATUS_RESPONSE', statusResponse: { correlationId: 'c1', errorType: 'InvalidArgumentException', statusCode: '400', description: 'action must be one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE.' } })
    viewer.ws.send(JSON.stringify({ action: 'ICE_CANDIDATE', messagePayload: 'AA==' }))
    assert.deepEqual(await master.inbox.take(), { messageType: 'ICE_CANDIDATE', messagePayload: 'AA==', senderClientId: 'viewer-1' })
    assert.match(e.log[0]!.reason!, /malformed/)
    master.ws.close()
    viewer.ws.close()
    await Promise.all([master.closed, viewer.closed])
  })
})

describe('KVS emulator: connection rules and limits', () => {
  it('refuses the 11th viewer at upgrade; a viewer reconnecting with its ClientId replaces itself', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const arn = e.createChannel('crowd')
    const viewers = await Promise.all(Array.from({ length: 10 }, async (_, i) => await connect(e, arn, `viewer-${i}`)))
    assert.equal(e.connections('crowd').viewers.length, 10)
    await assert.rejects(connect(e, arn, 'viewer-10'))
    assert.deepEqual(await raw(await presigned(e, arn, 'viewer-10')), { status: 400, errorType: 'ClientLimitExceededException' })
    assert.ok(e.log.some((x) => x.action === 'CONNECT' && x.from === 'viewer-10' && x.outcome === 'refused' && /ClientLimitExceeded/.test(x.reason!)))

    // The same ClientId again is not an 11th viewer: the new connection takes over, the old one is closed.
    const again = await connect(e, arn, 'viewer-3')
    await viewers[3]!.closed
    assert.equal(e.connections('crowd').viewers.length, 10)
    const master = await connect(e, arn)
    again.client.sendSdpOffer(sdp('offer', 'again'))
    assert.equal((await master.inbox.take()).from, 'viewer-3')

    // A master does not count as a viewer, and a freed place can be taken.
    viewers[0]!.client.close()
    await viewers[0]!.closed
    await until('the emulator sees viewer-0 go', () => e.connections('crowd').viewers.length === 9)
    const eleventh = await connect(e, arn, 'viewer-10')
    for (const p of [...viewers.slice(1), again, master, eleventh]) p.client.close()
  })

  it('lets a second master replace the first', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const arn = e.createChannel('two-masters')
    const first = await connect(e, arn)
    const viewer = await connect(e, arn, 'viewer-1')
    const second = await connect(e, arn)
    await first.closed
    assert.deepEqual(e.connections('two-masters'), { master: true, viewers: ['viewer-1'] })
    viewer.client.sendSdpOffer(sdp('offer', 'to-the-new-master'))
    assert.deepEqual((await second.inbox.take()).body, sdp('offer', 'to-the-new-master'))
    assert.equal(first.inbox.pending.length, 0)
    viewer.client.close()
    second.client.close()
    await Promise.all([viewer.closed, second.closed])
  })

  it('refuses a bad signature, another region, an unknown key, an unknown channel and a bad ClientId at upgrade', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const arn = e.createChannel('guarded')
    const good = new URL(await presigned(e, arn, 'viewer-1'))
    const tampered = new URL(good)
    tampered.searchParams.set('X-Amz-ClientId', 'viewer-2')
    assert.deepEqual(await raw(tampered.href), { status: 403, errorType: 'InvalidSignatureException' })
    assert.deepEqual(await raw(await presigned(e, arn, 'viewer-1', { ...sdkCredentials, secretAccessKey: 'wrong' })), { status: 403, errorType: 'InvalidSignatureException' })
    assert.deepEqual(await raw(await presigned(e, arn, 'viewer-1', { ...sdkCredentials, accessKeyId: 'ASIAUNKNOWN' })), { status: 403, errorType: 'UnrecognizedClientException' })
    const otherRegion = await new SigV4RequestSigner('eu-west-1', sdkCredentials).getSignedURL(e.endpoint.replace('https://', 'wss://'), { 'X-Amz-ChannelARN': arn })
    assert.deepEqual(await raw(otherRegion), { status: 403, errorType: 'InvalidSignatureException' })
    assert.deepEqual(await raw(await presigned(e, arn.replace('guarded', 'missing'))), { status: 404, errorType: 'ResourceNotFoundException' })
    assert.deepEqual(await raw(await presigned(e, arn, 'AWS_reserved')), { status: 400, errorType: 'InvalidArgumentException' })
    // The SDK sees the refusal as an error before 'open'.
    await assert.rejects(connect(e, arn.replace('guarded', 'missing')))
    await assert.rejects(connect(e, arn, 'viewer-1', { ...sdkCredentials, secretAccessKey: 'wrong' }))
    assert.deepEqual(e.connections('guarded'), { master: false, viewers: [] })
    // The untouched URL works.
    const ok = await rawOpen(good.href)
    ok.ws.close()
    await ok.closed
  })

  it('closes a connection idle for idleMs', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator({ limits: { idleMs: 300 } })
    const arn = e.createChannel('idle')
    const viewer = await rawOpen(await presigned(e, arn, 'viewer-1'))
    const sdkViewer = await connect(e, arn, 'viewer-2')
    assert.deepEqual(await viewer.closed, { code: 1001, reason: 'idle timeout' })
    await sdkViewer.closed
    assert.deepEqual(e.connections('idle'), { master: false, viewers: [] })
  })

  it('closes a busy connection after connectionMs', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator({ limits: { connectionMs: 500 } })
    const arn = e.createChannel('lifetime')
    const viewer = await rawOpen(await presigned(e, arn, 'viewer-1'))
    // Keeps talking (to an absent master); the connection still ends at its time limit.
    let sent = 0
    const chatter = setInterval(() => { if (sent++ < 1000) viewer.ws.send(JSON.stringify({ action: 'ICE_CANDIDATE', messagePayload: 'AA==' })) }, 50)
    try {
      assert.deepEqual(await viewer.closed, { code: 1001, reason: 'connection duration limit reached' })
    } finally {
      clearInterval(chatter)
    }
  })

  it('drop() cuts every socket without a close frame; deleting a channel closes its connections', { timeout: TEST_TIMEOUT }, async () => {
    const e = await emulator()
    const arn = e.createChannel('dropped')
    const master = await rawOpen(await presigned(e, arn))
    const viewer = await connect(e, arn, 'viewer-1')
    e.drop('dropped')
    assert.equal((await master.closed).code, 1006, 'abnormal closure: no close frame was sent')
    await viewer.closed
    assert.deepEqual(e.connections('dropped'), { master: false, viewers: [] })

    const again = await rawOpen(await presigned(e, arn))
    await controlPlane(e).send(new DeleteSignalingChannelCommand({ ChannelARN: arn }))
    assert.deepEqual(await again.closed, { code: 1001, reason: 'channel deleted' })
    assert.deepEqual(await raw(await presigned(e, arn)), { status: 404, errorType: 'ResourceNotFoundException' })
  })
})
