import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { findProgram, setpriv, spawnChild } from '../src/children'

/**
 * Nothing the doorbell starts outlives it: a process that started children through spawnChild is
 * SIGKILLed (no handler of its own runs), or crashes; its children are gone, checked by PID.
 */
const DEVICE = fileURLToPath(new URL('..', import.meta.url))
const FIXTURE = join(DEVICE, 'test/fixtures/spawnsChildren.ts')

/** Running (not a zombie waiting for a parent that is gone). */
function alive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch { return false }
}

async function parentWithChildren (args: string[] = []): Promise<{ parent: ChildProcess, pids: number[] }> {
  const parent = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { cwd: DEVICE, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const pids = await new Promise<number[]>((resolve, reject) => {
    parent.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line && out.includes('\n')) resolve((JSON.parse(line) as { pids: number[] }).pids)
    })
    parent.once('exit', (code) => { reject(new Error(`the parent exited (${code}) first`)) })
  })
  return { parent, pids }
}

async function gone (pids: number[], ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (pids.every((pid) => !alive(pid))) return true
    await sleep(20)
  }
  return false
}

test('this system has setpriv (util-linux): the parent-death signal is available', () => {
  assert.ok(setpriv() !== null, 'install util-linux: without setpriv a SIGKILL of the doorbell leaves its children running')
})

test('SIGKILL of the doorbell: every child it started through spawnChild dies with it (TERM and KILL)', async () => {
  const { parent, pids } = await parentWithChildren()
  assert.equal(pids.length, 2)
  assert.ok(pids.every(alive), 'both children run')
  const exited = new Promise((resolve) => parent.once('exit', resolve))
  parent.kill('SIGKILL')
  await exited
  assert.ok(await gone(pids), `children still running after the SIGKILL: ${pids.filter(alive).join(', ')}`)
})

test('a doorbell that crashes (uncaught error): its children are gone too', async () => {
  const { parent, pids } = await parentWithChildren(['crash'])
  const code = await new Promise((resolve) => parent.once('exit', resolve))
  assert.notEqual(code, 0)
  assert.ok(await gone(pids), `children still running after the crash: ${pids.filter(alive).join(', ')}`)
})

test('the child\'s PID is the program\'s own (setpriv execs it), and a missing program is an ENOENT error as with spawn', async () => {
  const child = spawnChild('sleep', ['5'], { stdio: 'ignore' })
  await sleep(100)
  assert.match(readFileSync(`/proc/${child.pid}/comm`, 'utf8'), /^sleep/)
  child.kill('SIGKILL')
  const missing = spawnChild('no-such-camera-tool', [], { stdio: 'ignore' })
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => missing.once('error', resolve))
  assert.equal(err.code, 'ENOENT')
  assert.equal(findProgram('no-such-camera-tool'), null)
  assert.match(findProgram('sleep') ?? '', /\/sleep$/)
})
