import { assign, fromCallback, fromPromise, setup, type EventObject } from 'xstate'

/**
 * Which path carries a viewer's events and calls: the LAN hub first, then direct libp2p
 * connections to the devices, then the cloud, with backoff between rounds. The hub wins back as
 * soon as it answers, from any state.
 *
 * The runtime supplies the paths:
 * - `direct`: a callback actor that lives as long as the direct state. It dials the devices and
 *   sends DIRECT_UP when one answers, DIRECT_DOWN when the last one is lost, DIRECT_FAILED when
 *   none can be reached. Leaving the state (the hub is back) stops it, which closes its connections.
 * - `connectCloud`: resolves once the cloud is up (issue 5).
 * The defaults fail at once, so without them the machine waits and tries the hub again.
 */
export type LinkPath = 'lan' | 'direct' | 'cloud'

export interface LinkInput {
  /** How long the hub may be gone before another path is tried. */
  lanGraceMs?: number
  backoffMinMs?: number
  backoffMaxMs?: number
}

export interface LinkContext {
  lanGraceMs: number
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
  | { type: 'CLOUD_DOWN' }

const notBuilt = (path: string) => fromPromise<void>(async () => { throw new Error(`the ${path} path is not available`) })
const noDirect = fromCallback<EventObject>(({ sendBack }) => {
  sendBack({ type: 'DIRECT_FAILED', message: 'the direct path is not available' })
})

/** Exponential backoff, capped: min, 2×min, 4×min, ... max. */
export function backoffMs (attempt: number, min: number, max: number): number {
  return Math.min(max, min * 2 ** Math.max(0, attempt - 1))
}

export const linkMachine = setup({
  types: {
    context: {} as LinkContext,
    input: {} as LinkInput,
    events: {} as LinkEvent
  },
  actors: {
    direct: noDirect,
    connectCloud: notBuilt('cloud')
  },
  actions: {
    connected: assign({ attempt: 0, lastError: null }),
    failed: assign({
      lastError: ({ event }) => {
        if (event.type === 'DIRECT_FAILED') return event.message
        const error = (event as unknown as { error?: unknown }).error
        return error instanceof Error ? error.message : String(error)
      }
    }),
    nextRound: assign({ attempt: ({ context }) => context.attempt + 1 })
  },
  delays: {
    lanGrace: ({ context }) => context.lanGraceMs,
    backoff: ({ context }) => backoffMs(context.attempt, context.backoffMinMs, context.backoffMaxMs)
  }
}).createMachine({
  id: 'link',
  context: ({ input }) => ({
    lanGraceMs: input.lanGraceMs ?? 3000,
    backoffMinMs: input.backoffMinMs ?? 1000,
    backoffMaxMs: input.backoffMaxMs ?? 30_000,
    attempt: 0,
    lastError: null
  }),
  initial: 'lan',
  // Whatever else is up, the hub wins as soon as it answers: LAN first.
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
      initial: 'connecting',
      states: {
        connecting: {
          invoke: {
            src: 'connectCloud',
            onDone: 'up',
            onError: { target: '#link.offline', actions: 'failed' }
          }
        },
        up: {
          entry: 'connected',
          on: { CLOUD_DOWN: '#link.lan.connecting' }
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
