import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetIceServerConfigCommand, KinesisVideoSignalingClient } from '@aws-sdk/client-kinesis-video-signaling'
import { Role, SignalingClient } from 'amazon-kinesis-video-streams-webrtc'
import { RTCPeerConnection, type RTCDataChannel, type RTCIceServer } from 'werift'
import { eventually } from '../src/harness'
import { turnAllocate } from '../src/coturn'
import { KvsEmulator, MASTER } from '../src/cloud/kvs/emulator'
import { KVS_TURN_TTL_SECONDS, kvsIceServers, startKvsTurn } from '../src/cloud/kvs/turn'
import { Pki } from '../src/cloud/pki'
import { CredentialStore, type AwsCredential } from '../src/cloud/sigv4'
import { trustCa } from '../src/cloud/trust'

/**
 * GetIceServerConfig lists TURN servers, as KVS always does, backed by a real coturn; and the stock
 * protocol as the unmodified KVS SDK's SignalingClient speaks it, driven the way AWS's examples
 * drive it: the viewer sends a plain SDP offer and trickles its candidates (no recipient), the
 * master answers and trickles to the viewer's client id. Relay-only, so the call can only connect
 * through the TURN servers the emulator handed out.
 */

const REGION = 'us-east-1'
const KEY: AwsCredential = { accessKeyId: 'ASIAKVSTURNTEST00001', secretAccessKey: 'kvs-turn-test-secret', sessionToken: 'kvs-turn-session/+=', principal: 'role/doorbell' }
const credentials = { accessKeyId: KEY.accessKeyId, secretAccessKey: KEY.secretAccessKey, sessionToken: KEY.sessionToken! }

const relayOnly = (list: Array<{ Uris?: string[], Username?: string, Password?: string }>): { iceServers: RTCIceServer[], iceTransportPolicy: 'relay' } => ({
  // AWS's example page builds its RTCIceServer list exactly so: urls, username, credential.
  iceServers: list.map((s) => ({ urls: s.Uris![0]!, username: s.Username!, credential: s.Password! })),
  iceTransportPolicy: 'relay'
})

test('GetIceServerConfig lists coturn-backed TURN servers; a stock SDK master and viewer call relay-only with plain SDP and trickle ICE both ways', { timeout: 90_000 }, async (t) => {
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => { for (const step of cleanup.reverse()) await step() })
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-kvs-turn-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  const pki = await Pki.create()
  const store = new CredentialStore()
  store.add(KEY)
  cleanup.push(trustCa(pki.serverCaPem))
  const turn = await startKvsTurn(pki, dir)
  cleanup.push(() => turn.stop())
  const kvs = await KvsEmulator.start({ pki, store, region: REGION, iceServers: () => kvsIceServers(turn) })
  cleanup.push(() => kvs.stop())
  const channelARN = kvs.createChannel('front-door')

  // What KVS answers: TURN servers (one per address: the stand-in has one), each its own credential, Ttl 300 s, turn: URIs; coturn allocates for each.
  const signaling = new KinesisVideoSignalingClient({ region: REGION, endpoint: kvs.endpoint, credentials, maxAttempts: 1 })
  cleanup.push(() => { signaling.destroy() })
  const viewerIce = (await signaling.send(new GetIceServerConfigCommand({ ChannelARN: channelARN, ClientId: 'viewer-1' }))).IceServerList!
  const masterIce = (await signaling.send(new GetIceServerConfigCommand({ ChannelARN: channelARN }))).IceServerList!
  assert.equal(viewerIce.length, 1)
  for (const s of [...viewerIce, ...masterIce]) {
    assert.equal(s.Ttl, KVS_TURN_TTL_SECONDS)
    assert.ok(s.Uris!.length > 0 && s.Uris!.every((u) => /^turn:127\.0\.0\.1:\d+\?transport=(udp|tcp)$/.test(u)), s.Uris!.join(' '))
    const expiry = Number(s.Username!.split(':')[0])
    assert.ok(expiry * 1000 > Date.now() && expiry * 1000 <= Date.now() + KVS_TURN_TTL_SECONDS * 1000 + 1000, `the username carries its expiry: ${s.Username}`)
    const allocation = await turnAllocate(turn.port, s.Username!, s.Password!)
    allocation.close()
    assert.deepEqual(allocation.answer, { ok: true }, `coturn allocates for ${s.Username}`)
  }
  assert.notEqual(viewerIce[0]!.Username, masterIce[0]!.Username, 'a fresh credential per request')
  // The check is coturn's: a password it did not mint is refused.
  const forged = await turnAllocate(turn.port, viewerIce[0]!.Username!, 'not-the-password')
  forged.close()
  assert.equal(forged.answer.ok ? 'allocated' : forged.answer.code, 401)

  // The master, as the SDK's master example: one peer per viewer client id, replies addressed to it.
  const common = { channelARN, channelEndpoint: kvs.endpoint.replace('https://', 'wss://'), region: REGION, credentials }
  const master = new SignalingClient({ ...common, role: Role.MASTER })
  const received: string[] = []
  const masterPeers = new Map<string, RTCPeerConnection>()
  master.on('sdpOffer', (offer: { type: 'offer', sdp: string }, viewerId: string) => {
    void (async () => {
      const pc = new RTCPeerConnection({ ...relayOnly(masterIce), bundlePolicy: 'max-bundle' })
      masterPeers.set(viewerId, pc)
      pc.onDataChannel.subscribe((dc) => { dc.onMessage.subscribe((m) => { received.push(`${dc.label}:${m.toString()}`) }) })
      pc.onIceCandidate.subscribe((c) => { if (c) master.sendIceCandidate(c.toJSON() as unknown as RTCIceCandidate, viewerId) })
      await pc.setRemoteDescription(offer)
      await pc.setLocalDescription(await pc.createAnswer())
      const { type, sdp } = pc.localDescription!
      master.sendSdpAnswer({ type, sdp } as RTCSessionDescription, viewerId)
    })()
  })
  master.on('iceCandidate', (c: { candidate: string, sdpMid?: string, sdpMLineIndex?: number }, viewerId: string) => {
    void masterPeers.get(viewerId)?.addIceCandidate(c)
  })
  const errors: string[] = []
  master.on('error', (e: unknown) => { errors.push(`master: ${String((e as Error).message ?? e)}`) })
  t.after(() => { if (process.exitCode) console.log([...errors, ...kvs.log.map((e) => JSON.stringify(e))].join('\n')) })
  master.open()
  cleanup.push(() => { master.close() })
  await eventually('the master connected', () => kvs.connections('front-door').master)

  // The viewer, as the SDK's viewer example: offer without its candidates, then each as it comes.
  const viewer = new SignalingClient({ ...common, role: Role.VIEWER, clientId: 'viewer-1' })
  const pc = new RTCPeerConnection({ ...relayOnly(viewerIce), bundlePolicy: 'max-bundle' })
  cleanup.push(async () => { await pc.close(); for (const p of masterPeers.values()) await p.close() })
  const channel: RTCDataChannel = pc.createDataChannel('commands')
  const trickled: string[] = []
  pc.onIceCandidate.subscribe((c) => { if (c) { trickled.push(c.candidate); viewer.sendIceCandidate(c.toJSON() as unknown as RTCIceCandidate) } })
  viewer.on('sdpAnswer', (answer: { type: 'answer', sdp: string }) => { void pc.setRemoteDescription(answer) })
  viewer.on('iceCandidate', (c: { candidate: string, sdpMid?: string, sdpMLineIndex?: number }) => { void pc.addIceCandidate(c) })
  viewer.on('open', () => {
    void (async () => {
      const offer = await pc.createOffer()
      await pc.setLocalDescription(offer)
      viewer.sendSdpOffer({ type: offer.type, sdp: offer.sdp } as RTCSessionDescription)
    })()
  })
  viewer.on('error', (e: unknown) => { errors.push(`viewer: ${String((e as Error).message ?? e)}`) })
  viewer.open()
  cleanup.push(() => { viewer.close() })

  await eventually('both peers connected through the relay', () => pc.connectionState === 'connected' && masterPeers.get('viewer-1')?.connectionState === 'connected', 30_000)
  await eventually('the commands channel open', () => channel.readyState === 'open', 10_000)
  channel.send(JSON.stringify({ command: 'OPEN_DOOR' }))
  await eventually('the command at the master', () => received.includes('commands:{"command":"OPEN_DOOR"}'))

  // Only relay candidates were trickled; the offer went out without candidates (trickle, not gathered first).
  assert.ok(trickled.length > 0 && trickled.every((c) => / typ relay /.test(c)), trickled.join('\n'))
  const routed = kvs.log.filter((e) => e.outcome === 'routed')
  assert.ok(routed.some((e) => e.action === 'SDP_OFFER' && e.from === 'viewer-1' && e.to === MASTER))
  assert.ok(routed.some((e) => e.action === 'SDP_ANSWER' && e.from === MASTER && e.to === 'viewer-1'))
  assert.ok(routed.some((e) => e.action === 'ICE_CANDIDATE' && e.from === 'viewer-1' && e.to === MASTER), 'the viewer trickled through KVS')
  assert.ok(routed.some((e) => e.action === 'ICE_CANDIDATE' && e.from === MASTER && e.to === 'viewer-1'), 'the master trickled to the viewer\'s client id')
  assert.deepEqual(kvs.log.filter((e) => e.outcome === 'refused'), [])
})
