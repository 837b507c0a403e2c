import { assign, fromPromise, setup } from 'xstate'
import { describeError } from '@doorbell/core'
import { BACKOFF, backoffDelay, type BackoffPolicy } from './backoff'

/**
 * The doorbell's connection as master of its KVS signaling channel (the cloud path's offer/answer
 * carriage). KVS cuts a connection after an hour and one idle for 10 minutes, so the connection
 * is renewed before either: a new one is prepared and opened while the current one still
 * carries offers, and the current one is retired only once the new one is open (KVS routes to the
 * newest master connection). Any other close or error: retry with the shared backoff (reset once
 * open); a connection that fails to open also forgets the channel's endpoint (it may have moved).
 *
 * States (one attempt at a time; `connected` says whether a connection is open meanwhile):
 * - `preparing`: the `prepare` actor runs the control plane (DescribeSignalingChannel,
 *   GetSignalingChannelEndpoint, ICE servers when stale) and makes the pending client.
 * - `opening`: the pending client is opened (`openPending`); OPENED, PENDING_FAILED, or `openTimeout`.
 * - `open`: the current connection carries messages; `renewAge` after it opened, or `idleRenew`
 *   after the last message sent (SENT), a renewal starts.
 * - `backoff`: waiting the shared backoff before the next attempt.
 *
 * The runtime (device/src/paths/cloud/kvsMaster.ts) holds the clients and supplies `prepare`,
 * `openPending`, `promote` (pending → current; the previous one retired), `retirePending`,
 * `forgetChannel`, `up`/`down` and what to log. CURRENT_LOST: the open connection closed by itself.
 */

export type KvsReason = 'start' | 'renew' | 'reconnect'

export interface KvsMasterInput {
  /** Open a new connection this long after the current one opened (default 3300 s; KVS closes at 3600). */
  renewAfterMs?: number
  /** Open a new connection this long after the last message sent (default 540 s; KVS closes one idle for 600). */
  idleRenewMs?: number
  /** A connection not open after this long counts as failed (default 15 s). */
  openTimeoutMs?: number
  backoff?: BackoffPolicy
}

export interface KvsMasterContext {
  renewAfterMs: number
  idleRenewMs: number
  openTimeoutMs: number
  backoff: BackoffPolicy
  /** A connection is open (it may be being renewed). */
  connected: boolean
  /** Why the attempt under way was started. */
  reason: KvsReason
  /** Retries since a connection last opened: the backoff's exponent. */
  attempt: number
  /** The wait of the backoff under way. */
  waitMs: number
  /** Failed attempts since a connection was last open (the runtime logs only some of them). */
  failures: number
  /** Why the last attempt failed. */
  lastError: string | null
}

export type KvsMasterEvent =
  | { type: 'OPENED' }
  | { type: 'PENDING_FAILED', error: string }
  | { type: 'CURRENT_LOST', error: string }
  | { type: 'SENT' }

/** The first few failures in a row are worth logging, then every 20th (a doorbell may be offline for days). */
export function loudFailure (failures: number): boolean {
  return failures <= 3 || failures % 20 === 0
}


export const kvsMasterMachine = setup({
  types: {
    context: {} as KvsMasterContext,
    input: {} as KvsMasterInput,
    events: {} as KvsMasterEvent
  },
  actors: {
    /** Control plane, credentials, the pending client; the default has no cloud to ask. */
    prepare: fromPromise<void, { reason: KvsReason, failures: number }>(async () => { throw new Error('no KVS control plane') })
  },
  actions: {
    openPending: () => {},
    promote: () => {},
    retirePending: () => {},
    forgetChannel: () => {},
    up: () => {},
    down: () => {},
    /** Log lines; each reads the context (and the event) it is given. */
    logPrepareFailed: () => {},
    logOpenFailed: () => {},
    logLost: () => {},
    logLostWhileRenewing: () => {},
    logReconnecting: () => {},
    connectedNow: assign({ connected: true, attempt: 0, failures: 0, lastError: null }),
    lostCurrent: assign({ connected: false }),
    prepareFailed: assign(({ context, event }) => ({
      failures: context.failures + 1,
      lastError: describeError((event as { error?: unknown }).error)
    })),
    openFailed: assign(({ context, event }) => ({
      failures: context.failures + 1,
      lastError: event.type === 'PENDING_FAILED' ? event.error : `not open after ${context.openTimeoutMs} ms`
    })),
    nextWait: assign(({ context }) => ({ waitMs: backoffDelay(context.attempt, context.backoff), attempt: context.attempt + 1 })),
    renewing: assign({ reason: 'renew' as KvsReason }),
    retrying: assign(({ context }) => ({ reason: (context.connected ? 'renew' : 'reconnect') as KvsReason }))
  },
  guards: {
    /** A connection is open (a new one is being made to renew it, or it is the one lost). */
    renewingNow: ({ context }) => context.connected
  },
  delays: {
    openTimeout: ({ context }) => context.openTimeoutMs,
    renewAge: ({ context }) => context.renewAfterMs,
    idleRenew: ({ context }) => context.idleRenewMs,
    backoff: ({ context }) => context.waitMs
  }
}).createMachine({
  id: 'kvsMaster',
  context: ({ input }) => ({
    renewAfterMs: input.renewAfterMs ?? 3_300_000,
    idleRenewMs: input.idleRenewMs ?? 540_000,
    openTimeoutMs: input.openTimeoutMs ?? 15_000,
    backoff: input.backoff ?? BACKOFF.kvsMaster,
    connected: false,
    reason: 'start',
    attempt: 0,
    waitMs: 0,
    failures: 0,
    lastError: null
  }),
  initial: 'preparing',
  on: {
    // The open connection closed by itself. While a new one is being made, that attempt decides what follows.
    CURRENT_LOST: { guard: 'renewingNow', actions: ['lostCurrent', 'logLostWhileRenewing', 'down'] }
  },
  states: {
    preparing: {
      invoke: {
        src: 'prepare',
        input: ({ context }) => ({ reason: context.reason, failures: context.failures }),
        onDone: 'opening',
        onError: { target: 'backoff', actions: ['forgetChannel', 'prepareFailed', 'logPrepareFailed'] }
      },
      on: { CURRENT_LOST: { guard: 'renewingNow', actions: ['lostCurrent', 'logLost', 'down'] } }
    },
    opening: {
      entry: 'openPending',
      on: {
        OPENED: [
          { guard: 'renewingNow', target: 'open', actions: ['promote', 'connectedNow'] },
          { target: 'open', actions: ['promote', 'connectedNow', 'up'] }
        ],
        PENDING_FAILED: { target: 'backoff', actions: ['retirePending', 'forgetChannel', 'openFailed', 'logOpenFailed'] }
      },
      after: {
        openTimeout: { target: 'backoff', actions: ['retirePending', 'forgetChannel', 'openFailed', 'logOpenFailed'] }
      }
    },
    open: {
      after: { renewAge: { target: 'preparing', actions: 'renewing' } },
      on: {
        CURRENT_LOST: { guard: 'renewingNow', target: 'backoff', actions: ['lostCurrent', 'logLost', 'down'] },
        // Each message sent pushes the idle renewal back.
        SENT: '.sending'
      },
      initial: 'sending',
      states: {
        sending: { after: { idleRenew: { target: '#kvsMaster.preparing', actions: 'renewing' } } }
      }
    },
    backoff: {
      entry: ['nextWait', 'logReconnecting'],
      after: { backoff: { target: 'preparing', actions: 'retrying' } },
      on: { CURRENT_LOST: { guard: 'renewingNow', actions: ['lostCurrent', 'logLost', 'down'] } }
    }
  }
})
