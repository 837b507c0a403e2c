/**
 * Keeping one feed up without anyone clicking: when a call to a camera drops (its peer connection
 * failed or stalled, the device said bye, the device went offline) the tile says so and a new call
 * is started with backoff (1 s, doubling, at most 10 s); a device that comes back online is called
 * at once. No DOM, no Vue: the timers are injected, so test/console.test.ts drives it by hand.
 */

/** What a tile shows (`data-state`). */
export type TileState = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'refused'

/** The viewer call machine, as the console needs it. */
export type CallPhase = 'idle' | 'incoming' | 'connecting' | 'connected' | 'ended'

/** The snapshot of a viewer call machine → its phase. */
export function callPhaseOf (snapshot: { matches: (value: any) => boolean }): CallPhase {
  if (snapshot.matches('incoming')) return 'incoming'
  if (snapshot.matches({ active: 'connecting' })) return 'connecting'
  if (snapshot.matches('active')) return 'connected'
  if (snapshot.matches('ended')) return 'ended'
  return 'idle'
}

export const BACKOFF = { firstMs: 1000, maxMs: 10_000 } as const

/** The wait before retry number `attempt` (0-based): 1 s, 2 s, 4 s, 8 s, 10 s, 10 s… */
export function backoffMs (attempt: number, o: { firstMs: number, maxMs: number } = BACKOFF): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be a whole number >= 0, not ${attempt}`)
  return Math.min(o.maxMs, o.firstMs * 2 ** Math.min(attempt, 30))
}

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
  backoff?: (attempt: number) => number
  /** How long a stalled call (ICE disconnected, no new frame) is given to recover before it is ended and called again. */
  stallMs?: number
}

/**
 * One per tile. `update()` takes whatever changed; the keeper decides whether to call, hang up or
 * wait, and what the tile says. Every timer it sets it clears on `stop()`.
 */
export class FeedKeeper {
  private facts: FeedFacts = { refused: false, online: undefined, linkUp: false, call: 'idle', firstFrame: false, mediaOk: true }
  /** Retries since the feed was last live (or the device last came online): the backoff's exponent. */
  private retries = 0
  /** Since the feed was last live, a call ended or the device went away: the tile says "Reconnecting…". */
  private dropped = false
  /** The device just came back: call it now, not after the backoff. */
  private promptly = false
  private retry: unknown = null
  private stall: unknown = null
  /** A call is being started (fresh ICE settings, then the offer): no second one meanwhile. */
  private starting = false
  private stopped = false
  private shown: TileState | null = null
  private readonly timers: Timers
  private readonly backoff: (attempt: number) => number

  constructor (private readonly o: FeedKeeperOptions) {
    this.timers = o.timers ?? realTimers
    this.backoff = o.backoff ?? ((n) => backoffMs(n))
  }

  get state (): TileState { return this.shown ?? 'connecting' }

  update (change: Partial<FeedFacts>): void {
    if (this.stopped) return
    const before = this.facts
    const f = this.facts = { ...before, ...change }
    const active = f.call === 'connecting' || f.call === 'connected'
    if (active) this.starting = false

    if (f.refused) {
      this.clearTimers()
      if (active) this.o.hangUp()
      this.show('refused')
      return
    }
    if (f.online === false) {
      this.clearTimers()
      if (active || this.shown === 'live') this.dropped = true
      if (active) this.o.hangUp()
      this.show('offline')
      return
    }
    if (before.online === false && f.online === true) {
      // Back: no waiting left from the last round; a call begun while it was away goes nowhere.
      this.clearRetry()
      this.retries = 0
      this.promptly = true
      if (active) { this.o.hangUp(); return }
    }
    if (f.call === 'incoming') { this.o.dismiss(); return }

    const live = f.call === 'connected' && f.firstFrame && f.mediaOk
    if (live) {
      this.retries = 0
      this.dropped = false
      this.clearStall()
    } else if (f.call === 'connected' && f.firstFrame) {
      // Stalled (ICE disconnected, or no new frame): a moment to recover, then a new call.
      this.dropped = true
      if (this.stall === null) {
        this.stall = this.timers.set(() => {
          this.stall = null
          if (this.facts.call === 'connected' && !this.facts.mediaOk) this.o.hangUp()
        }, this.o.stallMs ?? 5000)
      }
    } else {
      this.clearStall()
    }
    if (before.call !== 'ended' && f.call === 'ended') this.dropped = true

    if ((f.call === 'idle' || f.call === 'ended') && f.linkUp && !this.starting && this.retry === null) {
      // The first call, and a device just back: now. After a drop: the backoff.
      const wait = this.promptly || (!this.dropped && this.retries === 0) ? 0 : this.backoff(this.retries++)
      this.promptly = false
      this.retry = this.timers.set(() => { this.retry = null; this.call() }, wait)
    }
    this.show(live ? 'live' : this.dropped ? 'reconnecting' : 'connecting')
  }

  private call (): void {
    if (this.stopped) return
    const f = this.facts
    if (f.refused || f.online === false || !f.linkUp || (f.call !== 'idle' && f.call !== 'ended')) { this.update({}); return }
    this.starting = true
    const settle = (): void => {
      // Started: the call machine has left idle/ended (update() saw it). Still there: a failed try.
      if (!this.starting) return
      this.starting = false
      this.dropped = true
      this.update({})
    }
    Promise.resolve()
      .then(async () => { await this.o.start() })
      .then(settle, settle)
  }

  private show (state: TileState): void {
    if (state === this.shown) return
    this.shown = state
    this.o.onState(state)
  }

  private clearRetry (): void {
    if (this.retry !== null) this.timers.clear(this.retry)
    this.retry = null
  }

  private clearStall (): void {
    if (this.stall !== null) this.timers.clear(this.stall)
    this.stall = null
  }

  private clearTimers (): void {
    this.clearRetry()
    this.clearStall()
    this.starting = false
  }

  stop (): void {
    this.stopped = true
    this.clearTimers()
  }
}
