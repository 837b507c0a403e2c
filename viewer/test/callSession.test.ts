import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createActor } from 'xstate'
import { DoorGuard, Grant, exportPublicKey, generateSigningKey, sign, type SignalToDevice } from '@doorbell/core'
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
