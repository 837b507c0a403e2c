/**
 * The button and the relay through the legacy sysfs interface (/sys/class/gpio), for systems
 * where it is all there is. Unlike rpi-gpio it reads the chip's base from
 * /sys/class/gpio/gpiochip<N>/{base,label} (512 on kernels 6.6+, 571 on some Pi 5s, 0 before),
 * so BCM17 is exported as base + 17.
 *
 * sysfs cannot set a pull-up: a button to ground needs one from elsewhere (`gpio=17=ip,pu` in
 * config.txt, or a resistor); the start-up log says so. An exported pin keeps its value after the
 * process dies, as the kernel keeps it: the relay stays where it was until something drives it.
 */
import { readdir, readFile, writeFile, open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describeChip, pickChip, pressDebouncer, presentChips, wantedChip, type ChipInfo } from './chips'
import { GpioError, gpioFailureOf, type GpioFailure } from './errors'
import type { ButtonDriver, LockDriver } from './types'

export const SYSFS_GPIO = '/sys/class/gpio'

export interface SysfsChip extends ChipInfo {
  /** The global number of the chip's line 0. */
  base: number
}

/** The chips /sys/class/gpio lists (gpiochip<base>/{base,label,ngpio}). */
export async function listSysfsChips (root = SYSFS_GPIO): Promise<SysfsChip[]> {
  const names = (await readdir(root)).filter((n) => /^gpiochip\d+$/.test(n))
  const chips: SysfsChip[] = []
  for (const name of names.sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)))) {
    try {
      const [base, label, ngpio] = await Promise.all(['base', 'label', 'ngpio'].map(async (f) => (await readFile(join(root, name, f), 'utf8')).trim()))
      chips.push({ name, label: label!, base: Number(base), lines: Number(ngpio) })
    } catch {}
  }
  return chips
}

/** The chip to use, by label (see chips.ts), or a GpioError that lists what is there. */
export async function findSysfsChip (root: string, wanted: string | undefined, pins: string): Promise<SysfsChip> {
  let chips: SysfsChip[]
  try {
    chips = await listSysfsChips(root)
  } catch (err) {
    throw new GpioError({ reason: 'unavailable', pin: pins, chip: wantedChip(wanted), driver: 'sysfs', detail: `cannot read ${root}: ${(err as Error).message}` }, { cause: err })
  }
  const chip = pickChip(chips, wanted)
  if (!chip) throw new GpioError({ reason: 'no-chip', pin: pins, chip: wantedChip(wanted), driver: 'sysfs', detail: `${root} has ${presentChips(chips)}` })
  return chip
}

export interface SysfsLine {
  root: string
  chip: SysfsChip
  offset: number
}

const fail = (l: SysfsLine, detail: string, err?: unknown, reason?: GpioFailure): GpioError => new GpioError({
  reason: reason ?? gpioFailureOf(detail),
  pin: `BCM${l.offset} (sysfs gpio${l.chip.base + l.offset})`,
  chip: `${describeChip(l.chip)} base ${l.chip.base}`,
  driver: 'sysfs',
  detail
}, { cause: err })

const errorText = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException
  return e.code !== undefined ? `${e.code}: ${e.message}` : String(err)
}

/** Exports the line if it is not yet, and waits until its files can be written (udev sets their group just after). */
async function exportLine (l: SysfsLine): Promise<string> {
  if (l.offset >= l.chip.lines) throw fail(l, `the chip has ${l.chip.lines} lines (0-${l.chip.lines - 1})`, undefined, 'no-line')
  const number = l.chip.base + l.offset
  const dir = join(l.root, `gpio${number}`)
  const exported = async (): Promise<boolean> => await readdir(dir).then(() => true, () => false)
  if (!await exported()) {
    try {
      await writeFile(join(l.root, 'export'), `${number}\n`)
    } catch (err) {
      // EBUSY: a kernel driver or a libgpiod user holds it; it may also have been exported meanwhile.
      if (!await exported()) throw fail(l, `export ${number}: ${errorText(err)}`, err)
    }
  }
  for (let i = 0; !await exported(); i++) {
    if (i >= 100) throw fail(l, `${dir} did not appear after export`)
    await sleep(10)
  }
  return dir
}

/** Writes a sysfs attribute, retrying EACCES for a second: udev gives the gpio group access just after export. */
async function writeAttr (l: SysfsLine, path: string, value: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await writeFile(path, value)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES' && i < 20) { await sleep(50); continue }
      throw fail(l, `write ${JSON.stringify(value.trim())} to ${path}: ${errorText(err)}`, err)
    }
  }
}

/**
 * Sets a pin's direction ("in", or "low"/"high": an output already at that level) and reads it
 * back until the kernel reports it ("in" / "out"): at once on a real kernel; it also orders the
 * write before the next one wherever the attribute is applied a moment later.
 */
async function setDirection (l: SysfsLine, dir: string, direction: 'in' | 'low' | 'high'): Promise<void> {
  const path = join(dir, 'direction')
  await writeAttr(l, path, `${direction}\n`)
  const want = direction === 'in' ? 'in' : 'out'
  for (let i = 0; ; i++) {
    const now = await readFile(path, 'utf8').then((t) => t.trim(), () => '')
    if (now === want) return
    if (i >= 100) throw fail(l, `${path} reads "${now}" after writing "${direction}"`)
    await sleep(10)
  }
}

export class SysfsLock implements LockDriver {
  private dir: string | null = null
  private queue: Promise<unknown> = Promise.resolve()

  constructor (private readonly line: SysfsLine, private readonly activeHigh = true) {}

  private serial<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn)
    this.queue = next.catch(() => {})
    return next
  }

  set (open: boolean): Promise<void> {
    return this.serial(async () => {
      const level = open === this.activeHigh ? '1' : '0'
      if (this.dir === null) {
        const dir = await exportLine(this.line)
        // "low"/"high" make it an output already at that level: no blip through the other one.
        // The first level is always "locked"; an open comes as a second write.
        await setDirection(this.line, dir, this.activeHigh ? 'low' : 'high')
        this.dir = dir
      }
      await writeAttr(this.line, join(this.dir, 'value'), `${level}\n`)
    })
  }

  /** Drives the locked level and leaves the pin exported: it keeps that level after we are gone. */
  async stop (): Promise<void> {
    await this.set(false)
  }
}

/** sysfs has no events Node can wait on (poll(POLLPRI) needs a native addon): the value is read every few ms. */
const POLL_MS = 5

export class SysfsButton implements ButtonDriver {
  private timer: NodeJS.Timeout | null = null
  private file: FileHandle | null = null

  constructor (private readonly line: SysfsLine, private readonly activeLow = true, private readonly debounceMs = 20) {}

  async start (onPress: () => void): Promise<void> {
    const dir = await exportLine(this.line)
    await setDirection(this.line, dir, 'in')
    const valuePath = join(dir, 'value')
    let file: FileHandle
    try {
      file = await open(valuePath, 'r')
    } catch (err) {
      throw fail(this.line, `open ${valuePath}: ${errorText(err)}`, err)
    }
    this.file = file
    const buf = Buffer.alloc(8)
    const read = async (): Promise<string> => {
      const { bytesRead } = await file.read(buf, 0, buf.length, 0)
      return buf.toString('latin1', 0, bytesRead).trim()
    }
    const pressed = this.activeLow ? '0' : '1'
    const debounce = pressDebouncer(this.debounceMs)
    let last = await read()
    const tick = async (): Promise<void> => {
      if (this.file !== file) return
      try {
        const now = await read()
        if (now !== last && (now === '0' || now === '1')) {
          last = now
          if (debounce(now === pressed) && this.file === file) onPress()
        }
      } catch {}
      if (this.file === file) this.timer = setTimeout(() => { void tick() }, POLL_MS)
    }
    this.timer = setTimeout(() => { void tick() }, POLL_MS)
  }

  async stop (): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const file = this.file
    this.file = null
    await file?.close()
  }
}
