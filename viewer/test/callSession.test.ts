import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createActor, type EventObject } from 'xstate'
import type { CallActorCommand } from '@doorbell/machines'
import { DoorCommand, DoorGuard, Grant, exportPublicKey, generateSigningKey, sign, type SignalToDevice } from '@doorbell/core'
import { callSession, makePeer, type AudioSenderLike, type DataChannelLike, type PeerConnectionLike } from '../src/lib/callSession'

/** A peer connection that has gathered at once: the offer leaves with its SDP. */
function gatheredPeer (transceivers: Array<{ kind: string, direction: string, sender: AudioSenderLike }> = []): PeerConnectionLike {
  return {
    createDataChannel: () => ({ readyState: 'connecting', send: () => {}, onopen: null, onmessage: null, close: () => {} }),
    addTransceiver: (kind, init) => {
      const t = { kind, direction: init.direction, sender: { replaceTrack: () => undefined } }
      transceivers.push(t)
      return t
    },
    createOffer: async () => ({ type: 'offer', sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n' }),
    setLocalDescription: async () => undefined,
    setRemoteDescription: async () => undefined,
    localDescription: { sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n' },
    iceGatheringState: 'complete',
    connectionState: 'new',
    iceConnectionState: 'new',
    onicegatheringstatechange: null,
    onconnectionstatechange: null,
    oniceconnectionstatechange: null,
    ontrack: null,
    addEventListener: () => {},
    removeEventListener: () => {},
    close: () => {}
  }
}

test('the offer a viewer sends carries a proof of its grant\'s key that the doorbell admits, once, for that session only', async () => {
  const home = await generateSigningKey(true)
  const viewer = await generateSigningKey(false)
  const credential = await sign(Grant, { v: 1, id: 'm1', home: 'home', sub: 'v1', name: 'Kitchen', role: 'resident', door: true, zones: [], key: await exportPublicKey(viewer.publicKey), iat: Date.now(), exp: null }, home.privateKey)
  const sent: SignalToDevice[] = []
  const logic = callSession({
    signaling: { onSession: () => () => {}, sendToDevice: (_device, _session, m) => { sent.push(m) } },
    viewerId: 'v1',
    viewerName: 'Kitchen',
    homeId: 'home',
    trust: { credential, key: viewer.privateKey },
    createPeerConnection: () => gatheredPeer()
  })
  const actor = createActor(logic, { input: { deviceId: 'front-door', sessionId: 's1', preview: false } })
  actor.start()
  for (let i = 0; i < 100 && sent.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  const offer = sent[0]
  assert.ok(offer?.type === 'offer', 'an offer went out')
  assert.equal(offer.credential, credential)

  const guard = new DoorGuard({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey) })
  const first = await guard.admit(offer.credential, offer.viewerId, { proof: offer.proof, session: offer.sessionId })
  assert.equal(first.ok, true, JSON.stringify(first))
  const again = await guard.admit(offer.credential, offer.viewerId, { proof: offer.proof, session: offer.sessionId })
  assert.equal(!again.ok && again.reason, 'replay')
  const other = new DoorGuard({ homeId: 'home', deviceId: 'back-door', homeKey: await exportPublicKey(home.publicKey) })
  const elsewhere = await other.admit(offer.credential, offer.viewerId, { proof: offer.proof, session: offer.sessionId })
  assert.equal(!elsewhere.ok && elsewhere.reason, 'wrong-device')
  actor.stop()
})

test('every offer has sound both ways from the start: a sendrecv audio line whose sender is handed over for talk', async () => {
  const viewer = await generateSigningKey(false)
  const transceivers: Array<{ kind: string, direction: string, sender: AudioSenderLike }> = []
  const senders: AudioSenderLike[] = []
  const sent: SignalToDevice[] = []
  const logic = callSession({
    signaling: { onSession: () => () => {}, sendToDevice: (_device, _session, m) => { sent.push(m) } },
    viewerId: 'v1',
    viewerName: 'Kitchen',
    homeId: 'home',
    trust: { credential: 'grant', key: viewer.privateKey },
    createPeerConnection: () => gatheredPeer(transceivers),
    onAudioSender: (call, sender) => { assert.equal(call.sessionId, 's1'); senders.push(sender) }
  })
  const actor = createActor(logic, { input: { deviceId: 'front-door', sessionId: 's1', preview: false } })
  actor.start()
  for (let i = 0; i < 100 && sent.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.deepEqual(transceivers.map((t) => [t.kind, t.direction]), [['video', 'recvonly'], ['audio', 'sendrecv']])
  assert.deepEqual(senders, [transceivers[1]!.sender])
  actor.stop()
})

test('the page\'s next spare connection: a preview that took the spare says so at its Answer (call-taken), not before; an Answer without preview at once; a missed preview when it ends; once each', async () => {
  const viewer = await generateSigningKey(false)
  let next = 0
  let offered = 0
  const channels: DataChannelLike[] = []
  const options = {
    signaling: { onSession: () => () => {}, sendToDevice: (_device: string, _session: string, m: SignalToDevice) => { if (m.type === 'offer') offered++ } },
    viewerId: 'v1',
    viewerName: 'Kitchen',
    homeId: 'home',
    trust: { credential: 'grant', key: viewer.privateKey },
    createPeerConnection: () => {
      const peer = gatheredPeer()
      const make = peer.createDataChannel.bind(peer)
      peer.createDataChannel = (label, init) => { const c = make(label, init); channels.push(c); return c }
      return peer
    }
  }
  const spare = { take: () => makePeer(options, []), makeNext: () => { next++ } }
  const offers = async (n: number): Promise<void> => {
    for (let i = 0; i < 100 && offered < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(offered, n, 'the offer went out')
  }

  const answered = createActor(callSession({ ...options, spare }), { input: { deviceId: 'front-door', sessionId: 's1', preview: true } })
  answered.start()
  await offers(1)
  assert.equal(next, 0, 'not while the preview waits for Answer')
  channels.at(-1)!.onmessage!({ data: '{"type":"call-taken"}' })
  assert.equal(next, 1, 'said at call-taken')
  answered.stop()
  assert.equal(next, 1, 'once')

  const direct = createActor(callSession({ ...options, spare }), { input: { deviceId: 'front-door', sessionId: 's2', preview: false } })
  direct.start()
  await offers(2)
  assert.equal(next, 2, 'an Answer without preview: at once')
  direct.stop()
  assert.equal(next, 2)

  const missed = createActor(callSession({ ...options, spare }), { input: { deviceId: 'front-door', sessionId: 's3', preview: true } })
  missed.start()
  await offers(3)
  assert.equal(next, 2)
  missed.stop()
  assert.equal(next, 3, 'a preview never answered: when it ends')

  const own = createActor(callSession({ ...options, spare: { take: () => null, makeNext: () => { next++ } } }), { input: { deviceId: 'front-door', sessionId: 's4', preview: false } })
  own.start()
  await offers(4)
  own.stop()
  assert.equal(next, 3, 'a call that gathered its own leaves the spare alone')
})

test('open door: the command signed when the hold starts leaves the instant the hold completes, once, and the doorbell accepts it; a released hold sends nothing', async () => {
  const home = await generateSigningKey(true)
  const viewer = await generateSigningKey(false)
  const credential = await sign(Grant, { v: 1, id: 'm1', home: 'home', sub: 'v1', name: 'Kitchen', role: 'resident', door: true, zones: [], key: await exportPublicKey(viewer.publicKey), iat: Date.now(), exp: null }, home.privateKey)
  const onChannel: string[] = []
  let offered = false
  const channel: DataChannelLike = { readyState: 'connecting', send: (data) => { onChannel.push(data as string) }, onopen: null, onmessage: null, close: () => {} }
  const logic = callSession({
    signaling: { onSession: () => () => {}, sendToDevice: (_device, _session, m) => { if (m.type === 'offer') offered = true } },
    viewerId: 'v1',
    viewerName: 'Kitchen',
    homeId: 'home',
    trust: { credential, key: viewer.privateKey },
    createPeerConnection: () => ({ ...gatheredPeer(), createDataChannel: () => channel })
  })
  const actor = createActor(logic, { input: { deviceId: 'front-door', sessionId: 's1', preview: false } })
  actor.start()
  for (let i = 0; i < 100 && !offered; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.ok(offered, 'an offer went out')
  ;(channel as { readyState: string }).readyState = 'open'
  const guard = new DoorGuard({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey) })
  const check = async (text: string | undefined) => await guard.check(DoorCommand.parse(JSON.parse(text!)), { sessionId: 's1', viewerId: 'v1' })
  const pause = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
  // What the viewer call machine sends its call actor (a callback actor's events are untyped).
  const tell = (e: CallActorCommand): void => { actor.send(e as EventObject) }

  // The hold starts: signed now, nothing sent.
  const heldAt = Date.now()
  tell({ type: 'PREPARE_COMMAND', command: { type: 'unlock', id: 'c1' } })
  await pause(100)
  assert.deepEqual(onChannel, [], 'nothing leaves while the resident holds')
  // The hold completes: the signed bytes leave in the same turn.
  const completedAt = Date.now()
  tell({ type: 'SEND_COMMAND', command: { type: 'unlock', id: 'c1' } })
  assert.equal(onChannel.length, 1, 'sent at once, with no signature to wait for')
  const verdict = await check(onChannel[0])
  assert.ok(verdict.ok, JSON.stringify(verdict))
  assert.equal(verdict.claim.command, 'c1')
  assert.ok(verdict.claim.ts >= heldAt && verdict.claim.ts < completedAt, 'dated when the hold started')
  const replay = await check(onChannel[0])
  assert.equal(!replay.ok && replay.reason, 'replay', 'its nonce is spent: the same bytes never open twice')

  // A released hold: signed, dropped, never sent.
  tell({ type: 'PREPARE_COMMAND', command: { type: 'unlock', id: 'c2' } })
  await pause(50)
  tell({ type: 'DROP_COMMAND' })
  await pause(50)
  assert.equal(onChannel.length, 1, 'a released hold sends nothing')
  // A later open with another id (or a prepared one already used) is signed when it is sent.
  const laterAt = Date.now()
  tell({ type: 'SEND_COMMAND', command: { type: 'unlock', id: 'c2' } })
  assert.equal(onChannel.length, 1, 'not prepared: signed first')
  for (let i = 0; i < 100 && onChannel.length < 2; i++) await pause(5)
  const fresh = await check(onChannel[1])
  assert.ok(fresh.ok && fresh.claim.command === 'c2' && fresh.claim.ts >= laterAt, 'signed at the send, not at the dropped hold')
  tell({ type: 'PREPARE_COMMAND', command: { type: 'unlock', id: 'c3' } })
  await pause(50)
  tell({ type: 'SEND_COMMAND', command: { type: 'unlock', id: 'c4' } })
  for (let i = 0; i < 100 && onChannel.length < 3; i++) await pause(5)
  const other = await check(onChannel[2])
  assert.ok(other.ok && other.claim.command === 'c4', 'a command for another id is its own')
  await pause(50)
  assert.equal(onChannel.length, 3, 'the prepared c3 never left')
  actor.stop()
})
