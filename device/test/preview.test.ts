import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createActor, sendTo, setup, type EventObject } from 'xstate'
import { memoryLogger, type SignalToViewer } from '@doorbell/core'
import type { SessionRouting } from '@doorbell/machines'
import { answeringSession, type ChannelData, type ControlChannel, type Door, type MediaPeers, type PeerSession, type TalkFloor } from '../src/answering'

/**
 * A live preview's session (issue 21) on the answering side, with a stand-in peer (the media is
 * werift's, tested in e2e/preview.test.ts): no audio either way and no talk before its viewer
 * answers on it; `take-call` goes to the call machine; `OPEN_AUDIO` opens audio and says `call-taken`.
 */
test('a preview session: no audio either way before Answer, take-call goes to the call machine, OPEN_AUDIO opens audio and says call-taken', async () => {
  const sent: string[] = []
  const logged: string[] = []
  // What had happened when each message left: the first packet and `call-taken` go before any bookkeeping.
  const before: Array<{ audioOpened: number, logged: boolean }> = []
  let listener: ((data: ChannelData) => void) | null = null
  const channel: ControlChannel = {
    label: 'control',
    isOpen: () => true,
    send: (text) => { sent.push(text); before.push({ audioOpened, logged: logged.some((l) => l.includes('preview answered')) }) },
    onOpen: (l) => { l() },
    onMessage: (l) => { listener = l }
  }
  const opened: PeerSession[] = []
  let audioOpened = 0
  const peers: MediaPeers = {
    name: 'test device',
    async open (session, events) {
      opened.push(session)
      events.channel(channel)
      return { answer: async () => 'v=0 answer', openAudio: () => { audioOpened++ }, close: () => {} }
    }
  }
  const talkCommands: string[] = []
  const floor: TalkFloor = {
    mayTalk: () => true, // the lease would let it talk: the preview alone must stop it
    left: () => {},
    lost: () => {},
    stop: () => {},
    session: () => ({ opened: () => {}, command: async (raw) => { talkCommands.push(raw) }, stop: () => {} })
  }
  const doorCommands: string[] = []
  const door: Door = { session: () => ({ opened: () => {}, command: async (d) => { doorCommands.push(String(d)) }, stop: () => {} }) }
  const signalled: SignalToViewer[] = []
  const routing: SessionRouting = { signal: (_v, _s, m) => { signalled.push(m) }, pathOf: () => 'lan' }
  const sentBack: EventObject[] = []
  const parent = setup({ actors: { session: answeringSession({ peers, door, log: memoryLogger(logged, 'test'), talk: floor })(routing) } }).createMachine({
    invoke: { id: 'session', src: 'session', input: { sessionId: 's-1', viewerId: 'v-kitchen', viewerName: 'Kitchen', since: 0, sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n', preview: true } },
    on: {
      OPEN: { actions: sendTo('session', { type: 'OPEN_AUDIO' }) },
      '*': { actions: ({ event }) => { sentBack.push(event) } }
    }
  })
  const actor = createActor(parent).start()
  const deadline = Date.now() + 5000
  while (!signalled.some((m) => m.type === 'answer') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  const session = opened[0]!
  assert.equal(session.preview, true, 'the platform is told it is a preview (it sends no microphone)')
  assert.equal(session.audio, true, 'its audio line is negotiated all the same')
  assert.equal(session.mayTalk(), false, 'nothing the viewer sends is played on a preview')

  listener!(JSON.stringify({ type: 'talk', id: 'x' }))
  assert.deepEqual(talkCommands, [], 'a talk command on a preview is ignored')
  listener!(JSON.stringify({ type: 'take-call' }))
  assert.deepEqual(sentBack.filter((e) => e.type === 'TAKE_CALL').map((e) => ({ ...e, at: 0 })), [{ type: 'TAKE_CALL', sessionId: 's-1', at: 0 }])
  assert.equal(audioOpened, 0, 'audio waits for the call machine')
  assert.equal(sent.length, 0)

  actor.send({ type: 'OPEN' })
  assert.equal(audioOpened, 1, 'OPEN_AUDIO opens the platform\'s audio')
  assert.deepEqual(sent, ['{"type":"call-taken"}'])
  assert.deepEqual(before, [{ audioOpened: 1, logged: false }], 'call-taken left after the audio opened and before the log line')
  assert.ok(logged.some((l) => l.includes('preview answered')), 'and the line is written')
  assert.equal(session.mayTalk(), true, 'in the call the talk floor decides')
  listener!(JSON.stringify({ type: 'talk', id: 'y' }))
  assert.equal(talkCommands.length, 1, 'talk commands count once it is the call')
  actor.send({ type: 'OPEN' })
  assert.equal(audioOpened, 1, 'opened once')
  listener!(JSON.stringify({ type: 'take-call' }))
  assert.equal(sent.filter((s) => s.includes('call-taken')).length, 2, 'a take-call on a call is answered at once')
  assert.deepEqual(doorCommands, [], 'none of these reached the door')
  actor.stop()
})
