import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { waitFor } from 'xstate'
import { RTCPeerConnection, type RTCDataChannel } from 'werift'
import {
  CONTROL_CHANNEL, DoorCommand, Reply, RevocationList, SignalToDevice, SignalToViewer, decode, encode, generateSigningKey,
  memoryLogger, newId, sign, signDoorCommand, topics, type Member
} from '@doorbell/core'
import { SimulatedButton, SimulatedLock, startDoorbell, videoCodec, withoutDefaultStun, type Doorbell } from '@doorbell/device'
import { eventually, startLan, type Lan } from '../src/harness'
import { nodeViewer } from '../src/nodeViewer'
import { offerFrom, pairViewer, type PairedViewer } from '../src/trust'

/**
 * Removing a member takes effect at once and everywhere: the hub drops the member's MQTT
 * connections and refuses its sign-in, the doorbell ends its call and refuses its grant on any
 * channel and any new call (reason 'revoked', in the device's and the hub's audit), and the
 * doorbell keeps the list across a restart, with no hub to ask. Nobody but the hub can publish a
 * revocation list, and a forged one that got past the hub would not be believed by the device.
 */

const WAIT_MS = 5000

async function withTimeout<T> (what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

type SignIn = { ok: true, client: MqttClient } | { ok: false, code: number | undefined, message: string }

/** A plain mqtt.js client signed in as a paired viewer (a tab of its own), no reconnects. */
async function signIn (url: string, p: PairedViewer): Promise<SignIn> {
  const client = mqtt.connect(url, { clientId: `viewer-${p.viewerId}-${newId().slice(0, 6)}`, username: p.memberId, password: p.token, clean: true, reconnectPeriod: 0, connectTimeout: WAIT_MS })
  const r = await withTimeout('a CONNACK', WAIT_MS + 1000, new Promise<SignIn>((resolve) => {
    client.once('connect', () => resolve({ ok: true, client }))
    client.once('error', (err) => resolve({ ok: false, code: (err as { code?: number }).code, message: err.message }))
  }))
  client.on('error', () => {})
  if (!r.ok) client.end(true)
  return r
}

async function end (client: MqttClient): Promise<void> {
  await withTimeout('the MQTT client to end', 2000, new Promise<void>((resolve) => { client.end(true, {}, () => resolve()) })).catch(() => {})
}

interface RawCall {
  sessionId: string
  client: MqttClient
  pc: RTCPeerConnection
  channel: RTCDataChannel
  replies: Reply[]
  /** Every message the device sent to this viewer, on any session. */
  signals: Array<{ topic: string, message: SignalToViewer }>
  /** The n-th reply (0-based) that matches. */
  nth: (what: string, n: number, check: (r: Reply) => boolean) => Promise<Reply>
  close: () => Promise<void>
}

/** A call made by hand, so the test holds its data channel: sign in, offer with the grant, open 'control'. */
async function rawCall (lan: Lan, p: PairedViewer): Promise<RawCall> {
  const signed = await signIn(lan.hub.mqttUrl, p)
  assert.ok(signed.ok, `${p.name} signs in`)
  const client = signed.client
  const sessionId = newId('s')
  const device = lan.device.config.deviceId
  const signals: RawCall['signals'] = []
  await withTimeout('the subscription', WAIT_MS, client.subscribeAsync(topics.viewerInbox(p.homeId, p.viewerId), { qos: 1 }))
  const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle', codecs: { video: [videoCodec('h264')], audio: [] } })
  const channel = pc.createDataChannel(CONTROL_CHANNEL, { ordered: true })
  pc.addTransceiver('video', { direction: 'recvonly' })
  const replies: Reply[] = []
  const waiters = new Set<() => void>()
  channel.onMessage.subscribe((data) => {
    const r = decode(Reply, typeof data === 'string' ? data : data.toString('utf8'), 'data channel')
    if (!r.ok) throw r.error
    replies.push(r.value)
    for (const w of [...waiters]) w()
  })
  const nth = async (what: string, n: number, check: (r: Reply) => boolean): Promise<Reply> =>
    await withTimeout(what, WAIT_MS, new Promise<Reply>((resolve) => {
      const w = (): void => { const f = replies.filter(check)[n]; if (f) { waiters.delete(w); resolve(f) } }
      waiters.add(w)
      w()
    }))
  client.on('message', (topic, payload) => {
    const m = decode(SignalToViewer, payload, topic)
    if (!m.ok) return
    signals.push({ topic, message: m.value })
    if (m.value.type === 'answer' && m.value.sessionId === sessionId) void pc.setRemoteDescription({ type: 'answer', sdp: m.value.sdp })
  })
  const offer = await pc.createOffer()
  withoutDefaultStun(pc, [])
  await pc.setLocalDescription(offer)
  await withTimeout('ICE gathering', WAIT_MS, new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return }
    const sub = pc.iceGatheringStateChange.subscribe((state) => { if (state === 'complete') { sub.unSubscribe(); resolve() } })
  }))
  const sdp = pc.localDescription?.sdp
  assert.ok(sdp)
  client.publish(topics.session(p.homeId, device, p.viewerId, sessionId, 'to-device'), encode(SignalToDevice, await offerFrom(p, { device, sessionId, sdp })), { qos: 1 })
  await withTimeout('the data channel to open', 15_000, new Promise<void>((resolve) => {
    if (channel.readyState === 'open') { resolve(); return }
    channel.stateChanged.subscribe((state) => { if (state === 'open') resolve() })
  }))
  return {
    sessionId,
    client,
    pc,
    channel,
    replies,
    signals,
    nth,
    async close () {
      await withTimeout('the peer to close', 2000, pc.close()).catch(() => {})
      await end(client)
    }
  }
}

/** A port nothing listens on: a hub that is not there. */
async function deadPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

test('a removed resident is cut off at once: sign-in, call, door, new calls; the doorbell remembers across a restart', { timeout: 120_000 }, async (t) => {
  const lan = await startLan()
  const extra: Array<() => Promise<void>> = []
  // One cleanup, in order: what this test started, then the LAN.
  t.after(async () => {
    for (const f of extra.reverse()) await f().catch(() => {})
    await lan.stop()
  })
  const device = lan.device.config.deviceId
  const owner = await pairViewer(lan.hub, { name: 'Owner', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Lodger', role: 'resident' })
  const ownerMember = lan.hub.trust.members().find((m) => m.id === owner.memberId) as Member
  assert.ok(ownerMember)

  // The resident, in the viewer app's own code, answers a ring and sees video.
  const viewer = nodeViewer(lan.hub.mqttUrl, resident)
  extra.push(async () => { await viewer.close() })
  const refusals: Array<number | undefined> = []
  viewer.home.hub.client.on('error', (err) => { refusals.push((err as { code?: number }).code) })
  await eventually('the resident to reach the hub', () => viewer.home.hub.connected)
  await eventually('the retained state of the doorbell', () => viewer.home.doorbells.get(device))
  const doorbell = viewer.home.doorbell(device)
  lan.button.press()
  await waitFor(doorbell, (s) => s.matches('incoming'), { timeout: WAIT_MS })
  viewer.home.answer(device)
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 15_000 })
  await eventually('video from the doorbell', () => viewer.rtp.length >= 20)
  const residentSession = doorbell.getSnapshot().context.sessionId
  assert.ok(residentSession)

  // The owner joins the same call with a call of its own (its data channel in the test's hands).
  const ownerCall = await rawCall(lan, owner)
  extra.push(async () => { await ownerCall.close() })
  await ownerCall.nth('the lock report on open', 0, (r) => r.type === 'lock')
  await eventually('both in the call', () => lan.device.state().participants.length === 2)

  // ------------------------------------------------------------ revoke
  const linesFrom = lan.lines.length
  const { member } = await lan.hub.trust.revoke(ownerMember, resident.memberId)
  assert.ok(member.revokedAt !== null)

  // The hub drops the resident's connection, and refuses it when its client tries again.
  await eventually('the hub to drop the resident', () => lan.lines.slice(linesFrom).some((l) => l.includes('disconnecting a removed member') && l.includes('member=Lodger')), WAIT_MS)
  await eventually('the resident\'s client to be refused on reconnect (CONNACK 4)', () => refusals.includes(4), WAIT_MS)
  await eventually('the resident\'s client to stop trying', () => !viewer.home.hub.connected && viewer.home.hub.client.disconnected, WAIT_MS)
  const again = await signIn(lan.hub.mqttUrl, resident)
  if (again.ok) await end(again.client)
  assert.ok(!again.ok && again.code === 4, `a fresh sign-in as the resident is refused: ${again.ok ? 'connected' : again.message}`)

  // The doorbell has the new list and ends the resident's call; the owner's goes on.
  await eventually('the device to hold the revocation', () => lan.device.guard.isRevoked(resident.memberId), WAIT_MS)
  await eventually('the device to end the resident\'s call', () => lan.lines.slice(linesFrom).some((l) => l.includes('ending the call of a removed member') && l.includes(`session=${residentSession}`)), WAIT_MS)
  await eventually('the resident to leave the participants', () => {
    const p = lan.device.state().participants
    return p.length === 1 && p[0]!.viewerId === owner.viewerId
  }, WAIT_MS)
  await eventually('the resident\'s video to stop', async () => {
    const n = viewer.rtp.length
    await new Promise((resolve) => setTimeout(resolve, 500))
    return viewer.rtp.length === n
  }, WAIT_MS)
  assert.equal(ownerCall.channel.readyState, 'open', 'the owner\'s call goes on')

  // The resident's grant, on a channel that is still open (the owner's): refused as revoked.
  const auditFrom = lan.hub.trust.audit.all().length
  const forRevoked = await signDoorCommand({ credential: resident.credential, key: resident.key, home: resident.homeId, device, session: ownerCall.sessionId, command: newId('c') })
  ownerCall.channel.send(encode(DoorCommand, forRevoked))
  const nack = await ownerCall.nth('the nack for the removed resident\'s command', 0, (r) => r.type !== 'lock')
  assert.ok(nack.type === 'nack' && nack.error.code === 'denied', JSON.stringify(nack))
  assert.match(nack.error.message, /Lodger has been removed from this home/)
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'))
  const refusedLine = await eventually('the device to log the refusal', () => lan.lines.slice(linesFrom).find((l) => l.includes('open-door refused') && l.includes('reason=revoked')), WAIT_MS)
  assert.match(refusedLine, /viewer=Owner/)
  const audited = await eventually('the refusal in the hub\'s audit log', () => lan.hub.trust.audit.all().slice(auditFrom).find((r) => r.kind === 'open-door'), WAIT_MS)
  assert.equal(audited.outcome, 'denied')
  assert.equal(audited.reason, 'revoked')
  assert.equal(audited.actor, 'Lodger', 'the record names the member whose grant it was')
  assert.equal(audited.deviceId, device)
  assert.ok(lan.hub.trust.audit.all().some((r) => r.kind === 'revocation' && r.actor === 'Owner' && /Lodger/.test(r.message)), 'the revocation itself is in the audit log')
  await eventually('the device\'s audit outbox to be delivered', () => lan.device.audit.size === 0, WAIT_MS)

  // A new call with the resident's grant (carried by a client that can still reach the doorbell): refused.
  const newSession = newId('s')
  const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
  await ownerCall.client.publishAsync(topics.session(owner.homeId, device, owner.viewerId, newSession, 'to-device'),
    encode(SignalToDevice, { ...await offerFrom(resident, { device, sessionId: newSession, sdp, viewerName: 'Lodger' }), viewerId: owner.viewerId }), { qos: 1 })
  const bye = await eventually('a bye for the new call', () => ownerCall.signals.find((s) => s.message.sessionId === newSession), WAIT_MS)
  assert.ok(bye.message.type === 'bye' && bye.message.reason === 'rejected', JSON.stringify(bye.message))
  assert.match(bye.message.type === 'bye' ? bye.message.message ?? '' : '', /Lodger has been removed from this home/)
  assert.ok(lan.lines.slice(linesFrom).some((l) => l.includes('offer refused') && l.includes('reason=revoked')))
  assert.equal(lan.device.state().participants.length, 1, 'no session was added for it')

  // The channel itself is fine: the owner's own command opens the door.
  ownerCall.channel.send(encode(DoorCommand, await signDoorCommand({ credential: owner.credential, key: owner.key, home: owner.homeId, device, session: ownerCall.sessionId, command: newId('c') })))
  const ack = await ownerCall.nth('the ack for the owner\'s command', 1, (r) => r.type !== 'lock')
  assert.equal(ack.type, 'ack', JSON.stringify(ack))
  assert.equal(lan.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1)

  // ------------------------------------------------------------ nobody but the hub publishes a revocation list
  // An "un-revoke": a newer list without the resident, signed by a key that is not the home's.
  const notHome = await generateSigningKey(true)
  const forgedList = await sign(RevocationList, { home: owner.homeId, seq: 1_000_000, at: Date.now(), ids: [] }, notHome.privateKey)
  const retainedBefore = await retainedRevocations(lan, owner.homeId)
  assert.ok(retainedBefore?.includes(await lan.hub.trust.revocationList()), 'the hub\'s current list is retained')
  // Retained (to reach every device that connects later) or not: refused, and the owner's connection closed.
  for (const [retain, reason] of [[true, /reason=revocations may not be retained|reason=only the hub publishes the revocation list/], [false, /reason=only the hub publishes the revocation list/]] as const) {
    const publisher = await signIn(lan.hub.mqttUrl, owner)
    assert.ok(publisher.ok)
    const publishFrom = lan.lines.length
    const closed = new Promise<void>((resolve) => { publisher.client.once('close', () => resolve()) })
    publisher.client.publish(topics.revocations(owner.homeId), JSON.stringify({ list: forgedList }), { qos: 1, retain })
    await withTimeout('the hub to close the owner\'s publishing connection', WAIT_MS, closed)
    await end(publisher.client)
    const refusedPublish = await eventually('the hub to log the refusal', () => lan.lines.slice(publishFrom).find((l) => l.includes('refused a publish') && l.includes(`topic=${topics.revocations(owner.homeId)}`)), WAIT_MS)
    assert.match(refusedPublish, reason)
  }
  assert.equal(await retainedRevocations(lan, owner.homeId), retainedBefore, 'the retained list is the hub\'s, unchanged')
  assert.ok(lan.device.guard.isRevoked(resident.memberId))

  // Defence in depth: the same forgery put straight into the broker (past the gate, as a broken hub
  // might) is checked by the doorbell against the home's key and ignored.
  const injectFrom = lan.lines.length
  await withTimeout('the broker to take it', WAIT_MS, new Promise<void>((resolve, reject) => {
    lan.hub.broker.publish({ cmd: 'publish', topic: topics.revocations(owner.homeId), payload: Buffer.from(JSON.stringify({ list: forgedList })), qos: 1, retain: false, dup: false }, (err) => { err ? reject(err) : resolve() })
  }))
  const ignored = await eventually('the device to ignore it', () => lan.lines.slice(injectFrom).find((l) => l.includes('ignored a revocation list')), WAIT_MS)
  assert.match(ignored, /the signature does not match/)
  assert.ok(lan.device.guard.isRevoked(resident.memberId), 'still revoked')

  // ------------------------------------------------------------ the list survives a restart, with no hub to ask
  await ownerCall.close()
  await lan.device.stop()
  const dataDir = lan.device.config.dataDir
  assert.ok(existsSync(join(dataDir, 'revocations.txt')), 'the device keeps the list in its data folder')
  // A copy of the folder without the list: what the device would know without it.
  const forgetful = mkdtempSync(join(tmpdir(), 'doorbell-no-list-'))
  cpSync(dataDir, forgetful, { recursive: true })
  rmSync(join(forgetful, 'revocations.txt'))
  extra.push(async () => { rmSync(forgetful, { recursive: true, force: true }) })

  const offline = async (dir: string): Promise<Doorbell> => {
    const d = await startDoorbell({
      hubUrl: `mqtt://127.0.0.1:${await deadPort()}`,
      dataDir: dir,
      mesh: { enabled: false },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      relockSeconds: 1
    }, { log: memoryLogger(lan.lines, 'device-restarted'), drivers: { button: new SimulatedButton(), lock: new SimulatedLock(() => {}) } })
    extra.push(async () => { await d.stop() })
    return d
  }
  const restarted = await offline(dataDir)
  assert.equal(restarted.link?.client.connected ?? false, false, 'no hub')
  assert.ok(restarted.guard.isRevoked(resident.memberId), 'the restarted doorbell knows the resident was removed')
  const ctx = { sessionId: 's-after-restart', viewerId: resident.viewerId }
  const cmd = await signDoorCommand({ credential: resident.credential, key: resident.key, home: resident.homeId, device, session: ctx.sessionId, command: newId('c') })
  const verdict = await restarted.guard.check(cmd, ctx)
  assert.ok(!verdict.ok && verdict.reason === 'revoked', `the restarted doorbell refuses the resident: ${JSON.stringify(verdict)}`)
  const admitted = await restarted.guard.admit(resident.credential, resident.viewerId, { proof: (await offerFrom(resident, { device, sessionId: 's-offer', sdp: 'v=0' })).proof, session: 's-offer' })
  assert.ok(!admitted.ok && admitted.reason === 'revoked', 'and would refuse its offers')
  const ownerCmd = await signDoorCommand({ credential: owner.credential, key: owner.key, home: owner.homeId, device, session: 's-owner', command: newId('c') })
  assert.ok((await restarted.guard.check(ownerCmd, { sessionId: 's-owner', viewerId: owner.viewerId })).ok, 'while the owner is still let in')
  await restarted.stop()

  // The control: the same doorbell, without its list, would have let the resident in.
  const blank = await offline(forgetful)
  assert.equal(blank.guard.isRevoked(resident.memberId), false)
  assert.ok((await blank.guard.check(cmd, ctx)).ok, 'without the list on disk the grant alone would pass')
  await blank.stop()
})

/** The revocation list the broker holds retained: what a device that subscribes now is given. */
async function retainedRevocations (lan: Lan, homeId: string): Promise<string | null> {
  const persistence = (lan.hub.broker as unknown as { persistence: { createRetainedStream: (pattern: string) => AsyncIterable<{ payload: Buffer }> } }).persistence
  const found: string[] = []
  for await (const packet of persistence.createRetainedStream(topics.revocations(homeId))) found.push(packet.payload.toString())
  assert.ok(found.length <= 1)
  return found[0] ?? null
}
