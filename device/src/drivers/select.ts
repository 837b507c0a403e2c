/**
 * Which hardware driver a config gets (`gpio.driver` "auto", "libgpiod" or "sysfs"):
 *   auto: libgpiod when a /dev/gpiochip* is there and the gpiod tools are installed; else sysfs
 *         with the chip's base offset where /sys/class/gpio has the chip; else an error.
 * rpi-gpio is never picked: sysfs does what it does and also where its numbering does not work
 * (a base past 0). The choice, the tool version and the chip go to the start-up log.
 */
import { readdir } from 'node:fs/promises'
import type { LineGpioConfig } from '@doorbell/core'
import { describeChip, pickChip, presentChips, wantedChip } from './chips'
import { GpioError } from './errors'
import { detectGpiod, listGpiodChips, type GpiodOptions } from './gpiod'
import { LibgpiodButton, LibgpiodLock } from './libgpiod'
import { SYSFS_GPIO, SysfsButton, SysfsLock, findSysfsChip } from './sysfs'
import type { ButtonDriver, Drivers, LockDriver } from './types'

/** Where to look: the real system by default; tests point these at an emulated tree and fake tools. */
export interface GpioProbe extends GpiodOptions {
  /** Where the gpiochip character devices are (default /dev). */
  devDir?: string
  /** The sysfs GPIO class folder (default /sys/class/gpio). */
  sysfsRoot?: string
  /** Told of a tool that died and was started again. */
  log?: (line: string) => void
}

/**
 * The probe from the environment: DOORBELL_GPIO_DEV, DOORBELL_GPIO_SYSFS and DOORBELL_GPIOD_TOOLS
 * move /dev, /sys/class/gpio and the tools' folder (tests of the doorbell and of lockNow).
 */
export function probeFromEnv (env: NodeJS.ProcessEnv = process.env): GpioProbe {
  return {
    ...(env.DOORBELL_GPIO_DEV ? { devDir: env.DOORBELL_GPIO_DEV } : {}),
    ...(env.DOORBELL_GPIO_SYSFS ? { sysfsRoot: env.DOORBELL_GPIO_SYSFS } : {}),
    ...(env.DOORBELL_GPIOD_TOOLS ? { toolDir: env.DOORBELL_GPIOD_TOOLS } : {})
  }
}

export interface GpioSelection {
  driver: 'libgpiod' | 'sysfs'
  /** One line for the start-up log: driver, version, chip, pins. */
  summary: string
  drivers: Drivers
}

const pins = (gpio: LineGpioConfig): string => `BCM${gpio.buttonLine} (button) / BCM${gpio.lockLine} (lock)`

async function hasCharDevice (devDir: string): Promise<boolean> {
  try {
    return (await readdir(devDir)).some((n) => /^gpiochip\d+$/.test(n))
  } catch {
    return false
  }
}

async function hasSysfs (root: string): Promise<boolean> {
  try {
    return (await readdir(root)).some((n) => /^gpiochip\d+$/.test(n))
  } catch {
    return false
  }
}

/** Picks and builds the drivers; rejects with a GpioError that says what is missing. */
export async function selectGpio (gpio: LineGpioConfig, probe: GpioProbe = {}): Promise<GpioSelection> {
  const devDir = probe.devDir ?? '/dev'
  const sysfsRoot = probe.sysfsRoot ?? SYSFS_GPIO
  const wanted = gpio.chip
  const lines = `button BCM${gpio.buttonLine} (${gpio.buttonActiveLow ? 'active-low, pull-up' : 'active-high, pull-down'}, debounce ${gpio.debounceMs} ms), lock BCM${gpio.lockLine} (${gpio.lockActiveHigh ? 'active-high' : 'active-low'})`

  const useLibgpiod = async (): Promise<GpioSelection | string> => {
    if (gpio.driver === 'auto' && !await hasCharDevice(devDir)) return `no ${devDir}/gpiochip*`
    const gpiod = await detectGpiod(probe)
    if (gpiod === null) return 'the gpiod tools are not installed (sudo apt install gpiod)'
    const { chips, problem } = await listGpiodChips(gpiod)
    const chip = pickChip(chips, wanted)
    const driver = `libgpiod v${gpiod.release}`
    if (!chip) {
      const detail = `gpiodetect lists ${presentChips(chips)}${problem ? `; it said: ${problem}` : ''}`
      throw new GpioError({ reason: problem && /Permission denied/.test(problem) ? 'permission' : 'no-chip', pin: pins(gpio), chip: wantedChip(wanted), driver, detail })
    }
    const line = (offset: number) => ({ gpiod, chip, offset, ...(probe.log ? { log: probe.log } : {}) })
    return {
      driver: 'libgpiod',
      summary: `gpio: libgpiod v${gpiod.release} tools (v${gpiod.version} command lines) on ${describeChip(chip)}: ${lines}`,
      drivers: {
        button: new LibgpiodButton(line(gpio.buttonLine), gpio.buttonActiveLow, gpio.debounceMs),
        lock: new LibgpiodLock(line(gpio.lockLine), gpio.lockActiveHigh)
      }
    }
  }

  const useSysfs = async (): Promise<GpioSelection> => {
    const chip = await findSysfsChip(sysfsRoot, wanted, pins(gpio))
    const line = (offset: number) => ({ root: sysfsRoot, chip, offset })
    const pull = gpio.buttonActiveLow ? 'pull-up' : 'pull-down'
    return {
      driver: 'sysfs',
      summary: `gpio: sysfs (${sysfsRoot}) on ${describeChip(chip)} base ${chip.base}: ${lines}; sysfs cannot set the button's ${pull}: ` +
        `add gpio=${gpio.buttonLine}=ip,${gpio.buttonActiveLow ? 'pu' : 'pd'} to config.txt or wire a resistor`,
      drivers: {
        button: new SysfsButton(line(gpio.buttonLine), gpio.buttonActiveLow, gpio.debounceMs),
        lock: new SysfsLock(line(gpio.lockLine), gpio.lockActiveHigh)
      }
    }
  }

  if (gpio.driver === 'sysfs') return await useSysfs()
  const libgpiod = await useLibgpiod()
  if (typeof libgpiod !== 'string') return libgpiod
  if (gpio.driver === 'libgpiod') {
    throw new GpioError({ reason: 'unavailable', pin: pins(gpio), chip: wantedChip(wanted), driver: 'libgpiod', detail: libgpiod })
  }
  if (await hasSysfs(sysfsRoot)) {
    const sysfs = await useSysfs()
    return { ...sysfs, summary: `${sysfs.summary} (auto: ${libgpiod})` }
  }
  throw new GpioError({ reason: 'unavailable', pin: pins(gpio), chip: wantedChip(wanted), driver: 'auto', detail: `${libgpiod}, and no ${sysfsRoot}/gpiochip*` })
}

/**
 * Drivers that choose their hardware the first time they are used (button start, lock set), so
 * createDrivers stays synchronous. A failed choice is tried again at the next use.
 */
export function lazyDrivers (choose: () => Promise<GpioSelection>, log: (line: string) => void): Drivers {
  let selection: Promise<GpioSelection> | null = null
  const selected = async (): Promise<GpioSelection> => {
    selection ??= choose().then((s) => { log(s.summary); return s }, (err: unknown) => { selection = null; throw err })
    return await selection
  }
  const button: ButtonDriver = {
    start: async (onPress) => { await (await selected()).drivers.button.start(onPress) },
    stop: async () => { if (selection) await selection.then(async (s) => { await s.drivers.button.stop() }, () => {}) }
  }
  const lock: LockDriver = {
    set: async (open) => { await (await selected()).drivers.lock.set(open) },
    // Stopping always drives the locked level, even if this run never touched the relay.
    stop: async () => { await (await selected()).drivers.lock.stop() }
  }
  return { button, lock }
}
