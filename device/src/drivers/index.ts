import type { DeviceConfig } from '@doorbell/core'
import { SimulatedButton, SimulatedLock } from './simulated'
import { RpiGpioButton, RpiGpioLock } from './rpiGpio'
import type { Drivers } from './types'

export * from './types'
export * from './simulated'
export * from './rpiGpio'

/** Picks the drivers that config names. */
export function createDrivers (gpio: DeviceConfig['gpio'], print?: (line: string) => void): Drivers {
  if (gpio.driver === 'rpi-gpio') {
    return { button: new RpiGpioButton(gpio.buttonPin), lock: new RpiGpioLock(gpio.lockPin, gpio.lockActiveHigh) }
  }
  return { button: new SimulatedButton(), lock: new SimulatedLock(print) }
}
