import type { DeviceConfig } from '@doorbell/core'
import { SimulatedButton, SimulatedLock } from './simulated'
import { RpiGpioButton, RpiGpioLock } from './rpiGpio'
import { lazyDrivers, probeFromEnv, selectGpio, type GpioProbe } from './select'
import type { Drivers } from './types'

export * from './types'
export * from './errors'
export * from './chips'
export * from './simulated'
export * from './rpiGpio'
export * from './gpiod'
export * from './libgpiod'
export * from './sysfs'
export * from './select'

export interface CreateDriversOptions {
  /** Where the start-up line that names the chosen driver and chip goes (default: `print`, else the console). */
  log?: (line: string) => void
  /** Where to look for GPIO (default: the real system, moved by DOORBELL_GPIO_* variables: see select.ts). */
  probe?: GpioProbe
}

/**
 * Picks the drivers that config names. "auto", "libgpiod" and "sysfs" choose their hardware the
 * first time they are used (the lock's first set, the button's start), and log what they chose.
 */
export function createDrivers (gpio: DeviceConfig['gpio'], print?: (line: string) => void, options: CreateDriversOptions = {}): Drivers {
  if (gpio.driver === 'rpi-gpio') {
    return { button: new RpiGpioButton(gpio.buttonPin), lock: new RpiGpioLock(gpio.lockPin, gpio.lockActiveHigh) }
  }
  if (gpio.driver === 'simulated') {
    return { button: new SimulatedButton(), lock: new SimulatedLock(print, gpio.relayFile) }
  }
  const log = options.log ?? print ?? ((line: string) => { console.log(line) })
  const probe = { log, ...(options.probe ?? probeFromEnv()) }
  return lazyDrivers(async () => await selectGpio(gpio, probe), log)
}
