/**
 * Sends the microphone's Opus packets on their own 20 ms schedule, by their RTP timestamps,
 * rather than as they come out of ffmpeg. ffmpeg hands packets over in bursts (its process is
 * scheduled late on a busy Pi, a capture device gives periods, not packets), and a browser's
 * jitter buffer answers every burst by holding more audio, for seconds after: hundreds of
 * milliseconds of mouth-to-ear delay (docs/audio.md, "Figures").
 *
 * Each packet is due at `base + (its timestamp) / 48 + holdMs`, where `base` is the earliest
 * arrival seen (arrival minus timestamp) over the last {@link WINDOW} packets: a packet that came
 * early in a burst waits for its slot, one that came late (a stall longer than `holdMs`) goes at
 * once, and the order is always kept. The timestamps are ffmpeg's, untouched: they already count
 * samples. A jump in them (ffmpeg restarted) starts the schedule over.
 */

/** Opus RTP's clock: 48 kHz, so 48 ticks a millisecond. */
const TICKS_PER_MS = 48
/** Packets over which the earliest arrival is kept (2 s of 20 ms packets): a capture clock that drifts is followed. */
const WINDOW = 100
/** A timestamp this far from the schedule is a new stream (ffmpeg restarted), not lateness. */
const RESTART_MS = 2000

export interface PacerOptions {
  /** Where each packet goes on its time. */
  send: (packet: Buffer) => void
  /** How long a packet may wait for its slot: bursts within it leave evenly spaced. */
  holdMs: number
  now?: () => number
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (timer: unknown) => void
}

/** What the pacer saw, for logs and benches: how uneven the input was, and how much it smoothed. */
export interface PacerStats {
  packets: number
  /** Sent after their slot (came later than `holdMs` after the earliest): not smoothed. */
  late: number
  /** Restarts of the schedule (timestamp jumps). */
  restarts: number
}

export class OpusPacer {
  private readonly queue: Array<{ packet: Buffer, due: number }> = []
  private readonly offsets: number[] = []
  private timer: unknown = null
  private lastTs: number | null = null
  /** Timestamps unwrapped past 2^32 (a 24 h stream wraps once). */
  private wraps = 0
  readonly stats: PacerStats = { packets: 0, late: 0, restarts: 0 }
  private readonly now: () => number
  private readonly setTimer: (fn: () => void, ms: number) => unknown
  private readonly clearTimer: (timer: unknown) => void

  constructor (private readonly o: PacerOptions) {
    this.now = o.now ?? (() => performance.now())
    this.setTimer = o.setTimer ?? ((fn, ms) => setTimeout(fn, ms))
    this.clearTimer = o.clearTimer ?? ((t) => { clearTimeout(t as NodeJS.Timeout) })
  }

  /** Takes one RTP datagram as ffmpeg sent it; too short to be RTP: passed on at once. */
  push (packet: Buffer): void {
    if (packet.length < 12) { this.o.send(packet); return }
    const now = this.now()
    const ts = this.unwrap(packet.readUInt32BE(4))
    const ms = ts / TICKS_PER_MS
    const offset = now - ms
    const base = this.offsets.length > 0 ? Math.min(...this.offsets) : offset
    if (Math.abs(offset - base) > RESTART_MS) {
      // A new stream: the old schedule means nothing to it.
      this.offsets.length = 0
      this.stats.restarts++
    }
    this.offsets.push(offset)
    if (this.offsets.length > WINDOW) this.offsets.shift()
    const due = Math.min(...this.offsets) + ms + this.o.holdMs
    this.stats.packets++
    if (due < now) this.stats.late++
    this.queue.push({ packet, due: Math.max(due, this.queue.at(-1)?.due ?? due) })
    this.flush()
  }

  /** Sends, in order, every packet whose time has come; then waits for the next one's. */
  private flush (): void {
    if (this.timer !== null) { this.clearTimer(this.timer); this.timer = null }
    const now = this.now()
    while (this.queue.length > 0 && this.queue[0]!.due <= now + 0.5) this.o.send(this.queue.shift()!.packet)
    const next = this.queue[0]
    if (next !== undefined) this.timer = this.setTimer(() => { this.timer = null; this.flush() }, Math.max(0, next.due - now))
  }

  /** Drops what waits (the microphone stopped). */
  stop (): void {
    if (this.timer !== null) this.clearTimer(this.timer)
    this.timer = null
    this.queue.length = 0
  }

  private unwrap (ts: number): number {
    if (this.lastTs !== null && ts < this.lastTs && this.lastTs - ts > 0x80000000) this.wraps++
    this.lastTs = ts
    return ts + this.wraps * 0x100000000
  }
}
