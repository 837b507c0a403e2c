import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * The doorbell as its own process (device/src/main.ts, as systemd runs it), so a test can kill it
 * for real by its PID (a SIGKILL runs no handler of the doorbell's) and start it again.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface DoorbellProcess {
  proc: ChildProcess
  /** Its stdout and stderr, line by line (the simulated relay prints DOOR UNLOCKED / DOOR LOCKED). */
  lines: string[]
  /** When it was spawned (Date.now()). */
  startedAt: number
  /** Resolves with its exit code (or signal) once it has exited. */
  exited: Promise<number | NodeJS.Signals | null>
}

/** `o.stdin`: keep its terminal input open, so the test rings it as a person would, with Enter (`press`). */
export function startDoorbellProcess (config: string, env: NodeJS.ProcessEnv = process.env, o: { stdin?: boolean } = {}): DoorbellProcess {
  const startedAt = Date.now()
  const proc = spawn(process.execPath, ['--import', 'tsx', 'device/src/main.ts', '--config', config], { cwd: ROOT, env, stdio: [o.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  // Whole lines only: a chunk may end mid-line, and the rest comes with the next one.
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let rest = ''
    stream.on('data', (d: Buffer) => {
      const parts = (rest + d.toString()).split('\n')
      rest = parts.pop() ?? ''
      lines.push(...parts.filter(Boolean))
    })
    stream.on('end', () => { if (rest !== '') lines.push(rest) })
  }
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => { proc.once('exit', (code, signal) => { resolve(code ?? signal) }) })
  return { proc, lines, startedAt, exited }
}

/** The simulated doorbell's button: Enter on its terminal (a process started with `stdin: true`). */
export function press (doorbell: DoorbellProcess): void {
  if (doorbell.proc.stdin === null) throw new Error('start the doorbell with { stdin: true } to press its button')
  doorbell.proc.stdin.write('\n')
}

/** Ends a doorbell this test started, by its PID, and waits until it is gone. */
export async function killDoorbell (doorbell: DoorbellProcess, signal: NodeJS.Signals): Promise<void> {
  if (doorbell.proc.exitCode !== null || doorbell.proc.signalCode !== null) return
  doorbell.proc.kill(signal)
  await doorbell.exited
}

/** The PIDs of `parent`'s children whose command is `name` (read from /proc). */
export function childrenNamed (parent: number, name: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === parent && comm.startsWith(name)) pids.push(Number(entry))
    } catch { /* gone meanwhile */ }
  }
  return pids
}

/** Running: it exists and is not a zombie. */
export function isRunning (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch { return false }
}
