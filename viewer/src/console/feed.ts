import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate'
import { BACKOFF, backoffDelay, feedMachine, type CallPhase, type FeedFacts, type TileState } from '@doorbell/machines'

/**
 * Keeping one feed up without anyone clicking: the feed machine (machines/src/feed.ts) decides
 * when to call, hang up or wait, and what the tile says; this supplies its I/O (the call, the
 * hang-up, the tile) and runs it on injected timers, so test/console.test.ts drives it by hand.
 * No DOM, no Vue.
 */

export type { CallPhase, FeedFacts, TileState }

/** The snapshot of a viewer call machine → its phase. */
export function callPhaseOf (snapshot: { matches: (value: any) => boolean }): CallPhase {
  if (snapshot.matches('incoming')) return 'incoming'
  if (snapshot.matches({ active: 'connecting' })) return 'connecting'
  if (snapshot.matches('active')) return 'connected'
  if (snapshot.matches('ended')) return 'ended'
  return 'idle'
}

/** The wait before retry number `attempt` (0-based): 1 s, 2 s, 4 s, 8 s, 10 s, 10 s… (the shared backoff, the console's delays). */
export function backoffMs (attempt: number): number {
  return backoffDelay(attempt, BACKOFF.feed)
}

export interface Timers {
  set: (fn: () => void, ms: number) => unknown
  clear: (handle: unknown) => void
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => { clearTimeout(h as ReturnType<typeof setTimeout>) }
}

export interface FeedKeeperOptions {
  /** Start a call (fresh ICE settings first); a rejection counts as a failed try. */
  start: () => Promise<void> | void
  hangUp: () => void
  /** The console never answers a ring: it clears the ring and watches. */
  dismiss: () => void
  onState: (state: TileState) => void
  timers?: Timers
  /** How long a stalled call (ICE disconnected, no new frame) is given to recover before it is ended and called again. */
  stallMs?: number
  /** The device's id: names the machine (`feed:<deviceId>`) in the inspector. */
  deviceId?: string
  /** The page's inspection (the inspector shows the feed machine). */
  inspect?: (event: InspectionEvent) => void
}

/** One per tile. `update()` takes whatever changed; every timer it sets it clears on `stop()`. */
export class FeedKeeper {
  private readonly actor: Actor<typeof feedMachine>
  private stopped = false

  constructor (o: FeedKeeperOptions) {
    const timers = o.timers ?? realTimers
    const machine = feedMachine.provide({
      actors: { startCall: fromPromise(async () => { await o.start() }) },
      actions: {
        hangUp: () => { o.hangUp() },
        dismiss: () => { o.dismiss() },
        showTile: ({ context }) => { if (context.shown !== null) o.onState(context.shown) }
      }
    })
    const name = o.deviceId !== undefined ? `feed:${o.deviceId}` : 'feed'
    this.actor = createActor(machine, {
      input: o.stallMs !== undefined ? { stallMs: o.stallMs } : {},
      id: name,
      systemId: name,
      clock: { setTimeout: (fn, ms) => timers.set(fn, ms), clearTimeout: (h) => { timers.clear(h) } },
      ...(o.inspect ? { inspect: o.inspect } : {})
    })
    this.actor.start()
  }

  get state (): TileState { return this.actor.getSnapshot().context.shown ?? 'connecting' }

  update (change: Partial<FeedFacts>): void {
    if (this.stopped) return
    this.actor.send({ type: 'UPDATE', change })
  }

  stop (): void {
    this.stopped = true
    this.actor.stop()
  }
}
