/**
 * The gpiod command-line tools (Debian's `gpiod` package) as supervised child processes: the
 * character device (/dev/gpiochip*) without a native addon. Two generations exist and differ in
 * every command line: Bookworm ships libgpiod 1.6 (v1 tools), Trixie 2.2 (v2). Which one is
 * installed is read from `gpiodetect --version`.
 *
 * A line stays requested (and driven) only while the tool that requested it runs: gpioset holds
 * the relay's line, gpiomon the button's. Each is started by `spawnChild` (../children.ts: `setpriv
 * --pdeathsig` where util-linux has it), so it dies with the doorbell even on SIGKILL and never keeps
 * a line busy.
 */
import { execFile, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ChipInfo } from './chips'
import { GpioError, gpioFailureOf } from './errors'
import { spawnChild } from '../children'

export type GpiodTool = 'gpiodetect' | 'gpioinfo' | 'gpioset' | 'gpiomon'

export interface GpiodOptions {
  /** The folder holding the tools; default: found on PATH. */
  toolDir?: string
  /** The tools' environment; default: this process's. */
  env?: NodeJS.ProcessEnv
}

export interface Gpiod {
  /** 1: libgpiod 1.x tools (Bookworm); 2: libgpiod 2.x (Trixie). */
  version: 1 | 2
  /** `1.6.3`, `2.2.1`. */
  release: string
  options: GpiodOptions
}

interface RunResult { code: number | null, stdout: string, stderr: string }

const bin = (options: GpiodOptions, tool: GpiodTool): string => options.toolDir !== undefined ? join(options.toolDir, tool) : tool

async function run (options: GpiodOptions, tool: GpiodTool, args: string[], timeoutMs = 5000): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    execFile(bin(options, tool), args, { env: options.env ?? process.env, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      if (err !== null && typeof err.code === 'string') { reject(err); return } // ENOENT, EACCES on the tool itself
      resolve({ code, stdout, stderr })
    })
  })
}

/** The installed gpiod tools, or null when there are none. */
export async function detectGpiod (options: GpiodOptions = {}): Promise<Gpiod | null> {
  let r: RunResult
  try {
    r = await run(options, 'gpiodetect', ['--version'])
  } catch {
    return null
  }
  // Both generations print "gpiodetect (libgpiod) v1.6.3" (v2.2.1) as the first line.
  const m = /\(libgpiod\) v(\d+)\.(\d+)(?:\.(\d+))?/.exec(r.stdout)
  if (r.code !== 0 || !m) return null
  const major = Number(m[1])
  if (major !== 1 && major !== 2) return null
  return { version: major, release: `${m[1]}.${m[2]}${m[3] !== undefined ? `.${m[3]}` : ''}`, options }
}

/**
 * The chips gpiodetect lists (`gpiochip0 [pinctrl-bcm2711] (58 lines)`, the same in v1 and v2),
 * and what it said about those it could not open (v1 gives up on the first; v2 goes on).
 */
export async function listGpiodChips (gpiod: Gpiod): Promise<{ chips: ChipInfo[], problem: string }> {
  const r = await run(gpiod.options, 'gpiodetect', [])
  const chips: ChipInfo[] = []
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) \[(.*)\] \((\d+) lines\)$/.exec(line.trim())
    if (m) chips.push({ name: m[1]!, label: m[2]!, lines: Number(m[3]) })
  }
  return { chips, problem: lastLine(r.stderr) }
}

const lastLine = (text: string): string => text.trim().split('\n').filter((l) => l.trim() !== '').at(-1)?.trim() ?? ''

export interface HeldLine {
  /** The tool's process (through setpriv, which execs it: same PID). */
  readonly child: ChildProcess
  /** Resolves when the tool has exited, for whatever reason. */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }>
  /** Ends the tool (SIGTERM: both generations release the line and exit) and waits for it. */
  release: () => Promise<void>
}

export interface HoldOptions {
  gpiod: Gpiod
  tool: 'gpioset' | 'gpiomon'
  args: string[]
  chip: ChipInfo
  offset: number
  /** Builds the error for a tool that failed: its last stderr line is the detail. */
  fail: (detail: string, reason?: ReturnType<typeof gpioFailureOf>) => GpioError
  /** Each stdout line after the tool is ready (gpiomon's events). */
  onLine?: (line: string) => void
  /** How long the tool may take to request its line. */
  readyTimeoutMs?: number
}

const BANNER = /^(Setting|Monitoring) lines? /

/**
 * Starts a tool that requests one line and keeps it, and resolves once the line is requested:
 * v2 tools say so with `--banner`; v1 tools print nothing, so gpioinfo is asked until it lists
 * the line as used by that tool. Rejects with the tool's own error when it exits first.
 */
export async function holdLine (o: HoldOptions): Promise<HeldLine> {
  const env = o.gpiod.options.env ?? process.env
  const program = bin(o.gpiod.options, o.tool)
  // Through setpriv --pdeathsig (children.ts): the tool dies with the doorbell and frees its line.
  const child = spawnChild(program, o.args, { env, stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'TERM' })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-4096) })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }>((resolve) => {
    child.once('error', (err) => { stderr += `${o.tool}: ${err.message}`; resolve({ code: null, signal: null, stderr }) })
    child.once('close', (code, signal) => { resolve({ code, signal, stderr }) })
  })
  let ready = false
  let bannerSeen: () => void = () => {}
  const banner = new Promise<void>((resolve) => { bannerSeen = resolve })
  let pending = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    pending += d
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      if (!ready && BANNER.test(line)) { bannerSeen(); continue }
      if (ready) o.onLine?.(line)
    }
  })
  const release = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 2000)
    await exited
    clearTimeout(timer)
  }

  const requested = o.gpiod.version === 2 ? banner : lineInUse(o.gpiod, o.chip, o.offset, o.tool, exited)
  const timeoutMs = o.readyTimeoutMs ?? 5000
  const outcome = await Promise.race([
    requested.then(() => 'ready' as const),
    exited.then(() => 'exited' as const),
    sleep(timeoutMs, 'timeout' as const, { ref: false })
  ])
  if (outcome === 'ready') {
    ready = true
    return { child, exited, release }
  }
  if (outcome === 'timeout') {
    await release()
    throw o.fail(`${o.tool} did not request the line within ${timeoutMs} ms${stderr.trim() ? ` (${lastLine(stderr)})` : ''}`)
  }
  const end = await exited
  const said = lastLine(end.stderr)
  throw o.fail(said !== '' ? said : `${o.tool} exited (${end.code ?? end.signal}) before requesting the line`)
}

/**
 * v1: resolves once `gpioinfo <chip>` lists the line as used by `consumer`
 * (`\tline  27:      unnamed   "gpioset"  output  active-high [used]`).
 */
async function lineInUse (gpiod: Gpiod, chip: ChipInfo, offset: number, consumer: string, exited: Promise<unknown>): Promise<void> {
  let gone = false
  void exited.then(() => { gone = true })
  const row = new RegExp(`^\\s*line\\s+${offset}:\\s+(?:"[^"]*"|unnamed)\\s+"${consumer}"\\s+(?:input|output)\\b`, 'm')
  while (!gone) {
    const r = await run(gpiod.options, 'gpioinfo', [chip.name]).catch(() => null)
    if (r !== null && row.test(r.stdout)) return
    await sleep(20)
  }
  await new Promise(() => {}) // the tool exited: the race above reports that
}
