import { test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryLogger, type LockState, type LockStatus } from '@doorbell/core'
import { LockControl } from '../src/lock/lockControl'
import { SimulatedLock } from '../src/drivers/simulated'

const RELOCK_MS = 200
/** The log line and the other listeners are told a turn of the loop after a change. */
const turn = async (): Promise<void> => { await new Promise((resolve) => { setImmediate(resolve) }) }

interface Rig {
  control: LockControl
  relay: SimulatedLock
  printed: string[]
  lines: string[]
  /** Every status the lock reported, in order. */
  statuses: LockStatus[]
  /** Resolves with the first report matching `check`, or rejects after `timeoutMs`. */
  until: (what: string, check: (lock: LockState) => boolean, timeoutMs?: number) => Promise<LockState>
}

function rig (t: { after: (fn: () => void) => void }, relockAfterMs = RELOCK_MS): Rig {
  const printed: string[] = []
  const lines: string[] = []
  const relay = new SimulatedLock((line) => { printed.push(line) })
  const control = new LockControl(relay, relockAfterMs, memoryLogger(lines, 'lock'))
  const statuses: LockStatus[] = []
  control.subscribe((lock) => { statuses.push(lock.status) })
  // Stopping the actor also cancels its relock and fault-retry timers.
  t.after(() => { control.stop() })
  const until = async (what: string, check: (lock: LockState) => boolean, timeoutMs = 3000): Promise<LockState> => {
    if (check(control.state())) return control.state()
    return await new Promise<LockState>((resolve, reject) => {
      const timer = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${what} (lock is ${control.state().status})`)) }, timeoutMs)
      const off = control.subscribe((lock) => {
        if (!check(lock)) return
        clearTimeout(timer)
        off()
        resolve(lock)
      })
    })
  }
  control.start()
  return { control, relay, printed, lines, statuses, until }
}

test('the lock starts by driving the relay to locked (fail-secure)', { timeout: 5000 }, async (t) => {
  const r = rig(t)
  const lock = await r.until('locked', (l) => l.status === 'locked')
  assert.equal(lock.relockAt, null)
  assert.equal(lock.error, null)
  assert.equal(r.relay.open, false)
  assert.deepEqual(r.printed, ['DOOR LOCKED'])
})

test('unlock() resolves once the door is open, with the time it will relock', { timeout: 5000 }, async (t) => {
  const r = rig(t)
  await r.until('locked', (l) => l.status === 'locked')
  const before = Date.now()
  const result = await r.control.unlock('kitchen')
  assert.equal(result.ok, true)
  assert.equal(result.lock.status, 'unlocked')
  assert.equal(result.lock.error, null)
  assert.ok(result.lock.relockAt !== null && result.lock.relockAt > Date.now(), 'relockAt is in the future')
  assert.ok(result.lock.relockAt <= Date.now() + RELOCK_MS + 50, 'relockAt is about relockAfterMs away')
  assert.ok(result.lock.relockAt >= before + RELOCK_MS - 5)
  assert.equal(r.relay.open, true, 'the relay confirmed open before unlock() resolved')
  // Its narration a turn later, once whoever waited has been told (simulated.ts).
  assert.deepEqual(r.printed, ['DOOR LOCKED'])
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(r.printed, ['DOOR LOCKED', 'DOOR UNLOCKED'])
})

test('the door relocks by itself after relockAfterMs', { timeout: 5000 }, async (t) => {
  const r = rig(t)
  await r.until('locked', (l) => l.status === 'locked')
  const result = await r.control.unlock('kitchen')
  assert.equal(result.ok, true)
  const openedAt = Date.now()
  const relocked = await r.until('the relock', (l) => l.status === 'locked', 2000)
  const openFor = Date.now() - openedAt
  assert.ok(openFor >= RELOCK_MS - 20, `stayed open for the relock time (${openFor} ms)`)
  assert.ok(openFor < RELOCK_MS + 1000, `relocked promptly (${openFor} ms)`)
  assert.equal(relocked.relockAt, null)
  assert.equal(r.relay.open, false)
  assert.deepEqual(r.printed, ['DOOR LOCKED', 'DOOR UNLOCKED', 'DOOR LOCKED'])
  assert.deepEqual(r.statuses.slice(-4), ['unlocking', 'unlocked', 'relocking', 'locked'])
  assert.ok(relocked.version > result.lock.version, 'every change bumps the version')
})

test('a relay that fails makes unlock() answer lock-fault; the door never reports unlocked', { timeout: 5000 }, async (t) => {
  const r = rig(t)
  await r.until('locked', (l) => l.status === 'locked')
  const seenBefore = r.statuses.length
  r.relay.failNext()
  const result = await r.control.unlock('kitchen')
  assert.equal(result.ok, false)
  assert.ok(!result.ok && result.code === 'lock-fault', `code is lock-fault (${JSON.stringify(result)})`)
  assert.match(result.ok ? '' : result.message, /simulated relay failure/)
  assert.equal(result.lock.status, 'fault')
  assert.match(result.lock.error ?? '', /simulated relay failure/)
  assert.equal(r.control.state().status, 'fault')
  assert.equal(r.relay.open, false, 'the relay never opened')
  assert.ok(!r.printed.includes('DOOR UNLOCKED'))
  await turn()
  assert.ok(!r.statuses.slice(seenBefore).includes('unlocked'), `statuses: ${r.statuses.join(' > ')}`)
  assert.ok(r.lines.some((l) => /status=fault/.test(l) && /simulated relay failure/.test(l)), 'the fault is logged with its cause')

  // While the fault lasts, another unlock is refused at once rather than driving a broken relay.
  const again = await r.control.unlock('kitchen')
  assert.ok(!again.ok && again.code === 'lock-fault')
  assert.equal(r.relay.open, false)

  // Out of fault, the lock first drives the relay to locked again, then it may open.
  r.control.actor.send({ type: 'RETRY' })
  await r.until('locked after the fault', (l) => l.status === 'locked')
  assert.equal(r.control.state().error, null)
  const third = await r.control.unlock('kitchen')
  assert.equal(third.ok, true)
  assert.equal(r.relay.open, true)
})

test('a `first` listener (a call\'s data channel) is told at once; the log line and the other listeners a turn later, in order', { timeout: 5000 }, async (t) => {
  const r = rig(t)
  await r.until('locked', (l) => l.status === 'locked')
  const order: string[] = []
  // Subscribed before it, as the doorbell's hub state is: still told after it.
  const offHub = r.control.subscribe((lock) => { order.push(`hub ${lock.status}`) })
  const offCall = r.control.subscribe((lock) => {
    order.push(`call ${lock.status}`)
    // The log line for this change is not written yet.
    order.push(`logged ${r.lines.filter((l) => l.includes(`status=${lock.status}`)).length}`)
  }, { first: true })
  const loggedBefore = r.lines.filter((l) => l.includes('status=unlocked')).length
  assert.equal(loggedBefore, 0)
  assert.equal((await r.control.unlock('kitchen')).ok, true)
  // The relay is driven and the call told `unlocked` before the log and the hub hear of `unlocking`.
  assert.deepEqual(order, ['call unlocking', 'logged 0', 'call unlocked', 'logged 0'])
  assert.equal(r.relay.open, true)
  await turn()
  // A turn later: the others, each with the state it was told of, in order.
  assert.deepEqual(order.slice(4), ['hub unlocking', 'hub unlocked'])
  assert.equal(r.lines.filter((l) => l.includes('status=unlocked')).length, 1, 'and then it is logged')
  // Each unsubscribes from its own list.
  offCall()
  offHub()
  await r.until('the relock', (l) => l.status === 'locked', 2000)
  assert.equal(order.length, 6, 'neither is told after unsubscribing')
})

test('a listener that throws does not keep the others, or the log line, from the change', { timeout: 5000 }, async (t) => {
  const r = rig(t)
  await r.until('locked', (l) => l.status === 'locked')
  const told: string[] = []
  const off1 = r.control.subscribe(() => { throw new Error('the call channel is gone') }, { first: true })
  const off2 = r.control.subscribe((lock) => { told.push(lock.status) })
  assert.equal((await r.control.unlock('kitchen')).ok, true)
  await r.until('unlocked', (l) => l.status === 'unlocked')
  await turn()
  assert.ok(told.includes('unlocked'), `the hub's listener was told: ${told.join(', ')}`)
  assert.ok(r.lines.some((l) => l.includes('status=unlocked')), 'the change is logged')
  assert.ok(r.lines.some((l) => /a lock listener failed/.test(l) && /the call channel is gone/.test(l)), 'the failure is logged')
  off1()
  off2()
})

test('a report that throws in its turn does not keep the next ones (or the next changes) from the other listeners', { timeout: 5000 }, async (t) => {
  const lines: string[] = []
  const base = memoryLogger(lines, 'lock')
  let failOnce = true
  // A log line that throws once (a broken log sink): it runs in the turn-later report.
  const log = Object.assign(Object.create(base) as typeof base, {
    info (msg: string, data?: Record<string, unknown>): void {
      if (failOnce && msg === 'lock') { failOnce = false; throw new Error('log sink gone') }
      base.info(msg, data)
    }
  })
  const control = new LockControl(new SimulatedLock(() => {}), RELOCK_MS, log)
  const told: string[] = []
  control.subscribe((lock) => { told.push(lock.status) })
  t.after(() => { control.stop() })
  control.start()
  await turn()
  assert.equal((await control.unlock('kitchen')).ok, true)
  await turn()
  await new Promise((resolve) => { setTimeout(resolve, RELOCK_MS + 300) })
  assert.ok(lines.some((l) => /a lock report failed/.test(l) && /log sink gone/.test(l)), `the failure is logged: ${lines.join(' | ')}`)
  assert.ok(told.includes('unlocked') && told.at(-1) === 'locked', `the hub's listener kept being told: ${told.join(' > ')}`)
})
