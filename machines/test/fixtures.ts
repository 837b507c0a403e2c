import type { DeviceState, LockState, RingEvent } from '@doorbell/core'

export const ringEvent = (over: Partial<RingEvent> = {}): RingEvent => ({
  type: 'ring',
  deviceId: 'front-door',
  deviceName: 'Front door',
  ringId: 'r1',
  at: 1000,
  count: 1,
  ...over
})

export const lockState = (over: Partial<LockState> = {}): LockState => ({
  status: 'locked',
  relockAt: null,
  version: 10,
  boot: 'b1',
  error: null,
  ...over
})

type StateOver = Omit<Partial<DeviceState>, 'call'> & { call?: Partial<DeviceState['call']> }

export const deviceState = (over: StateOver = {}): DeviceState => {
  const { call, ...rest } = over
  return {
    deviceId: 'front-door',
    deviceName: 'Front door',
    participants: [],
    lock: lockState(),
    lastRing: null,
    at: 1000,
    ...rest,
    call: { status: 'idle', ringId: null, since: 1000, ...call }
  }
}
