import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DoorGuard, Grant, TalkCommand, exportPublicKey, generateSigningKey, sign, type TalkReply } from '@doorbell/core'
import { talkControl, whyRefused } from '../src/components/call/useTalk'
import { talkerText } from '../src/components/call/talkText'
import { isTalkMessage, talkLink, type TalkAnswer, type TalkLink, type TalkerView } from '../src/lib/talkLink'

const fakeTrack = () => ({ kind: 'audio', stop () {} })
const micStream = (track: ReturnType<typeof fakeTrack>) => ({ getAudioTracks: () => [track] }) as unknown as MediaStream

/** A lease that answers as told, and can end the lease as the doorbell would. */
function fakeLink (answers: TalkAnswer[]) {
  const calls: string[] = []
  const listeners = new Set<(v: TalkerView) => void>()
  let view: TalkerView = { talker: null, self: false, ended: null }
  const link: TalkLink = {
    request: async () => { calls.push('talk'); const a = answers.shift()!; if (a.ok) tell({ talker: { session: 's1', viewerId: 'v1', name: 'Kitchen' }, self: true, ended: null }); return a },
    renew: async () => { calls.push('renew'); return { ok: true, leaseMs: 60_000 } },
    release: () => { calls.push('release') },
    onTalker: (l) => { listeners.add(l); l(view); return () => { listeners.delete(l) } }
  }
  const tell = (v: TalkerView): void => { view = v; for (const l of listeners) l(v) }
  return { link, calls, tell }
}

test('with a talk lease, the microphone goes in only once the doorbell granted it, and the lease goes when talk stops', async () => {
  const tracks: unknown[] = []
  const sender = { replaceTrack: async (t: unknown) => { tracks.push(t) } }
  const mic = fakeTrack()
  const { link, calls } = fakeLink([{ ok: true, leaseMs: 60_000 }])
  const t = talkControl(() => sender, async () => micStream(mic), () => link)
  await t.talk(true)
  assert.equal(t.state.value, 'talking')
  assert.deepEqual(calls, ['talk'])
  assert.deepEqual(tracks, [mic])
  await t.talk(false)
  assert.deepEqual(calls, ['talk', 'release'])
  assert.deepEqual(tracks, [mic, null])
  assert.equal(t.state.value, 'off')
})

test('refused: nothing is sent, and the screen says who is talking', async () => {
  const tracks: unknown[] = []
  const { link } = fakeLink([{ ok: false, code: 'busy', message: 'Sam is talking', holder: 'Sam' }, { ok: false, code: 'denied', message: 'Gus may not talk on this doorbell', holder: null }])
  const t = talkControl(() => ({ replaceTrack: async (x: unknown) => { tracks.push(x) } }), async () => micStream(fakeTrack()), () => link)
  await t.talk(true)
  assert.equal(t.state.value, 'off')
  assert.equal(t.reason.value, 'Sam is talking')
  await t.talk(true)
  assert.equal(t.reason.value, 'Talk refused: Gus may not talk on this doorbell')
  assert.deepEqual(tracks, [])
  assert.equal(whyRefused({ ok: false, code: 'no-speaker', message: '', holder: null }), 'This camera has no speaker: talk is off.')
})

test('the doorbell ending the lease (2 s of silence) swaps the microphone out and says why', async () => {
  const tracks: unknown[] = []
  const { link, tell } = fakeLink([{ ok: true, leaseMs: 60_000 }])
  const t = talkControl(() => ({ replaceTrack: async (x: unknown) => { tracks.push(x) } }), async () => micStream(fakeTrack()), () => link)
  await t.talk(true)
  tell({ talker: null, self: false, ended: 'silence' })
  await new Promise((resolve) => setTimeout(resolve, 0))
  assert.equal(t.state.value, 'off')
  assert.equal(tracks.at(-1), null)
  assert.match(t.reason.value ?? '', /no sound for 2 s/)
})

test('a held button renews the lease; let go early while the doorbell answers, the lease is released and nothing sent', async () => {
  const tracks: unknown[] = []
  const { link, calls } = fakeLink([{ ok: true, leaseMs: 3000 }])
  const t = talkControl(() => ({ replaceTrack: async (x: unknown) => { tracks.push(x) } }), async () => micStream(fakeTrack()), () => link)
  await t.talk(true, { hold: true })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  assert.ok(calls.includes('renew'), 'renewed while held')
  await t.talk(false)

  const slow = fakeLink([{ ok: true, leaseMs: 60_000 }, { ok: true, leaseMs: 60_000 }])
  const sent: unknown[] = []
  const u = talkControl(() => ({ replaceTrack: async (x: unknown) => { sent.push(x) } }), async () => micStream(fakeTrack()), () => slow.link)
  // The microphone was allowed on an earlier talk.
  await u.talk(true)
  await u.talk(false)
  sent.length = 0
  const pressed = u.talk(true, { hold: true })
  const letGo = u.talk(false)
  await Promise.all([pressed, letGo])
  assert.equal(u.state.value, 'off')
  assert.ok(sent.every((x) => x === null), 'no microphone was swapped in')
  assert.deepEqual(slow.calls, ['talk', 'release', 'talk', 'release'])
})

test('talkLink: signs commands the doorbell\'s guard accepts, settles them by id, and tells who is talking', async () => {
  const home = await generateSigningKey(true)
  const viewer = await generateSigningKey(false)
  const credential = await sign(Grant, { v: 1, id: 'm1', home: 'home', sub: 'v1', name: 'Kitchen', role: 'resident', door: true, zones: [], talk: true, key: await exportPublicKey(viewer.publicKey), iat: Date.now(), exp: null }, home.privateKey)
  const guard = new DoorGuard({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey) })
  const sent: string[] = []
  const link = talkLink({ channel: () => ({ readyState: 'open', send: (d) => { sent.push(d) }, onopen: null, onmessage: null, close: () => {} }), trust: { credential, key: viewer.privateKey }, homeId: 'home', deviceId: 'front-door', sessionId: 's1' })
  const views: string[] = []
  link.onTalker((v) => { views.push(talkerText(v)) })
  const asked = link.request()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const command = TalkCommand.parse(JSON.parse(sent[0]!))
  assert.equal((await guard.checkTalk(command, { sessionId: 's1', viewerId: 'v1' })).ok, true)
  const talker: TalkReply = { type: 'talker', talker: { session: 's1', viewerId: 'v1', name: 'Kitchen' }, ended: null }
  link.take(talker)
  link.take({ type: 'talk-ack', id: command.id, leaseMs: 60_000 })
  assert.deepEqual(await asked, { ok: true, leaseMs: 60_000 })
  link.take({ type: 'talker', talker: { session: 's2', viewerId: 'v2', name: 'Sam' }, ended: null })
  assert.deepEqual(views, ['', 'You are talking', 'Sam is talking'])
  link.release()
  assert.deepEqual(JSON.parse(sent[1]!).type, 'talk-release')
  assert.equal(isTalkMessage(JSON.stringify(talker)), true)
  assert.equal(isTalkMessage('{"type":"lock","lock":null}'), false)
  link.close()
})
