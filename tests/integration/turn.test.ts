import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { connect as connectTls } from 'node:tls'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RTCPeerConnection, type RTCDataChannel, type RTCIceServer } from 'werift'
import { ConfigError, DeviceConfig, HubConfig, IceSettings, iceSettingsFor, parseConfig, turnRestCredential, type TurnRest } from '@doorbell/core'
import { createPeerConnection, memoryLogger, withoutDefaultStun } from '@doorbell/device'
import { startHub } from '@doorbell/hub'
import { eventually, testMesh, VIEWER_DIST } from '../src/harness'
import { startCoturn, turnAllocate, type Coturn } from '../src/coturn'
import { testCertificate } from '../src/nginx'
import { pairViewer } from '../src/trust'
import { kill, startHubProcess } from '../src/hubProcess'

/**
 * A call through a real coturn (Debian's turnserver, started here with the shipped
 * deployment/coturn/turnserver.conf rendered for loopback) with a relay-only policy. The viewer's
 * credentials come from the hub's GET /api/ice, the doorbell's from its own config, both minted
 * from the secret coturn has; two werift peers (the doorbell's own peer factory on one side).
 */

interface Peers { viewer: RTCPeerConnection, doorbell: RTCPeerConnection, channel: RTCDataChannel, received: string[] }

const gathered = async (pc: RTCPeerConnection): Promise<void> => {
  await eventually('ICE gathering to complete', () => pc.iceGatheringState === 'complete', 20_000)
}

/** The viewer offers (as in the product), the doorbell answers with its own peer factory. */
async function call (viewerIce: { iceServers: RTCIceServer[], iceTransportPolicy: 'all' | 'relay' }, doorbellIce: { iceServers: RTCIceServer[], iceTransportPolicy: 'all' | 'relay' }): Promise<Peers> {
  const viewer = new RTCPeerConnection({ ...viewerIce, bundlePolicy: 'max-bundle' })
  const channel = viewer.createDataChannel('control')
  const doorbell = createPeerConnection({ codec: 'h264', ...doorbellIce, iceAdditionalHostAddresses: [] })
  const received: string[] = []
  doorbell.onDataChannel.subscribe((dc) => { dc.onMessage.subscribe((m) => { received.push(m.toString()) }) })
  await viewer.setLocalDescription(await viewer.createOffer())
  await gathered(viewer)
  await doorbell.setRemoteDescription(viewer.localDescription!)
  withoutDefaultStun(doorbell, doorbellIce.iceServers)
  await doorbell.setLocalDescription(await doorbell.createAnswer())
  await gathered(doorbell)
  await viewer.setRemoteDescription(doorbell.localDescription!)
  return { viewer, doorbell, channel, received }
}

const candidateLines = (sdp: string): string[] => sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'))

/** The pair werift's ICE agent selected, read from its own state. */
const selectedPair = (pc: RTCPeerConnection): { type: string, address: string, port: number } | null => {
  const pair = pc.iceTransports[0]?.connection.nominated
  return pair ? { type: pair.localCandidate.type, address: pair.localCandidate.host, port: pair.localCandidate.port } : null
}

const turnConfig = (turn: Coturn, ttlSeconds = 600): TurnRest => ({ urls: turn.urls, secret: turn.secret, ttlSeconds })

test('a relay-only call through coturn: credentials from the hub and the doorbell\'s config, data passes, both sides on relay candidates', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-turn-'))
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => { for (const step of cleanup.reverse()) await step() })
  cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const cert = await testCertificate(dir)
  const turn = await startCoturn({ dir: join(dir, 'coturn'), ...cert })
  cleanup.push(() => turn.stop())

  // The hub hands a member relay-only ICE settings at GET /api/ice.
  const mesh = testMesh('hub')
  cleanup.push(() => { mesh.remove() })
  const lines: string[] = []
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', viewerDir: VIEWER_DIST, dataDir: mesh.dataDir, mesh: { enabled: false }, turn: turnConfig(turn), iceTransportPolicy: 'relay' }, { log: memoryLogger(lines, 'hub') })
  cleanup.push(() => hub.stop())
  const member = await pairViewer(hub, { name: 'Hall phone' })
  const res = await fetch(`${hub.url}api/ice`, { headers: { Authorization: `Bearer ${member.token}` } })
  assert.equal(res.status, 200, await res.clone().text())
  const viewerIce = IceSettings.parse(await res.json())
  assert.equal(viewerIce.iceTransportPolicy, 'relay')
  assert.ok(viewerIce.expiresAt !== null && viewerIce.expiresAt > Date.now())

  // The doorbell mints its own from its config (the same secret).
  const config = parseConfig(DeviceConfig, { hubUrl: 'mqtts://127.0.0.1:8883', mesh: { enabled: false }, turn: turnConfig(turn), iceTransportPolicy: 'relay' }, 'doorbell.json')
  const doorbellIce = await iceSettingsFor(config, config.deviceId, Date.now())

  const peers = await call(viewerIce, doorbellIce)
  cleanup.push(async () => { await peers.viewer.close(); await peers.doorbell.close() })
  // Relay-only: no host candidate of either side is offered, only coturn's relayed address.
  for (const sdp of [peers.viewer.localDescription!.sdp, peers.doorbell.localDescription!.sdp]) {
    const candidates = candidateLines(sdp)
    assert.ok(candidates.length > 0, 'a relay candidate was gathered')
    for (const c of candidates) assert.match(c, / typ relay /, c)
  }
  await eventually('both peers connected', () => peers.viewer.connectionState === 'connected' && peers.doorbell.connectionState === 'connected', 20_000)
  await eventually('the data channel open', () => peers.channel.readyState === 'open', 10_000)
  peers.channel.send(JSON.stringify({ type: 'ping' }))
  await eventually('the message across the relay', () => peers.received.includes('{"type":"ping"}'))

  for (const pc of [peers.viewer, peers.doorbell]) {
    const pair = await eventually('a selected candidate pair', () => selectedPair(pc))
    assert.equal(pair.type, 'relay')
    assert.equal(pair.address, '127.0.0.1')
    assert.ok(pair.port >= turn.minPort && pair.port <= turn.maxPort, `the relayed port ${pair.port} is in coturn's relay range ${turn.minPort}-${turn.maxPort}`)
  }
})

test('coturn refuses a credential from a wrong secret, an expired one, and any while the shipped secret is still empty: no allocation, no call', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-turn-'))
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => { for (const step of cleanup.reverse()) await step() })
  cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const cert = await testCertificate(dir)
  const turn = await startCoturn({ dir: join(dir, 'coturn'), ...cert })
  cleanup.push(() => turn.stop())
  // The shipped file as it is: static-auth-secret left empty.
  const unset = await startCoturn({ dir: join(dir, 'coturn-unset'), ...cert, secret: null })
  cleanup.push(() => unset.stop())

  const allocate = async (server: Coturn, c: { username: string, credential: string }): Promise<number | 'allocated'> => {
    const allocation = await turnAllocate(server.port, c.username, c.credential)
    allocation.close()
    return allocation.answer.ok ? 'allocated' : allocation.answer.code
  }

  const now = Date.now()
  const good = await turnRestCredential(turn.secret, 'v-hall', 600, now)
  const wrongSecret = await turnRestCredential('0'.repeat(64), 'v-hall', 600, now)
  // Made two hours ago for one hour: expired an hour ago.
  const expired = await turnRestCredential(turn.secret, 'v-hall', 3600, now - 2 * 3600_000)
  const forUnset = await turnRestCredential(turn.secret, 'v-hall', 600, now)
  // The same server allocates for the right credential: what follows fails for the credential alone.
  assert.equal(await allocate(turn, good), 'allocated')
  assert.equal(await allocate(turn, wrongSecret), 401)
  assert.equal(await allocate(turn, expired), 401)
  assert.equal(await allocate(unset, forUnset), 401)

  // A viewer whose credential has expired calls a doorbell whose credential is good: the viewer
  // has no relay to offer (and, relay-only, nothing else), so the call never connects.
  const ice = (c: { username: string, credential: string }): { iceServers: RTCIceServer[], iceTransportPolicy: 'relay' } =>
    ({ iceServers: [{ urls: turn.urls, username: c.username, credential: c.credential }], iceTransportPolicy: 'relay' })
  const peers = await call(ice(expired), ice(good))
  cleanup.push(async () => { await peers.viewer.close(); await peers.doorbell.close() })
  assert.deepEqual(candidateLines(peers.viewer.localDescription!.sdp), [], 'no candidate without an allocation')
  assert.equal(candidateLines(peers.doorbell.localDescription!.sdp).length, 1, 'the doorbell has its relay')
  const states = new Set<string>()
  for (const pc of [peers.viewer, peers.doorbell]) pc.connectionStateChange.subscribe((s) => { states.add(s) })
  // Bounded wait: a relay call on loopback connects in well under this (the test above).
  await new Promise((resolve) => setTimeout(resolve, 5000))
  assert.equal(states.has('connected'), false)
  assert.notEqual(peers.viewer.connectionState, 'connected')
  assert.notEqual(peers.doorbell.connectionState, 'connected')
  assert.equal(peers.received.length, 0)
})

test('coturn as shipped relays to no private, loopback or link-local address (the loopback rendering lets exactly 127.0.0.1 through); its TLS port serves the certificate', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-turn-'))
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => { for (const step of cleanup.reverse()) await step() })
  cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const cert = await testCertificate(dir)
  const turn = await startCoturn({ dir: join(dir, 'coturn'), ...cert })
  cleanup.push(() => turn.stop())
  const c = await turnRestCredential(turn.secret, 'v-hall', 600, Date.now())
  const allocation = await turnAllocate(turn.port, c.username, c.credential)
  cleanup.push(() => { allocation.close() })
  assert.deepEqual(allocation.answer, { ok: true })
  assert.equal(allocation.relayed?.[0], '127.0.0.1')
  // allowed-peer-ip=127.0.0.1 (the rendering) wins over the shipped deny list; nothing else does.
  assert.deepEqual(await allocation.permit('127.0.0.1'), { ok: true })
  for (const ip of ['127.0.0.2', '10.1.2.3', '172.16.5.5', '192.168.1.10', '169.254.1.1', '100.64.0.1', '0.0.0.1']) {
    const answer = await allocation.permit(ip)
    assert.equal(answer.ok ? 'permitted' : answer.code, 403, `a permission to relay to ${ip}`)
  }
  // A public address is permitted (the relay's purpose); nothing is sent to it here.
  assert.deepEqual(await allocation.permit('203.0.114.1'), { ok: true })

  // The TLS port (turns:) serves the configured certificate over TLS 1.2 or 1.3.
  const protocol = await new Promise<string | null>((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port: turn.tlsPort, servername: 'localhost', ca: cert.caPem }, () => { resolve(socket.getProtocol()); socket.destroy() })
    socket.once('error', reject)
  })
  assert.match(String(protocol), /^TLSv1\.[23]$/)
})

test('relay-only without a TURN server is refused: by the config schemas, and the hub does not start', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-turn-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const message = /iceTransportPolicy "relay" needs a TURN server/
  assert.throws(() => parseConfig(HubConfig, { iceTransportPolicy: 'relay' }, 'hub.json'), (err: Error) => err instanceof ConfigError && message.test(err.message) && err.message.includes('iceTransportPolicy'))
  assert.throws(() => parseConfig(DeviceConfig, { hubUrl: 'mqtts://hub:8883', iceTransportPolicy: 'relay', iceServers: [{ urls: 'stun:stun.example.com:3478' }] }, 'doorbell.json'), (err: Error) => err instanceof ConfigError && message.test(err.message))

  // The hub program: exits 2 with the message, and has made nothing (no data folder).
  const dataDir = join(dir, 'hub-data')
  const config = join(dir, 'hub.json')
  await writeFile(config, JSON.stringify({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false }, iceTransportPolicy: 'relay' }))
  const hub = startHubProcess(config)
  const exited = new Promise<number | null>((resolve) => hub.proc.once('exit', resolve))
  // Bounded: a hub that started anyway is ended (and the assertion below fails).
  const timer = setTimeout(() => { void kill(hub, 'SIGKILL') }, 30_000)
  const code = await exited
  clearTimeout(timer)
  assert.equal(code, 2, hub.lines.join('\n'))
  assert.match(hub.lines.join('\n'), message)
  assert.equal(existsSync(dataDir), false, 'a refused config changes nothing')
})
