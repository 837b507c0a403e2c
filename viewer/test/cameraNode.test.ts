import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hubSocketUrl, hubStatusText, watchersText } from '../src/camera/node'
import { cameraErrorText } from '../src/camera/useCameraNode'
import { describeError } from '@doorbell/core'
import { gathered } from '../src/camera/session'

test('the hub\'s MQTT WebSocket is on the page\'s own host, wss on https pages', () => {
  assert.equal(hubSocketUrl({ protocol: 'https:', host: 'hub.local:8443' }), 'wss://hub.local:8443/mqtt')
  assert.equal(hubSocketUrl({ protocol: 'http:', host: '127.0.0.1:8080' }, '/mqtt'), 'ws://127.0.0.1:8080/mqtt')
  assert.equal(hubSocketUrl({ protocol: 'https:', host: 'cams.example' }, '/broker'), 'wss://cams.example/broker')
})

test('the page says how many watch and how the hub link stands', () => {
  assert.equal(watchersText(0), 'Live: 0 watching')
  assert.equal(watchersText(3), 'Live: 3 watching')
  assert.equal(hubStatusText('connected'), 'Connected to the hub')
  assert.match(hubStatusText('reconnecting'), /retrying/)
  assert.match(hubStatusText('refused'), /pair it again/)
})

test('a camera that cannot be had says why and what to do', () => {
  assert.match(cameraErrorText({ name: 'NotAllowedError', message: 'Permission denied' }), /not allowed to use the camera.*Try again/)
  assert.match(cameraErrorText({ name: 'NotFoundError', message: 'Requested device not found' }), /No camera was found/)
  assert.match(cameraErrorText({ name: 'NotReadableError', message: 'Could not start video source' }), /another application/)
  assert.match(cameraErrorText({ name: 'TypeError', message: 'odd' }), /could not be started: odd/)
  assert.match(cameraErrorText(undefined), /could not be started\. Press "Try again"/)
  assert.match(cameraErrorText(null, false), /plain http/)
})

test('an error from the browser is described, never as an empty string', () => {
  assert.equal(describeError(new TypeError('bad sdp')), 'bad sdp')
  assert.equal(describeError({ name: 'OperationError', message: '' }), 'OperationError')
  assert.equal(describeError(''), 'an empty error')
  assert.equal(describeError(new Error()), 'Error')
})

/** A peer connection as far as waiting for ICE gathering goes: a real EventTarget with the state. */
class Gathering extends EventTarget {
  iceGatheringState: RTCIceGatheringState = 'gathering'
  finish (): void { this.iceGatheringState = 'complete'; this.dispatchEvent(new Event('icegatheringstatechange')) }
}

test('the answer waits for ICE gathering to complete, and stops listening then', async () => {
  const pc = new Gathering()
  let done = false
  const waiting = gathered(pc, 60_000).then(() => { done = true })
  pc.dispatchEvent(new Event('icegatheringstatechange')) // still gathering
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(done, false)
  pc.finish()
  await waiting
  assert.equal(done, true)
})

test('the wait for ICE gathering is bounded: the answer goes with what was gathered', async () => {
  const pc = new Gathering()
  await gathered(pc, 10)
  assert.equal(pc.iceGatheringState, 'gathering')
  pc.iceGatheringState = 'complete'
  await gathered(pc, 60_000) // already complete: at once
})
