import { waitFor } from 'xstate'
import type { Lan } from './harness'
import type { NodeViewer } from './nodeViewer'

/**
 * One whole call on the home network, as a resident makes it: the button pressed, Answer, the
 * door opened (the relay's "unlocked" seen on the screen), hang-up.
 */
export async function ringAnswerOpenHangUp (lan: Lan, viewer: NodeViewer, deviceId = 'front-door'): Promise<void> {
  const doorbell = await ringAndAnswer(lan, viewer, deviceId)
  viewer.home.unlock(deviceId)
  await waitFor(doorbell, (s) => s.context.door?.status === 'unlocked', { timeout: 5000 })
  viewer.home.hangUp(deviceId)
}

/** The button pressed and the call answered from `viewer`: resolves once the call is connected. */
export async function ringAndAnswer (lan: Lan, viewer: NodeViewer, deviceId = 'front-door'): Promise<ReturnType<NodeViewer['home']['doorbell']>> {
  const doorbell = viewer.home.doorbell(deviceId)
  lan.button.press()
  await waitFor(doorbell, (s) => s.matches('incoming'), { timeout: 10_000 })
  viewer.home.answer(deviceId)
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 30_000 })
  return doorbell
}
