import { GpioError, gpioFailureOf } from './errors'
import type { ButtonDriver, LockDriver } from './types'

/**
 * rpi-gpio drives pins through sysfs with header-pin numbers. On Raspberry Pi OS kernels
 * 6.6 and later sysfs numbering starts at 512 and exporting fails with EINVAL; the error
 * below says so instead of failing silently. (See docs/hardware.md.)
 */
interface RpiGpio {
  DIR_IN: string
  DIR_HIGH: string
  DIR_LOW: string
  EDGE_BOTH: string
  setup: (channel: number, direction: string, edge: string, cb: (err?: Error | null) => void) => void
  write: (channel: number, value: boolean, cb: (err?: Error | null) => void) => void
  on: (event: 'change', listener: (channel: number, value: boolean) => void) => void
  removeListener: (event: 'change', listener: (channel: number, value: boolean) => void) => void
  destroy: (cb: () => void) => void
}

async function loadRpiGpio (): Promise<RpiGpio> {
  try {
    const mod = await import('rpi-gpio' as string) as { default: RpiGpio }
    return mod.default
  } catch (err) {
    throw new Error(`rpi-gpio is not installed or cannot load (${(err as Error).message}); use gpio.driver "simulated" off a Pi`)
  }
}

const explain = (err: Error | null | undefined, pin: number): Error | null => {
  if (err == null) return null
  const numbering = /EINVAL/.test(err.message)
  const headline = `GPIO pin ${pin}: ${err.message}` + (numbering
    ? ' (kernel 6.6+ numbers sysfs GPIOs from 512: rpi-gpio cannot export this pin; see docs/hardware.md)'
    : '') + ' (header pin numbering on the Pi\'s header chip, rpi-gpio over sysfs)'
  return new GpioError({
    reason: numbering ? 'numbering' : gpioFailureOf(err.message),
    pin: `header pin ${pin}`,
    chip: 'the Pi\'s header chip',
    driver: 'rpi-gpio',
    detail: err.message
  }, { cause: err, headline })
}

const DEBOUNCE_MS = 50

export class RpiGpioButton implements ButtonDriver {
  private listener: ((channel: number, value: boolean) => void) | null = null
  private gpio: RpiGpio | null = null

  constructor (private readonly pin: number, private readonly load = loadRpiGpio) {}

  async start (onPress: () => void): Promise<void> {
    const gpio = this.gpio = await this.load()
    await new Promise<void>((resolve, reject) => {
      gpio.setup(this.pin, gpio.DIR_IN, gpio.EDGE_BOTH, (err) => { const e = explain(err, this.pin); e ? reject(e) : resolve() })
    })
    let last = 0
    // A press pulls the pin low (button to ground, internal or external pull-up).
    this.listener = (channel, value) => {
      if (channel !== this.pin || value) return
      const now = Date.now()
      if (now - last < DEBOUNCE_MS) return
      last = now
      onPress()
    }
    gpio.on('change', this.listener)
  }

  async stop (): Promise<void> {
    if (this.gpio && this.listener) this.gpio.removeListener('change', this.listener)
    this.listener = null
  }
}

export class RpiGpioLock implements LockDriver {
  private gpio: RpiGpio | null = null

  constructor (private readonly pin: number, private readonly activeHigh: boolean, private readonly load = loadRpiGpio) {}

  private async ready (): Promise<RpiGpio> {
    if (this.gpio) return this.gpio
    const gpio = await this.load()
    // Set up with the output already at "locked", so the relay never blips open at start.
    const initial = this.activeHigh ? gpio.DIR_LOW : gpio.DIR_HIGH
    await new Promise<void>((resolve, reject) => {
      gpio.setup(this.pin, initial, 'none', (err) => { const e = explain(err, this.pin); e ? reject(e) : resolve() })
    })
    this.gpio = gpio
    return gpio
  }

  async set (open: boolean): Promise<void> {
    const gpio = await this.ready()
    await new Promise<void>((resolve, reject) => {
      gpio.write(this.pin, open === this.activeHigh, (err) => { const e = explain(err, this.pin); e ? reject(e) : resolve() })
    })
  }

  async stop (): Promise<void> {
    if (this.gpio) await this.set(false)
  }
}
