import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { EmulatedSysfs, FakeGpiod } from './fakeGpiod'

/**
 * Fail-secure when the doorbell's process is gone: SIGKILL it while the door is open. The
 * relay stays where it was, as real hardware does (a sysfs pin keeps its value; a simulated
 * relay file too), and the "lock now" command (what systemd's ExecStopPost runs) drives it back
 * to locked with the configured driver, from the same doorbell.json. With libgpiod, the gpioset
 * that held the line dies with the doorbell (a parent-death signal), so the line is free for it.
 */

const MS = 1000
const DEVICE = fileURLToPath(new URL('..', import.meta.url))
const HOLD_OPEN = join(DEVICE, 'test/fixtures/holdRelayOpen.ts')
const LOCK_NOW = join(DEVICE, 'src/lockNow.ts')

/** Starts a process that opens the door and waits; resolves once it says the door is open. */
async function doorbellHoldingTheDoorOpen (gpio: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLD_OPEN, JSON.stringify(gpio)], { cwd: DEVICE, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('open')) resolve() })
    child.once('exit', (code) => { reject(new Error(`the doorbell exited (${code}) before opening: ${err}`)) })
  })
  return child
}

async function sigkill (child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

/** The lock-now command as systemd runs it: the device config file, nothing else (run asynchronously: the emulated kernel lives in this process). */
async function lockNow (configPath: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', LOCK_NOW, '--config', configPath], { cwd: DEVICE, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const status = await new Promise<number | null>((resolve) => child.once('close', resolve))
  return { status, stdout, stderr }
}

async function scratch (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fail-secure-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

describe('fail-secure: SIGKILL while the door is open, then lock now', { timeout: 120 * MS }, () => {
  test('simulated driver with a relay file: the relay stays open after SIGKILL; lock now locks it', async (t) => {
    const dir = await scratch(t)
    const relayFile = join(dir, 'relay')
    const gpio = { driver: 'simulated', relayFile }
    const doorbell = await doorbellHoldingTheDoorOpen(gpio, {})
    assert.equal(readFileSync(relayFile, 'utf8'), 'open\n')
    await sigkill(doorbell)
    assert.equal(readFileSync(relayFile, 'utf8'), 'open\n', 'like a real relay, it stays where the dead process left it')
    const configPath = join(dir, 'doorbell.json')
    await writeFile(configPath, JSON.stringify({ deviceName: 'Front door', gpio }))
    const r = await lockNow(configPath, {})
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /DOOR LOCKED\nlock-now: Front door: relay driven to locked \(simulated\)\n$/)
    assert.equal(readFileSync(relayFile, 'utf8'), 'locked\n')
  })

  test('sysfs (base 512): the pin keeps the open level after SIGKILL; lock now drives the locked level', async (t) => {
    const sysfs = await EmulatedSysfs.create()
    t.after(async () => { await sysfs.close() })
    const dir = await scratch(t)
    const env = { DOORBELL_GPIO_SYSFS: sysfs.root }
    for (const activeHigh of [true, false]) {
      const gpio = { driver: 'sysfs', lockActiveHigh: activeHigh }
      const doorbell = await doorbellHoldingTheDoorOpen(gpio, env)
      const open = activeHigh ? 1 : 0
      assert.equal(sysfs.value(539), open)
      await sigkill(doorbell)
      await sleep(50)
      assert.equal(sysfs.value(539), open, 'the kernel keeps an exported pin\'s value after its process dies')
      assert.equal(sysfs.pins.get(539)?.direction, 'out')
      const configPath = join(dir, 'doorbell.json')
      await writeFile(configPath, JSON.stringify({ gpio }))
      const r = await lockNow(configPath, env)
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stdout, /relay driven to locked \(sysfs\)/)
      assert.equal(sysfs.value(539), 1 - open, `locked (activeHigh=${activeHigh})`)
    }
  })

  for (const version of [1, 2] as const) {
    test(`libgpiod v${version}: gpioset dies with the doorbell (no line left busy); lock now drives the locked level`, async (t) => {
      const fake = await FakeGpiod.create(version)
      t.after(async () => { await fake.close() })
      const dir = await scratch(t)
      const dev = join(dir, 'dev')
      await mkdir(dev)
      await writeFile(join(dev, 'gpiochip0'), '')
      const env = { DOORBELL_GPIOD_TOOLS: fake.toolDir, DOORBELL_GPIO_DEV: dev }
      const gpio = { driver: 'auto' }
      const doorbell = await doorbellHoldingTheDoorOpen(gpio, env)
      const holder = fake.holder(27)
      assert.ok(holder, 'gpioset holds the relay line')
      assert.equal(fake.level(27), 1)
      await sigkill(doorbell)
      const gone = (): boolean => { try { return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${holder.pid}/stat`, 'utf8')) } catch { return true } }
      const deadline = Date.now() + 5000
      while (Date.now() < deadline && !gone()) await sleep(20)
      assert.ok(gone(), 'the gpioset the doorbell started died with it: no orphan')
      assert.equal(fake.holder(27), undefined, 'and the line is free')
      const configPath = join(dir, 'doorbell.json')
      await writeFile(configPath, JSON.stringify({ gpio }))
      const r = await lockNow(configPath, env)
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stdout, new RegExp(`gpio: libgpiod v${fake.release} tools .*\\nlock-now: Front door: relay driven to locked \\(auto\\)\\n$`))
      assert.equal(fake.level(27), 0)
      assert.equal(fake.holder(27), undefined, 'lock now lets the line go when it exits')
    })
  }

  test('lock now fails loudly (status 1, the GPIO error) when it cannot drive the relay, and refuses a bad config (status 2)', async (t) => {
    const fake = await FakeGpiod.create(2)
    t.after(async () => { await fake.close() })
    const dir = await scratch(t)
    fake.occupy(27)
    const configPath = join(dir, 'doorbell.json')
    await writeFile(configPath, JSON.stringify({ gpio: { driver: 'libgpiod' } }))
    const r = await lockNow(configPath, { DOORBELL_GPIOD_TOOLS: fake.toolDir })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /^lock-now: Front door: could not drive the relay to locked: GPIO BCM27 on gpiochip0 \[pinctrl-bcm2711\] \(libgpiod v2\.2\.1\): .*Device or resource busy/)
    await writeFile(configPath, JSON.stringify({ gpio: { driver: 'libgpiod', lockLine: 'BCM27' } }))
    const bad = await lockNow(configPath, {})
    assert.equal(bad.status, 2)
    assert.match(bad.stderr, /gpio\.lockLine/)
  })
})
