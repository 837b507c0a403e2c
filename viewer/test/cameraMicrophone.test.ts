import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MICROPHONE_KEY, NODE_MICROPHONE_CONSTRAINTS, loadMicrophoneSetting, microphoneErrorText, saveMicrophoneSetting } from '../src/camera/microphone'

function memoryStorage (initial: Record<string, string> = {}) {
  const items = new Map(Object.entries(initial))
  return {
    items,
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => { items.set(k, v) },
    removeItem: (k: string) => { items.delete(k) }
  }
}

test('a camera node sends no sound unless it was turned on here; anything else stored is off', () => {
  assert.equal(loadMicrophoneSetting(memoryStorage()), false)
  for (const damaged of ['true', 'ON', '1', '', '{"on":true}']) assert.equal(loadMicrophoneSetting(memoryStorage({ [MICROPHONE_KEY]: damaged })), false, damaged)
  const s = memoryStorage()
  saveMicrophoneSetting(s, true)
  assert.equal(loadMicrophoneSetting(s), true)
  saveMicrophoneSetting(s, false)
  assert.equal(loadMicrophoneSetting(s), false)
  assert.equal(s.items.has(MICROPHONE_KEY), false, 'off leaves nothing stored')
})

test('the node asks for sound only, without echo cancellation (it plays nothing to cancel)', () => {
  assert.deepEqual(NODE_MICROPHONE_CONSTRAINTS, { audio: { echoCancellation: false, noiseSuppression: true, autoGainControl: true }, video: false })
})

test('a refused, missing or busy microphone says why, and that the picture is still sent', () => {
  const err = (name: string): Error => Object.assign(new Error(name), { name })
  assert.match(microphoneErrorText(err('NotAllowedError')), /not allowed.*picture is still sent/)
  assert.match(microphoneErrorText(err('NotFoundError')), /no microphone/)
  assert.match(microphoneErrorText(err('NotReadableError')), /in use/)
  assert.match(microphoneErrorText(new Error('boom')), /could not be started \(boom\)/)
  assert.match(microphoneErrorText(null), /could not be started\. The picture/)
})
