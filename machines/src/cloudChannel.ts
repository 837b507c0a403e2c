import { assign, fromPromise, setup } from 'xstate'

/**
 * A viewer's KVS signaling connection (role VIEWER) to one doorbell's channel, the cloud path's
 * carriage for offers and byes. Opened on first use (an offer, or a ring that warms it), closed
 * when idle (KVS closes idle connections at 10 minutes, and each costs the account), never
 * retried by itself: the offers waiting on a channel that fails fail at once with what to do,
 * and the next call opens a new one (a resident is waiting: a backoff would only hide the reason).
 *
 * States: `starting` (`connecting`: the control plane and the SDK client, the `connect` actor;
 * `opening`: the WebSocket, `openClient`), all within `openTimeout`; `open` (closed after `idle`
 * unless a call still needs it: the `inUse` guard); then `failed` or `closed`, both final.
 *
 * The runtime (viewer/src/lib/paths/cloud/cloudClient.ts) holds the client and the queue, and
 * supplies `connect`, `openClient`, `flush` (send what waited), `failChannel` (the waiting
 * offers fail with `context.error`), `closeIdle`, `closedUnderCall` and `inUse`.
 */

export interface CloudChannelInput {
  /** How long opening (control plane + WebSocket) may take (default 15 s). */
  openTimeoutMs?: number
  /** A connection unused this long is closed (default 5 min; KVS closes idle ones at 10). */
  idleMs?: number
}

export interface CloudChannelContext {
  openTimeoutMs: number
  idleMs: number
  /** Why the channel failed, for a resident. */
  error: string | null
}

export type CloudChannelEvent =
  | { type: 'OPENED' }
  /** The WebSocket was refused before it opened, or could not be made. */
  | { type: 'REFUSED', message: string }
  /** The open connection closed. */
  | { type: 'CLOSED' }
  /** Used: the idle timer starts over. */
  | { type: 'TOUCH' }

export const cloudChannelMachine = setup({
  types: {
    context: {} as CloudChannelContext,
    input: {} as CloudChannelInput,
    events: {} as CloudChannelEvent
  },
  actors: {
    /** ARN and endpoint, then the SDK client; rejects with a message for a resident. The default has no cloud. */
    connect: fromPromise<void>(async () => { throw new Error('the cloud path is not available') })
  },
  actions: {
    openClient: () => {},
    flush: () => {},
    failChannel: () => {},
    closeIdle: () => {},
    closedUnderCall: () => {},
    connectFailed: assign({ error: ({ event }) => {
      const error = (event as { error?: unknown }).error
      return error instanceof Error ? error.message : String(error)
    } }),
    refused: assign({ error: ({ event }) => event.type === 'REFUSED' ? event.message : null }),
    timedOut: assign({ error: 'the cloud signaling channel did not open in time: check the internet connection' })
  },
  guards: {
    /** Something still waits on the channel, or a call with the doorbell is in progress (its bye must arrive). */
    inUse: () => false
  },
  delays: {
    openTimeout: ({ context }) => context.openTimeoutMs,
    idle: ({ context }) => context.idleMs
  }
}).createMachine({
  id: 'cloudChannel',
  context: ({ input }) => ({
    openTimeoutMs: input.openTimeoutMs ?? 15_000,
    idleMs: input.idleMs ?? 5 * 60_000,
    error: null
  }),
  initial: 'starting',
  states: {
    starting: {
      initial: 'connecting',
      after: { openTimeout: { target: 'failed', actions: ['timedOut', 'failChannel'] } },
      on: { REFUSED: { target: 'failed', actions: ['refused', 'failChannel'] } },
      states: {
        connecting: {
          invoke: {
            src: 'connect',
            onDone: 'opening',
            onError: { target: '#cloudChannel.failed', actions: ['connectFailed', 'failChannel'] }
          }
        },
        opening: {
          entry: 'openClient',
          on: { OPENED: '#cloudChannel.open' }
        }
      }
    },
    open: {
      entry: 'flush',
      on: {
        // Used: the idle timer starts over (only `used` is entered again).
        TOUCH: '.used',
        CLOSED: { target: 'closed', actions: 'closedUnderCall' }
      },
      initial: 'used',
      states: {
        used: {
          after: {
            idle: [
              { guard: 'inUse', target: 'used', reenter: true },
              { target: '#cloudChannel.closed', actions: 'closeIdle' }
            ]
          }
        }
      }
    },
    failed: { type: 'final' },
    closed: { type: 'final' }
  }
})
