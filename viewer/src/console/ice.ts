import type { IceSettings } from '@doorbell/core'
import { realTimers, type Timers } from './feed'

/**
 * The ICE settings every feed's peer connection is made with (`GET /api/ice`): the home's STUN and
 * TURN servers, TURN credentials that expire by themselves (the TURN REST scheme), and the policy
 * ('relay': the browser gathers and uses relay candidates only). Fetched before the first call and
 * again ahead of expiry, so no call starts with a dead TURN credential.
 */

/** Refetch this long before the credentials expire. */
export const REFRESH_MARGIN_MS = 60_000

/** When to fetch again: a margin before expiry (at least 5 s from now), never for settings that do not expire. */
export function refreshDelay (expiresAt: number | null, now: number, marginMs = REFRESH_MARGIN_MS): number | null {
  if (expiresAt === null) return null
  return Math.max(5000, expiresAt - marginMs - now)
}

/** Are these settings still good for a call that starts now? */
export const usable = (s: IceSettings, now: number, marginMs = REFRESH_MARGIN_MS): boolean =>
  s.expiresAt === null || s.expiresAt - marginMs / 2 > now

/** What RTCPeerConnection takes: the home's servers (plus the path's own, e.g. the cloud's TURN) and the policy. */
export function rtcConfiguration (s: IceSettings, fromPath: RTCIceServer[] = []): RTCConfiguration {
  return { iceServers: [...s.iceServers, ...fromPath], iceTransportPolicy: s.iceTransportPolicy, bundlePolicy: 'max-bundle' }
}

export interface IceKeeperOptions {
  fetch: () => Promise<IceSettings>
  now?: () => number
  timers?: Timers
  onError?: (err: Error) => void
}

export class IceKeeper {
  private settings: IceSettings | null = null
  private inFlight: Promise<IceSettings> | null = null
  private timer: unknown = null
  private stopped = false
  private readonly now: () => number
  private readonly timers: Timers

  constructor (private readonly o: IceKeeperOptions) {
    this.now = o.now ?? Date.now
    this.timers = o.timers ?? realTimers
  }

  /** The last settings fetched (null before the first answer). */
  get current (): IceSettings | null { return this.settings }

  /** Settings good for a call starting now: the kept ones, else fetched (one request for everyone waiting). */
  async fresh (): Promise<IceSettings> {
    const s = this.settings
    if (s && usable(s, this.now())) return s
    return await this.refresh()
  }

  private async refresh (): Promise<IceSettings> {
    this.inFlight ??= (async () => {
      try {
        const s = await this.o.fetch()
        this.settings = s
        this.schedule(refreshDelay(s.expiresAt, this.now()))
        return s
      } catch (err) {
        this.o.onError?.(err as Error)
        // Expiring settings are fetched again soon even when nobody asks.
        if (this.settings?.expiresAt != null) this.schedule(5000)
        throw err
      } finally {
        this.inFlight = null
      }
    })()
    return await this.inFlight
  }

  private schedule (delay: number | null): void {
    if (this.timer !== null) this.timers.clear(this.timer)
    this.timer = null
    if (delay === null || this.stopped) return
    this.timer = this.timers.set(() => { this.timer = null; this.refresh().catch(() => {}) }, delay)
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== null) this.timers.clear(this.timer)
    this.timer = null
  }
}
