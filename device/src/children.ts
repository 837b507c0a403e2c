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
 *
 * A child may also run at a lower scheduling priority than the doorbell (`niceness`: the camera's
 * encoder, so that video never keeps the door's commands waiting for a CPU): through coreutils'
 * `nice -n N`, which execs the program (same PID again) before it starts any thread, so every
 * thread it makes (x264's encoder threads) inherits it.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
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
/** The "no nice" warning: once per process. */
let warnedNice = false

export interface ChildOptions extends SpawnOptions {
  /** What the kernel sends the child when the doorbell dies: TERM lets it clean up (the gpiod tools), KILL for ffmpeg. */
  deathSignal?: 'TERM' | 'KILL'
  /** Where the "no setpriv" warning goes (once per process). */
  warn?: (line: string) => void
  /**
   * Run this many steps nicer than the doorbell (0-19; 0 or absent: as the doorbell). Raising
   * niceness needs no privilege; the kernel caps it at 19.
   */
  niceness?: number
}

/** `nice -n N program args` (coreutils), so the program starts at that niceness; null where there is no `nice`. */
function niceWrapped (niceness: number, program: string, args: readonly string[], env: NodeJS.ProcessEnv): string[] | null {
  const nice = findProgram('nice', env) ?? ['/usr/bin/nice', '/bin/nice'].find(executable) ?? null
  return nice === null ? null : [nice, '-n', String(niceness), program, ...args]
}

/**
 * `spawn(program, args, options)` for a child that dies with the doorbell. The child's PID is the
 * program's (setpriv execs it). A program that is not installed is spawned as is, so Node reports
 * it as usual (an `error` event with ENOENT) rather than as setpriv's exit status 127.
 */
export function spawnChild (program: string, args: readonly string[], options: ChildOptions = {}): ChildProcess {
  const { deathSignal = 'TERM', warn, niceness = 0, ...spawnOptions } = options
  const sp = setpriv()
  const env = spawnOptions.env ?? process.env
  const resolved = findProgram(program, env)
  if (sp === null && !warned) {
    warned = true
    ;(warn ?? ((line: string) => { console.warn(line) }))(
      'setpriv (util-linux) is not installed: a child of the doorbell (ffmpeg, rpicam-vid, gpiod tools) ' +
      'may outlive a SIGKILL of the doorbell. Install util-linux (sudo apt install util-linux).')
  }
  // setpriv → nice → the program: each execs the next, so the PID stays the program's. A program
  // that cannot be found is spawned as is, for Node's own ENOENT.
  const niced = niceness > 0 && resolved !== null ? niceWrapped(niceness, resolved, args, env) : null
  const chain = resolved === null ? null : (niced ?? [resolved, ...args])
  const child = chain === null
    ? spawn(program, args, spawnOptions)
    : sp !== null
      ? spawn(sp, ['--pdeathsig', deathSignal, '--', ...chain], spawnOptions)
      : spawn(chain[0]!, chain.slice(1), spawnOptions)
  // No `nice` binary: set it on the PID at once, a moment after the exec (threads the program has
  // already made by then keep the doorbell's).
  if (niceness > 0 && chain !== null && niced === null && child.pid !== undefined) {
    let set = true
    try { setPriority(child.pid, Math.min(19, getPriority() + niceness)) } catch { set = false }
    if (!warnedNice) {
      warnedNice = true
      ;(warn ?? ((line: string) => { console.warn(line) }))(
        `nice (coreutils) is not installed: ${program} ${set ? 'was made nicer after it started (threads it had already made keep the doorbell\'s priority)' : 'runs at the doorbell\'s priority (its niceness could not be set)'}. Install coreutils (sudo apt install coreutils).`)
    }
  }
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
