/**
 * The button and the relay on the GPIO character device, through the gpiod tools (gpiod.ts):
 * gpiomon watches the button's line with a pull-up (or pull-down) bias and the kernel's debounce
 * (v2), gpioset drives and holds the relay's line. Line numbers are BCM numbers (offsets on the
 * Pi's header chip, found by its label).
 */
import { describeChip, pressDebouncer, type ChipInfo } from './chips'
import { GpioError, gpioFailureOf, type GpioFailure } from './errors'
import { holdLine, type Gpiod, type HeldLine } from './gpiod'
import type { ButtonDriver, LockDriver } from './types'

export interface LibgpiodLine {
  gpiod: Gpiod
  chip: ChipInfo
  offset: number
  /** Told of a tool that died by itself and was started again. */
  log?: (line: string) => void
}

const failure = (l: LibgpiodLine) => (detail: string, reason?: GpioFailure): GpioError => new GpioError({
  reason: reason ?? gpioFailureOf(detail),
  pin: `BCM${l.offset}`,
  chip: describeChip(l.chip),
  driver: `libgpiod v${l.gpiod.release}`,
  detail
})

/** How long to wait before starting a tool again that died on its own. */
const RESTART_MS = 1000

export class LibgpiodButton implements ButtonDriver {
  private held: HeldLine | null = null
  private running = false
  private restart: NodeJS.Timeout | null = null

  constructor (private readonly line: LibgpiodLine, private readonly activeLow = true, private readonly debounceMs = 20) {}

  async start (onPress: () => void): Promise<void> {
    this.running = true
    try {
      await this.monitor(onPress)
    } catch (err) {
      this.running = false
      throw err
    }
  }

  private args (): string[] {
    const { gpiod, chip, offset } = this.line
    const bias = this.activeLow ? 'pull-up' : 'pull-down'
    if (gpiod.version === 2) {
      // The kernel debounces (in software where the chip cannot); only the press edge is reported.
      return ['--banner', '-c', chip.name, '-C', 'doorbell-button', '-e', this.activeLow ? 'falling' : 'rising', '-b', bias,
        ...(this.debounceMs > 0 ? ['--debounce-period', `${this.debounceMs}ms`] : []), '-F', '%o %E', String(offset)]
    }
    // v1: no debounce and no banner; both edges, so a bouncing release is seen and dropped here.
    // -b: line-buffered, or events wait in a 4 KB buffer of a pipe.
    return ['-b', '-B', bias, '-F', '%o %e', chip.name, String(offset)]
  }

  private async monitor (onPress: () => void): Promise<void> {
    const debounce = pressDebouncer(this.debounceMs)
    const v1 = this.line.gpiod.version === 1
    const held = await holdLine({
      gpiod: this.line.gpiod,
      tool: 'gpiomon',
      args: this.args(),
      chip: this.line.chip,
      offset: this.line.offset,
      fail: failure(this.line),
      onLine: (text) => {
        // v2: "17 falling"; v1: "17 0" (0 falling, 1 rising).
        const m = /^(\d+) (falling|rising|0|1)$/.exec(text.trim())
        if (!m || Number(m[1]) !== this.line.offset || !this.running) return
        const falling = m[2] === 'falling' || (v1 && m[2] === '0')
        if (debounce(falling === this.activeLow)) onPress()
      }
    })
    this.held = held
    void held.exited.then(({ stderr }) => {
      if (this.held !== held || !this.running) return
      this.held = null
      this.line.log?.(`gpio: gpiomon for BCM${this.line.offset} exited (${stderr.trim().split('\n').at(-1) ?? ''}); starting it again`)
      const again = (): void => {
        this.restart = null
        if (!this.running) return
        this.monitor(onPress).catch((err: Error) => {
          this.line.log?.(`gpio: ${err.message}`)
          if (this.running) this.restart = setTimeout(again, RESTART_MS)
        })
      }
      this.restart = setTimeout(again, RESTART_MS)
    })
  }

  async stop (): Promise<void> {
    this.running = false
    if (this.restart) clearTimeout(this.restart)
    this.restart = null
    const held = this.held
    this.held = null
    await held?.release()
  }
}

export class LibgpiodLock implements LockDriver {
  private held: HeldLine | null = null
  private level: 0 | 1 | null = null
  private queue: Promise<unknown> = Promise.resolve()

  constructor (private readonly line: LibgpiodLine, private readonly activeHigh = true) {}

  /** One change at a time: the old gpioset must be gone before the next requests the line. */
  private serial<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn)
    this.queue = next.catch(() => {})
    return next
  }

  set (open: boolean): Promise<void> {
    return this.serial(() => this.drive(open === this.activeHigh ? 1 : 0))
  }

  private async drive (level: 0 | 1): Promise<void> {
    if (this.held && this.level === level) return
    const { gpiod, chip, offset } = this.line
    // A line has one requester: the gpioset holding the old level ends first. Between the two the
    // line is released for a few milliseconds; the Pi's pin keeps its output level meanwhile.
    const old = this.held
    this.held = null
    await old?.release()
    const args = gpiod.version === 2
      ? ['--banner', '-c', chip.name, '-C', 'doorbell-lock', `${offset}=${level}`]
      : ['-m', 'signal', chip.name, `${offset}=${level}`] // v1 exits at once unless told to hold
    const held = await holdLine({ gpiod, tool: 'gpioset', args, chip, offset, fail: failure(this.line) })
    this.held = held
    this.level = level
    void held.exited.then(({ stderr }) => {
      if (this.held !== held) return
      // Died by itself (killed, a crash): the line is no longer held. Request it again at its level.
      this.held = null
      this.line.log?.(`gpio: gpioset for BCM${offset} exited (${stderr.trim().split('\n').at(-1) ?? ''}); driving it again`)
      setTimeout(() => {
        if (this.held === null && this.level !== null) this.set(this.level === (this.activeHigh ? 1 : 0)).catch((err: Error) => { this.line.log?.(`gpio: ${err.message}`) })
      }, RESTART_MS).unref()
    })
  }

  /** Drives the locked level, then lets the line go (the door stays locked: see docs/hardware.md). */
  stop (): Promise<void> {
    return this.serial(async () => {
      await this.drive(this.activeHigh ? 0 : 1)
      const held = this.held
      this.held = null
      this.level = null
      await held?.release()
    })
  }
}
