import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { SdNotifier, systemdNotify } from '../src/sdNotify'

/**
 * The doorbell's side of systemd's notify protocol, against a real AF_UNIX datagram socket made
 * here with python3 (as systemd's own NOTIFY_SOCKET is): what arrives, datagram by datagram.
 * systemd-notify follows each message with BARRIER=1 (and a pipe the manager closes once it has
 * read the message); the listener keeps those apart.
 */

const MS = 1000
const LISTENER = `import socket, sys, json
address = sys.argv[1]
bind = "\\0" + address[1:] if address.startswith("@") else address
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(bind)
print(json.dumps("listening"), flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`

interface Listener { received: string[], barriers: () => number, child: ChildProcess, next: (match: (m: string) => boolean, timeoutMs?: number) => Promise<string> }

async function listen (t: { after: (fn: () => Promise<void>) => void }, address: string): Promise<Listener> {
  const child = spawn('/usr/bin/python3', ['-c', LISTENER, address], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(async () => { child.kill(); await new Promise((resolve) => child.once('close', resolve)) })
  const received: string[] = []
  let barriers = 0
  let buf = ''
  let listening!: () => void
  const ready = new Promise<void>((resolve) => { listening = resolve })
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d
    const lines = buf.split('\n')
    buf = lines.pop()!
    for (const l of lines) {
      const m = JSON.parse(l) as string
      if (m === 'listening') listening(); else if (m === 'BARRIER=1') barriers++; else received.push(m)
    }
  })
  await ready
  let seen = 0
  return {
    received,
    barriers: () => barriers,
    child,
    next: async (match, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const i = received.findIndex((m, at) => at >= seen && match(m))
        if (i >= 0) { seen = i + 1; return received[i]! }
        if (Date.now() > deadline) throw new Error(`no matching datagram; received ${JSON.stringify(received)}`)
        await sleep(10)
      }
    }
  }
}

describe('systemd notify (READY, WATCHDOG, STOPPING)', { timeout: 60 * MS }, () => {
  for (const via of ['python3', 'systemd-notify'] as const) {
    test(`via ${via}: READY=1 at start, WATCHDOG=1 every half WatchdogSec, STOPPING=1 at stop; one message per datagram`, async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'notify-'))
      t.after(async () => { await rm(dir, { recursive: true, force: true }) })
      const socket = join(dir, 'notify')
      const l = await listen(t, socket)
      const module = systemdNotify({ via, env: { ...process.env, NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000', WATCHDOG_PID: String(process.pid) } })
      t.after(() => module.stop()) // stops the pings even when an assertion failed
      // The pings' clock is the test's (a mocked setInterval), so their period is counted exactly
      // however late a loaded machine runs timers or relays datagrams.
      t.mock.timers.enable({ apis: ['setInterval'] })
      assert.equal(module.name, 'systemd')
      await module.start(new AbortController().signal)
      assert.equal(await l.next(() => true), 'READY=1', 'READY=1 first')
      const first = await l.next((m) => m === 'WATCHDOG=1')
      assert.equal(first, 'WATCHDOG=1')
      // Half of WatchdogSec (400 ms): one ping per 200 ms.
      t.mock.timers.tick(200)
      await l.next((m) => m === 'WATCHDOG=1')
      t.mock.timers.tick(200)
      await l.next((m) => m === 'WATCHDOG=1')
      await module.stop()
      assert.equal(await l.next((m) => m !== 'WATCHDOG=1'), 'STOPPING=1')
      assert.equal(l.received.filter((m) => m === 'WATCHDOG=1').length, 3, 'one at start, then one per 200 ms: two in 400 ms')
      const count = l.received.length
      await sleep(500)
      assert.equal(l.received.length, count, 'no ping after stop')
      if (via === 'systemd-notify') assert.equal(l.barriers(), count, 'each message was followed by a barrier (systemd-notify waited for the manager)')
      else assert.equal(l.barriers(), 0)
    })
  }

  test('python3 relay: an abstract socket (@name, as systemd may give) and a message of several lines in one datagram', async (t) => {
    const address = `@doorbell-test-${process.pid}`
    const l = await listen(t, address)
    const n = new SdNotifier({ ...process.env, NOTIFY_SOCKET: address }, 'python3')
    t.after(() => { n.close() })
    await n.send('STATUS=ringing\nEXTEND_TIMEOUT_USEC=5000000')
    assert.equal(await l.next(() => true), 'STATUS=ringing\nEXTEND_TIMEOUT_USEC=5000000')
  })

  test('no WatchdogSec, a watchdog meant for another PID, or no NOTIFY_SOCKET: no pings (and nothing at all without the socket)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'notify-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    const socket = join(dir, 'notify')
    const l = await listen(t, socket)
    for (const extra of [{}, { WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid + 1) }]) {
      const module = systemdNotify({ env: { PATH: process.env.PATH, NOTIFY_SOCKET: socket, ...extra } })
      await module.start(new AbortController().signal)
      await sleep(300)
      await module.stop()
    }
    await l.next((m) => m === 'STOPPING=1')
    await l.next((m) => m === 'STOPPING=1')
    assert.deepEqual(l.received, ['READY=1', 'STOPPING=1', 'READY=1', 'STOPPING=1'])
    const off = systemdNotify({ env: { PATH: process.env.PATH } })
    await off.start(new AbortController().signal)
    await off.stop()
    assert.equal(off.notifier(), null)
    assert.equal(l.received.length, 4)
  })

  test('a socket nobody listens on: start() rejects with the reason (the doorbell says so at once)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'notify-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    for (const [via, error] of [['python3', /sd_notify: error \[Errno 2\] No such file or directory/], ['systemd-notify', /systemd-notify READY=1: .*No such file or directory/]] as const) {
      const module = systemdNotify({ via, env: { ...process.env, NOTIFY_SOCKET: join(dir, 'nobody') } })
      await assert.rejects(module.start(new AbortController().signal), error)
      await module.stop()
    }
  })
})
