import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MICROPHONE_CONSTRAINTS, talkControl, whyNoTalk } from '../src/components/call/useTalk'

/** A sender that records what is swapped in (null: nothing is sent). */
function recordingSender () {
  const tracks: unknown[] = []
  return { tracks, sender: { replaceTrack: async (t: unknown) => { tracks.push(t) } } }
}
const fakeTrack = () => ({ kind: 'audio', stopped: false, stop () { this.stopped = true } })
const micStream = (track: ReturnType<typeof fakeTrack>) => ({ getAudioTracks: () => [track] }) as unknown as MediaStream
const domError = (name: string): Error => Object.assign(new Error(name), { name })

test('the microphone is asked for on first talk only, with echo cancellation, noise suppression and auto gain; talk swaps it in and out', async () => {
  const { tracks, sender } = recordingSender()
  const mic = fakeTrack()
  const asked: unknown[] = []
  const t = talkControl(() => sender, async (c) => { asked.push(c); return micStream(mic) })
  assert.equal(t.state.value, 'off')
  await t.talk(true)
  assert.equal(t.state.value, 'talking')
  await t.talk(false)
  assert.equal(t.state.value, 'off')
  await t.talk(true)
  assert.deepEqual(asked, [MICROPHONE_CONSTRAINTS])
  assert.deepEqual(MICROPHONE_CONSTRAINTS.audio, { echoCancellation: true, noiseSuppression: true, autoGainControl: true })
  assert.deepEqual(tracks, [mic, null, mic])
  t.release()
  assert.equal(mic.stopped, true)
  assert.equal(t.state.value, 'off')
})

test('a hold let go while the browser is still asking sends nothing', async () => {
  const { tracks, sender } = recordingSender()
  let grant: (s: MediaStream) => void = () => {}
  const t = talkControl(() => sender, async () => await new Promise<MediaStream>((resolve) => { grant = resolve }))
  const pressed = t.talk(true)
  assert.equal(t.state.value, 'asking')
  const letGo = t.talk(false)
  grant(micStream(fakeTrack()))
  await Promise.all([pressed, letGo])
  assert.equal(t.state.value, 'off')
  assert.ok(tracks.every((x) => x === null), 'no microphone was swapped in')
})

test('a refused or missing microphone turns talk off and says why; nothing is sent', async () => {
  for (const [name, pattern] of [['NotAllowedError', /not allowed/], ['NotFoundError', /no microphone/], ['NotReadableError', /in use/]] as const) {
    const { tracks, sender } = recordingSender()
    const t = talkControl(() => sender, async () => { throw domError(name) })
    await t.talk(true)
    assert.equal(t.state.value, 'unavailable')
    assert.match(t.reason.value ?? '', pattern)
    assert.match(t.reason.value ?? '', /still listen/)
    await t.talk(true)
    assert.deepEqual(tracks, [])
    // The next call may ask again.
    t.release()
    assert.equal(t.state.value, 'off')
    assert.equal(t.reason.value, null)
  }
  assert.match(whyNoTalk(new TypeError('boom')), /could not be used \(boom\)/)
})
