import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { waitFor } from 'xstate'
import { RTCPeerConnection, type RTCDataChannel } from 'werift'
import {
  CONTROL_CHANNEL, DoorCommand, Reply, SignalToDevice, SignalToViewer, decode, encode, generateSigningKey, newId,
  signDoorCommand, topics, type Offer
} from '@doorbell/core'
import { videoCodec, withoutDefaultStun } from '@doorbell/device'
import { eventually, startLan, type Lan } from '../src/harness'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'
import { offerFrom, pairViewer, type PairedViewer } from '../src/trust'

/**
 * Bad input from a LAN client never reaches the door: the hub refuses clients without a member's
 * credentials, its gate refuses what is not a valid message on one of our topics (and cuts the
 * sender off, even a paired member), the device re-parses what it is given (defence in depth)
 * and shows its camera to live members only, and the call's data channel answers garbage and
 * unsigned commands with a nack. After every case the door is still locked and a fresh ring is
 * still answered with video.
 */

const HOME = 'home'
const DEVICE = 'front-door'
type Cleanup = { after: (fn: () => unknown) => void }

const SDP_LIKE = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'

/** A SYNTACTICALLY valid signed token that no home signed (payload `{}`, a zero signature). */
const FORGED = 'e30.' + 'A'.repeat(86)

/**
 * A plain mqtt.js client with a viewer-like client id (never `device-…`), no reconnects, signed in
 * as the paired member `who`: the gate's checks apply to members too.
 */
async function rawClient (t: Cleanup, url: string, who: PairedViewer): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    clientId: `viewer-${who.viewerId}-${newId()}`,
    username: who.memberId,
    password: who.token,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000
  })
  client.on('error', () => {})
  t.after(() => new Promise<void>((resolve) => { client.end(true, {}, () => resolve()) }))
  await withTimeout('the raw client to connect', 5000, new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  }))
  return client
}

async function withTimeout<T> (what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Publishes `payload` on `topic` from a fresh viewer-like client and checks that the hub
 * refused it: a log line with the reason, and the sender's connection closed (aedes closes
 * the connection when the publish hook refuses, MQTT-3.3.5-2).
 */
async function assertHubRefuses (t: Cleanup, lan: Lan, mallory: PairedViewer, topic: string, payload: string | Buffer, reason: RegExp): Promise<void> {
  const client = await rawClient(t, lan.hub.mqttUrl, mallory)
  const from = lan.lines.length
  const closed = new Promise<void>((resolve) => { client.once('close', () => resolve()) })
  client.publish(topic, payload, { qos: 1 }, () => {})
  await withTimeout('the hub to close the offending connection', 5000, closed)
  const line = await eventually('the hub to log the refusal', () =>
    lan.lines.slice(from).find((l) => l.includes('[hub] refused a publish') && l.includes(`topic=${topic}`)), 5000)
  assert.match(line, /client=viewer-mallory-/)
  assert.match(line, reason)
  // Refused before it was forwarded: the device heard nothing of it. (Its snapshot lines are its
  // own: the second picture of an earlier ring comes 3 s after that press, whatever Mallory does.)
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(lan.lines.slice(from).filter((l) => l.includes('[device') && !l.includes('[device/snapshot]')), [], 'nothing reached the device')
}

/**
 * Puts `payload` straight into the broker, past the gate, as a broken or compromised hub
 * would, and checks that the device itself rejects it with a clear log line.
 */
async function assertDeviceRejects (lan: Lan, topic: string, payload: string, reason: RegExp): Promise<void> {
  const from = lan.lines.length
  await withTimeout('the broker to take the message', 5000, new Promise<void>((resolve, reject) => {
    lan.hub.broker.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (err) => { err ? reject(err) : resolve() })
  }))
  const line = await eventually('the device to log the rejected message', () =>
    lan.lines.slice(from).find((l) => l.includes('[device/mqtt] rejected a message')), 5000)
  assert.match(line, reason)
}

function assertDoorLocked (lan: Lan): void {
  assert.equal(lan.lock.open, false, 'the relay is not open')
  assert.equal(lan.device.lock.state().status, 'locked')
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'), `the relay never opened (${lan.printed.join(', ')})`)
}

/** The device and hub still do their job: a new ring reaches the viewer, who answers and sees video. */
async function assertStillWorks (lan: Lan, viewer: NodeViewer): Promise<void> {
  assertDoorLocked(lan)
  assert.equal(viewer.home.hub.connected, true, 'the honest viewer kept its connection')
  await eventually('the device to be idle', () => lan.device.call.getSnapshot().matches('idle'), 5000)
  const doorbell = viewer.home.doorbell(DEVICE)
  const previousRing = doorbell.getSnapshot().context.ring?.ringId ?? null
  lan.button.press()
  await waitFor(doorbell, (s) => s.matches('incoming') && s.context.ring?.ringId !== previousRing, { timeout: 5000 })
  const rtpBefore = viewer.rtp.length
  viewer.home.answer(DEVICE)
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 15_000 })
  await eventually('video from the doorbell', () => viewer.rtp.length >= rtpBefore + 10, 10_000)
  viewer.home.hangUp(DEVICE)
  await waitFor(doorbell, (s) => s.matches('ended'), { timeout: 5000 })
  await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'), 5000)
  assertDoorLocked(lan)
}

// ---------------------------------------------------------------- a hand-made viewer on werift

interface RawCall {
  pc: RTCPeerConnection
  channel: RTCDataChannel
  /** Every reply on the data channel, parsed by the Reply schema (a device reply that fails it fails the test). */
  replies: Reply[]
  sessionId: string
  /** Resolves with the first reply after index `from` that matches. */
  reply: (what: string, from: number, check: (r: Reply) => boolean) => Promise<Reply>
  hangUp: () => Promise<void>
}

/**
 * A viewer that is not the viewer app: its own werift peer, its own MQTT client, its own
 * offer. It opens the 'control' data channel so a test can send raw strings on it.
 */
async function rawCall (t: Cleanup, lan: Lan, who: PairedViewer): Promise<RawCall> {
  const viewerId = who.viewerId
  const client = await rawClient(t, lan.hub.mqttUrl, who)
  const sessionId = newId('s')
  const toDevice = topics.session(HOME, DEVICE, viewerId, sessionId, 'to-device')
  await withTimeout('the subscription', 5000, client.subscribeAsync(topics.session(HOME, DEVICE, viewerId, sessionId, 'to-viewer'), { qos: 1 }))

  const pc = new RTCPeerConnection({
    iceAdditionalHostAddresses: ['127.0.0.1'],
    bundlePolicy: 'max-bundle',
    codecs: { video: [videoCodec('h264')], audio: [] }
  })
  t.after(() => pc.close().catch(() => {}))
  const channel = pc.createDataChannel(CONTROL_CHANNEL, { ordered: true })
  pc.addTransceiver('video', { direction: 'recvonly' })

  const replies: Reply[] = []
  const waiters = new Set<() => void>()
  channel.onMessage.subscribe((data) => {
    const r = decode(Reply, typeof data === 'string' ? data : data.toString('utf8'), 'raw viewer data channel')
    if (!r.ok) throw r.error
    replies.push(r.value)
    for (const w of [...waiters]) w()
  })
  const reply = async (what: string, from: number, check: (r: Reply) => boolean): Promise<Reply> => {
    const find = (): Reply | undefined => replies.slice(from).find(check)
    return await withTimeout(what, 5000, new Promise<Reply>((resolve) => {
      const found = find()
      if (found) { resolve(found); return }
      const w = (): void => { const f = find(); if (f) { waiters.delete(w); resolve(f) } }
      waiters.add(w)
    }))
  }

  client.on('message', (_topic, payload) => {
    const m = decode(SignalToViewer, payload, 'to-viewer')
    if (!m.ok) throw m.error
    if (m.value.type === 'answer') void pc.setRemoteDescription({ type: 'answer', sdp: m.value.sdp })
  })

  const offer = await pc.createOffer()
  // As the viewer app does with werift: no wait on a public STUN server before gathering.
  withoutDefaultStun(pc, [])
  await pc.setLocalDescription(offer)
  await withTimeout('ICE gathering', 5000, new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return }
    const sub = pc.iceGatheringStateChange.subscribe((state) => { if (state === 'complete') { sub.unSubscribe(); resolve() } })
  }))
  const sdp = pc.localDescription?.sdp
  assert.ok(sdp, 'an offer')
  const message: Offer = await offerFrom(who, { device: DEVICE, sessionId, sdp })
  client.publish(toDevice, encode(SignalToDevice, message), { qos: 1 })

  await withTimeout('the data channel to open', 15_000, new Promise<void>((resolve) => {
    if (channel.readyState === 'open') { resolve(); return }
    channel.stateChanged.subscribe((state) => { if (state === 'open') resolve() })
  }))
  return {
    pc,
    channel,
    sessionId,
    replies,
    reply,
    async hangUp () {
      await client.publishAsync(toDevice, encode(SignalToDevice, { type: 'bye', sessionId, reason: 'hang-up' }), { qos: 1 })
      await pc.close()
      await eventually('the device to end the raw session', () => lan.device.call.getSnapshot().matches('idle'), 5000)
    }
  }
}

// ---------------------------------------------------------------- the cases

test('bad input from LAN clients is refused, logged, and leaves the door locked and the doorbell working', { timeout: 180_000 }, async (t) => {
  const lan = await startLan()
  t.after(() => lan.stop())
  const kitchen = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'owner', viewerId: 'kitchen' })
  const viewer = nodeViewer(lan.hub.mqttUrl, kitchen)
  t.after(() => viewer.close())
  await eventually('the viewer to reach the hub', () => viewer.home.hub.connected)
  await eventually('the retained state of the doorbell', () => viewer.home.doorbells.get(DEVICE))
  await assertStillWorks(lan, viewer)

  // A paired resident whose screen sends bad input (a bug, or someone at its keyboard): membership does not get it past the gate.
  const mallory = await pairViewer(lan.hub, { name: 'Mallory', role: 'resident', viewerId: 'mallory' })
  const session = (viewerId: string, sessionId: string): string => topics.session(HOME, DEVICE, viewerId, sessionId, 'to-device')

  await t.test('clients without a member\'s credentials are refused at CONNECT, with the reason logged', async () => {
    const attempts: Array<{ what: string, options: mqtt.IClientOptions, reason: RegExp }> = [
      { what: 'anonymous', options: { clientId: `viewer-mallory-${newId()}` }, reason: /reason=no credentials/ },
      { what: 'a wrong token', options: { clientId: `viewer-mallory-${newId()}`, username: mallory.memberId, password: `${mallory.memberId}.${'A'.repeat(43)}` }, reason: /reason=unknown, removed or expired member/ },
      { what: 'another member\'s client id', options: { clientId: `device-${DEVICE}`, username: mallory.memberId, password: mallory.token }, reason: /reason=client id device-front-door is not Mallory's/ }
    ]
    for (const a of attempts) {
      const from = lan.lines.length
      const client = mqtt.connect(lan.hub.mqttUrl, { ...a.options, clean: true, reconnectPeriod: 0, connectTimeout: 5000 })
      const outcome = await withTimeout(`the hub's verdict on ${a.what}`, 5000, new Promise<string>((resolve) => {
        client.once('connect', () => resolve('connected'))
        client.once('error', (err) => resolve(`refused: ${err.message}`))
        client.once('close', () => resolve('closed'))
      }))
      client.end(true)
      assert.match(outcome, /^(refused: .*|closed)$/, `${a.what}: ${outcome}`)
      const line = await eventually('the hub to log the refused client', () =>
        lan.lines.slice(from).find((l) => l.includes('[hub] refused a client')), 5000)
      assert.match(line, a.reason, a.what)
    }
    assert.ok(lan.device.link?.client.connected, 'the doorbell kept its own connection (its client id was not taken over)')
    await assertStillWorks(lan, viewer)
  })

  await t.test('malformed JSON on a to-device session topic', async (t) => {
    const topic = session('mallory', 's-json')
    const payload = '{"type":"offer","sessionId":"s-json",'
    await assertHubRefuses(t, lan, mallory, topic, payload, /reason=.*not JSON/)
    await assertDeviceRejects(lan, topic, payload, /error=.*not JSON/)
    await assertStillWorks(lan, viewer)
  })

  await t.test('a schema-invalid offer (the SDP is not an SDP)', async (t) => {
    const topic = session('mallory', 's-sdp')
    const payload = JSON.stringify({ ...await offerFrom(mallory, { device: DEVICE, sessionId: 's-sdp', sdp: SDP_LIKE }), sdp: 'open the door please' })
    await assertHubRefuses(t, lan, mallory, topic, payload, /reason=.*sdp: an SDP starts with "v=0"/)
    await assertDeviceRejects(lan, topic, payload, /error=.*sdp: an SDP starts with "v=0"/)
    await assertStillWorks(lan, viewer)
  })

  await t.test('an offer whose viewerId disagrees with the topic', async (t) => {
    // Mallory tries to pass an offer off as the kitchen tablet's.
    const topic = session('mallory', 's-who')
    const payload = JSON.stringify({ ...await offerFrom(mallory, { device: DEVICE, sessionId: 's-who', sdp: SDP_LIKE, viewerName: 'Kitchen tablet' }), viewerId: 'kitchen' })
    await assertHubRefuses(t, lan, mallory, topic, payload, /reason=.*viewerId kitchen does not match the topic/)
    await assertDeviceRejects(lan, topic, payload, /error=.*viewerId kitchen does not match the topic/)
    await assertStillWorks(lan, viewer)
  })

  await t.test('an anonymous offer (no credential) is refused by the hub and by the device', async (t) => {
    const topic = session('mallory', 's-anon')
    const payload = JSON.stringify({ type: 'offer', sessionId: 's-anon', viewerId: 'mallory', viewerName: 'Mallory', sdp: SDP_LIKE })
    await assertHubRefuses(t, lan, mallory, topic, payload, /reason=.*credential: /)
    await assertDeviceRejects(lan, topic, payload, /error=.*credential: /)
    await assertStillWorks(lan, viewer)
  })

  await t.test('an offer with a credential no home signed, or another viewer\'s, gets bye "rejected" and no answer', async (t) => {
    for (const c of [
      { what: 'forged', credential: FORGED, reason: /reason=bad-credential/ },
      { what: 'the kitchen tablet\'s', credential: kitchen.credential, reason: /reason=wrong-viewer/ }
    ]) {
      const client = await rawClient(t, lan.hub.mqttUrl, mallory)
      const sessionId = newId('s')
      const heard: SignalToViewer[] = []
      client.on('message', (_topic, payload) => {
        const m = decode(SignalToViewer, payload)
        if (m.ok) heard.push(m.value)
      })
      await withTimeout('the subscription', 5000, client.subscribeAsync(topics.session(HOME, DEVICE, 'mallory', sessionId, 'to-viewer'), { qos: 1 }))
      const from = lan.lines.length
      // Signed by Mallory's own key: what is refused is the credential.
      await client.publishAsync(session('mallory', sessionId), encode(SignalToDevice, { ...await offerFrom(mallory, { device: DEVICE, sessionId, sdp: SDP_LIKE }), credential: c.credential }), { qos: 1 })
      const bye = await eventually(`a bye for the ${c.what} credential`, () => heard.find((m) => m.type === 'bye'), 10_000)
      assert.equal(bye.type === 'bye' && bye.reason, 'rejected', c.what)
      const line = await eventually('the device to log the refused offer', () => lan.lines.slice(from).find((l) => l.includes('[device] offer refused')), 5000)
      assert.match(line, c.reason, c.what)
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.ok(!heard.some((m) => m.type === 'answer'), `no answer, no picture for a ${c.what} credential`)
      assert.ok(lan.device.call.getSnapshot().matches('idle'), 'the device never started a session')
    }
    await assertStillWorks(lan, viewer)
  })

  await t.test('garbage on topics that are not ours', async (t) => {
    await assertHubRefuses(t, lan, mallory, `doorbell/${HOME}/${DEVICE}/open-door`, 'OPEN', /reason=.*not a doorbell topic/)
    await assertHubRefuses(t, lan, mallory, 'garbage/topic', Buffer.from([0xde, 0xad, 0xbe, 0xef]), /reason=.*not a doorbell topic/)
    await assertHubRefuses(t, lan, mallory, '$SYS/broker/uptime', '0', /reason=\$SYS topics are reserved/)
    await assertStillWorks(lan, viewer)
  })

  await t.test('subscriptions outside doorbell/ are refused; a nosy client hears nothing', async (t) => {
    for (const filter of ['#', '$SYS/#', 'other/+']) {
      const client = await rawClient(t, lan.hub.mqttUrl, mallory)
      const heard: string[] = []
      client.on('message', (topic) => { heard.push(topic) })
      const from = lan.lines.length
      // aedes either grants nothing (0x80) or drops the connection; both are a refusal.
      const outcome = await withTimeout(`the hub's verdict on ${filter}`, 5000, Promise.race([
        client.subscribeAsync(filter, { qos: 1 }).then((granted) => `granted ${granted.map((g) => g.qos).join(',')}`, (err: Error) => `error ${err.message}`),
        new Promise<string>((resolve) => { client.once('close', () => resolve('closed')) })
      ]))
      assert.match(outcome, /^(granted 128|closed|error .*)$/, `refused: ${outcome}`)
      const line = await eventually('the hub to log the refused subscription', () =>
        lan.lines.slice(from).find((l) => l.includes('[hub] refused a subscription') && l.includes(`topic=${filter}`)), 5000)
      assert.match(line, /reason=/)
      await assertStillWorks(lan, viewer)
      assert.deepEqual(heard, [], `a ${filter} subscriber heard nothing of the ring and call`)
    }
  })

  await t.test('a viewer-like client cannot publish as the device (a fake ring, a fake bye)', async (t) => {
    const fakeRing = JSON.stringify({ type: 'ring', deviceId: DEVICE, deviceName: 'Front door', ringId: 'r-fake', at: Date.now(), count: 1 })
    await assertHubRefuses(t, lan, mallory, topics.ring(HOME, DEVICE), fakeRing, /reason=only the device may publish ring/)
    const fakeBye = encode(SignalToViewer, { type: 'bye', sessionId: 's-x', reason: 'hang-up' })
    await assertHubRefuses(t, lan, mallory, topics.session(HOME, DEVICE, 'kitchen', 's-x', 'to-viewer'), fakeBye, /reason=only the device may publish to-viewer/)
    assert.notEqual(viewer.home.doorbell(DEVICE).getSnapshot().context.ring?.ringId, 'r-fake', 'the fake ring reached nobody')
    await assertStillWorks(lan, viewer)
  })

  await t.test('an offer that passes the schema but is no usable SDP: the device says bye, and goes on', async (t) => {
    const client = await rawClient(t, lan.hub.mqttUrl, mallory)
    const sessionId = newId('s')
    const byes: SignalToViewer[] = []
    client.on('message', (_topic, payload) => {
      const m = decode(SignalToViewer, payload)
      if (m.ok) byes.push(m.value)
    })
    await withTimeout('the subscription', 5000, client.subscribeAsync(topics.session(HOME, DEVICE, 'mallory', sessionId, 'to-viewer'), { qos: 1 }))
    const from = lan.lines.length
    await client.publishAsync(session('mallory', sessionId), encode(SignalToDevice, await offerFrom(mallory, { device: DEVICE, sessionId, sdp: 'v=0\r\nm=video x y z\r\nbogus\r\n' })), { qos: 1 })
    const bye = await eventually('a bye from the device', () => byes.find((m) => m.type === 'bye'), 10_000)
    assert.equal(bye.type === 'bye' && bye.reason, 'failed')
    assert.ok(!byes.some((m) => m.type === 'answer'), 'no answer to a broken offer')
    await eventually('the device to log why', () => lan.lines.slice(from).find((l) => l.includes('could not answer the offer')), 5000)
    await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'), 5000)
    await assertStillWorks(lan, viewer)
  })

  await t.test('unknown, malformed and unsigned commands on the data channel get a nack with invalid-command', async (t) => {
    const raw = await pairViewer(lan.hub, { name: 'Raw viewer', role: 'resident', viewerId: 'raw-viewer' })
    const call = await rawCall(t, lan, raw)
    // The device greets a new channel with the lock's state.
    const hello = await call.reply('the lock report on open', 0, (r) => r.type === 'lock')
    assert.equal(hello.type === 'lock' && hello.lock.status, 'locked')

    const cases: Array<{ send: string | Buffer, id: string | null, message: RegExp }> = [
      { send: '{"type":"unlock","id":', id: null, message: /not JSON/ },
      { send: 'open sesame', id: null, message: /not JSON/ },
      { send: JSON.stringify({ type: 'open-sesame', id: 'c1' }), id: 'c1', message: /type/ },
      { send: JSON.stringify({ type: 'unlock' }), id: null, message: /id/ },
      { send: JSON.stringify({ type: 'unlock', id: 'c2', force: true }), id: 'c2', message: /force|unrecognized/i },
      { send: JSON.stringify({ type: 'unlock', id: 'not/an id' }), id: null, message: /id/ },
      { send: JSON.stringify([{ type: 'unlock', id: 'c3' }]), id: null, message: /\(root\)/ },
      { send: Buffer.from([0xff, 0x00, 0x7b]), id: null, message: /not JSON/ },
      // What the data channel carried before commands were signed: no credential, no proof.
      { send: JSON.stringify({ type: 'unlock', id: 'c4' }), id: 'c4', message: /credential/ }
    ]
    for (const c of cases) {
      const from = call.replies.length
      const linesFrom = lan.lines.length
      call.channel.send(c.send)
      const nack = await call.reply(`a nack for ${String(c.send)}`, from, (r) => r.type === 'nack')
      assert.ok(nack.type === 'nack')
      assert.equal(nack.id, c.id, `the nack names the command's id when it can (${String(c.send)})`)
      assert.equal(nack.error.code, 'invalid-command')
      assert.match(nack.error.message, c.message)
      const line = await eventually('the device to log the rejected command', () =>
        lan.lines.slice(linesFrom).find((l) => l.includes('rejected a command')), 5000)
      assert.match(line, /data channel of Raw viewer/)
      assert.ok(!call.replies.slice(from).some((r) => r.type === 'ack'), 'no command was acknowledged')
      assertDoorLocked(lan)
    }
    // Well-formed but not the member's: the device's guard denies it, naming why; the lock never moves.
    const stranger = await generateSigningKey(false)
    const denied: Array<{ what: string, command: DoorCommand, message: RegExp }> = [
      {
        what: 'a forged credential',
        command: await signDoorCommand({ credential: FORGED, key: stranger.privateKey, home: HOME, device: DEVICE, session: call.sessionId, command: 'c5' }),
        message: /not from this home/
      },
      {
        what: 'a proof signed by another key',
        command: await signDoorCommand({ credential: raw.credential, key: stranger.privateKey, home: HOME, device: DEVICE, session: call.sessionId, command: 'c6' }),
        message: /not signed by Raw viewer's key/
      }
    ]
    for (const c of denied) {
      const from = call.replies.length
      const linesFrom = lan.lines.length
      call.channel.send(encode(DoorCommand, c.command))
      const nack = await call.reply(`a nack for ${c.what}`, from, (r) => r.type === 'nack')
      assert.ok(nack.type === 'nack')
      assert.equal(nack.id, c.command.id)
      assert.equal(nack.error.code, 'denied', c.what)
      assert.match(nack.error.message, c.message, c.what)
      await eventually('the device to log the refused open-door', () => lan.lines.slice(linesFrom).find((l) => l.includes('open-door refused')), 5000)
      assertDoorLocked(lan)
    }
    // The session survived the garbage: still connected, channel still open.
    assert.equal(call.pc.connectionState, 'connected')
    assert.equal(call.channel.readyState, 'open')
    await call.hangUp()
    await assertStillWorks(lan, viewer)
  })

  assertDoorLocked(lan)
  assert.ok(!lan.lines.some((l) => /could not lock the door/.test(l)))
})
