import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FLOOR_DB, levelOf } from '../src/components/call/level'
import { talkControl } from '../src/components/call/useTalk'

const sine = (amplitude: number, n = 2048): Float32Array => Float32Array.from({ length: n }, (_, i) => amplitude * Math.sin(2 * Math.PI * i * 440 / 48000))

test('the level meter: silence is 0, full scale 100, linear in dB between the floor and full scale', () => {
  assert.equal(levelOf(new Float32Array(2048)), 0)
  assert.equal(levelOf([]), 0)
  // A full-scale square wave has RMS 1: 0 dBFS.
  assert.equal(levelOf(Float32Array.from({ length: 2048 }, (_, i) => (i % 2 ? 1 : -1))), 100)
  // A sine at amplitude 1 has RMS 1/√2: -3 dBFS, 95 on a 60 dB scale.
  assert.equal(levelOf(sine(1)), 95)
  // -40 dBFS RMS is a third of the bar; under the floor is empty.
  const at = (db: number): Float32Array => new Float32Array(2048).fill(10 ** (db / 20))
  assert.equal(levelOf(at(-40)), 33)
  assert.equal(levelOf(at(FLOOR_DB - 6)), 0)
  // Louder is never lower.
  assert.ok(levelOf(sine(0.5)) > levelOf(sine(0.05)))
})

test('talk exposes the microphone track only while it is sent: the meter reads nothing before, after talk stops, or after release', async () => {
  const mic = { kind: 'audio', stop () {} }
  const t = talkControl(() => ({ replaceTrack: async () => {} }), async () => ({ getAudioTracks: () => [mic] }) as unknown as MediaStream)
  assert.equal(t.sending.value, null)
  await t.talk(true)
  assert.equal(t.sending.value, mic)
  await t.talk(false)
  assert.equal(t.sending.value, null)
  await t.talk(true)
  t.release()
  assert.equal(t.sending.value, null)
})
