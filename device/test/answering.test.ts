import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createActor, setup, type EventObject } from 'xstate'
import { RTCPeerConnection } from 'werift'
import {
  CONTROL_CHANNEL, DoorGuard, Grant, Reply, decode, encode, exportPublicKey, generateSigningKey, memoryLogger, newId, sign, signDoorCommand,
  type DoorAttempt, type SignalToViewer
} from '@doorbell/core'
import type { SessionInput, SessionRouting } from '@doorbell/machines'
import { LockControl, SimulatedLock } from '../src/index'
import { answeringSession, lockDoor, SessionError, type ControlChannel, type MediaPeers, type PeerSession, type TalkFloor } from '../src/answering'
import { withoutDefaultStun } from '../src/peer/werift'

const HOME = 'home'
const DEVICE = 'front-door'
const VIEWER = 'v-kitchen'
const SESSION = 's-1'

async function until (what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A home, a member of it with the door right, the device's guard and its lock on a simulated relay. */
async function home () {
  const homeKeys = await generateSigningKey(false)
  const viewerKeys = await generateSigningKey(false)
  const credential = await sign(Grant, {
    v: 1, id: 'm-kitchen', home: HOME, sub: VIEWER, name: 'Kitchen', role: 'resident', door: true, zones: [],
    key: await exportPublicKey(viewerKeys.publicKey), iat: Date.now(), exp: null
  }, homeKeys.privateKey)
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey) })
  const printed: string[] = []
  const relay = new SimulatedLock((line) => { printed.push(line) })
  const lock = new LockControl(relay, 50, memoryLogger([], 'lock'))
  lock.start()
  await until('the lock to start locked', () => lock.state().status === 'locked')
  const command = async (session = SESSION) => await signDoorCommand({ credential, key: viewerKeys.privateKey, home: HOME, device: DEVICE, session, command: newId('c') })
  return { guard, lock, relay, printed, command }
}

describe('lockDoor: the doorbell\'s door commands', () => {
  test('a signed command from the session\'s viewer opens the door once checked; every attempt is audited', async (t) => {
    const { guard, lock, printed, command } = await home()
    t.after(() => { lock.stop() })
    const audit: DoorAttempt[] = []
    const replies: Reply[] = []
    const unlocked: number[] = []
    const door = lockDoor({ lock, guard, audit: (a) => { audit.push(a) }, deviceId: DEVICE }).session({
      sessionId: SESSION, viewerId: VIEWER, viewerName: 'Kitchen', log: memoryLogger([], 'session'),
      reply: (r) => { replies.push(r) }, path: () => 'lan', unlocked: (at) => { unlocked.push(at) }
    })
    door.opened()
    assert.deepEqual(replies.map((r) => r.type), ['lock'], 'the lock\'s state when the channel opens')

    const ok = await command()
    // As werift hands it over: bytes.
    await door.command(new TextEncoder().encode(JSON.stringify(ok)))
    assert.deepEqual(replies.filter((r) => r.type !== 'lock').map((r) => r.type === 'ack' && r.id), [ok.id], JSON.stringify(replies))
    assert.equal(printed.filter((l) => l === 'DOOR UNLOCKED').length, 1)
    assert.equal(unlocked.length, 1)
    assert.deepEqual(audit.map((a) => [a.outcome, a.reason, a.path, a.memberId]), [['allowed', 'ok', 'lan', 'm-kitchen']])

    // The same command again (its nonce seen), a command for another session, and bytes that are no command.
    replies.length = 0
    const elsewhere = await command('s-other')
    await door.command(JSON.stringify(ok))
    await door.command(JSON.stringify(elsewhere))
    await door.command('{"type":"unlock","id":"c-bad"')
    await door.command('{"type":"unlock","id":"c-bad2","credential":1}')
    assert.deepEqual(replies.filter((r) => r.type === 'nack').map((r) => r.type === 'nack' && [r.id, r.error.code]), [
      [ok.id, 'denied'], [elsewhere.id, 'denied'], [null, 'invalid-command'], ['c-bad2', 'invalid-command']
    ])
    assert.deepEqual(audit.slice(1).map((a) => [a.outcome, a.reason]), [['denied', 'replay'], ['denied', 'wrong-session'], ['denied', 'malformed'], ['denied', 'malformed']])
    assert.equal(printed.filter((l) => l === 'DOOR UNLOCKED').length, 1, 'the relay moved only for the checked command')

    // The lock's moves reach the channel until the session stops.
    await until('the door to relock', () => lock.state().status === 'locked')
    assert.ok(replies.some((r) => r.type === 'lock' && r.lock.status === 'locked'))
    door.stop()
    const after = replies.length
    await door.command(JSON.stringify(await command()))
    await until('the door to relock again', () => lock.state().status === 'locked')
    assert.equal(replies.filter((r, i) => i >= after && r.type === 'lock').length, 0, 'no lock reports after the session stopped')
  })

  test('the viewer is told "open" before the hub\'s state, and the session logs where an opening\'s time went after the ack', async (t) => {
    const { guard, lock, command } = await home()
    t.after(() => { lock.stop() })
    const order: string[] = []
    // The doorbell's retained state subscribes at start-up, before any call.
    lock.subscribe((l) => { order.push(`hub ${l.status}`) })
    const lines: string[] = []
    const door = lockDoor({ lock, guard, audit: () => {}, deviceId: DEVICE }).session({
      sessionId: SESSION, viewerId: VIEWER, viewerName: 'Kitchen', log: memoryLogger(lines, 'session'),
      reply: (r) => { order.push(r.type === 'lock' ? `channel ${r.lock.status}` : `channel ${r.type}`) }, path: () => 'lan', unlocked: () => {}
    })
    await door.command(JSON.stringify(await command()))
    // The commanding viewer is not told `unlocking` (its screen says "Opening…" already): `unlocked` leaves alone.
    assert.deepEqual(order, ['channel unlocked', 'hub unlocking', 'hub unlocked', 'channel ack'])
    const timing = lines.filter((l) => l.includes('open-door timing'))
    assert.equal(timing.length, 1, lines.join('\n'))
    const ms = Object.fromEntries([...timing[0]!.matchAll(/ (\w+)=([0-9.]+)/g)].map((m) => [m[1], Number(m[2])]))
    assert.deepEqual(Object.keys(ms), ['parse', 'guard', 'lock', 'told', 'ack'], timing[0])
    assert.ok(ms.told! <= ms.ack!, `told (${ms.told}) before the ack (${ms.ack})`)
    assert.ok(ms.parse! + ms.guard! <= ms.told!, timing[0])

    // A refused command (its nonce used) is not timed: nothing opened.
    const refused = await command()
    await door.command(JSON.stringify(refused))
    await door.command(JSON.stringify(refused))
    assert.equal(lines.filter((l) => l.includes('open-door timing')).length, 2, 'one more line, for the one opening')
    door.stop()

    // The report leaves before the bookkeeping: the audit record and the ack wait a turn of the loop
    // (werift sends the report through promise steps that would wait behind them).
    order.length = 0
    const audited: string[] = []
    const later = lockDoor({ lock, guard, audit: (a) => { order.push(`audit ${a.outcome}`); audited.push(a.outcome) }, deviceId: DEVICE }).session({
      sessionId: SESSION, viewerId: VIEWER, viewerName: 'Kitchen', log: memoryLogger(order, 'session'),
      reply: (r) => {
        order.push(r.type === 'lock' ? `channel ${r.lock.status}` : `channel ${r.type}`)
        if (r.type === 'lock' && r.lock.status === 'unlocked') setImmediate(() => { order.push('a turn later') })
      },
      path: () => 'lan', unlocked: () => {}
    })
    await until('the door to relock', () => lock.state().status === 'locked')
    order.length = 0
    await later.command(JSON.stringify(await command()))
    // The log line of the checked command too: a log write can stall the path (docs/performance.md).
    assert.deepEqual(order.filter((o) => !o.startsWith('hub') && o !== 'channel unlocking' && !o.includes('open-door timing')).map((o) => o.replace(/ viewer=.*/, '')),
      ['channel unlocked', 'info [session] open-door requested', 'a turn later', 'audit allowed', 'channel ack'])
    later.stop()
    await until('the door to relock', () => lock.state().status === 'locked')
  })

  test('report order on a call\'s channels: the screen that opened is told `unlocked` alone, then the ack; another screen in the call and the hub are told `unlocking` and `unlocked`', async (t) => {
    const { guard, lock, command } = await home()
    t.after(() => { lock.stop() })
    const hub: string[] = []
    lock.subscribe((l) => { hub.push(l.status) })
    const door = lockDoor({ lock, guard, audit: () => {}, deviceId: DEVICE })
    const onChannel = (name: string, into: string[]) => door.session({
      sessionId: SESSION, viewerId: name === 'opener' ? VIEWER : 'v-hall', viewerName: name, log: memoryLogger([], 'session'),
      reply: (r) => { into.push(r.type === 'lock' ? r.lock.status : r.type) }, path: () => 'lan', unlocked: () => {}
    })
    const opener: string[] = []
    const other: string[] = []
    const a = onChannel('opener', opener)
    const b = onChannel('hall', other)
    await a.command(JSON.stringify(await command()))
    assert.deepEqual(opener, ['unlocked', 'ack'])
    assert.deepEqual(other, ['unlocking', 'unlocked'])
    assert.deepEqual(hub, ['unlocking', 'unlocked'])
    // Once its command is answered, the opener is told every state again (the relock, and a door opened by someone else).
    await until('the door to relock', () => lock.state().status === 'locked')
    assert.deepEqual(opener.slice(2), ['relocking', 'locked'])
    opener.length = 0
    other.length = 0
    await b.command(JSON.stringify(await command()))
    assert.deepEqual(other, ['nack'], 'a command under another viewer\'s grant is refused and opens nothing')
    await lock.unlock('Home Assistant')
    assert.deepEqual(opener, ['unlocking', 'unlocked'], 'a door opened by another: told every step')
    a.stop()
    b.stop()
    await until('the door to relock', () => lock.state().status === 'locked')
  })
})

/** The door as a session sees it, recording what reaches it; it answers each command with a nack. */
function recordingDoor () {
  const seen: string[] = []
  return {
    seen,
    door: {
      session: (s: Parameters<ReturnType<typeof lockDoor>['session']>[0]) => ({
        opened () { seen.push('opened'); s.reply({ type: 'nack', id: null, error: { code: 'no-door', message: 'opened' } }) },
        async command (data: unknown) {
          const text = typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array)
          seen.push(`command ${text}`)
          s.reply({ type: 'nack', id: 'c1', error: { code: 'no-door', message: 'no door here' } })
        },
        stop () { seen.push('stopped') }
      })
    }
  }
}

/** Real werift on the answering side, data channel only (the doorbell's own adds the camera's video). */
function weriftDataPeers (o: { fail?: unknown, connect?: boolean } = {}): MediaPeers & { closed: number } {
  const peers = {
    name: 'test device',
    closed: 0,
    async open (_session: SessionInput, events: Parameters<MediaPeers['open']>[1]) {
      if (o.fail !== undefined) throw o.fail
      const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle' })
      pc.onDataChannel.subscribe((dc) => {
        const channel: ControlChannel = {
          label: dc.label,
          isOpen: () => dc.readyState === 'open',
          send: (text) => { dc.send(text) },
          onOpen: (listener) => { dc.stateChanged.subscribe((st) => { if (st === 'open') listener() }); if (dc.readyState === 'open') listener() },
          onMessage: (listener) => { dc.onMessage.subscribe((data) => { listener(data) }) }
        }
        events.channel(channel)
      })
      pc.connectionStateChange.subscribe((state) => { events.connectionState(state) })
      return {
        async answer (sdp: string) {
          if (o.connect === false) return 'v=0 never used'
          await pc.setRemoteDescription({ type: 'offer', sdp })
          withoutDefaultStun(pc, [])
          await pc.setLocalDescription(await pc.createAnswer())
          return pc.localDescription!.sdp
        },
        close () { peers.closed++; void pc.close() }
      }
    }
  }
  return peers
}

/** Runs one session actor under a parent that records what it sends back, with a routing that records what it signals. */
function runSession (peers: MediaPeers, door: ReturnType<typeof recordingDoor>['door'], o: { sdp?: string, connectTimeoutMs?: number, talk?: TalkFloor, preview?: boolean } = {}) {
  const signalled: SignalToViewer[] = []
  const sentBack: EventObject[] = []
  const routing: SessionRouting = { signal: (_viewer, _session, m) => { signalled.push(m) }, pathOf: () => 'lan' }
  const logic = answeringSession({ peers, door, log: memoryLogger([], 'test'), ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}), ...(o.talk ? { talk: o.talk } : {}) })(routing)
  const parent = setup({ actors: { session: logic } }).createMachine({
    invoke: { src: 'session', input: { sessionId: SESSION, viewerId: VIEWER, viewerName: 'Kitchen', since: 0, sdp: o.sdp ?? 'v=0 offer', preview: o.preview ?? false } },
    on: { '*': { actions: ({ event }) => { sentBack.push(event) } } }
  })
  const actor = createActor(parent)
  return { actor, signalled, sentBack, start: () => { actor.start() } }
}

describe('answeringSession: one viewer\'s session, whatever the media stack', () => {
  test('the platform is told whether the offer has audio, and asks the talk floor for each of the viewer\'s packets until the session ends', async () => {
    const opened: PeerSession[] = []
    const recording: MediaPeers = {
      name: 'test device',
      async open (session) {
        opened.push(session)
        return { answer: async () => 'v=0 answer', close: () => {} }
      }
    }
    // A floor held by this session (the talk lease's own rules are tested in talkLease.test.ts).
    let holder: string | null = SESSION
    const floor: TalkFloor = {
      mayTalk: (id) => id === holder,
      left: (id) => { if (id === holder) holder = null },
      lost: () => {},
      stop: () => {},
      session: () => ({ opened: () => {}, command: async () => {}, stop: () => {} })
    }
    const withAudio = runSession(recording, recordingDoor().door, { sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n', talk: floor })
    withAudio.start()
    await until('the answer', () => withAudio.signalled.some((m) => m.type === 'answer'))
    assert.equal(opened[0]!.audio, true)
    assert.equal(opened[0]!.mayTalk(), true, 'the viewer holding the floor is heard')
    assert.equal(floor.mayTalk('another session'), false, 'another viewer is not heard over it')
    withAudio.actor.stop()
    assert.equal(opened[0]!.mayTalk(), false, 'an ended session is never heard')
    assert.equal(holder, null, 'the floor is free once it ended')

    const videoOnly = runSession(recording, recordingDoor().door, { sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n' })
    videoOnly.start()
    await until('the answer', () => videoOnly.signalled.some((m) => m.type === 'answer'))
    assert.equal(opened[1]!.audio, false)
    videoOnly.actor.stop()
  })

  test('answers the offer, hands the control channel to the door, ignores other channels, and says bye when stopped', async (t) => {
    const viewer = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle' })
    t.after(async () => { await viewer.close() })
    const control = viewer.createDataChannel(CONTROL_CHANNEL, { ordered: true })
    const other = viewer.createDataChannel('chat')
    const replies: Reply[] = []
    control.onMessage.subscribe((data) => { const r = decode(Reply, data.toString(), 'reply'); if (r.ok) replies.push(r.value) })
    withoutDefaultStun(viewer, [])
    await viewer.setLocalDescription(await viewer.createOffer())

    const { door, seen } = recordingDoor()
    const peers = weriftDataPeers()
    // The offer is the viewer's own, given to the session as the call machine would.
    const run = runSession(peers, door, { sdp: viewer.localDescription!.sdp })
    const actor = run.actor
    run.start()
    await until('the answer', () => run.signalled.some((m) => m.type === 'answer'))
    const answer = run.signalled.find((m) => m.type === 'answer')!
    assert.equal(answer.sessionId, SESSION)
    await viewer.setRemoteDescription({ type: 'answer', sdp: (answer as { sdp: string }).sdp })
    await until('the control channel to open', () => control.readyState === 'open')
    await until('the door to hear of it', () => seen.includes('opened'))
    control.send(JSON.stringify({ type: 'unlock', id: 'c1' }))
    other.send('hello')
    await until('the door\'s reply', () => replies.some((r) => r.type === 'nack' && r.id === 'c1'))
    assert.deepEqual(seen, ['opened', 'command {"type":"unlock","id":"c1"}'], 'only the control channel reaches the door')

    actor.stop()
    assert.deepEqual(run.signalled.filter((m) => m.type === 'bye'), [{ type: 'bye', sessionId: SESSION, reason: 'device-ended' }])
    assert.equal(peers.closed, 1)
    assert.deepEqual(seen.at(-1), 'stopped')
    assert.deepEqual(run.sentBack.filter((e) => e.type === 'SESSION_ENDED'), [])
  })

  test('an offer that cannot be answered ends the session with a bye that says why', async () => {
    const told = runSession(weriftDataPeers({ fail: new SessionError('the camera could not get its connection settings from the hub: 401') }), recordingDoor().door)
    told.start()
    await until('the bye', () => told.signalled.length > 0)
    assert.deepEqual(told.signalled, [{ type: 'bye', sessionId: SESSION, reason: 'failed', message: 'the camera could not get its connection settings from the hub: 401' }])
    assert.deepEqual(told.sentBack.filter((e) => e.type === 'SESSION_ENDED').length, 1)

    // werift throws some parse failures without a message: the bye still says what it was.
    const broken = runSession(weriftDataPeers({ fail: new TypeError('') }), recordingDoor().door)
    broken.start()
    await until('the bye', () => broken.signalled.length > 0)
    assert.deepEqual(broken.signalled, [{ type: 'bye', sessionId: SESSION, reason: 'failed', message: 'the test device could not answer: TypeError' }])
    told.actor.stop()
    broken.actor.stop()
    assert.equal(told.signalled.length + broken.signalled.length, 2, 'no second bye once the session has ended')
  })

  test('a peer that does not connect in time is given up', async () => {
    const peers = weriftDataPeers({ connect: false })
    const run = runSession(peers, recordingDoor().door, { connectTimeoutMs: 100 })
    run.start()
    await until('the timeout', () => run.sentBack.some((e) => e.type === 'SESSION_ENDED'))
    assert.deepEqual(run.signalled.filter((m) => m.type === 'bye'), [{ type: 'bye', sessionId: SESSION, reason: 'failed', message: 'the connection was not established in time' }])
    run.actor.stop()
    assert.equal(peers.closed, 1)
  })
})
