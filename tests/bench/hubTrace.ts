/**
 * Where the in-process hub's time goes during the ring figure (BENCH_HUB_TRACE=DIR): over each
 * block of counted hub rings, a CPU profile of the hub's thread (DIR/<run>.cpuprofile, read with
 * cpuprofileTop.ts), its garbage collections (perf_hooks 'gc' entries) and its event-loop delay.
 * The collections are laid over the rings: a ring "met" one when a pause of the hub's thread
 * started between the press and the last viewer's notification, so the tail can be told apart
 * from the rest. Off by default: the profiler's sampling costs the hub's thread a little, so
 * traced runs explain the figures and do not replace them.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { percentile, round } from './lib'

interface Gc { start: number, ms: number, minor: boolean }

/** One ring: its press and each viewer's notification (epoch ms, one clock across threads). */
export interface TracedRing { pub: number, recv: number[] }

export interface HubTrace {
  begin: () => Promise<void>
  /** Ends the block and says what was found, in one line. */
  end: (run: string, rings: TracedRing[]) => Promise<string>
}

export function hubTrace (dir: string | undefined): HubTrace | null {
  if (dir === undefined || dir === '') return null
  let session: Session | null = null
  let gcs: Gc[] = []
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
      gcs.push({ start: performance.timeOrigin + e.startTime, ms: e.duration, minor: e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR })
    }
  })
  const delay = monitorEventLoopDelay({ resolution: 1 })
  return {
    async begin () {
      gcs = []
      delay.reset()
      delay.enable()
      observer.observe({ entryTypes: ['gc'] })
      session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: 100 })
      await session.post('Profiler.start')
    },
    async end (run, rings) {
      const s = session
      session = null
      if (s === null) throw new Error('hubTrace: end without begin')
      const { profile } = await s.post('Profiler.stop')
      s.disconnect()
      delay.disable()
      // GC entries are handed to observers a turn later.
      await new Promise((resolve) => setTimeout(resolve, 20))
      observer.disconnect()
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, `${run}.cpuprofile`), JSON.stringify(profile))
      const counted = rings.filter((r) => r.recv.length > 0)
      const windowOf = (r: TracedRing): [number, number] => [r.pub, Math.max(...r.recv)]
      const met = (r: TracedRing): Gc[] => { const [a, b] = windowOf(r); return gcs.filter((g) => g.start >= a && g.start <= b) }
      const all = counted.flatMap((r) => r.recv.map((t) => ({ ms: t - r.pub, ring: r })))
      const p99 = percentile(all.map((x) => x.ms), 99)
      const tail = all.filter((x) => x.ms >= p99)
      const share = (xs: Array<{ ring: TracedRing }>): number => xs.length === 0 ? NaN : xs.filter((x) => met(x.ring).length > 0).length / xs.length
      const inRings = counted.flatMap(met)
      const minor = inRings.filter((g) => g.minor)
      // perf_hooks records each whole interval, the 1 ms period included: taken off, an idle loop reads ~0.
      const ns = (q: number): number => round(Math.max(0, delay.percentile(q) / 1e6 - 1), 2)
      return `hub trace ${run}: ${counted.length} rings; hub GCs during rings ${inRings.length} (${minor.length} scavenges, ${round(minor.reduce((a, g) => a + g.ms, 0) / Math.max(1, counted.length), 3)} ms/ring; ` +
        `largest ${round(Math.max(0, ...inRings.map((g) => g.ms)), 2)} ms); samples met by a GC: all ${round(100 * share(all), 1)} %, at/above p99 (${round(p99, 2)} ms) ${round(100 * share(tail), 1)} %; ` +
        `all GCs in the block ${gcs.length}, ${round(gcs.reduce((a, g) => a + g.ms, 0), 1)} ms; event-loop lateness p50 ${ns(50)} / p99 ${ns(99)} / max ${round(Math.max(0, delay.max / 1e6 - 1), 2)} ms; profile ${join(dir, `${run}.cpuprofile`)}`
    }
  }
}
