/**
 * systemd's notify protocol for the doorbell: READY=1 once every module has started, WATCHDOG=1
 * every half WatchdogSec from the event loop (a hung doorbell stops pinging, systemd kills it,
 * ExecStopPost locks the door and it restarts), STOPPING=1 on stop. See
 * deployment/systemd/doorbell-device.service (Type=notify, WatchdogSec, NotifyAccess=all).
 *
 * The messages are datagrams on the AF_UNIX socket in $NOTIFY_SOCKET, which Node cannot send
 * (node:dgram is UDP only), so a helper sends them. systemd finds the unit of a message by its
 * sender's PID and loses messages from a process that has already exited; the helpers avoid that:
 *   systemd-notify (default, wherever systemd is): after each message it sends BARRIER=1 with a
 *     pipe and waits until the manager has closed it, i.e. has processed the message, before it
 *     exits (systemd 246 and later: Bookworm has 252).
 *   python3: a small program that stays alive and sends each line of its stdin as one datagram;
 *     it ends at end-of-file on its stdin, so it dies with the doorbell, even on SIGKILL.
 * Either way the sender is not the main PID: hence NotifyAccess=all in the unit.
 */
import { execFile, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { Startable } from '@doorbell/core'
import { spawnChild } from './children'

/** Sends one line of stdin per datagram; "\n" inside a message is written as a literal backslash-n. */
const RELAY = `import os, socket, sys
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for line in sys.stdin:
    try:
        sock.sendto(line.rstrip("\\n").replace("\\\\n", "\\n").encode(), address)
        print("ok", flush=True)
    except OSError as err:
        print("error " + str(err), flush=True)
`

export interface SdNotifyOptions {
  env?: NodeJS.ProcessEnv
  /** How to send: systemd-notify per message (default where it is installed) or the python3 relay. */
  via?: 'python3' | 'systemd-notify'
  /** Told of a message that could not be sent (the doorbell goes on: systemd will act on a missing ping). */
  log?: (line: string) => void
}

/** Sends notify messages to $NOTIFY_SOCKET; `send` resolves once the datagram is sent. */
export class SdNotifier {
  private relay: ChildProcess | null = null
  private waiting: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private pending = ''
  private readonly via: 'python3' | 'systemd-notify'
  private readonly python: string

  constructor (private readonly env: NodeJS.ProcessEnv, via?: 'python3' | 'systemd-notify') {
    this.python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
    this.via = via ?? (['/usr/bin/systemd-notify', '/bin/systemd-notify'].some((p) => existsSync(p)) ? 'systemd-notify' : 'python3')
  }

  async send (message: string): Promise<void> {
    if (this.via === 'systemd-notify') {
      await new Promise<void>((resolve, reject) => {
        execFile('systemd-notify', message.split('\n'), { env: this.env, timeout: 5000 }, (err, _out, stderr) => {
          if (err) reject(new Error(`systemd-notify ${message}: ${stderr.trim() || err.message}`)); else resolve()
        })
      })
      return
    }
    const relay = this.relay ??= this.startRelay()
    await new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject })
      relay.stdin!.write(`${message.replaceAll('\n', '\\n')}\n`)
    })
  }

  private startRelay (): ChildProcess {
    // Long-lived, so it too dies with the doorbell (children.ts).
    const child = spawnChild(this.python, ['-c', RELAY], { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000) })
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.pending += d
      const lines = this.pending.split('\n')
      this.pending = lines.pop()!
      for (const line of lines) {
        const w = this.waiting.shift()
        if (line === 'ok') w?.resolve(); else w?.reject(new Error(`sd_notify: ${line}`))
      }
    })
    const gone = (why: string): void => {
      if (this.relay === child) this.relay = null
      for (const w of this.waiting.splice(0)) w.reject(new Error(`sd_notify: the python3 relay ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`))
    }
    child.once('error', (err) => { gone(`could not start (${err.message})`) })
    child.once('close', (code) => { gone(`exited (${code})`) })
    child.stdin!.on('error', () => {})
    return child
  }

  close (): void {
    this.relay?.stdin?.end()
    this.relay = null
  }
}

/**
 * The doorbell's part of systemd's supervision, as a module of the composition root: put it last
 * in the list, so READY=1 means every module before it has started. Without $NOTIFY_SOCKET (not
 * under systemd, or Type=simple) it does nothing. With WatchdogSec (systemd sets WATCHDOG_USEC,
 * and WATCHDOG_PID when it is meant for this process) it pings every half period.
 */
export function systemdNotify (options: SdNotifyOptions = {}): Startable & { notifier: () => SdNotifier | null } {
  const env = options.env ?? process.env
  const log = options.log ?? ((line: string) => { console.error(line) })
  let notifier: SdNotifier | null = null
  let timer: NodeJS.Timeout | null = null
  const send = (message: string): void => {
    notifier?.send(message).catch((err: Error) => { log(`systemd: ${err.message}`) })
  }
  return {
    name: 'systemd',
    notifier: () => notifier,
    async start () {
      if (!env.NOTIFY_SOCKET) return
      notifier = new SdNotifier(env, options.via)
      // Ready is awaited: a doorbell that cannot tell systemd it started should say so at once.
      await notifier.send('READY=1')
      const usec = Number(env.WATCHDOG_USEC)
      const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid
      if (Number.isFinite(usec) && usec > 0 && forUs) {
        timer = setInterval(() => { send('WATCHDOG=1') }, Math.max(1, Math.floor(usec / 2000)))
        send('WATCHDOG=1')
      }
    },
    async stop () {
      if (timer) clearInterval(timer)
      timer = null
      if (notifier === null) return
      await notifier.send('STOPPING=1').catch((err: Error) => { log(`systemd: ${err.message}`) })
      notifier.close()
      notifier = null
    }
  }
}
