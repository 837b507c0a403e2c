import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate'
import { lockMachine, lockStateOf } from '@doorbell/machines'
import { newId, type LockState } from '@doorbell/core'
import type { LockDriver } from '../drivers'
import type { Logger } from '@doorbell/core'

export type UnlockResult = { ok: true, lock: LockState } | { ok: false, code: 'lock-fault' | 'busy', message: string, lock: LockState }

const UNLOCK_WAIT_MS = 5000

/**
 * The lock machine with the relay as its `driveLock` actor, plus the one question the
 * sessions ask: "open the door and tell me when it is open".
 */
export class LockControl {
  readonly actor: Actor<typeof lockMachine>
  private relockAt: number | null = null
  /** Viewers compare lock versions within one boot; a restart starts a new count. */
  private readonly boot = newId('b')
  private readonly listeners = new Set<(lock: LockState) => void>()
  /** Told before the others and before the log line: a call's data channel, where a resident waits for "Door open". */
  private readonly firstListeners = new Set<(lock: LockState) => void>()
  /** The log lines and the other listeners' news, in order, told a turn of the loop after the first listeners. */
  private readonly later: Array<() => void> = []

  constructor (driver: LockDriver, relockAfterMs: number, private readonly log: Logger, inspect?: (event: InspectionEvent) => void) {
    const machine = lockMachine.provide({
      actors: { driveLock: fromPromise<void, { open: boolean }>(async ({ input }) => { await driver.set(input.open) }) }
    })
    this.actor = createActor(machine, { input: { relockAfterMs }, id: 'lock', systemId: 'lock', ...(inspect ? { inspect } : {}) })
    let lastValue: unknown = null
    this.actor.subscribe((snap) => {
      if (snap.value === lastValue) return
      lastValue = snap.value
      this.relockAt = snap.matches('unlocked') ? Date.now() + snap.context.relockAfterMs : null
      const lock = this.state()
      // One listener that throws must not keep the others (the hub's retained state) from the truth.
      const tell = (l: (lock: LockState) => void): void => {
        try { l(lock) } catch (err) { this.log.error('a lock listener failed', { error: (err as Error).message }) }
      }
      for (const l of this.firstListeners) tell(l)
      // The rest (the log line, the retained state on every path: an MQTT publish, the mesh's
      // frames) waits a turn, each with the state it was told of: the call's report goes out
      // through werift's promise steps, which would wait behind that work, and the relay is
      // driven before the hub hears `unlocking` (docs/performance.md).
      this.defer(() => {
        this.log.info('lock', { status: lock.status, ...(lock.error ? { error: lock.error } : {}) })
        for (const l of this.listeners) tell(l)
      })
    })
  }

  start (): void { this.actor.start() }
  stop (): void {
    this.actor.stop()
    // What waited for its turn is told now, to the listeners still subscribed (the doorbell stops
    // its lock last: a path already closed by then hears nothing, as before this wait existed).
    this.flush()
  }

  private scheduled = false
  private defer (told: () => void): void {
    this.later.push(told)
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => { this.flush() })
  }

  /** Tells what waits, in order; one that throws does not keep the rest (or the next turn's) from being told. */
  private flush (): void {
    this.scheduled = false
    while (this.later.length > 0) {
      const told = this.later.shift()!
      try { told() } catch (err) { this.log.error('a lock report failed', { error: (err as Error).message }) }
    }
  }

  state (): LockState {
    return lockStateOf(this.actor.getSnapshot(), this.relockAt, this.boot)
  }

  /**
   * Each change of state, with that state. `first`: told at once, before the log line and the
   * other listeners (the hub's retained state), which are told a turn of the loop later, in order.
   */
  subscribe (listener: (lock: LockState) => void, o: { first?: boolean } = {}): () => void {
    const set = o.first === true ? this.firstListeners : this.listeners
    set.add(listener)
    return () => { set.delete(listener) }
  }

  /** Resolves once the driver confirms the door open, or says why it is not. */
  async unlock (by: string): Promise<UnlockResult> {
    const deadline = Date.now() + UNLOCK_WAIT_MS
    // A relock in progress finishes first; then the door opens again.
    while (this.actor.getSnapshot().matches('relocking') && Date.now() < deadline) {
      await this.next()
    }
    const before = this.actor.getSnapshot()
    if (before.matches('fault')) {
      return { ok: false, code: 'lock-fault', message: `the lock has a fault: ${before.context.error ?? 'unknown'}`, lock: this.state() }
    }
    this.actor.send({ type: 'UNLOCK', by })
    while (Date.now() < deadline) {
      const snap = this.actor.getSnapshot()
      if (snap.matches('unlocked')) return { ok: true, lock: this.state() }
      if (snap.matches('fault')) return { ok: false, code: 'lock-fault', message: `the lock did not open: ${snap.context.error ?? 'unknown'}`, lock: this.state() }
      if (!snap.matches('unlocking') && !snap.matches('relocking')) break
      await this.next()
    }
    return { ok: false, code: 'busy', message: 'the lock did not confirm in time', lock: this.state() }
  }

  private async next (): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { sub.unsubscribe(); resolve() }, UNLOCK_WAIT_MS)
      const sub = this.actor.subscribe(() => { clearTimeout(timer); sub.unsubscribe(); resolve() })
    })
  }
}
