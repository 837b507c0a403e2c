import { assign, setup } from 'xstate'
import { BACKOFF, backoffDelay, type BackoffPolicy } from './backoff'

/**
 * The device's link to AWS IoT Core, as a reconnecting connection: `connecting` until the broker's
 * CONNACK (CONNECTED) or a close (CLOSED); `up`; after a close, `retrying` waits the shared
 * backoff (the first retry after `firstMs` exactly, then doubling with jitter, so a fleet that
 * lost IoT Core does not come back at the same instant) and then `reconnect`s. Reset once up.
 *
 * The runtime (device/src/paths/cloud/iotLink.ts) owns the MQTT client (which keeps the QoS 1
 * messages raised meanwhile and sends them on reconnect) and supplies `reconnect`, `connected`
 * (presence and state again) and `lost`.
 */

export interface IotLinkInput {
  backoff?: BackoffPolicy
}

export interface IotLinkContext {
  backoff: BackoffPolicy
  /** Retries since the link was last up: the backoff's exponent. */
  attempt: number
  /** The wait of the retry under way. */
  waitMs: number
}

export type IotLinkEvent =
  | { type: 'CONNECTED' }
  | { type: 'CLOSED' }

export const iotLinkMachine = setup({
  types: {
    context: {} as IotLinkContext,
    input: {} as IotLinkInput,
    events: {} as IotLinkEvent
  },
  actions: {
    reconnect: () => {},
    connected: () => {},
    lost: () => {},
    upNow: assign({ attempt: 0 }),
    nextWait: assign(({ context }) => ({
      // The first retry exactly after firstMs; then the backoff, jittered.
      waitMs: context.attempt === 0 ? context.backoff.firstMs : backoffDelay(context.attempt, context.backoff),
      attempt: context.attempt + 1
    }))
  },
  delays: {
    backoff: ({ context }) => context.waitMs
  }
}).createMachine({
  id: 'iotLink',
  context: ({ input }) => ({ backoff: input.backoff ?? BACKOFF.iot, attempt: 0, waitMs: 0 }),
  initial: 'connecting',
  states: {
    connecting: {
      on: {
        CONNECTED: { target: 'up', actions: ['upNow', 'connected'] },
        CLOSED: 'retrying'
      }
    },
    up: {
      on: { CLOSED: { target: 'retrying', actions: 'lost' } }
    },
    retrying: {
      entry: 'nextWait',
      after: { backoff: { target: 'connecting', actions: 'reconnect' } },
      // mqtt.js may connect by itself meanwhile (it never should with its own reconnect off): take it.
      on: { CONNECTED: { target: 'up', actions: ['upNow', 'connected'] } }
    }
  }
})
