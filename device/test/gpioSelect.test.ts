import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeviceConfig, parseConfig, type LineGpioConfig } from '@doorbell/core'
import { GpioError, createDrivers, selectGpio } from '../src/drivers'
import { EmulatedSysfs, FakeGpiod, type FakeChip } from './fakeGpiod'

/**
 * gpio.driver "auto" and the drivers' errors: which driver and chip is chosen from what the
 * system has (a /dev/gpiochip*, the gpiod tools and their version, a sysfs tree), and what a
 * person is told when it goes wrong (the pin, the chip, the likely cause, what to do).
 */

const MS = 1000
type Later = (fn: () => Promise<unknown> | unknown) => void
const gpio = (fields: Record<string, unknown> = {}): LineGpioConfig => parseConfig(DeviceConfig, { gpio: { driver: 'auto', ...fields } }, 'test').gpio as LineGpioConfig

/** A /dev with (or without) a gpiochip0 node. */
async function devDir (later: Later, chip: boolean): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dev-'))
  later(async () => { await rm(dir, { recursive: true, force: true }) })
  if (chip) await writeFile(join(dir, 'gpiochip0'), '')
  return dir
}

async function fakeTools (later: Later, version: 1 | 2, chips?: FakeChip[]): Promise<FakeGpiod> {
  const fake = await FakeGpiod.create(version, chips)
  later(async () => { await fake.close() })
  return fake
}

async function emulatedSysfs (later: Later, chips?: Parameters<typeof EmulatedSysfs.create>[0]): Promise<EmulatedSysfs> {
  const sysfs = await EmulatedSysfs.create(chips)
  later(async () => { await sysfs.close() })
  return sysfs
}

/** Cleanups that run last-registered first (the drivers stop before their fake tools go). */
function cleanups (t: { after: (fn: () => Promise<void>) => void }): (fn: () => Promise<unknown> | unknown) => void {
  const stack: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => { for (const fn of stack.reverse()) await fn() })
  return (fn) => { stack.push(fn) }
}

const gpioError = (check: (err: GpioError) => void) => (err: unknown): boolean => {
  assert.ok(err instanceof GpioError, `a GpioError, got ${String(err)}`)
  assert.equal(err.name, 'GpioError')
  check(err)
  return true
}

describe('gpio.driver auto', { timeout: 60 * MS }, () => {
  test('a /dev/gpiochip* and the v2 tools (Trixie): libgpiod with v2 command lines, the chip found by label', async (t) => {
    const later = cleanups(t)
    const fake = await fakeTools(later, 2)
    const s = await selectGpio(gpio(), { devDir: await devDir(later, true), toolDir: fake.toolDir, sysfsRoot: '/nonexistent' })
    assert.equal(s.driver, 'libgpiod')
    assert.equal(s.summary, 'gpio: libgpiod v2.2.1 tools (v2 command lines) on gpiochip0 [pinctrl-bcm2711]: button BCM17 (active-low, pull-up, debounce 20 ms), lock BCM27 (active-high)')
    await s.drivers.button.start(() => {})
    later(() => s.drivers.button.stop())
    const mon = fake.log().find((l) => l.tool === 'gpiomon')
    assert.deepEqual(mon?.args, ['--banner', '-c', 'gpiochip0', '-C', 'doorbell-button', '-e', 'falling', '-b', 'pull-up', '--debounce-period', '20ms', '-F', '%o %E', '17'])
    assert.deepEqual(fake.holder(17), { pid: fake.holder(17)!.pid, consumer: 'doorbell-button', direction: 'input', bias: 'pull-up', activeLow: false, debounceUs: 20_000 })
    await s.drivers.lock.set(false)
    later(() => s.drivers.lock.stop())
    assert.deepEqual(fake.log().find((l) => l.tool === 'gpioset')?.args, ['--banner', '-c', 'gpiochip0', '-C', 'doorbell-lock', '27=0'])
    assert.equal(fake.holder(27)?.consumer, 'doorbell-lock', 'gpioset keeps the line while the doorbell runs')
  })

  test('the v1 tools (Bookworm): gpioset held with -m signal, gpiomon line-buffered with a pull-up; a button active-high gets a pull-down', async (t) => {
    const later = cleanups(t)
    const fake = await fakeTools(later, 1)
    const s = await selectGpio(gpio({ buttonActiveLow: false, lockActiveHigh: false }), { devDir: await devDir(later, true), toolDir: fake.toolDir })
    assert.match(s.summary, /^gpio: libgpiod v1\.6\.3 tools \(v1 command lines\) on gpiochip0 \[pinctrl-bcm2711\]: button BCM17 \(active-high, pull-down, debounce 20 ms\), lock BCM27 \(active-low\)$/)
    await s.drivers.button.start(() => {})
    later(() => s.drivers.button.stop())
    assert.deepEqual(fake.log().find((l) => l.tool === 'gpiomon')?.args, ['-b', '-B', 'pull-down', '-F', '%o %e', 'gpiochip0', '17'])
    await s.drivers.lock.set(false)
    later(() => s.drivers.lock.stop())
    assert.deepEqual(fake.log().find((l) => l.tool === 'gpioset')?.args, ['-m', 'signal', 'gpiochip0', '27=1'])
    assert.equal(fake.level(27), 1, 'active-low relay: locked is high')
  })

  test('a Pi 5 on an older kernel: the header is gpiochip4 [pinctrl-rp1], found by its label', async (t) => {
    const later = cleanups(t)
    const pi5: FakeChip[] = [
      { name: 'gpiochip0', label: 'gpio-brcmstb@107d508500', lines: 32 },
      { name: 'gpiochip1', label: 'gpio-brcmstb@107d508520', lines: 4 },
      { name: 'gpiochip2', label: 'gpio-brcmstb@107d517c00', lines: 17 },
      { name: 'gpiochip3', label: 'gpio-brcmstb@107d517c20', lines: 6 },
      { name: 'gpiochip4', label: 'pinctrl-rp1', lines: 54 }
    ]
    const fake = await fakeTools(later, 2, pi5)
    const s = await selectGpio(gpio(), { devDir: await devDir(later, true), toolDir: fake.toolDir })
    assert.match(s.summary, /on gpiochip4 \[pinctrl-rp1\]/)
    await s.drivers.lock.set(true)
    later(() => s.drivers.lock.stop())
    assert.equal(fake.level(27, 'gpiochip4'), 1)
  })

  test('no /dev/gpiochip*, a sysfs tree with a 512 base: sysfs, and the log says why and what sysfs cannot do', async (t) => {
    const later = cleanups(t)
    const sysfs = await emulatedSysfs(later)
    const dev = await devDir(later, false)
    const s = await selectGpio(gpio(), { devDir: dev, sysfsRoot: sysfs.root })
    assert.equal(s.driver, 'sysfs')
    assert.equal(s.summary, `gpio: sysfs (${sysfs.root}) on gpiochip512 [pinctrl-bcm2711] base 512: button BCM17 (active-low, pull-up, debounce 20 ms), lock BCM27 (active-high); ` +
      `sysfs cannot set the button's pull-up: add gpio=17=ip,pu to config.txt or wire a resistor (auto: no ${dev}/gpiochip*)`)
    await s.drivers.lock.set(true)
    assert.deepEqual(sysfs.exports, [539], 'BCM27 is exported as 512 + 27')
    assert.equal(sysfs.value(539), 1)
    await s.drivers.lock.stop()
    assert.equal(sysfs.value(539), 0)
  })

  test('a gpiochip but no gpiod tools: sysfs where it exists, and the log says to install gpiod', async (t) => {
    const later = cleanups(t)
    const sysfs = await emulatedSysfs(later, [{ base: 571, label: 'pinctrl-rp1', ngpio: 54 }])
    const empty = await devDir(later, false)
    const s = await selectGpio(gpio(), { devDir: await devDir(later, true), toolDir: empty, sysfsRoot: sysfs.root })
    assert.equal(s.driver, 'sysfs')
    assert.match(s.summary, /on gpiochip571 \[pinctrl-rp1\] base 571: .*\(auto: the gpiod tools are not installed \(sudo apt install gpiod\)\)$/)
    await s.drivers.lock.set(false)
    assert.deepEqual(sysfs.exports, [598])
  })

  test('nothing at all: a GpioError that says to install gpiod on a Pi, or use the simulated driver', async (t) => {
    const later = cleanups(t)
    const empty = await devDir(later, false)
    await assert.rejects(selectGpio(gpio(), { devDir: empty, toolDir: empty, sysfsRoot: join(empty, 'class', 'gpio') }), gpioError((err) => {
      assert.equal(err.reason, 'unavailable')
      assert.match(err.message, /^GPIO BCM17 \(button\) \/ BCM27 \(lock\) on the Pi's header chip \(pinctrl-rp1, pinctrl-bcm2711, pinctrl-bcm2835\) \(auto\): no \S+\/gpiochip\*, and no \S+\/gpiochip\*\. /)
      assert.match(err.message, /sudo apt install gpiod.*gpio\.driver "simulated".*docs\/hardware\.md/)
    }))
  })

  test('createDrivers(auto) chooses at first use, logs the choice once, and a failed choice is tried again', async (t) => {
    const later = cleanups(t)
    const fake = await fakeTools(later, 2)
    const lines: string[] = []
    const dev = await devDir(later, false)
    const drivers = createDrivers(gpio(), () => {}, { log: (l) => lines.push(l), probe: { devDir: dev, toolDir: fake.toolDir, sysfsRoot: join(dev, 'none') } })
    assert.deepEqual(lines, [], 'nothing chosen before use')
    await assert.rejects(drivers.lock.set(false), gpioError((err) => { assert.equal(err.reason, 'unavailable') }))
    await writeFile(join(dev, 'gpiochip0'), '') // the chip appears (a module loaded late)
    await drivers.lock.set(false)
    await drivers.button.start(() => {})
    await drivers.button.stop()
    await drivers.lock.stop()
    assert.deepEqual(lines, ['gpio: libgpiod v2.2.1 tools (v2 command lines) on gpiochip0 [pinctrl-bcm2711]: button BCM17 (active-low, pull-up, debounce 20 ms), lock BCM27 (active-high)'])
  })
})

describe('GPIO errors name the pin, the chip, the likely cause and what to do', { timeout: 60 * MS }, () => {
  for (const version of [1, 2] as const) {
    test(`libgpiod v${version}: not in the gpio group (EACCES)`, async (t) => {
    const later = cleanups(t)
      const fake = await fakeTools(later, version)
      fake.deny()
      await assert.rejects(selectGpio(gpio({ driver: 'libgpiod' }), { toolDir: fake.toolDir }), gpioError((err) => {
        assert.equal(err.reason, 'permission')
        assert.match(err.message, version === 2
          ? /gpiodetect lists only gpiochip1 \[raspberrypi-exp-gpio\]; it said: \S*gpiodetect: unable to open chip '\/dev\/gpiochip0': Permission denied/
          : /gpiodetect lists no GPIO chips; it said: \S*gpiodetect: unable to access GPIO chips: Permission denied/)
        assert.match(err.message, /not in the "gpio" group: sudo usermod -aG gpio doorbell-device/)
      }))
    })

    test(`libgpiod v${version}: the button's line is busy (EBUSY), the relay's line does not exist`, async (t) => {
    const later = cleanups(t)
      const fake = await fakeTools(later, version)
      fake.occupy(17)
      const s = await selectGpio(gpio({ driver: 'libgpiod', lockLine: 60 }), { toolDir: fake.toolDir })
      await assert.rejects(s.drivers.button.start(() => {}), gpioError((err) => {
        assert.equal(err.reason, 'busy')
        assert.equal(err.pin, 'BCM17')
        assert.equal(err.chip, 'gpiochip0 [pinctrl-bcm2711]')
        assert.match(err.detail, version === 2 ? /gpiomon: unable to request lines on chip \/dev\/gpiochip0: Device or resource busy$/ : /gpiomon: error waiting for events: Device or resource busy$/)
        assert.match(err.message, /another process or a kernel driver holds this line/)
      }))
      await assert.rejects(s.drivers.lock.set(false), gpioError((err) => {
        assert.equal(err.reason, 'no-line')
        assert.equal(err.pin, 'BCM60')
        assert.match(err.detail, version === 2 ? /gpioset: offset 60 is out of range on chip 'gpiochip0'$/ : /gpioset: error setting the GPIO line values: Invalid argument$/)
        assert.match(err.message, /BCM numbers \(BCM17 is header pin 11\), not header pins/)
      }))
    })
  }

  test('a chip label that is not there: the chips that are', async (t) => {
    const later = cleanups(t)
    const fake = await fakeTools(later, 2)
    await assert.rejects(selectGpio(gpio({ driver: 'libgpiod', chip: 'pinctrl-rp1' }), { toolDir: fake.toolDir }), gpioError((err) => {
      assert.equal(err.reason, 'no-chip')
      assert.equal(err.chip, 'a chip labelled "pinctrl-rp1"')
      assert.match(err.detail, /^gpiodetect lists only gpiochip0 \[pinctrl-bcm2711\], gpiochip1 \[raspberrypi-exp-gpio\]$/)
    }))
    const sysfs = await emulatedSysfs(later)
    await assert.rejects(selectGpio(gpio({ driver: 'sysfs', chip: 'pinctrl-rp1' }), { sysfsRoot: sysfs.root }), gpioError((err) => {
      assert.equal(err.reason, 'no-chip')
      assert.match(err.detail, /has only gpiochip512 \[pinctrl-bcm2711\], gpiochip570 \[raspberrypi-exp-gpio\]$/)
    }))
  })

  test('sysfs: a line past the chip\'s last one', async (t) => {
    const later = cleanups(t)
    const sysfs = await emulatedSysfs(later)
    const s = await selectGpio(gpio({ driver: 'sysfs', lockLine: 58 }), { sysfsRoot: sysfs.root })
    await assert.rejects(s.drivers.lock.set(false), gpioError((err) => {
      assert.equal(err.reason, 'no-line')
      assert.equal(err.pin, 'BCM58 (sysfs gpio570)')
      assert.match(err.message, /the chip has 58 lines \(0-57\)/)
    }))
    assert.deepEqual(sysfs.exports, [], 'nothing was exported')
  })

  test('libgpiod with the tools missing says to install them', async (t) => {
    const later = cleanups(t)
    const empty = await devDir(later, false)
    await assert.rejects(selectGpio(gpio({ driver: 'libgpiod' }), { toolDir: empty }), gpioError((err) => {
      assert.equal(err.reason, 'unavailable')
      assert.match(err.detail, /the gpiod tools are not installed \(sudo apt install gpiod\)/)
    }))
  })
})

describe('the libgpiod drivers supervise their tools', { timeout: 60 * MS }, () => {
  test('a gpioset that dies by itself is started again at the level it held; a gpiomon too', async (t) => {
    const later = cleanups(t)
    const fake = await fakeTools(later, 2)
    const lines: string[] = []
    const s = await selectGpio(gpio({ driver: 'libgpiod' }), { toolDir: fake.toolDir, log: (l) => lines.push(l) })
    await s.drivers.lock.set(true)
    later(() => s.drivers.lock.stop())
    let presses = 0
    await s.drivers.button.start(() => { presses++ })
    later(() => s.drivers.button.stop())
    const setPid = fake.holder(27)!.pid
    const monPid = fake.holder(17)!.pid
    process.kill(setPid, 'SIGKILL')
    process.kill(monPid, 'SIGKILL')
    const deadline = Date.now() + 10_000
    const replaced = (line: number, old: number): boolean => { const pid = fake.holder(line)?.pid; return pid !== undefined && pid !== old }
    while (Date.now() < deadline && !(replaced(27, setPid) && replaced(17, monPid))) await sleep(50)
    assert.notEqual(fake.holder(27)?.pid, setPid, 'a new gpioset holds the relay line')
    assert.equal(fake.level(27), 1, 'still open: the level it held')
    assert.notEqual(fake.holder(17)?.pid, monPid, 'a new gpiomon watches the button')
    assert.ok(lines.some((l) => /gpioset for BCM27 exited/.test(l)) && lines.some((l) => /gpiomon for BCM17 exited/.test(l)), lines.join('\n'))
    await sleep(100)
    fake.input(17, 0)
    await sleep(60)
    fake.input(17, 1)
    await sleep(150)
    assert.equal(presses, 1, 'the button works again')
  })
})
