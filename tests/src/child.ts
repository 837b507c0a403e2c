import type { ChildProcess } from 'node:child_process'

/** Whether a child process the test started has exited (by itself or by a signal). */
export const exitedAlready = (proc: ChildProcess): boolean => proc.exitCode !== null || proc.signalCode !== null

/**
 * Ends a server the test started, by its own handle (so by its PID only): SIGTERM, as its owner
 * would stop it, then SIGKILL if it has not exited after `graceMs`; resolves once it has exited.
 */
export async function endChild (proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (exitedAlready(proc)) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => { resolve() }))
  proc.kill('SIGTERM')
  const timer = setTimeout(() => { proc.kill('SIGKILL') }, graceMs)
  await exited
  clearTimeout(timer)
}
