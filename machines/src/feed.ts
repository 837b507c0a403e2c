import { assign, enqueueActions, fromPromise, setup } from 'xstate'
import { BACKOFF, backoffDelay, type BackoffPolicy } from './backoff'

/**
 * Keeping one console feed up without anyone clicking. When a call to a camera drops (its peer
 * connection failed or stalled, the device said bye, the device went offline) the tile says so
 * and a new call is started with the shared backoff (1, 2, 4, 8, then every 10 s); a device that
 * comes back online is called at once; a device the broker refused is never called.
 *
 * The runtime (viewer/src/console/feed.ts) tells the machine what changed with UPDATE (the facts
 * below: the call machine's phase, the device's presence, the first frame, the media) and
 * supplies: `startCall` (fresh ICE settings, then WATCH; a rejection is a failed try), `hangUp`,
 * `dismiss` (the console never answers a ring) and `showTile` (the tile now says `context.shown`).
 *
 * States: `refused`, `offline`, and `watching`, whose two regions are the retry (`idle`, `waiting`
 * for the backoff, `starting` a call) and the stall watch (`ok`, `stalled`: a call that lost its
 * media gets `stallMs` to recover before it is ended and called again).
 */

/** What a tile shows (`data-state`). */
export type TileState = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'refused'

/** The viewer call machine, as the console needs it. */
export type CallPhase = 'idle' | 'incoming' | 'connecting' | 'connected' | 'ended'

export interface FeedFacts {
  /** The broker refused this device's topics (not in the operator's zones). */
  refused: boolean
  /** The device's presence; undefined until it has said anything. */
  online: boolean | undefined
  /** The hub connection is up (offers go through it). */
  linkUp: boolean
  call: CallPhase
  /** This session has shown a frame. */
  firstFrame: boolean
  /** The peer connection is up and frames keep coming (false: ICE disconnected, or the picture froze). */
  mediaOk: boolean
}

export interface FeedInput {
  backoff?: BackoffPolicy
  /** How long a stalled call is given to recover before it is ended and called again (default 5 s). */
  stallMs?: number
}

export interface FeedContext {
  facts: FeedFacts
  /** The facts before the last UPDATE. */
  before: FeedFacts
  backoff: BackoffPolicy
  stallMs: number
  /** Retries since the feed was last live (or the device last came online): the backoff's exponent. */
  retries: number
  /** Since the feed was last live, a call ended or the device went away: the tile says "Reconnecting…". */
  dropped: boolean
  /** The device just came back: call it now, not after the backoff. */
  promptly: boolean
  /** The wait of the retry being waited for. */
  waitMs: number
  /** What the tile says; null before the first word. */
  shown: TileState | null
}

export type FeedEvent =
  | { type: 'UPDATE', change: Partial<FeedFacts> }
  // Raised by the machine itself, from one region to the other.
  | { type: 'SCHEDULE' }
  | { type: 'CALL_ACTIVE' }
  | { type: 'STALL' }
  | { type: 'CLEAR_STALL' }

const INITIAL_FACTS: FeedFacts = { refused: false, online: undefined, linkUp: false, call: 'idle', firstFrame: false, mediaOk: true }

const isActive = (f: FeedFacts): boolean => f.call === 'connecting' || f.call === 'connected'
const isIdle = (f: FeedFacts): boolean => f.call === 'idle' || f.call === 'ended'
const merged = (context: FeedContext, event: FeedEvent): FeedFacts =>
  event.type === 'UPDATE' ? { ...context.facts, ...event.change } : context.facts

export const feedMachine = setup({
  types: {
    context: {} as FeedContext,
    input: {} as FeedInput,
    events: {} as FeedEvent
  },
  actors: {
    /** Fresh ICE settings, then the call; the default has nothing to call with. */
    startCall: fromPromise<void>(async () => { throw new Error('no call to start') })
  },
  actions: {
    hangUp: () => {},
    dismiss: () => {},
    /** The tile says `context.shown`. */
    showTile: () => {},
    takeFacts: assign(({ context, event }) => ({ before: context.facts, facts: merged(context, event) })),
    backOnline: assign({ retries: 0, promptly: true }),
    settled: assign({ dropped: true }),
    scheduled: assign(({ context }) => {
      const now = context.promptly || (!context.dropped && context.retries === 0)
      return {
        waitMs: now ? 0 : backoffDelay(context.retries, context.backoff),
        retries: now ? context.retries : context.retries + 1,
        promptly: false
      }
    }),
    /** Entering `refused` or `offline`, and every change while there: no call goes on. */
    goneAway: enqueueActions(({ context, enqueue }) => {
      const f = context.facts
      const state: TileState = f.refused ? 'refused' : 'offline'
      if (state === 'offline' && (isActive(f) || context.shown === 'live')) enqueue.assign({ dropped: true })
      if (isActive(f)) enqueue('hangUp')
      if (context.shown !== state) {
        enqueue.assign({ shown: state })
        enqueue('showTile')
      }
    }),
    /** Watching: what the facts now ask for (dismiss a ring, watch for a stall, call again), and what the tile says. */
    evaluate: enqueueActions(({ context, enqueue }) => {
      const f = context.facts
      if (f.call === 'incoming') { enqueue('dismiss'); return }
      let { dropped, retries } = context
      const live = f.call === 'connected' && f.firstFrame && f.mediaOk
      if (live) {
        retries = 0
        dropped = false
        enqueue.raise({ type: 'CLEAR_STALL' })
      } else if (f.call === 'connected' && f.firstFrame) {
        // Stalled (ICE disconnected, or no new frame): a moment to recover, then a new call.
        dropped = true
        enqueue.raise({ type: 'STALL' })
      } else {
        enqueue.raise({ type: 'CLEAR_STALL' })
      }
      if (context.before.call !== 'ended' && f.call === 'ended') dropped = true
      enqueue.assign({ dropped, retries })
      if (isActive(f)) enqueue.raise({ type: 'CALL_ACTIVE' })
      // The first call, and a device just back: now. After a drop: the backoff (retry.idle takes it; a retry already waiting keeps its time).
      if (isIdle(f) && f.linkUp) enqueue.raise({ type: 'SCHEDULE' })
      const state: TileState = live ? 'live' : dropped ? 'reconnecting' : 'connecting'
      if (context.shown !== state) {
        enqueue.assign({ shown: state })
        enqueue('showTile')
      }
    }),
    hangUpIfStalled: enqueueActions(({ context, enqueue }) => {
      if (context.facts.call === 'connected' && !context.facts.mediaOk) enqueue('hangUp')
    }),
    reevaluate: enqueueActions(({ enqueue }) => { enqueue.raise({ type: 'UPDATE', change: {} }) })
  },
  guards: {
    refusedNow: ({ context, event }) => merged(context, event).refused,
    offlineNow: ({ context, event }) => merged(context, event).online === false,
    /** The device was offline and says it is back, while a call to it hangs: that call is ended first. */
    backWhileActive: ({ context, event }) => {
      const f = merged(context, event)
      return context.facts.online === false && f.online === true && isActive(f)
    },
    back: ({ context, event }) => context.facts.online === false && merged(context, event).online === true,
    /** At the retry's time, a call can still be made. */
    mayCall: ({ context }) => {
      const f = context.facts
      return !f.refused && f.online !== false && f.linkUp && isIdle(f)
    }
  },
  delays: {
    retry: ({ context }) => context.waitMs,
    stall: ({ context }) => context.stallMs
  }
}).createMachine({
  id: 'feed',
  context: ({ input }) => ({
    facts: INITIAL_FACTS,
    before: INITIAL_FACTS,
    backoff: input.backoff ?? BACKOFF.feed,
    stallMs: input.stallMs ?? 5000,
    retries: 0,
    dropped: false,
    promptly: false,
    waitMs: 0,
    shown: null
  }),
  initial: 'watching',
  states: {
    refused: {
      entry: 'goneAway',
      on: {
        UPDATE: [
          { guard: 'refusedNow', actions: ['takeFacts', 'goneAway'] },
          { guard: 'offlineNow', target: 'offline', actions: 'takeFacts' },
          { guard: 'backWhileActive', target: 'watching', actions: ['takeFacts', 'backOnline', 'hangUp'] },
          { guard: 'back', target: 'watching', actions: ['takeFacts', 'backOnline', 'evaluate'] },
          { target: 'watching', actions: ['takeFacts', 'evaluate'] }
        ]
      }
    },
    offline: {
      entry: 'goneAway',
      on: {
        UPDATE: [
          { guard: 'refusedNow', target: 'refused', actions: 'takeFacts' },
          { guard: 'offlineNow', actions: ['takeFacts', 'goneAway'] },
          { guard: 'backWhileActive', target: 'watching', actions: ['takeFacts', 'backOnline', 'hangUp'] },
          { target: 'watching', actions: ['takeFacts', 'backOnline', 'evaluate'] }
        ]
      }
    },
    watching: {
      type: 'parallel',
      on: {
        UPDATE: [
          { guard: 'refusedNow', target: 'refused', actions: 'takeFacts' },
          { guard: 'offlineNow', target: 'offline', actions: 'takeFacts' },
          { actions: ['takeFacts', 'evaluate'] }
        ]
      },
      states: {
        retry: {
          initial: 'idle',
          states: {
            idle: { on: { SCHEDULE: { target: 'waiting', actions: 'scheduled' } } },
            waiting: {
              after: {
                retry: [
                  { guard: 'mayCall', target: 'starting' },
                  // Nothing to call now: back to idle, and the facts say what next.
                  { target: 'idle', actions: 'reevaluate' }
                ]
              }
            },
            starting: {
              invoke: {
                src: 'startCall',
                // Still here when it settles: the call machine never left idle/ended, a failed try.
                onDone: { target: 'idle', actions: ['settled', 'reevaluate'] },
                onError: { target: 'idle', actions: ['settled', 'reevaluate'] }
              },
              on: { CALL_ACTIVE: 'idle' }
            }
          }
        },
        stall: {
          initial: 'ok',
          states: {
            ok: { on: { STALL: 'stalled' } },
            stalled: {
              on: { CLEAR_STALL: 'ok' },
              after: { stall: { target: 'ok', actions: 'hangUpIfStalled' } }
            }
          }
        }
      }
    }
  }
})
