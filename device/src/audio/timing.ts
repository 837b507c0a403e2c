import { monitorEventLoopDelay } from 'node:perf_hooks'

/**
 * Where the microphone's packets spend their time in the doorbell (`audio.timingLogSeconds`):
 * how late each packet comes out of ffmpeg against its own RTP timestamp's 20 ms schedule, how
 * late it is once werift has taken it (after the pacer, if on, and the synchronous part of SRTP
 * and the UDP send), and the event loop's delay meanwhile. A browser's jitter buffer grows with
 * the spread of these latenesses (docs/audio.md, "Where the time goes"), so their p95 and max
 * say which side made it grow: ffmpeg (capture and encode) or this process.
 *
 * Lateness is measured as the pacer does: against the earliest arrival (arrival minus
 * timestamp) over the last {@link WINDOW} packets, so a steady offset counts as 0.
 */

/** Opus RTP: 48 ticks a millisecond. */
const TICKS_PER_MS = 48
/** 2 s of 20 ms packets. */
const WINDOW = 100
/** Payloads this small are Opus's silence (a few bytes); a louder frame is tens of bytes. */
export const SILENT_PAYLOAD_BYTES = 12
/** Quiet packets in a row before a loud one counts as an onset (sound after silence). */
const QUIET_BEFORE_ONSET = 10
/**
 * The loop probe's period. perf_hooks records each whole interval between its timer's runs, so
 * an idle loop reads ~10 ms: the lateness is what is above the period.
 */
const LOOP_RESOLUTION_MS = 10

export interface TimingReport {
  packets: number
  /** ms behind the schedule on arrival from ffmpeg: p50, p95, max. */
  arrival: { p50: number, p95: number, max: number }
  /** ms behind the schedule once handed to werift. */
  sent: { p50: number, p95: number, max: number }
  /** The synchronous hand-over to werift (SRTP and the send) per packet, ms: p95, max. */
  handOver: { p95: number, max: number }
  /** How late the event loop ran a 10 ms timer over the same period (ms; perf_hooks, the period taken off: an idle loop reads ~0). */
  loop: { p50: number, p99: number, max: number }
}

/** A sound onset: the first loud packet after silence, with when it came and when it was handed on (epoch ms). */
export interface Onset { arrivedAt: number, sentAt: number, lateMs: number }

const quantile = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)]!
}
const round = (x: number): number => Math.round(x * 10) / 10

export class MicrophoneTiming {
  private readonly offsets: number[] = []
  private arrival: number[] = []
  private sent: number[] = []
  private handOver: number[] = []
  private readonly loop: ReturnType<typeof monitorEventLoopDelay>
  private quiet = 0
  /** A loud packet waiting for its hand-over, to be reported as an onset. */
  private pending: { arrivedAt: number, lateMs: number } | null = null

  constructor (private readonly onOnset: (o: Onset) => void, private readonly now: () => number = () => performance.now()) {
    this.loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
    this.loop.enable()
  }

  /** A packet came from ffmpeg; returns its schedule (for `handed`). */
  arrived (packet: Buffer): number | null {
    if (packet.length < 12) return null
    const now = this.now()
    const ms = packet.readUInt32BE(4) / TICKS_PER_MS
    this.offsets.push(now - ms)
    if (this.offsets.length > WINDOW) this.offsets.shift()
    const due = Math.min(...this.offsets) + ms
    this.arrival.push(now - due)
    const loud = packet.length - 12 > SILENT_PAYLOAD_BYTES
    if (loud && this.quiet >= QUIET_BEFORE_ONSET) this.pending = { arrivedAt: performance.timeOrigin + now, lateMs: now - due }
    this.quiet = loud ? 0 : this.quiet + 1
    return due
  }

  /** The packet with schedule `due` was handed to every session; `startedAt`: when the hand-over began. */
  handed (due: number, startedAt: number): void {
    const now = this.now()
    this.sent.push(now - due)
    this.handOver.push(now - startedAt)
    if (this.pending !== null) {
      this.onOnset({ ...this.pending, sentAt: performance.timeOrigin + now })
      this.pending = null
    }
  }

  /** What was seen since the last report; starts the next period. */
  report (): TimingReport {
    const late = (ns: number): number => round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS))
    const r: TimingReport = {
      packets: this.arrival.length,
      arrival: { p50: round(quantile(this.arrival, 50)), p95: round(quantile(this.arrival, 95)), max: round(Math.max(0, ...this.arrival)) },
      sent: { p50: round(quantile(this.sent, 50)), p95: round(quantile(this.sent, 95)), max: round(Math.max(0, ...this.sent)) },
      handOver: { p95: round(quantile(this.handOver, 95)), max: round(Math.max(0, ...this.handOver)) },
      loop: { p50: late(this.loop.percentile(50)), p99: late(this.loop.percentile(99)), max: late(this.loop.max) }
    }
    this.arrival = []
    this.sent = []
    this.handOver = []
    this.loop.reset()
    return r
  }

  stop (): void { this.loop.disable() }
}
