import type { DeviceState, RingEvent } from '@doorbell/core'

/**
 * Orders what a resumed session brings: the hub sends the ring events it queued for this screen
 * as soon as the screen is back, and the doorbells' retained states only after the screen's
 * SUBSCRIBE. A ring that ended while the screen was away would alert ("ringing") until its state
 * said otherwise. So, after a resume, each ring waits for its doorbell's state (at most `holdMs`);
 * the state goes first, and the call machine then takes the ring as missed (or answered
 * elsewhere) instead of alerting. Outside a resume, everything passes at once.
 */
export class ResumeHold {
  private holding = false
  private readonly seen = new Set<string>()
  private readonly held: RingEvent[] = []
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor (private readonly o: { holdMs: number, ring: (ring: RingEvent) => void, state: (state: DeviceState) => void }) {}

  /** A resumed session: rings wait for their doorbell's state from now on, for `holdMs` at most. */
  resume (): void {
    this.release()
    this.holding = true
    this.seen.clear()
    this.timer = setTimeout(() => { this.release() }, this.o.holdMs)
  }

  ring (ring: RingEvent): void {
    if (this.holding && !this.seen.has(ring.deviceId)) this.held.push(ring)
    else this.o.ring(ring)
  }

  state (state: DeviceState): void {
    this.o.state(state)
    if (!this.holding) return
    this.seen.add(state.deviceId)
    this.pass((r) => r.deviceId === state.deviceId)
  }

  /** Everything held goes now, in order (the hold ended, the connection closed). */
  release (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.holding = false
    this.pass(() => true)
  }

  private pass (which: (ring: RingEvent) => boolean): void {
    const going = this.held.filter(which)
    if (going.length === 0) return
    this.held.splice(0, this.held.length, ...this.held.filter((r) => !which(r)))
    for (const r of going) this.o.ring(r)
  }
}
