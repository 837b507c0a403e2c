import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DeviceConfig, parseConfig, type DeviceConfigInput } from '@doorbell/core'
import { HALF_DUPLEX_HOLD_MS, HalfDuplexGate, halfDuplexOn } from '../src/audio/halfDuplex'

const audio = (a: DeviceConfigInput['audio']) => parseConfig(DeviceConfig, { audio: a }, 'test').audio

test('the gate shuts the microphone while the speaker plays and for the hold after its last packet', () => {
  let now = 1000
  const gate = new HalfDuplexGate(HALF_DUPLEX_HOLD_MS, () => now)
  assert.equal(gate.open(), true, 'open before anything played')
  gate.played()
  assert.equal(gate.open(), false)
  now += HALF_DUPLEX_HOLD_MS - 1
  assert.equal(gate.open(), false, 'still shut within the hold')
  gate.played()
  now += HALF_DUPLEX_HOLD_MS - 1
  assert.equal(gate.open(), false, 'each packet played restarts the hold')
  now += 1
  assert.equal(gate.open(), true, 'open once the speaker has been quiet for the hold')
  assert.equal(gate.gated, 3)
})

test('half duplex: on and off as configured; auto is on for ALSA and the RTSP camera\'s sound, off for PulseAudio and the test tone; never without a microphone and a speaker', () => {
  const wav = { kind: 'wav' as const, path: '/tmp/x.wav' }
  const alsa = { kind: 'alsa' as const, device: 'plughw:1,0' }
  assert.equal(halfDuplexOn(audio({ source: alsa, speaker: wav })), true)
  assert.equal(halfDuplexOn(audio({ source: { kind: 'pulse' }, speaker: wav })), false)
  const rtspCamera = { source: { kind: 'rtsp' as const, url: 'rtsp://192.168.1.20/stream1' } }
  assert.equal(halfDuplexOn(parseConfig(DeviceConfig, { camera: rtspCamera, audio: { source: 'camera', speaker: wav } }, 'test').audio), true, 'the RTSP camera cannot cancel the echo of our speaker')
  assert.equal(halfDuplexOn(audio({ source: { kind: 'test-tone' }, speaker: wav })), false)
  assert.equal(halfDuplexOn(audio({ source: { kind: 'test-tone' }, speaker: wav, halfDuplex: 'on' })), true)
  assert.equal(halfDuplexOn(audio({ source: alsa, speaker: wav, halfDuplex: 'off' })), false)
  assert.equal(halfDuplexOn(audio({ source: alsa, speaker: { kind: 'none' }, halfDuplex: 'on' })), false)
  assert.equal(halfDuplexOn(audio({ source: { kind: 'none' }, speaker: wav, halfDuplex: 'on' })), false)
  assert.throws(() => audio({ source: alsa, speaker: wav, halfDuplex: 'sometimes' as 'on' }), /halfDuplex/)
})
