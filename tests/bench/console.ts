/**
 * What the operator console costs the screen it runs on (issue 8: "16 feeds in one console page:
 * all decode; the console page's CPU is reported"; "16 tiles on one screen stay smooth"). The
 * set-up of tests/e2e/console-load.test.ts (tests/src/consoleLoad.ts): a hub in its own process,
 * Node doorbells in zones sharing one test-pattern encoder, an operator's /console in headless
 * Chromium at 1920×1080. With 1, 4 and 16 feeds (one operator screen per step, granted the zones
 * that hold that many cameras): the console page's renderer CPU and the GPU process's (where
 * Chromium composites without a GPU), each tile's decoded and presented frames per second against
 * the source's, and the frames the <video>s dropped. Median over rounds.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LOAD_CAMERA, LOAD_SOURCE, SETTLE_MS, SIXTEEN_IN_FOUR_ZONES, describeReading, startConsoleLoad, type ConsoleReading, type ZoneOfCameras } from '../src/consoleLoad'
import { percentile, round, sleep, type Bench, type Figure } from './lib'

/** "Smooth": a tile shows at least this share of the source's frames (median tile). */
export const SMOOTH_SHARE = 90

/** Nearest-rank median of the finite values (a reading that could not be taken is NaN). */
const median = (xs: number[]): number => percentile(xs.filter(Number.isFinite), 50)

export const consoleBench: Bench = async ({ smoke, log }) => {
  const grid = SIXTEEN_IN_FOUR_ZONES.slice(0, smoke ? 1 : 4)
  const solo: ZoneOfCameras = { zone: 'SOLO-00', cameras: 1 }
  const zones = smoke ? grid : [solo, ...grid]
  // Feeds → the zones an operator is granted to see exactly that many.
  const steps: Array<{ feeds: number, zones: string[] }> = smoke
    ? [{ feeds: 4, zones: [grid[0]!.zone] }]
    : [{ feeds: 1, zones: [solo.zone] }, { feeds: 4, zones: [grid[0]!.zone] }, { feeds: 16, zones: grid.map((z) => z.zone) }]
  const rounds = smoke ? 1 : 3
  const windowMs = smoke ? 3000 : 10_000
  const warmUpMs = smoke ? 0 : 2000
  const sourceFps = LOAD_SOURCE.fps
  const largest = steps.at(-1)!.feeds

  const dir = await mkdtemp(join(tmpdir(), 'doorbell-bench-console-'))
  const load = await startConsoleLoad({ dir, zones, camera: LOAD_CAMERA }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true })
    throw err
  })
  const figures: Figure[] = []
  try {
    for (const step of steps) {
      const screen = await load.openConsole({ zones: step.zones, name: `Bench ${step.feeds}` })
      const readings: ConsoleReading[] = []
      try {
        await sleep(warmUpMs)
        for (let i = 0; i < rounds; i++) {
          const r = await screen.measure(windowMs)
          readings.push(r)
          log(`console: ${describeReading(r)}`)
        }
      } finally {
        await screen.close()
      }
      const n = step.feeds
      const decoding = readings.at(-1)!.tiles.filter((t) => t.state === 'live' && t.width > 0 && t.fps > 0).length
      const frames = readings.reduce((sum, r) => sum + r.tiles.reduce((s, t) => s + t.fps * (r.windowMs / 1000), 0), 0)
      const dropped = readings.reduce((sum, r) => sum + r.dropped, 0)
      const busy = median(readings.map((r) => r.machine.busyPct))
      const conditions = `loopback; hub in its own process; ${load.nodes.length} Node doorbells (werift) sharing one ffmpeg encode, ` +
        `${LOAD_SOURCE.width}x${LOAD_SOURCE.height}@${sourceFps} H.264 test pattern at ${LOAD_CAMERA.bitrateKbps} kbit/s, keyframe every ${LOAD_CAMERA.keyframeInterval} frames; ` +
        `one operator's /console in headless Chromium (Debian, no GPU) at 1920x1080 with ${n} feed${n > 1 ? 's' : ''}; ` +
        `${rounds} round${rounds > 1 ? 's' : ''} of ${windowMs / 1000} s, ${(warmUpMs + SETTLE_MS) / 1000} s after every tile was live; everything on ${readings[0]!.machine.cores} shared cores, ${Math.round(busy)} % busy meanwhile (median)`
      const f = (id: string, name: string, value: number, target?: Figure['target']): Figure =>
        ({ id: `${id}-${n}`, name: `${name}, ${n} feed${n > 1 ? 's' : ''}`, value: round(value), unit: '%', ...(target ? { target } : {}), conditions, group: 'console' })
      figures.push(
        f('console-decoding', 'feeds live and decoding in one console page', (100 * decoding) / n, { op: '>=', value: 100 }),
        f('console-cpu', 'console page CPU (its renderer, % of one core), median', median(readings.map((r) => r.rendererCpu))),
        f('console-gpu-cpu', '· Chromium GPU process (compositing) CPU, median', median(readings.map((r) => r.chromium.GPU ?? NaN))),
        f('console-fps', 'frames decoded per tile, median tile, share of the source\'s', (100 * median(readings.map((r) => r.medianFps))) / sourceFps),
        f('console-presented', 'frames shown per tile, median tile, share of the source\'s', (100 * median(readings.map((r) => r.medianPresentedFps))) / sourceFps,
          n === largest ? { op: '>=', value: SMOOTH_SHARE } : undefined),
        f('console-dropped', 'frames the video elements dropped (getVideoPlaybackQuality), share of frames', frames > 0 ? (100 * dropped) / frames : NaN)
      )
    }
    return figures
  } finally {
    await load.stop().catch((err: Error) => { log(`console: ${err.message}`) })
    await rm(dir, { recursive: true, force: true })
  }
}
