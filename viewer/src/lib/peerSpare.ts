import type { IceServerInit } from '@doorbell/core'
import { gatherOffer, makePeer, type CallSessionOptions, type PreparedPeer } from './callSession'

/** A spare is replaced after this long: its candidates may have gone stale (a new address, another network). */
export const SPARE_MAX_AGE_MS = 5 * 60_000
/**
 * The next spare is made this long after the call that took one says it may be (`makeNext`): a
 * call answered without a preview at once, as it takes it; a preview only once it is answered
 * (`call-taken`) or over. Not during a preview: the resident may press Answer at any moment of
 * it, and making a spare takes the page's main thread for tens of milliseconds (the connection,
 * its transceivers, the offer, gathering); made a second after the ring, it fell on a quick
 * Answer and held back the doorbell's first sound and `call-taken` (docs/performance.md).
 */
export const SPARE_REFILL_MS = 1000

export interface PeerSpareOptions extends Pick<CallSessionOptions, 'createPeerConnection' | 'beforeGather' | 'gatherTimeoutMs'> {
  maxAgeMs?: number
  refillAfterMs?: number
  now?: () => number
}

const closePrepared = (p: PreparedPeer): void => {
  try { p.channel.close() } catch {}
  try { void p.peer.close() } catch {}
}

/**
 * One call's peer connection made and gathered before anyone rings: its DTLS certificate made,
 * its ICE candidates gathered, its offer written. On a ring (a preview) or an Answer with no
 * preview, the call takes it and sends the offer at once instead of gathering then (150-700 ms of
 * the ring → live frame on a busy machine, tests/bench/hops.ts). One for the whole page, for
 * calls without ICE servers (the home network and the direct path); the cloud path's TURN
 * allocations are per call and are made then, as before. Taken once, then made again a second
 * after the call that took it is past its Answer (`SPARE_REFILL_MS`).
 */
export class PeerSpare {
  private ready: { prepared: PreparedPeer, madeAt: number } | null = null
  private making = false
  private closed = false
  private timer: ReturnType<typeof setTimeout> | null = null
  private readonly maxAgeMs: number
  private readonly refillAfterMs: number
  private readonly now: () => number

  constructor (private readonly o: PeerSpareOptions) {
    this.maxAgeMs = o.maxAgeMs ?? SPARE_MAX_AGE_MS
    this.refillAfterMs = o.refillAfterMs ?? SPARE_REFILL_MS
    this.now = o.now ?? Date.now
    this.schedule(0)
  }

  /** Whether a gathered spare is waiting (tests). */
  get isReady (): boolean { return this.ready !== null }

  /**
   * The spare, gathered, with its offer in its local description, for a call with these ICE
   * servers; null when there is none ready, it is too old, or the call needs ICE servers.
   * The call that takes it says `makeNext` when the next one may be made.
   */
  take (iceServers: IceServerInit[]): PreparedPeer | null {
    if (this.closed || iceServers.length > 0 || this.ready === null) return null
    const { prepared, madeAt } = this.ready
    this.ready = null
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    // A page whose timers were throttled (a background tab) may hold one past its age.
    if (this.now() - madeAt > this.maxAgeMs) { closePrepared(prepared); this.schedule(this.refillAfterMs); return null }
    return prepared
  }

  /** The call that took the spare is past its Answer (or over): the next one is made a little later. */
  makeNext (): void {
    if (!this.closed && this.ready === null && !this.making && this.timer === null) this.schedule(this.refillAfterMs)
  }

  close (): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    if (this.ready) closePrepared(this.ready.prepared)
    this.ready = null
  }

  private schedule (ms: number): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.timer = null; void this.make() }, ms)
  }

  private async make (): Promise<void> {
    if (this.closed || this.making) return
    if (this.ready) {
      // Old: replaced by a fresh one.
      closePrepared(this.ready.prepared)
      this.ready = null
    }
    this.making = true
    let prepared: PreparedPeer | null = null
    try {
      prepared = makePeer(this.o, [])
      await gatherOffer(this.o, prepared.peer, [])
      if (!prepared.peer.localDescription?.sdp) throw new Error('no local description')
    } catch {
      // No spare this time: calls gather as they always did; try again later.
      if (prepared) closePrepared(prepared)
      prepared = null
    } finally {
      this.making = false
    }
    if (this.closed) { if (prepared) closePrepared(prepared); return }
    if (prepared) this.ready = { prepared, madeAt: this.now() }
    this.schedule(this.maxAgeMs)
  }
}
