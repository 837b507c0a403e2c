import { spawn, type ChildProcess } from 'node:child_process'
import { backoffDelay } from '@doorbell/machines'
import type { Logger } from '@doorbell/core'

/** ffmpeg restarts with the shared backoff: 0.5 s doubling to 10 s. */
const RESTART_BACKOFF = { firstMs: 500, maxMs: 10_000 }

/** Runs ffmpeg to the end (a device probe): its exit code and what it printed. */
export async function runToEnd (bin: string, args: string[], timeoutMs = 5000): Promise<{ code: number | null, stderr: string }> {
  return await new Promise((resolve) => {
    const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr.setEncoding('utf8')
    proc.stderr.on('data', (chunk: string) => { stderr += chunk })
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    proc.on('error', (err) => { clearTimeout(timer); resolve({ code: -1, stderr: err.message }) })
    proc.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr }) })
  })
}

/** The last meaningful line ffmpeg printed: the reason, for an error message. */
export function lastLine (stderr: string): string {
  return stderr.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? 'no output'
}

/**
 * One long-running ffmpeg, restarted with backoff when it dies until `stop()`. `healthy()` resets
 * the backoff (called when its output flows). `stdin`: written once at each start (an SDP).
 * `scrub`: what it prints, before the log (an RTSP camera's password: ffmpeg repeats its URL).
 */
export class FfmpegProcess {
  private proc: ChildProcess | null = null
  private restarts = 0
  private timer: NodeJS.Timeout | null = null
  private stopped = false

  constructor (private readonly o: { bin: string, args: () => string[], stdin?: string, what: string, log: Logger, scrub?: (text: string) => string }) {}

  start (): void {
    if (this.stopped) return
    const proc = this.proc = spawn(this.o.bin, this.o.args(), { stdio: [this.o.stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] })
    if (this.o.stdin !== undefined) proc.stdin!.end(this.o.stdin)
    proc.stderr!.setEncoding('utf8')
    // Whole lines only: a chunk may end inside a line (inside a URL: its password would not be
    // scrubbed in either half), so the rest waits for the next chunk. ffmpeg ends lines with \n or \r.
    let rest = ''
    const logLine = (line: string): void => { if (line.trim()) this.o.log.warn('ffmpeg', { line: (this.o.scrub ?? String)(line.trim()) }) }
    proc.stderr!.on('data', (chunk: string) => {
      const lines = (rest + chunk).split(/[\r\n]/)
      rest = lines.pop() ?? ''
      // A line without an end that keeps growing is logged in pieces of 4 KiB (each scrubbed).
      if (rest.length > 4096) { lines.push(rest); rest = '' }
      for (const line of lines) logLine(line)
    })
    proc.stderr!.on('end', () => { logLine(rest); rest = '' })
    proc.on('error', (err) => { this.o.log.error(`${this.o.what}: ffmpeg failed to start`, { error: err.message }) })
    proc.on('exit', (code, signal) => {
      this.proc = null
      if (this.stopped) return
      const inMs = backoffDelay(this.restarts++, RESTART_BACKOFF)
      this.o.log.warn(`${this.o.what} stopped, restarting`, { code, signal, inMs })
      this.timer = setTimeout(() => { this.timer = null; this.start() }, inMs)
    })
  }

  healthy (): void { this.restarts = 0 }

  /**
   * SIGINT first, SIGKILL after `graceMs`. (ffmpeg reading RTP from UDP does not exit on SIGINT
   * while no packet comes: the speaker gives it little time and mends its WAV itself.)
   */
  async stop (graceMs = 2000): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    const proc = this.proc
    if (!proc || proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGINT')
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }
}
