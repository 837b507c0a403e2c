/**
 * Every program the doorbell starts (ffmpeg, rpicam-vid, the gpiod tools) is started here, so that
 * none outlives it, even a SIGKILL of the doorbell (which runs no handler of ours):
 *
 * - through util-linux's `setpriv --pdeathsig <signal>`, which sets the kernel's parent-death signal
 *   (PR_SET_PDEATHSIG) and then execs the program (same PID): the kernel signals the child the moment
 *   the doorbell dies, however it dies;
 * - and on the doorbell's own exit (a crash, process.exit) every child still running is killed.
 *
 * A doorbell killed in the few milliseconds between a spawn and setpriv's exec of the program
 * leaves that one child without the signal (the kernel has none to send yet).
 *
 * Where setpriv is missing (it is in util-linux, on Raspberry Pi OS and Debian) the second still
 * holds, the first cannot: that is logged once, with what to install.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, isAbsolute, join } from 'node:path'

const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv']

let setprivPath: string | null | undefined
/** util-linux's setpriv, or null when this system has none. */
export function setpriv (): string | null {
  setprivPath ??= SETPRIV_PATHS.find(executable) ?? null
  return setprivPath
}

function executable (path: string): boolean {
  try { accessSync(path, constants.X_OK); return true } catch { return false }
}

/** Where `program` is on PATH (or itself when it has a slash); null if it cannot be run. */
export function findProgram (program: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (program.includes('/')) return executable(program) ? program : null
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue
    const candidate = join(dir, program)
    if (executable(candidate)) return candidate
  }
  return null
}

const running = new Set<ChildProcess>()
let exitHook = false
let warned = false

export interface ChildOptions extends SpawnOptions {
  /** What the kernel sends the child when the doorbell dies: TERM lets it clean up (the gpiod tools), KILL for ffmpeg. */
  deathSignal?: 'TERM' | 'KILL'
  /** Where the "no setpriv" warning goes (once per process). */
  warn?: (line: string) => void
}

/**
 * `spawn(program, args, options)` for a child that dies with the doorbell. The child's PID is the
 * program's (setpriv execs it). A program that is not installed is spawned as is, so Node reports
 * it as usual (an `error` event with ENOENT) rather than as setpriv's exit status 127.
 */
export function spawnChild (program: string, args: readonly string[], options: ChildOptions = {}): ChildProcess {
  const { deathSignal = 'TERM', warn, ...spawnOptions } = options
  const sp = setpriv()
  const resolved = findProgram(program, spawnOptions.env ?? process.env)
  if (sp === null && !warned) {
    warned = true
    ;(warn ?? ((line: string) => { console.warn(line) }))(
      'setpriv (util-linux) is not installed: a child of the doorbell (ffmpeg, rpicam-vid, gpiod tools) ' +
      'may outlive a SIGKILL of the doorbell. Install util-linux (sudo apt install util-linux).')
  }
  const child = sp !== null && resolved !== null
    ? spawn(sp, ['--pdeathsig', deathSignal, '--', resolved, ...args], spawnOptions)
    : spawn(program, args, spawnOptions)
  running.add(child)
  child.once('exit', () => { running.delete(child) })
  child.once('error', () => { running.delete(child) })
  if (!exitHook) {
    exitHook = true
    // Synchronous on purpose: at 'exit' nothing asynchronous runs any more.
    process.on('exit', () => { for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') })
  }
  return child
}
