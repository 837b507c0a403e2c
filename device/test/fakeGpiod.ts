/**
 * Test rigs for the GPIO drivers without GPIO hardware (these machines have no gpio-sim):
 *   FakeGpiod: the gpiod tools (v1 or v2) as fake programs in a temp folder (fake-gpiod.mjs), on
 *     an emulated chip kept in files. The test puts levels on the button's line and reads the
 *     levels gpioset was asked to drive.
 *   EmulatedSysfs: a /sys/class/gpio tree with the kernel's part played by this process: `export`
 *     is a FIFO it reads (an export makes gpio<N>/), and it applies what is written to each
 *     `direction` ("high"/"low" set the value, and it then reads "out").
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { constants as fsConstants, openSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

const FAKE = fileURLToPath(new URL('./fake-gpiod.mjs', import.meta.url))

export interface FakeChip { name: string, label: string, lines: number }

/** A Pi 4's chips as gpiodetect lists them on Bookworm. */
export const PI4_CHIPS: FakeChip[] = [
  { name: 'gpiochip0', label: 'pinctrl-bcm2711', lines: 58 },
  { name: 'gpiochip1', label: 'raspberrypi-exp-gpio', lines: 8 }
]

export class FakeGpiod {
  private constructor (readonly dir: string, readonly toolDir: string, readonly state: string, readonly version: 1 | 2, readonly release: string) {}

  static async create (version: 1 | 2, chips: FakeChip[] = PI4_CHIPS): Promise<FakeGpiod> {
    const dir = await mkdtemp(join(tmpdir(), `fake-gpiod-v${version}-`))
    const toolDir = join(dir, 'bin')
    const state = join(dir, 'state')
    mkdirSync(toolDir)
    mkdirSync(state)
    writeFileSync(join(state, 'chips.json'), JSON.stringify(chips))
    const release = version === 1 ? '1.6.3' : '2.2.1'
    for (const tool of ['gpiodetect', 'gpioinfo', 'gpioset', 'gpiomon']) {
      const path = join(toolDir, tool)
      writeFileSync(path, `#!/bin/sh\nexec '${process.execPath}' '${FAKE}' ${version} ${release} '${state}' "$0" "$@"\n`)
      chmodSync(path, 0o755)
    }
    return new FakeGpiod(dir, toolDir, state, version, release)
  }

  /** Runs one of the fake tools as a person would, from PATH. */
  run (tool: string, args: string[]): { status: number | null, stdout: string, stderr: string } {
    const r = spawnSync(tool, args, { encoding: 'utf8', env: { ...process.env, PATH: `${this.toolDir}:${process.env.PATH}` }, timeout: 10_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  /** The level gpioset last drove on a line (undefined: never driven). */
  level (offset: number, chip = 'gpiochip0'): 0 | 1 | undefined {
    const path = join(this.state, `${chip}-${offset}.value`)
    if (!existsSync(path)) return undefined
    return readFileSync(path, 'utf8').trim() === '1' ? 1 : 0
  }

  /** Who has the line requested, if a live process does. */
  holder (offset: number, chip = 'gpiochip0'): { pid: number, consumer: string, direction: string, bias: string, debounceUs?: number } | undefined {
    try {
      const h = JSON.parse(readFileSync(join(this.state, `${chip}-${offset}.holder`), 'utf8')) as { pid: number, consumer: string, direction: string, bias: string }
      // A zombie (exited, not yet reaped) holds nothing.
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${h.pid}/stat`, 'utf8'))) return undefined
      return h
    } catch {
      return undefined
    }
  }

  /** Another program (this test process) requests the line: the next request gets EBUSY. */
  occupy (offset: number, chip = 'gpiochip0'): void {
    writeFileSync(join(this.state, `${chip}-${offset}.holder`), JSON.stringify({ pid: process.pid, consumer: 'other-program', direction: 'output', bias: 'as-is' }))
  }

  /** The chip's device node refuses this user (EACCES), as without the gpio group. */
  deny (chip = 'gpiochip0'): void { writeFileSync(join(this.state, `denied-${chip}`), '') }

  /** Puts levels on an input line (what the button does to the pin). */
  input (offset: number, ...levels: Array<0 | 1>): void {
    appendFileSync(join(this.state, `gpiochip0-${offset}.input`), levels.map((l) => `${l}\n`).join(''))
  }

  /** Every invocation and every value driven, in order. */
  log (): Array<{ tool: string, pid: number, args?: string[], set?: { chip: string, offset: number, level: number } }> {
    const path = join(this.state, 'log.jsonl')
    if (!existsSync(path)) return []
    return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ReturnType<FakeGpiod['log']>[number])
  }

  // A fake tool the driver just ended may still be writing its last line: rm retries on ENOTEMPTY.
  async close (): Promise<void> { await rm(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }) }
}

interface SysfsPin { direction: 'in' | 'out', edge: string }

/**
 * /sys/class/gpio as a Pi 4 on kernel 6.6+ has it: gpiochip512 [pinctrl-bcm2711] with 58 lines,
 * gpiochip570 [raspberrypi-exp-gpio]. Regular files for base/label/ngpio and each pin's
 * direction and value; a FIFO for export, read here as the kernel would act on it.
 */
export class EmulatedSysfs {
  readonly pins = new Map<number, SysfsPin>()
  readonly exports: number[] = []
  private readonly sockets: Socket[] = []
  /** The next export is refused (as the kernel does for a line another user holds). */
  refuseNextExport = false
  private timer: NodeJS.Timeout | null = null

  private constructor (readonly dir: string, readonly root: string) {}

  static async create (chips: Array<{ base: number, label: string, ngpio: number }> = [{ base: 512, label: 'pinctrl-bcm2711', ngpio: 58 }, { base: 570, label: 'raspberrypi-exp-gpio', ngpio: 8 }]): Promise<EmulatedSysfs> {
    const dir = await mkdtemp(join(tmpdir(), 'sysfs-gpio-'))
    const root = join(dir, 'class', 'gpio')
    mkdirSync(root, { recursive: true })
    for (const c of chips) {
      const chip = join(root, `gpiochip${c.base}`)
      mkdirSync(chip)
      writeFileSync(join(chip, 'base'), `${c.base}\n`)
      writeFileSync(join(chip, 'label'), `${c.label}\n`)
      writeFileSync(join(chip, 'ngpio'), `${c.ngpio}\n`)
    }
    writeFileSync(join(root, 'unexport'), '')
    const sysfs = new EmulatedSysfs(dir, root)
    sysfs.timer = setInterval(() => { sysfs.applyDirections() }, 2)
    sysfs.fifo(join(root, 'export'), (text) => {
      for (const word of text.split(/\s+/).filter(Boolean)) sysfs.export(Number(word))
    })
    return sysfs
  }

  /** A FIFO read without blocking a thread (opened read-write, so it never sees end-of-file). */
  private fifo (path: string, onWrite: (text: string) => void): void {
    const r = spawnSync('mkfifo', [path])
    if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr.toString()}`)
    const fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_NONBLOCK)
    const socket = new Socket({ fd, readable: true, writable: false })
    socket.setEncoding('utf8')
    socket.on('data', (text: string) => { onWrite(text) })
    this.sockets.push(socket)
  }

  private export (number: number): void {
    if (this.refuseNextExport) { this.refuseNextExport = false; return }
    const dir = join(this.root, `gpio${number}`)
    if (existsSync(dir)) return
    this.exports.push(number)
    // The kernel makes an exported pin an input, value as the line reads; its folder appears
    // whole (built aside, then renamed), as a kernel's does.
    const building = join(this.root, `.gpio${number}`)
    mkdirSync(building)
    writeFileSync(join(building, 'value'), '1\n')
    writeFileSync(join(building, 'edge'), 'none\n')
    writeFileSync(join(building, 'active_low'), '0\n')
    writeFileSync(join(building, 'direction'), 'in\n')
    renameSync(building, dir)
    this.pins.set(number, { direction: 'in', edge: 'none' })
  }

  /**
   * The kernel's side of `direction`: "low"/"high" make the pin an output at that level, "in"
   * an input; it then reads back as "in" or "out". Applied every 2 ms (the driver reads the
   * attribute back before it goes on, as it may on a real kernel).
   */
  private applyDirections (): void {
    for (const [number, pin] of this.pins) {
      const dir = join(this.root, `gpio${number}`)
      let d: string
      try { d = readFileSync(join(dir, 'direction'), 'utf8').trim() } catch { continue }
      if (d === 'low' || d === 'high') {
        writeFileSync(join(dir, 'value'), d === 'high' ? '1\n' : '0\n')
        writeFileSync(join(dir, 'direction'), 'out\n')
        pin.direction = 'out'
      } else if (d === 'in') {
        pin.direction = 'in'
      }
    }
  }

  /** The pin's value file (the level an output drives, or what a test put on an input). */
  value (number: number): 0 | 1 | undefined {
    try {
      return readFileSync(join(this.root, `gpio${number}`, 'value'), 'utf8').trim() === '1' ? 1 : 0
    } catch {
      return undefined
    }
  }

  /** Puts a level on an input (the button), as a test writing to `value`. */
  setValue (number: number, level: 0 | 1): void { writeFileSync(join(this.root, `gpio${number}`, 'value'), `${level}\n`) }

  exported (): string[] { return readdirSync(this.root).filter((n) => /^gpio\d+$/.test(n)) }

  async close (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    for (const s of this.sockets) s.destroy()
    await sleep(1)
    await rm(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  }
}
