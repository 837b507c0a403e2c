import { test } from 'node:test'
import assert from 'node:assert/strict'
import { waitFor } from 'xstate'
import { eventually, startLan } from '../src/harness'
import { nodeViewer } from '../src/nodeViewer'
import { pairViewer } from '../src/trust'
import { isH264Keyframe, isVp8Keyframe } from '@doorbell/device'

test('a ring on the LAN is answered, shows video and opens the door, which relocks', { timeout: 60_000 }, async (t) => {
  const lan = await startLan()
  t.after(() => lan.stop())
  const viewer = nodeViewer(lan.hub.mqttUrl, await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'owner' }))
  t.after(() => viewer.close())
  await eventually('the viewer to reach the hub', () => viewer.home.hub.connected)
  await eventually('the retained state of the doorbell', () => viewer.home.doorbells.get('front-door'))
  const doorbell = viewer.home.doorbell('front-door')

  lan.button.press()
  await waitFor(doorbell, (s) => s.matches('incoming'), { timeout: 5000 })
  assert.deepEqual(viewer.alerts, ['front-door'])
  assert.equal(doorbell.getSnapshot().context.ring?.deviceName, 'Front door')

  viewer.home.answer('front-door')
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 15_000 })
  await eventually('video RTP from the doorbell', () => viewer.rtp.length >= 30)
  assert.ok(viewer.rtp.every((p) => p.payload.length > 0))
  // The camera's cached group of pictures: the very first packet starts a keyframe.
  assert.ok(isH264Keyframe(viewer.rtp[0]!.payload), 'the first video packet starts a keyframe')
  await eventually('the device to list the viewer in the call', () =>
    doorbell.getSnapshot().context.device?.participants.some((p) => p.viewerName === 'Kitchen tablet'))

  const before = lan.printed.length
  viewer.home.unlock('front-door')
  await waitFor(doorbell, (s) => s.context.door?.status === 'unlocked' && s.context.pendingCommand === null, { timeout: 5000 })
  assert.equal(doorbell.getSnapshot().context.commandError, null)
  assert.deepEqual(lan.printed.slice(before, before + 1), ['DOOR UNLOCKED'])
  // relockSeconds is 1 in the harness: the door locks by itself and the viewer sees it.
  await waitFor(doorbell, (s) => s.context.door?.status === 'locked', { timeout: 5000 })
  assert.deepEqual(lan.printed.slice(before), ['DOOR UNLOCKED', 'DOOR LOCKED'])

  viewer.home.hangUp('front-door')
  await waitFor(doorbell, (s) => s.matches('ended'), { timeout: 5000 })
  assert.equal(doorbell.getSnapshot().context.endReason, 'hung-up')
  await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'))
  await eventually('the call record', () => viewer.home.history.find((r) => r.outcome === 'answered'))
  const record = viewer.home.history.find((r) => r.outcome === 'answered')!
  assert.deepEqual(record.answeredBy.map((a) => a.viewerName), ['Kitchen tablet'])
  assert.equal(record.unlocks.length, 1)
})

test('with camera.codec "vp8" the same call carries VP8', { timeout: 60_000 }, async (t) => {
  const lan = await startLan({ camera: { codec: 'vp8' } })
  t.after(() => lan.stop())
  const viewer = nodeViewer(lan.hub.mqttUrl, await pairViewer(lan.hub, { name: 'Hall phone', role: 'owner' }), 'vp8')
  t.after(() => viewer.close())
  await eventually('the retained state of the doorbell', () => viewer.home.doorbells.get('front-door'))
  const doorbell = viewer.home.doorbell('front-door')
  viewer.home.watch('front-door')
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 15_000 })
  await eventually('VP8 RTP from the doorbell', () => viewer.rtp.length >= 30)
  assert.ok(isVp8Keyframe(viewer.rtp[0]!.payload), 'the first VP8 packet starts a keyframe')
  viewer.home.hangUp('front-door')
  await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'))
})
