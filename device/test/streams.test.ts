import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { RTCPeerConnection } from 'werift'
import { AUDIO_STREAM, ONE_STREAM, VIDEO_STREAM } from '../src/peer/session'
import { openSession, silentPeers } from './silentPeers'

/** The a=msid stream ids of each m-line of an SDP, by kind. */
function msids (sdp: string): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  let kind = ''
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^m=(\w+) /.exec(line)
    if (m) { kind = m[1]!; out[kind] ??= [] }
    const id = /^a=msid:(\S+)/.exec(line)
    if (id && kind) out[kind]!.push(id[1]!)
  }
  return out
}

/**
 * The doorbell's answer to an offer (the media sources are not the subject: a camera and a
 * microphone that send nothing). `kinds`: the offer's m-lines in order; `oneStream`: a stock KVS viewer.
 */
async function answerTo (t: TestContext, kinds: Array<['video' | 'audio', 'recvonly' | 'sendrecv']>, session: { path: 'cloud' | null, oneStream?: boolean }): Promise<string> {
  // VP8, which a werift viewer offers by default (the video line is then accepted).
  const peers = silentPeers({ keepEarlyDtls: false, codec: 'vp8' })
  const viewer = new RTCPeerConnection({ iceServers: [] })
  t.after(() => viewer.close())
  for (const [kind, direction] of kinds) viewer.addTransceiver(kind, { direction })
  viewer.createDataChannel('control')
  await viewer.setLocalDescription(await viewer.createOffer())
  const peer = await openSession(peers, {}, { audio: true, ...session })
  t.after(() => peer.close())
  return await peer.answer(viewer.localDescription!.sdp)
}

test('the doorbell answers with its video and its sound in streams of their own, so a browser does not hold the voice back to the video', async (t) => {
  // The viewer's offer as the app makes it: video received, audio both ways, the control channel.
  const answer = await answerTo(t, [['video', 'recvonly'], ['audio', 'sendrecv']], { path: null })
  const ids = msids(answer)
  assert.deepEqual(ids.video, [VIDEO_STREAM], answer)
  assert.deepEqual(ids.audio, [AUDIO_STREAM], answer)
  assert.notEqual(VIDEO_STREAM, AUDIO_STREAM)
})

test('a stock KVS viewer (it shows the first track\'s stream as a whole) gets the video and the sound in one stream', async (t) => {
  const ids = msids(await answerTo(t, [['audio', 'sendrecv'], ['video', 'recvonly']], { path: 'cloud', oneStream: true }))
  assert.deepEqual([ids.audio, ids.video], [[ONE_STREAM], [ONE_STREAM]])
})
