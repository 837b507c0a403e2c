import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { SimulatedButton, SimulatedLock } from '../src/drivers/simulated'
import { RpiGpioButton, RpiGpioLock } from '../src/drivers/rpiGpio'
import type { ButtonDriver, LockDriver } from '../src/drivers/types'
import { GpioError } from '../src/drivers/errors'
import { selectGpio } from '../src/drivers/select'
import { DeviceConfig, parseConfig, type LineGpioConfig } from '@doorbell/core'
import { EmulatedSysfs, FakeGpiod } from './fakeGpiod'

/** The finger's hold: HOLD_MS, and then until the press is `reported` (if given; at most 10 s). */
async function hold (reported?: () => boolean): Promise<void> {
  await sleep(HOLD_MS)
  const deadline = Date.now() + 10_000
  while (reported && !reported() && Date.now() < deadline) await sleep(5)
}

/** Waits for a press to arrive (an event, however loaded the machine), then `settleMs` more for any duplicate. */
async function pressesSettle (count: () => number, want: number, settleMs: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while (count() < want && Date.now() < deadline) await sleep(5)
  await sleep(settleMs)
}

/**
 * One compliance suite for every button/lock driver (see src/drivers/types.ts). Each driver
 * is given to the suite as a factory that also says how to poke its "hardware"; a case that
 * needs something a driver has no notion of (pin levels, contact bounce) is not registered
 * for it: the suite is told what the driver has, so nothing is skipped at run time.
 */
interface DriverRig {
  button: ButtonDriver
  lock: LockDriver
  /**
   * One physical press of the button (a press while the driver is stopped goes nowhere); resolves
   * once released. `reported`: the finger stays down until the driver has reported the press (a
   * tool process polling its input may be late on a loaded machine, and a release it reads in the
   * same breath as the press is no press), at most 10 s; without it, a fixed hold.
   */
  press: (reported?: () => boolean) => void | Promise<void>
  /** A press whose contact bounces: several falling edges within the debounce window. */
  bouncyPress?: (reported?: () => boolean) => void | Promise<void>
  /** How long after a press the driver has surely reported it (a child process and a pipe take longer than memory). */
  settleMs: number
  /** Is the door open, as the relay's contacts would say? */
  doorOpen: () => boolean
  /** The pin's electrical level (true = high), where the driver has a pin. */
  pinLevel?: () => boolean
  /** Whether the relay is wired active-high (opens on high). */
  activeHigh?: boolean
  /** Breaks the hardware so that the next operation of the driver fails. */
  breakNext: () => void
  /** What the error of a broken driver must say. */
  failure: RegExp
  /** Releases whatever the rig holds. */
  close: () => Promise<void>
}

const MS = 1000

interface Hardware { bounce: boolean, pin: boolean }

function driverCompliance (name: string, has: Hardware, factory: () => DriverRig | Promise<DriverRig>, timeout = 10 * MS): void {
  describe(`driver compliance: ${name}`, { timeout }, () => {
    const rig = async (t: { after: (fn: () => Promise<void>) => void }): Promise<DriverRig> => {
      const r = await factory()
      t.after(async () => {
        await r.button.stop().catch(() => {})
        await r.lock.stop().catch(() => {})
        await r.close()
      })
      return r
    }

    test('a press reaches onPress exactly once', async (t) => {
      const r = await rig(t)
      let presses = 0
      await r.button.start(() => { presses++ })
      await r.press(() => presses >= 1)
      await pressesSettle(() => presses, 1, r.settleMs)
      assert.equal(presses, 1)
    })

    if (has.bounce) test('a bouncing press (two edges within 50 ms) is one press; a later press counts again', async (t) => {
      const r = await rig(t)
      assert.ok(r.bouncyPress, 'the rig can bounce')
      let presses = 0
      await r.button.start(() => { presses++ })
      await r.bouncyPress(() => presses >= 1)
      await pressesSettle(() => presses, 1, r.settleMs)
      assert.equal(presses, 1, 'the bounce was debounced to one press')
      await sleep(70)
      await r.press(() => presses >= 2)
      await pressesSettle(() => presses, 2, r.settleMs)
      assert.equal(presses, 2, 'a press after the debounce window counts')
    })

    test('stop() stops presses', async (t) => {
      const r = await rig(t)
      let presses = 0
      await r.button.start(() => { presses++ })
      await r.press(() => presses >= 1)
      await pressesSettle(() => presses, 1, r.settleMs)
      await r.button.stop()
      await sleep(70)
      await r.press()
      await sleep(r.settleMs)
      assert.equal(presses, 1)
    })

    test('lock set(true) and set(false) resolve once the relay is in that position', async (t) => {
      const r = await rig(t)
      await r.lock.set(true)
      assert.equal(r.doorOpen(), true, 'open once set(true) resolved')
      await r.lock.set(false)
      assert.equal(r.doorOpen(), false, 'locked once set(false) resolved')
      await r.lock.set(true)
      assert.equal(r.doorOpen(), true)
    })

    test('stop() leaves the door locked (fail-secure)', async (t) => {
      const r = await rig(t)
      await r.lock.set(true)
      assert.equal(r.doorOpen(), true)
      await r.lock.stop()
      assert.equal(r.doorOpen(), false)
      // Stopping again, or stopping a lock that is already locked, keeps it locked.
      await r.lock.stop()
      assert.equal(r.doorOpen(), false)
    })

    test('a failing driver rejects with a clear error and does not report a position it did not reach', async (t) => {
      const r = await rig(t)
      r.breakNext()
      await assert.rejects(r.lock.set(true), r.failure)
      assert.equal(r.doorOpen(), false, 'the door did not open')
    })

    if (has.pin) test('the relay drives the level its wiring needs (active-low: inverse level)', async (t) => {
      const r = await rig(t)
      assert.ok(r.pinLevel && r.activeHigh !== undefined, 'the rig has a pin')
      const pinLevel = r.pinLevel
      await r.lock.set(true)
      assert.equal(pinLevel(), r.activeHigh, 'open: the active level')
      await r.lock.set(false)
      assert.equal(pinLevel(), !r.activeHigh, 'locked: the inactive level')
      await r.lock.set(true)
      await r.lock.stop()
      assert.equal(pinLevel(), !r.activeHigh, 'stopped: the inactive level')
    })
  })
}

// ---------------------------------------------------------------- (a) the simulated driver

test('the simulated relay says DOOR UNLOCKED a turn after it moves, and never after a DOOR LOCKED that followed', async () => {
  const printed: string[] = []
  const lock = new SimulatedLock((line) => { printed.push(line) })
  await lock.set(true)
  assert.equal(lock.open, true, 'moved before set() resolved')
  assert.deepEqual(printed, [], 'its line waits a turn')
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(printed, ['DOOR UNLOCKED'])
  // Open, then locked in the same turn (a doorbell stopping): the lines in the relay's order, each once.
  await lock.set(true)
  await lock.set(false)
  assert.deepEqual(printed, ['DOOR UNLOCKED', 'DOOR UNLOCKED', 'DOOR LOCKED'])
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(printed, ['DOOR UNLOCKED', 'DOOR UNLOCKED', 'DOOR LOCKED'], 'nothing more came')
  assert.equal(lock.open, false)
})

driverCompliance('simulated', { bounce: false, pin: false }, () => {
  const button = new SimulatedButton()
  const lock = new SimulatedLock(() => {})
  return {
    button,
    lock,
    press: () => {
      try { button.press() } catch (err) {
        // A stopped simulated button has nobody to tell; that is the press going nowhere.
        if (!/not started/.test((err as Error).message)) throw err
      }
    },
    settleMs: 10,
    doorOpen: () => lock.open,
    breakNext: () => { lock.failNext() },
    failure: /simulated relay failure/,
    close: async () => {}
  }
})

// ---------------------------------------------------------------- (b) rpi-gpio, on an in-memory rpi-gpio

type Load = NonNullable<ConstructorParameters<typeof RpiGpioButton>[1]>
type RpiGpio = Awaited<ReturnType<Load>>
type ChangeListener = (channel: number, value: boolean) => void

interface FakePin { direction: string, edge: string, value: boolean }

/**
 * The rpi-gpio module's API (the parts our driver uses), emulated in memory with the same
 * callback and validation behaviour: setup() exports a pin, write() needs an exported output,
 * 'change' fires for inputs set up with an edge, callbacks come on a later tick.
 */
class FakeRpiGpio implements RpiGpio {
  readonly DIR_IN = 'in'
  readonly DIR_OUT = 'out'
  readonly DIR_HIGH = 'high'
  readonly DIR_LOW = 'low'
  readonly EDGE_NONE = 'none'
  readonly EDGE_BOTH = 'both'
  readonly pins = new Map<number, FakePin>()
  readonly listeners = new Set<ChangeListener>()
  /** The next setup() or write() fails with this error (as sysfs would). */
  failNext: Error | null = null
  loads = 0

  setup (channel: number, direction: string, edge: string, cb: (err?: Error | null) => void): void {
    const fail = this.takeFailure()
    process.nextTick(() => {
      if (fail) { cb(fail); return }
      if (![this.DIR_IN, this.DIR_OUT, this.DIR_HIGH, this.DIR_LOW].includes(direction)) { cb(new Error('Cannot set invalid direction')); return }
      if (!['none', 'rising', 'falling', 'both'].includes(edge)) { cb(new Error('Cannot set invalid edge')); return }
      // 'high' and 'low' are outputs with that initial level; an input idles high (pull-up).
      const value = direction === this.DIR_HIGH || direction === this.DIR_IN
      this.pins.set(channel, { direction: direction === this.DIR_IN ? 'in' : 'out', edge, value })
      cb()
    })
  }

  write (channel: number, value: boolean, cb: (err?: Error | null) => void): void {
    const fail = this.takeFailure()
    process.nextTick(() => {
      if (fail) { cb(fail); return }
      const pin = this.pins.get(channel)
      if (!pin || pin.direction !== 'out') { cb(new Error('Pin has not been exported for write')); return }
      pin.value = !!value
      cb()
    })
  }

  on (event: 'change', listener: ChangeListener): void { if (event === 'change') this.listeners.add(listener) }
  removeListener (event: 'change', listener: ChangeListener): void { if (event === 'change') this.listeners.delete(listener) }
  destroy (cb: () => void): void { this.pins.clear(); this.listeners.clear(); process.nextTick(cb) }

  /** The outside world moves an input pin: emits 'change' as rpi-gpio's poller would. */
  drive (channel: number, value: boolean): void {
    const pin = this.pins.get(channel)
    if (!pin || pin.direction !== 'in' || pin.value === value) return
    pin.value = value
    if (pin.edge === 'none') return
    if (pin.edge === 'rising' && !value) return
    if (pin.edge === 'falling' && value) return
    for (const l of [...this.listeners]) l(channel, value)
  }

  level (channel: number): boolean | undefined { return this.pins.get(channel)?.value }

  private takeFailure (): Error | null {
    const f = this.failNext
    this.failNext = null
    return f
  }
}

/** What fs.writeFile to /sys/class/gpio/export says on a kernel 6.6+ Pi OS for a plain BCM number. */
const einval = (): Error => Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL', errno: -22, syscall: 'write' })

const BUTTON_PIN = 11
const LOCK_PIN = 13

function rpiGpioRig (activeHigh: boolean): DriverRig {
  const gpio = new FakeRpiGpio()
  const load: Load = async () => { gpio.loads++; return gpio }
  const button = new RpiGpioButton(BUTTON_PIN, load)
  const lock = new RpiGpioLock(LOCK_PIN, activeHigh, load)
  return {
    button,
    lock,
    // Button to ground: a press pulls the pin low, releasing lets the pull-up take it high.
    press: () => { gpio.drive(BUTTON_PIN, false); gpio.drive(BUTTON_PIN, true) },
    bouncyPress: () => {
      gpio.drive(BUTTON_PIN, false)
      gpio.drive(BUTTON_PIN, true)
      gpio.drive(BUTTON_PIN, false)
      gpio.drive(BUTTON_PIN, true)
    },
    settleMs: 10,
    doorOpen: () => gpio.level(LOCK_PIN) === activeHigh,
    pinLevel: () => {
      const level = gpio.level(LOCK_PIN)
      assert.notEqual(level, undefined, 'the lock pin was set up')
      return level!
    },
    activeHigh,
    breakNext: () => { gpio.failNext = einval() },
    failure: /GPIO pin 13: EINVAL.*kernel 6\.6\+ numbers sysfs GPIOs from 512/,
    close: async () => { await new Promise<void>((resolve) => { gpio.destroy(resolve) }) }
  }
}

driverCompliance('rpi-gpio (active-high relay)', { bounce: true, pin: true }, () => rpiGpioRig(true))
driverCompliance('rpi-gpio (active-low relay)', { bounce: true, pin: true }, () => rpiGpioRig(false))

// ---------------------------------------------------------------- rpi-gpio specifics the shared suite cannot express

describe('rpi-gpio driver details', { timeout: 10 * MS }, () => {
  test('the button pin is set up as an input with both edges; only the falling edge of its own pin is a press', async (t) => {
    const gpio = new FakeRpiGpio()
    const button = new RpiGpioButton(BUTTON_PIN, async () => gpio)
    t.after(() => button.stop())
    let presses = 0
    await button.start(() => { presses++ })
    assert.deepEqual(gpio.pins.get(BUTTON_PIN), { direction: 'in', edge: 'both', value: true })
    for (const l of gpio.listeners) l(BUTTON_PIN + 1, false) // another pin
    for (const l of gpio.listeners) l(BUTTON_PIN, true) // a release without a press
    assert.equal(presses, 0)
    await button.stop()
    assert.equal(gpio.listeners.size, 0, 'stop() removed its listener')
  })

  test('the relay pin starts at the locked level, so it never blips open at start', async () => {
    for (const activeHigh of [true, false]) {
      const gpio = new FakeRpiGpio()
      const directions: string[] = []
      const setup = gpio.setup.bind(gpio)
      gpio.setup = (channel, direction, edge, cb) => { directions.push(direction); setup(channel, direction, edge, cb) }
      const lock = new RpiGpioLock(LOCK_PIN, activeHigh, async () => gpio)
      await lock.set(false)
      assert.deepEqual(directions, [activeHigh ? 'low' : 'high'], `activeHigh=${activeHigh}`)
      assert.equal(gpio.level(LOCK_PIN), !activeHigh)
    }
  })

  test('an EINVAL from setup of the button explains the kernel 6.6 sysfs numbering', async () => {
    const gpio = new FakeRpiGpio()
    gpio.failNext = einval()
    const button = new RpiGpioButton(BUTTON_PIN, async () => gpio)
    await assert.rejects(button.start(() => {}), (err: Error) => {
      assert.match(err.message, /^GPIO pin 11: EINVAL: invalid argument, write/)
      assert.match(err.message, /kernel 6\.6\+ numbers sysfs GPIOs from 512/)
      assert.match(err.message, /docs\/hardware\.md/)
      return true
    })
    assert.equal(gpio.listeners.size, 0, 'a button that failed to start listens to nothing')
  })

  test('its errors are GpioErrors with a cause and a fix: EINVAL is the sysfs numbering (use auto), EACCES the gpio group', async () => {
    const gpio = new FakeRpiGpio()
    gpio.failNext = einval()
    const button = new RpiGpioButton(BUTTON_PIN, async () => gpio)
    await assert.rejects(button.start(() => {}), (err: unknown) => {
      assert.ok(err instanceof GpioError)
      assert.equal(err.reason, 'numbering')
      assert.equal(err.pin, 'header pin 11')
      assert.match(err.message, /Likely cause and fix: .*use gpio\.driver "auto"/)
      return true
    })
    gpio.failNext = Object.assign(new Error('EACCES: permission denied, open \'/sys/class/gpio/export\''), { code: 'EACCES' })
    await assert.rejects(new RpiGpioLock(LOCK_PIN, true, async () => gpio).set(false), (err: unknown) => {
      assert.ok(err instanceof GpioError)
      assert.equal(err.reason, 'permission')
      assert.match(err.message, /not in the "gpio" group/)
      return true
    })
  })

  test('other errors are passed on without the sysfs hint', async () => {
    const gpio = new FakeRpiGpio()
    gpio.failNext = Object.assign(new Error('EACCES: permission denied, open \'/sys/class/gpio/export\''), { code: 'EACCES' })
    const lock = new RpiGpioLock(LOCK_PIN, true, async () => gpio)
    await assert.rejects(lock.set(true), (err: Error) => {
      assert.match(err.message, /^GPIO pin 13: EACCES/)
      assert.doesNotMatch(err.message, /kernel 6\.6/)
      return true
    })
  })

  test('a lock whose setup failed sets up again on the next call, and a failed write rejects', async () => {
    const gpio = new FakeRpiGpio()
    gpio.failNext = einval()
    const lock = new RpiGpioLock(LOCK_PIN, true, async () => gpio)
    await assert.rejects(lock.set(false), /EINVAL/)
    assert.equal(gpio.level(LOCK_PIN), undefined, 'nothing was set up')
    await lock.set(false)
    assert.equal(gpio.level(LOCK_PIN), false)
    gpio.failNext = new Error('EIO: i/o error, write')
    await assert.rejects(lock.set(true), /GPIO pin 13: EIO/)
    assert.equal(gpio.level(LOCK_PIN), false, 'still locked')
  })
})

// ---------------------------------------------------------------- (c) libgpiod, v1 and v2 tools, on fake gpiod tools

const BUTTON_LINE = 17
const LOCK_LINE = 27
/** How long a finger holds the button: past the kernel's debounce (v2) and a few reads of the fake. */
const HOLD_MS = 60

const lineConfig = (gpio: Record<string, unknown>): LineGpioConfig => parseConfig(DeviceConfig, { gpio }, 'test').gpio as LineGpioConfig

async function libgpiodRig (version: 1 | 2, activeHigh: boolean): Promise<DriverRig> {
  const fake = await FakeGpiod.create(version)
  const selection = await selectGpio(lineConfig({ driver: 'libgpiod', lockActiveHigh: activeHigh }), { toolDir: fake.toolDir })
  assert.equal(selection.driver, 'libgpiod')
  const { button, lock } = selection.drivers
  return {
    button,
    lock,
    press: async (reported) => { fake.input(BUTTON_LINE, 0); await hold(reported); fake.input(BUTTON_LINE, 1) },
    // Three edges within a millisecond or two, then held; the release is clean.
    bouncyPress: async (reported) => { fake.input(BUTTON_LINE, 0, 1, 0); await hold(reported); fake.input(BUTTON_LINE, 1) },
    settleMs: 150,
    doorOpen: () => fake.level(LOCK_LINE) === (activeHigh ? 1 : 0),
    pinLevel: () => {
      const level = fake.level(LOCK_LINE)
      assert.notEqual(level, undefined, 'gpioset drove the lock line')
      return level === 1
    },
    activeHigh,
    // Another program holds the relay's line.
    breakNext: () => { fake.occupy(LOCK_LINE) },
    failure: version === 2
      ? /^GpioError: GPIO BCM27 on gpiochip0 \[pinctrl-bcm2711\] \(libgpiod v2\.2\.1\): \S*gpioset: unable to request lines on chip '\/dev\/gpiochip0': Device or resource busy\. Likely cause and fix: another process/
      : /^GpioError: GPIO BCM27 on gpiochip0 \[pinctrl-bcm2711\] \(libgpiod v1\.6\.3\): \S*gpioset: error setting the GPIO line values: Device or resource busy\. Likely cause and fix: another process/,
    close: async () => { await fake.close() }
  }
}

driverCompliance('libgpiod v2 tools (active-high relay)', { bounce: true, pin: true }, () => libgpiodRig(2, true), 60 * MS)
driverCompliance('libgpiod v2 tools (active-low relay)', { bounce: true, pin: true }, () => libgpiodRig(2, false), 60 * MS)
driverCompliance('libgpiod v1 tools (active-high relay)', { bounce: true, pin: true }, () => libgpiodRig(1, true), 60 * MS)
driverCompliance('libgpiod v1 tools (active-low relay)', { bounce: true, pin: true }, () => libgpiodRig(1, false), 60 * MS)

// ---------------------------------------------------------------- (d) sysfs with the base offset, on an emulated /sys/class/gpio (base 512)

async function sysfsRig (activeHigh: boolean): Promise<DriverRig> {
  const sysfs = await EmulatedSysfs.create()
  const selection = await selectGpio(lineConfig({ driver: 'sysfs', lockActiveHigh: activeHigh }), { sysfsRoot: sysfs.root })
  assert.equal(selection.driver, 'sysfs')
  const { button, lock } = selection.drivers
  const buttonGpio = 512 + BUTTON_LINE
  const lockGpio = 512 + LOCK_LINE
  return {
    button,
    lock,
    // A test writes to `value` as the button pulls the pin low, then lets it go.
    press: async (reported) => { sysfs.setValue(buttonGpio, 0); await hold(reported); sysfs.setValue(buttonGpio, 1) },
    bouncyPress: async (reported) => {
      sysfs.setValue(buttonGpio, 0)
      await sleep(2)
      sysfs.setValue(buttonGpio, 1)
      await sleep(2)
      sysfs.setValue(buttonGpio, 0)
      await hold(reported)
      sysfs.setValue(buttonGpio, 1)
    },
    settleMs: 40,
    doorOpen: () => sysfs.pins.get(lockGpio)?.direction === 'out' && sysfs.value(lockGpio) === (activeHigh ? 1 : 0),
    pinLevel: () => {
      assert.equal(sysfs.pins.get(lockGpio)?.direction, 'out', 'the lock pin is an output')
      return sysfs.value(lockGpio) === 1
    },
    activeHigh,
    // The kernel does not export the pin (held by another user): the driver gives up after a second.
    breakNext: () => { sysfs.refuseNextExport = true },
    failure: /^GpioError: GPIO BCM27 \(sysfs gpio539\) on gpiochip512 \[pinctrl-bcm2711\] base 512 \(sysfs\): \S+gpio539 did not appear after export/,
    close: async () => { await sysfs.close() }
  }
}

driverCompliance('sysfs, base 512 (active-high relay)', { bounce: true, pin: true }, () => sysfsRig(true), 30 * MS)
driverCompliance('sysfs, base 512 (active-low relay)', { bounce: true, pin: true }, () => sysfsRig(false), 30 * MS)
