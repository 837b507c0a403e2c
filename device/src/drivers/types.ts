/**
 * The doorbell's hardware, as the rest of the device sees it. Every implementation
 * (simulated, rpi-gpio) passes the same compliance suite in test/drivers.test.ts.
 */
export interface ButtonDriver {
  /** Calls `onPress` once per press (debounced). */
  start: (onPress: () => void) => Promise<void>
  stop: () => Promise<void>
}

export interface LockDriver {
  /** Drives the relay; resolves once the output is set, rejects if the driver failed. */
  set: (open: boolean) => Promise<void>
  /** Leaves the door locked (fail-secure) and releases the pin. */
  stop: () => Promise<void>
}

export interface Drivers {
  button: ButtonDriver
  lock: LockDriver
}
