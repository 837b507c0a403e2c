import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromPromise } from 'xstate'
import { lockMachine } from '../src/index'

/** Lets promise callbacks (the driver's confirmation) reach the machine. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

interface Drive {
  open: boolean
  signal: AbortSignal
  confirm: () => void
  fail: (error: unknown) => void
}

/**
 * A lock with a driver the test answers by hand, a simulated clock, and a log of every
 * status it reported (in order, repeats collapsed) and every version.
 */
function startLock (input: { relockAfterMs: number, faultRetryMs?: number } = { relockAfterMs: 5000, faultRetryMs: 2000 }) {
  const drives: Drive[] = []
  const machine = lockMachine.provide({
    actors: {
      driveLock: fromPromise<void, { open: boolean }>(({ input, signal }) => new Promise<void>((resolve, reject) => {
        drives.push({ open: input.open, signal, confirm: resolve, fail: reject })
      }))
    }
  })
  const clock = new SimulatedClock()
  const actor = createActor(machine, { input, clock })
  const statuses: string[] = []
  const versions: number[] = []
  actor.subscribe((s) => {
    if (statuses.at(-1) !== s.value) statuses.push(s.value)
    if (versions.at(-1) !== s.context.version) versions.push(s.context.version)
  })
  actor.start()
  const lastDrive = (): Drive => {
    const d = drives.at(-1)
    assert.ok(d, 'the driver was never called')
    return d
  }
  const status = (): string => actor.getSnapshot().value
  return { actor, clock, drives, statuses, versions, lastDrive, status }
}

/** A started lock whose first relock the driver has confirmed. */
async function lockedLock (input?: { relockAfterMs: number, faultRetryMs?: number }) {
  const lock = startLock(input)
  lock.lastDrive().confirm()
  await settle()
  assert.equal(lock.status(), 'locked')
  return lock
}

/** A lock that is open: UNLOCK sent and the driver confirmed. */
async function unlockedLock (input?: { relockAfterMs: number, faultRetryMs?: number }) {
  const lock = await lockedLock(input)
  lock.actor.send({ type: 'UNLOCK', by: 'v1' })
  lock.lastDrive().confirm()
  await settle()
  assert.equal(lock.status(), 'unlocked')
  return lock
}

describe('lock: fail-secure start', () => {
  test('starts by driving the relay to locked and reports relocking until the driver confirms', async () => {
    const { drives, status, lastDrive } = startLock()
    assert.equal(status(), 'relocking')
    assert.equal(drives.length, 1)
    assert.equal(drives[0]!.open, false)
    lastDrive().confirm()
    await settle()
    assert.equal(status(), 'locked')
  })

  test('never reports locked while the driver has not confirmed, however long it takes', async () => {
    const { clock, status } = startLock()
    clock.increment(10 * 60_000)
    await settle()
    assert.equal(status(), 'relocking')
  })

  test('a start where the relay fails is a fault, not locked', async () => {
    const { lastDrive, status, actor, statuses } = startLock()
    lastDrive().fail(new Error('GPIO busy'))
    await settle()
    assert.equal(status(), 'fault')
    assert.equal(actor.getSnapshot().context.error, 'GPIO busy')
    assert.deepEqual(statuses, ['relocking', 'fault'])
  })
})

describe('lock: open and relock', () => {
  test('UNLOCK drives the relay open, reports unlocking, then unlocked when confirmed', async () => {
    const { actor, drives, status, lastDrive } = await lockedLock()
    actor.send({ type: 'UNLOCK', by: 'v1' })
    assert.equal(status(), 'unlocking')
    assert.equal(lastDrive().open, true)
    assert.equal(drives.length, 2)
    lastDrive().confirm()
    await settle()
    assert.equal(status(), 'unlocked')
  })

  test('relocks by itself exactly relockAfterMs after opening', async () => {
    const { clock, status, lastDrive, drives } = await unlockedLock({ relockAfterMs: 5000 })
    clock.increment(4999)
    assert.equal(status(), 'unlocked')
    clock.increment(1)
    assert.equal(status(), 'relocking')
    assert.equal(lastDrive().open, false)
    assert.equal(drives.length, 3)
    lastDrive().confirm()
    await settle()
    assert.equal(status(), 'locked')
  })

  test('the whole cycle reports locked, unlocking, unlocked, relocking, locked', async () => {
    const { clock, lastDrive, statuses } = await unlockedLock({ relockAfterMs: 1000 })
    clock.increment(1000)
    lastDrive().confirm()
    await settle()
    assert.deepEqual(statuses, ['relocking', 'locked', 'unlocking', 'unlocked', 'relocking', 'locked'])
  })

  test('UNLOCK while unlocked restarts the countdown without driving the relay again', async () => {
    const { actor, clock, status, drives } = await unlockedLock({ relockAfterMs: 5000 })
    const drivesBefore = drives.length
    clock.increment(4000)
    actor.send({ type: 'UNLOCK', by: 'v2' })
    assert.equal(drives.length, drivesBefore)
    clock.increment(4999) // 8999 ms after the first open: the first countdown would have ended
    assert.equal(status(), 'unlocked')
    clock.increment(1)
    assert.equal(status(), 'relocking')
  })

  test('a second UNLOCK never extends the door past one period from the last request', async () => {
    const { actor, clock, status } = await unlockedLock({ relockAfterMs: 5000 })
    actor.send({ type: 'UNLOCK', by: 'v1' })
    actor.send({ type: 'UNLOCK', by: 'v1' })
    clock.increment(5000)
    assert.equal(status(), 'relocking')
  })

  test('UNLOCK while the relay is still moving is ignored', async () => {
    const lock = startLock()
    lock.actor.send({ type: 'UNLOCK', by: 'v1' }) // during the first relock
    assert.equal(lock.status(), 'relocking')
    assert.equal(lock.drives.length, 1)
    lock.lastDrive().confirm()
    await settle()
    lock.actor.send({ type: 'UNLOCK', by: 'v1' })
    lock.actor.send({ type: 'UNLOCK', by: 'v2' }) // during unlocking
    assert.equal(lock.status(), 'unlocking')
    assert.equal(lock.drives.length, 2)
  })
})

describe('lock: driver errors', () => {
  test('an error while opening leads to fault, never to unlocked', async () => {
    const { actor, lastDrive, status, statuses, clock } = await lockedLock({ relockAfterMs: 5000, faultRetryMs: 2000 })
    actor.send({ type: 'UNLOCK', by: 'v1' })
    lastDrive().fail(new Error('relay stuck'))
    await settle()
    assert.equal(status(), 'fault')
    assert.equal(actor.getSnapshot().context.error, 'relay stuck')
    clock.increment(60_000)
    await settle()
    assert.ok(!statuses.includes('unlocked'), `reported ${statuses.join(' -> ')}`)
  })

  test('UNLOCK during a fault does not drive the relay open', async () => {
    const { actor, lastDrive, status, drives } = await lockedLock()
    actor.send({ type: 'UNLOCK', by: 'v1' })
    lastDrive().fail(new Error('relay stuck'))
    await settle()
    const before = drives.length
    actor.send({ type: 'UNLOCK', by: 'v1' })
    assert.equal(status(), 'fault')
    assert.equal(drives.length, before)
  })

  test('from a fault it tries to lock again after faultRetryMs', async () => {
    const { actor, clock, lastDrive, status } = await lockedLock({ relockAfterMs: 5000, faultRetryMs: 2000 })
    actor.send({ type: 'UNLOCK', by: 'v1' })
    lastDrive().fail(new Error('relay stuck'))
    await settle()
    clock.increment(1999)
    assert.equal(status(), 'fault')
    clock.increment(1)
    assert.equal(status(), 'relocking')
    assert.equal(lastDrive().open, false)
  })

  test('a successful retry locks and clears the error', async () => {
    const { actor, clock, lastDrive, status } = startLock({ relockAfterMs: 5000, faultRetryMs: 2000 })
    lastDrive().fail(new Error('GPIO busy'))
    await settle()
    clock.increment(2000)
    lastDrive().confirm()
    await settle()
    assert.equal(status(), 'locked')
    assert.equal(actor.getSnapshot().context.error, null)
  })

  test('keeps retrying while the driver keeps failing', async () => {
    const { clock, lastDrive, status, drives } = startLock({ relockAfterMs: 5000, faultRetryMs: 1000 })
    for (let i = 0; i < 3; i++) {
      lastDrive().fail(new Error(`attempt ${i}`))
      await settle()
      assert.equal(status(), 'fault')
      clock.increment(1000)
    }
    assert.equal(drives.length, 4)
    assert.ok(drives.every((d) => !d.open))
  })

  test('RETRY tries to lock at once', async () => {
    const { actor, lastDrive, status, drives } = startLock()
    lastDrive().fail(new Error('GPIO busy'))
    await settle()
    actor.send({ type: 'RETRY' })
    assert.equal(status(), 'relocking')
    assert.equal(drives.length, 2)
  })

  test('retries after 5 s when faultRetryMs is not given', async () => {
    const { clock, lastDrive, status } = startLock({ relockAfterMs: 5000 })
    lastDrive().fail(new Error('GPIO busy'))
    await settle()
    clock.increment(4999)
    assert.equal(status(), 'fault')
    clock.increment(1)
    assert.equal(status(), 'relocking')
  })

  test('keeps a readable error: non-Error rejections as text, at most 200 characters', async () => {
    const a = startLock()
    a.lastDrive().fail('EIO')
    await settle()
    assert.equal(a.actor.getSnapshot().context.error, 'EIO')

    const b = startLock()
    b.lastDrive().fail(new Error('x'.repeat(500)))
    await settle()
    assert.equal(b.actor.getSnapshot().context.error, 'x'.repeat(200))
  })
})

describe('lock: version', () => {
  test('grows by one on every change of state, reopening included', async () => {
    const { actor, clock, lastDrive, versions } = await unlockedLock({ relockAfterMs: 5000 })
    actor.send({ type: 'UNLOCK', by: 'v2' }) // re-entering unlocked is a change: relockAt moves
    clock.increment(5000)
    lastDrive().confirm()
    await settle()
    // relocking, locked, unlocking, unlocked, unlocked again, relocking, locked
    assert.deepEqual(versions, [1, 2, 3, 4, 5, 6, 7])
  })

  test('grows on a fault and on the retry', async () => {
    const { lastDrive, clock, versions } = startLock({ relockAfterMs: 5000, faultRetryMs: 1000 })
    lastDrive().fail(new Error('GPIO busy'))
    await settle()
    clock.increment(1000)
    assert.deepEqual(versions, [1, 2, 3])
  })

  test('does not change when nothing happens', async () => {
    const { actor, clock } = await lockedLock()
    const v = actor.getSnapshot().context.version
    clock.increment(60_000)
    actor.send({ type: 'RETRY' }) // not in fault: ignored
    assert.equal(actor.getSnapshot().context.version, v)
  })
})

describe('lock: stopping', () => {
  test('stopping the lock aborts a drive in progress', () => {
    const { actor, lastDrive } = startLock()
    const drive = lastDrive()
    assert.equal(drive.signal.aborted, false)
    actor.stop()
    assert.equal(drive.signal.aborted, true)
  })
})
