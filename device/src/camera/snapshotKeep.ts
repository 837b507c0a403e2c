import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  KeptRing, MAX_KEPT_DISMISSALS, describeError,
  type CallRecord, type KeptDismissal, type DeviceState, type DeviceTransport, type Logger, type RingEvent, type SignalToDevice, type SnapshotEvent
} from '@doorbell/core'
import { SECOND_SNAPSHOT_MS } from './snapshotRing'

/**
 * The doorbell's own copy of its rings (docs/history.md): each ring, its latest picture and how it
 * ended, as one file in the data folder, until the hub has acknowledged it on `…/kept` (QoS 1).
 * The hub takes a kept ring by its id, so handing over one it already has (it was up all along)
 * changes nothing, and one it missed (it was down, or the doorbell restarted before its queue
 * went out) arrives whole. Bounded: past `maxRings` or `maxBytes` the oldest is dropped, logged.
 *
 * It is attached to the answering side like a path, so it sees exactly the ring and the call record
 * every path is sent; the pictures come from the snapshot module the same way. It carries no calls.
 */

export interface RingKeepOptions {
  dir: string
  log: Logger
  /** Publishes a kept ring to the hub; `done` once the hub has it (PUBACK) or with why not. */
  send: (kept: KeptRing, done: (error?: Error) => void) => void
  /** Whether the hub is reachable now (the link is connected). */
  connected: () => boolean
  maxRings?: number
  maxBytes?: number
  now?: () => number
  /**
   * After each hand-over pass while the hub is reachable, and after the hub acknowledged a kept
   * ring: what waits for the hub to have its ring (the kept clips, clipKeep.ts) may go now.
   */
  afterHandOver?: () => void
}

/** What became of a dismissal told to the doorbell (the hub's rule: store.ts `dismiss`). */
export type KeptDismissResult =
  | { ok: true, outcome: 'ringing' | 'dismissed' }
  | { ok: false, error: string }

/** A ring is handed over once it has ended and its second picture has had time to come. */
const SETTLE_MS = SECOND_SNAPSHOT_MS + 2000

export class RingKeep implements DeviceTransport {
  readonly path = 'lan' as const
  private readonly kept = new Map<string, KeptRing>()
  private readonly sending = new Set<string>()
  private readonly timers = new Set<NodeJS.Timeout>()
  /** Rings read from disk at start: kept by an earlier run. */
  private readonly loaded = new Set<string>()
  private stopped = false
  private readonly now: () => number

  constructor (private readonly o: RingKeepOptions) {
    this.now = o.now ?? Date.now
    mkdirSync(o.dir, { recursive: true, mode: 0o700 })
    // What an earlier run kept (the hub was away, or the doorbell restarted mid-ring): handed over as it is.
    for (const name of readdirSync(o.dir)) {
      if (!name.endsWith('.json')) continue
      try {
        const parsed = KeptRing.safeParse(JSON.parse(readFileSync(join(o.dir, name), 'utf8')))
        if (parsed.success) {
          this.kept.set(parsed.data.ring.ringId, parsed.data)
          this.loaded.add(parsed.data.ring.ringId)
        } else throw new Error(parsed.error.issues[0]?.message ?? 'not a kept ring')
      } catch (err) {
        o.log.warn('a kept ring could not be read: dropped', { file: name, error: describeError(err) })
        rmSync(join(o.dir, name), { force: true })
      }
    }
  }

  /** Rings not yet acknowledged by the hub, oldest first (for the tests and the logs). */
  pending (): KeptRing[] { return [...this.kept.values()].sort((a, b) => a.ring.at - b.ring.at) }

  /** Whether this ring is still kept for the hub (it has not acknowledged it). */
  holds (ringId: string): boolean { return this.kept.has(ringId) }

  publishRing (ring: RingEvent): void {
    const known = this.kept.get(ring.ringId)
    // A press while ringing re-alerts the same ring: the first press's time stays.
    this.save(known ? { ...known, ring: { ...ring, at: known.ring.at } } : { type: 'kept', deviceId: ring.deviceId, ring, snapshot: null, record: null })
  }

  publishSnapshot (snapshot: SnapshotEvent): void {
    const known = this.kept.get(snapshot.ringId)
    if (!known) return // handed over already: the hub has it on its own topic
    const shown = known.snapshot
    if (shown !== null && shown.seq >= snapshot.seq) return
    // "No picture" never replaces a picture.
    if (snapshot.jpeg === null && shown?.jpeg != null) return
    this.save({ ...known, snapshot })
  }

  publishCall (record: CallRecord): void {
    if (record.ringId === null) return
    const known = this.kept.get(record.ringId)
    if (!known) return
    this.save({ ...known, record })
    const timer = setTimeout(() => { this.timers.delete(timer); this.handOver() }, Math.max(0, known.ring.at + SETTLE_MS - this.now()))
    this.timers.add(timer)
  }

  /**
   * A member dismissed a ring on the doorbell (the direct path, the hub down): noted on the kept
   * ring, which carries it to the hub. As at the hub, an answered ring, or one the doorbell no
   * longer keeps, is refused and nothing changes; a member's second dismissal changes nothing.
   */
  dismiss (ringId: string, dismissal: KeptDismissal): KeptDismissResult {
    const known = this.kept.get(ringId)
    if (!known) return { ok: false, error: 'no such ring: the doorbell keeps only the rings the hub has not taken' }
    if (known.record?.outcome === 'answered') return { ok: false, error: 'this ring was answered; it cannot be dismissed' }
    const outcome = known.record === null ? 'ringing' : 'dismissed'
    const dismissals = known.dismissals ?? []
    if (dismissals.some((d) => d.memberId === dismissal.memberId)) return { ok: true, outcome }
    if (dismissals.length >= MAX_KEPT_DISMISSALS) return { ok: false, error: `this ring has ${MAX_KEPT_DISMISSALS} dismissals already` }
    this.save({ ...known, dismissals: [...dismissals, dismissal] })
    return { ok: true, outcome }
  }

  // A path's other duties: the keep carries no calls and no state.
  publishState (_state: DeviceState): void {}
  sendToViewer (): void {}
  onSignal (_listener: (viewerId: string, message: SignalToDevice) => void): () => void { return () => {} }

  /**
   * Sends the hub every ring that is over (or from an earlier run); each file goes once the hub
   * has acknowledged it. Called when the hub link connects, and as each ring settles.
   */
  handOver (): void {
    if (this.stopped || !this.o.connected()) return
    const settled = this.now() - SETTLE_MS
    for (const k of this.pending()) {
      const id = k.ring.ringId
      // This run's rings go once over and settled; an earlier run's as they are (it may have died mid-ring).
      if (this.sending.has(id) || (!this.loaded.has(id) && (k.record === null || k.ring.at > settled))) continue
      this.sending.add(id)
      this.o.send(k, (error) => {
        this.sending.delete(id)
        if (error) { this.o.log.warn('the hub did not take a kept ring; it is kept for the next connection', { ringId: id, error: error.message }); return }
        // A part came while it was on its way (a late picture): the newer copy goes now, so the
        // file never waits for the next connection.
        if (this.kept.get(id) !== k) { this.handOver(); return }
        this.kept.delete(id)
        rmSync(this.file(id), { force: true })
        this.o.log.info('the hub has a kept ring', { ringId: id })
        this.o.afterHandOver?.()
      })
    }
    this.o.afterHandOver?.()
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  private file (ringId: string): string { return join(this.o.dir, `${ringId}.json`) }

  private save (k: KeptRing): void {
    const id = k.ring.ringId
    this.kept.set(id, k)
    try {
      const tmp = `${this.file(id)}.tmp`
      writeFileSync(tmp, JSON.stringify(k), { mode: 0o600 })
      renameSync(tmp, this.file(id))
    } catch (err) {
      // The ring itself went out on every path; only the doorbell's copy is missing.
      this.o.log.error('could not keep a ring on disk', { ringId: id, error: describeError(err) })
    }
    this.bound()
  }

  /** Oldest first out, past the count or the size. */
  private bound (): void {
    const maxRings = this.o.maxRings ?? 200
    const maxBytes = this.o.maxBytes ?? 20 * 1024 * 1024
    const all = this.pending()
    let bytes = 0
    const sizes = new Map<string, number>()
    for (const k of all) {
      let size = 0
      try { size = statSync(this.file(k.ring.ringId)).size } catch {}
      sizes.set(k.ring.ringId, size)
      bytes += size
    }
    while (all.length > 0 && (all.length > maxRings || bytes > maxBytes)) {
      const oldest = all.shift()!
      const id = oldest.ring.ringId
      bytes -= sizes.get(id) ?? 0
      this.kept.delete(id)
      rmSync(this.file(id), { force: true })
      this.o.log.warn('the doorbell\'s copy of its rings is full: the oldest is dropped', { ringId: id, maxRings, maxBytes })
    }
  }
}
