import type { Descriptions, StatsEntry } from './stats'

/** A feed the loop reads: its peer connection while it has one, and where the reading goes. */
export interface StatsSource {
  readonly pc: Pick<RTCPeerConnection, 'getStats' | 'localDescription' | 'remoteDescription'> | null
  take: (entries: StatsEntry[], now: number, sdp: Descriptions) => void
}

/**
 * The page's one stats timer: every second, every feed's `getStats()` at once, each reading
 * handed to its feed. One interval for sixteen tiles rather than sixteen intervals; a round that
 * has not finished (a slow getStats) makes the next one skip instead of piling up.
 */
export class StatsLoop {
  private readonly sources = new Set<StatsSource>()
  private timer: ReturnType<typeof setInterval> | null = null
  private busy = false

  constructor (private readonly now: () => number = () => performance.now()) {}

  add (source: StatsSource): void { this.sources.add(source) }
  delete (source: StatsSource): void { this.sources.delete(source) }

  start (periodMs = 1000): void {
    if (this.timer === null) this.timer = setInterval(() => { void this.tick() }, periodMs)
  }

  /** One round (the interval calls it; exported for tests). */
  async tick (): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      await Promise.all([...this.sources].map(async (source) => {
        const pc = source.pc
        if (!pc) return
        try {
          const report = await pc.getStats()
          // The connection may have been replaced while the stats were gathered.
          if (source.pc !== pc) return
          source.take([...report.values()] as StatsEntry[], this.now(), { local: pc.localDescription?.sdp ?? null, remote: pc.remoteDescription?.sdp ?? null })
        } catch {
          // A closed connection has no stats: its feed is being replaced anyway.
        }
      }))
    } finally {
      this.busy = false
    }
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.sources.clear()
  }
}
