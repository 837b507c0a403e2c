import { assign, fromPromise, setup } from 'xstate'

/**
 * The KVS master's TURN servers, kept fresh: fetched when the connection is prepared and they are
 * stale (FETCH), then again `refreshMs` later (before their Ttl runs out, as the runtime computes
 * from the answer); a failed fetch keeps the last known ones and is tried again after `retryMs`.
 *
 * The runtime (device/src/paths/cloud/kvsMaster.ts) supplies `fetchIce`, which resolves to the
 * wait before the next refresh, or to null when there is no channel to ask about yet (then the
 * machine idles until the next FETCH).
 */

export interface KvsIceInput {
  /** After a failed fetch (default 30 s). */
  retryMs?: number
}

export interface KvsIceContext {
  retryMs: number
  /** The wait before the next refresh, from the last answer. */
  refreshMs: number
}

export type KvsIceEvent = { type: 'FETCH' }

export const kvsIceMachine = setup({
  types: {
    context: {} as KvsIceContext,
    input: {} as KvsIceInput,
    events: {} as KvsIceEvent
  },
  actors: {
    fetchIce: fromPromise<number | null>(async () => { throw new Error('no KVS control plane') })
  },
  guards: {
    noChannel: ({ event }) => (event as { output?: unknown }).output === null
  },
  delays: {
    refresh: ({ context }) => context.refreshMs,
    retry: ({ context }) => context.retryMs
  }
}).createMachine({
  id: 'kvsIce',
  context: ({ input }) => ({ retryMs: input.retryMs ?? 30_000, refreshMs: 0 }),
  initial: 'idle',
  states: {
    idle: { on: { FETCH: 'fetching' } },
    // A FETCH while fetching is the same fetch: whoever asked waits for it.
    fetching: {
      invoke: {
        src: 'fetchIce',
        onDone: [
          { guard: 'noChannel', target: 'idle' },
          { target: 'fresh', actions: assign({ refreshMs: ({ event }) => event.output ?? 0 }) }
        ],
        onError: 'retrying'
      }
    },
    fresh: {
      after: { refresh: 'fetching' },
      on: { FETCH: 'fetching' }
    },
    retrying: {
      after: { retry: 'fetching' },
      on: { FETCH: 'fetching' }
    }
  }
})
