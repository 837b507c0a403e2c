import { assign, fromPromise, setup } from 'xstate'
import { describeError } from '@doorbell/core'

/**
 * The door lock. Fail-secure: it starts by driving the relay to locked and reports
 * `relocking` until the driver confirms. A driver error leads to `fault`, never to a
 * position the driver did not confirm; from `fault` it keeps trying to lock.
 */
export interface LockInput {
  relockAfterMs: number
  /** Retry locking this long after a fault. */
  faultRetryMs?: number
}

export interface LockContext {
  relockAfterMs: number
  faultRetryMs: number
  /** Grows on every change of state, so that a viewer can keep the newest report. */
  version: number
  error: string | null
}

export type LockEvent =
  | { type: 'UNLOCK', by: string }
  | { type: 'RETRY' }

export const lockMachine = setup({
  types: {
    context: {} as LockContext,
    input: {} as LockInput,
    events: {} as LockEvent
  },
  actors: {
    /** Supplied by the device: moves the relay and resolves when the driver confirms. */
    driveLock: fromPromise<void, { open: boolean }>(async () => {
      throw new Error('driveLock was not provided')
    })
  },
  actions: {
    changed: assign({ version: ({ context }) => context.version + 1 }),
    clearError: assign({ error: null }),
    keepError: assign({ error: ({ event }) => describeError((event as { error?: unknown }).error).slice(0, 200) })
  },
  delays: {
    relockDelay: ({ context }) => context.relockAfterMs,
    faultRetry: ({ context }) => context.faultRetryMs
  }
}).createMachine({
  id: 'lock',
  context: ({ input }) => ({
    relockAfterMs: input.relockAfterMs,
    faultRetryMs: input.faultRetryMs ?? 5000,
    version: 0,
    error: null
  }),
  initial: 'relocking',
  states: {
    locked: {
      entry: 'changed',
      on: { UNLOCK: 'unlocking' }
    },
    unlocking: {
      entry: 'changed',
      invoke: {
        src: 'driveLock',
        input: { open: true },
        onDone: { target: 'unlocked', actions: 'clearError' },
        onError: { target: 'fault', actions: 'keepError' }
      }
    },
    unlocked: {
      entry: 'changed',
      after: { relockDelay: 'relocking' },
      // Another open-door while open restarts the countdown; it never extends it past one period.
      on: { UNLOCK: { target: 'unlocked', reenter: true } }
    },
    relocking: {
      entry: 'changed',
      invoke: {
        src: 'driveLock',
        input: { open: false },
        onDone: { target: 'locked', actions: 'clearError' },
        onError: { target: 'fault', actions: 'keepError' }
      }
    },
    fault: {
      entry: 'changed',
      after: { faultRetry: 'relocking' },
      on: { RETRY: 'relocking' }
    }
  }
})
