import { assign, fromCallback, setup, type EventObject } from 'xstate'
import { backoffDelay } from './backoff'

/**
 * Which path carries a viewer's events and calls: the LAN hub first, then direct libp2p
 * connections to the devices, then the cloud, with backoff between rounds. The hub wins back as
 * soon as it answers, from any state.
 *
 * The runtime supplies the paths, each an invoked actor, so this machine is the one place that
 * says which path is in use (the viewer routes by its snapshot, `pathOf`):
 * - `lan`: a callback actor that lives as long as the machine (the hub may answer in any state).
 *   It follows the hub connection and sends LAN_UP when it is up, LAN_DOWN when it is lost.
 * - `direct`: a callback actor that lives as long as the direct state. It dials the devices and
 *   sends DIRECT_UP when one answers, DIRECT_DOWN when the last one is lost, DIRECT_FAILED when
 *   none can be reached. Leaving the state (the hub is back) stops it, which closes its connections.
 * - `cloud`: a callback actor that lives as long as the cloud state. It connects to AWS IoT Core
 *   (events) and sends CLOUD_UP when that is up, CLOUD_DOWN when it is lost, CLOUD_FAILED when it
 *   cannot start (no cloud set up, credentials refused). Leaving the state stops it.
 * The defaults: no hub ever answers, and direct and cloud fail at once, so without them the machine
 * waits and tries the hub again.
 */
export type LinkPath = 'lan' | 'direct' | 'cloud'

export interface LinkInput {
  /** How long the hub may be gone before another path is tried. */
  lanGraceMs?: number
  /** How long the cloud may take to come up before the round ends (and the hub is tried again). */
  cloudTimeoutMs?: number
  backoffMinMs?: number
  backoffMaxMs?: number
}

export interface LinkContext {
  lanGraceMs: number
  cloudTimeoutMs: number
  backoffMinMs: number
  backoffMaxMs: number
  /** Rounds in a row with no path up. */
  attempt: number
  lastError: string | null
}

export type LinkEvent =
  | { type: 'LAN_UP' }
  | { type: 'LAN_DOWN' }
  | { type: 'DIRECT_UP' }
  | { type: 'DIRECT_DOWN' }
  | { type: 'DIRECT_FAILED', message: string }
  | { type: 'CLOUD_UP' }
  | { type: 'CLOUD_DOWN' }
  | { type: 'CLOUD_FAILED', message: string }

const noLan = fromCallback<EventObject>(() => {})
const noDirect = fromCallback<EventObject>(({ sendBack }) => {
  sendBack({ type: 'DIRECT_FAILED', message: 'the direct path is not available' })
})
const noCloud = fromCallback<EventObject>(({ sendBack }) => {
  sendBack({ type: 'CLOUD_FAILED', message: 'the cloud path is not available' })
})

/** The shared backoff (./backoff), capped: min, 2×min, 4×min, ... max for rounds 1, 2, 3... */
export function backoffMs (attempt: number, min: number, max: number): number {
  return backoffDelay(Math.max(0, attempt - 1), { firstMs: min, maxMs: max })
}

export const linkMachine = setup({
  types: {
    context: {} as LinkContext,
    input: {} as LinkInput,
    events: {} as LinkEvent
  },
  actors: {
    lan: noLan,
    direct: noDirect,
    cloud: noCloud
  },
  actions: {
    connected: assign({ attempt: 0, lastError: null }),
    failed: assign({
      lastError: ({ event }) => {
        if (event.type === 'DIRECT_FAILED' || event.type === 'CLOUD_FAILED') return event.message
        return null
      }
    }),
    nextRound: assign({ attempt: ({ context }) => context.attempt + 1 }),
    cloudTimedOut: assign({ lastError: 'the cloud did not answer in time' })
  },
  delays: {
    lanGrace: ({ context }) => context.lanGraceMs,
    cloudTimeout: ({ context }) => context.cloudTimeoutMs,
    backoff: ({ context }) => backoffMs(context.attempt, context.backoffMinMs, context.backoffMaxMs)
  }
}).createMachine({
  id: 'link',
  context: ({ input }) => ({
    lanGraceMs: input.lanGraceMs ?? 3000,
    cloudTimeoutMs: input.cloudTimeoutMs ?? 15_000,
    backoffMinMs: input.backoffMinMs ?? 1000,
    backoffMaxMs: input.backoffMaxMs ?? 30_000,
    attempt: 0,
    lastError: null
  }),
  initial: 'lan',
  // The hub is followed in every state: whatever else is up, it wins as soon as it answers.
  invoke: { id: 'lan', src: 'lan' },
  on: { LAN_UP: { target: '.lan.up' } },
  states: {
    lan: {
      initial: 'connecting',
      states: {
        connecting: {
          after: { lanGrace: '#link.direct' }
        },
        up: {
          entry: 'connected',
          on: { LAN_DOWN: 'connecting' }
        }
      }
    },
    direct: {
      invoke: { id: 'direct', src: 'direct' },
      initial: 'connecting',
      on: { DIRECT_FAILED: { target: '#link.cloud', actions: 'failed' } },
      states: {
        connecting: {
          on: { DIRECT_UP: 'up' }
        },
        up: {
          entry: 'connected',
          on: { DIRECT_DOWN: '#link.lan.connecting' }
        }
      }
    },
    cloud: {
      invoke: { id: 'cloud', src: 'cloud' },
      initial: 'connecting',
      on: { CLOUD_FAILED: { target: '#link.offline', actions: 'failed' } },
      states: {
        connecting: {
          on: { CLOUD_UP: 'up' },
          after: { cloudTimeout: { target: '#link.offline', actions: 'cloudTimedOut' } }
        },
        up: {
          entry: 'connected',
          // The client reconnects by itself (and keeps its signaling): it gets the connect timeout to.
          on: { CLOUD_DOWN: 'connecting' }
        }
      }
    },
    offline: {
      entry: 'nextRound',
      after: { backoff: 'lan.connecting' }
    }
  }
})

/** The path in use, or null while none is up. */
export function pathOf (value: unknown): LinkPath | null {
  if (typeof value !== 'object' || value === null) return null
  const [path, sub] = Object.entries(value as Record<string, unknown>)[0] ?? []
  return sub === 'up' && (path === 'lan' || path === 'direct' || path === 'cloud') ? path : null
}
