import { request } from 'node:http'
import { cpus } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { PairResponse, decode, type DeviceConfig } from '@doorbell/core'
import { Camera, memoryLogger, pairingOf, savePairing, startDoorbell, type Doorbell } from '@doorbell/device'
import { percentile } from '../bench/lib'
import { childNamed, cpuTicks, machineCpu } from '../bench/proc'
import { openResident, type Resident } from './browser'
import { ChromiumCpu, cpuBetween, cpuByType } from './cdp'
import { kill, startHomeHub, type HomeHub } from './hubProcess'

/**
 * The operator console under load, for its e2e test (tests/e2e/console-load.test.ts) and its bench
 * (tests/bench/console.ts): a hub in its own process, one encoder (a test-pattern `Camera`) shared
 * by many Node doorbells in this process, each with its own werift peers and its own pairing into
 * a zone, and operator screens in Chromium on /console at 1920×1080. What a screen costs is read
 * from Chromium's own process list (tests/src/cdp.ts); how smooth its tiles are, from each tile's
 * <video> (getVideoPlaybackQuality, requestVideoFrameCallback).
 */

/**
 * The shared source, a keyframe every second. H.264 rather than VP8: measured here with 16 feeds,
 * Chromium (software decoders in the renderer, no GPU) decoded an H.264 frame in 0.6-1 ms against
 * VP8's ~1.1 ms (inbound-rtp totalDecodeTime), and the one encode cost ffmpeg ~5 % of a core
 * against 34-45 % for VP8.
 */
export const LOAD_SOURCE = { kind: 'test-pattern', width: 640, height: 360, fps: 15 } as const
export const LOAD_CAMERA: DeviceConfig['camera'] = {
  source: LOAD_SOURCE,
  codec: 'h264',
  keyframeInterval: 15,
  bitrateKbps: 600
}

export interface ZoneOfCameras { zone: string, cameras: number }

/** Sixteen cameras as the console shows them on one screen: four zones of four, a 4×4 grid. */
export const SIXTEEN_IN_FOUR_ZONES: ZoneOfCameras[] = ['CBD-TRAFFIC-01', 'CBD-TRAFFIC-02', 'HARBOUR-02', 'RAIL-03'].map((zone) => ({ zone, cameras: 4 }))

export interface LoadNode {
  deviceId: string
  name: string
  zone: string
  doorbell: Doorbell
}

export interface ConsoleLoad {
  home: HomeHub
  /** The one encoder every doorbell sends from. */
  camera: Camera
  nodes: LoadNode[]
  /** Every log line of the camera and the doorbells (shown when a test fails). */
  lines: string[]
  /** An operator granted `zones`, paired through the pairing screen, on /console: every tile live and decoding. */
  openConsole: (o: { zones: string[], name: string }) => Promise<ConsoleScreen>
  /** The last lines of everything, for a failure. */
  diagnostics: () => string
  /** Stops the doorbells, then the camera, then the hub, then any screen still open; every step runs. */
  stop: () => Promise<void>
}

/** One tile over a measuring window. */
export interface TileReading {
  deviceId: string
  state: string
  /** The decoded picture's width (0: nothing decoded). */
  width: number
  /** Frames handed to the <video> per second (getVideoPlaybackQuality().totalVideoFrames). */
  fps: number
  /** The lowest of its one-second rates in the window. */
  worstSecondFps: number
  /** Frames presented per second (requestVideoFrameCallback's presentedFrames). */
  presentedFps: number
  /** Frames the <video> dropped in the window (getVideoPlaybackQuality().droppedVideoFrames). */
  dropped: number
  /** What the tile's own FPS figure said at the end (inbound-rtp framesPerSecond). */
  shownFps: string
}

export interface ConsoleReading {
  windowMs: number
  feeds: number
  /** The console page's renderer, % of one core. */
  rendererCpu: number
  /** Every Chromium process by kind (renderers summed; GPU; each utility service), % of one core. */
  chromium: Record<string, number>
  /** This process: the doorbells and their werift peers (and the test's Playwright client), % of one core. */
  doorbellsCpu: number
  /** The one encoder (ffmpeg), % of one core. */
  ffmpegCpu: number
  /** The hub process, % of one core. */
  hubCpu: number
  /** The whole machine: its cores and how busy they were, % of all of them (a saturated machine slows every figure). */
  machine: { cores: number, busyPct: number }
  tiles: TileReading[]
  /** Median and lowest of the tiles' fps, and frames dropped by all tiles. */
  medianFps: number
  minFps: number
  /** The lowest one-second rate of any tile. */
  worstSecondFps: number
  medianPresentedFps: number
  dropped: number
}

export interface ConsoleScreen {
  operator: Resident
  page: Page
  /** The cameras this screen shows (its zones'). */
  deviceIds: string[]
  /** The pid of the renderer running the console page. */
  renderer: number
  /** Tiles and CPU over `windowMs` (every tile's fps, the renderer's and every other process's CPU). */
  measure: (windowMs: number) => Promise<ConsoleReading>
  close: () => Promise<void>
}

/** The hub lets one address pair 10 times at once, then once every 30 s (hub/src/api.ts): each camera pairs from its own. */
const cameraAddress = (n: number): string => `127.0.0.${2 + n}`

/**
 * Redeems a device invite over the hub's HTTP API from `localAddress`, and keeps the pairing where
 * the doorbell reads it. The doorbell's own pairing (device/src/trust/pairing.ts) would do the same
 * from 127.0.0.1, where sixteen cameras would spend the hub's per-address pairing allowance (10,
 * then one every 30 s); on a real network each camera has its own address, as here.
 */
async function pairFrom (home: HomeHub, o: { deviceId: string, name: string, zone: string, dataDir: string, localAddress: string }): Promise<void> {
  const invite = await home.asOwner.invite({ kind: 'device', deviceId: o.deviceId, zones: [o.zone] })
  const body = JSON.stringify({ kind: 'device', code: invite.code, id: o.deviceId, name: o.name })
  const raw = await new Promise<string>((resolve, reject) => {
    const req = request(`${home.base}/api/pair`, {
      method: 'POST',
      localAddress: o.localAddress,
      timeout: 10_000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        if ((res.statusCode ?? 500) >= 400) reject(new Error(`pairing ${o.deviceId} from ${o.localAddress}: ${res.statusCode ?? ''} ${text.slice(0, 300)}`))
        else resolve(text)
      })
    })
    req.on('timeout', () => { req.destroy(new Error(`pairing ${o.deviceId}: no answer in 10 s`)) })
    req.on('error', reject)
    req.end(body)
  })
  const reply = decode(PairResponse, raw, 'pairing reply')
  if (!reply.ok) throw reply.error
  savePairing(o.dataDir, pairingOf(reply.value, null))
}

/** Runs every step, in order, whatever fails; then throws what failed. */
async function runAll (steps: Array<[string, () => Promise<void> | void]>): Promise<void> {
  const failed: string[] = []
  for (const [what, step] of steps) {
    try { await step() } catch (err) { failed.push(`${what}: ${(err as Error).message}`) }
  }
  if (failed.length > 0) throw new Error(`clean-up: ${failed.join('; ')}`)
}

const median = (xs: number[]): number => percentile(xs, 50)

/** What the page says about each tile now (and, the first time, starts counting presented frames). */
interface TileSample { deviceId: string, state: string, width: number, total: number, dropped: number, presented: number, shownFps: string }

async function sampleTiles (page: Page): Promise<{ at: number, tiles: TileSample[] }> {
  // No named inner functions: tsx would wrap them in a helper (__name) the page does not have.
  return await page.evaluate(() => {
    const w = window as unknown as { consoleLoad?: Map<HTMLVideoElement, { presented: number, next: ((now: number, meta: { presentedFrames: number }) => void) | null }> }
    const counters = w.consoleLoad ??= new Map()
    const tiles = [...document.querySelectorAll('article[data-testid^="tile-"]')].map((tile) => {
      const video = tile.querySelector('video')
      let presented = 0
      if (video) {
        let c = counters.get(video)
        if (!c) {
          const counter: { presented: number, next: ((now: number, meta: { presentedFrames: number }) => void) | null } = { presented: 0, next: null }
          counter.next = (_now, meta) => { counter.presented = meta.presentedFrames; video.requestVideoFrameCallback(counter.next!) }
          video.requestVideoFrameCallback(counter.next)
          counters.set(video, counter)
          c = counter
        }
        presented = c.presented
      }
      const q = video?.getVideoPlaybackQuality()
      return {
        deviceId: (tile.getAttribute('data-testid') ?? '').slice('tile-'.length),
        state: tile.getAttribute('data-state') ?? '',
        width: video?.videoWidth ?? 0,
        total: q?.totalVideoFrames ?? 0,
        dropped: q?.droppedVideoFrames ?? 0,
        presented,
        shownFps: (tile.querySelector('[data-testid=fig-fps]')?.textContent ?? '').trim()
      }
    })
    return { at: performance.now(), tiles }
  })
}

/** After finding the page's renderer (it spins the page's main thread), before a measurement. */
export const SETTLE_MS = 3000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Every tile of `deviceIds` live, decoding (a picture, and frames that keep coming), within `timeoutMs`. */
async function allLiveAndDecoding (page: Page, deviceIds: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let first = await sampleTiles(page)
  let last = first
  while (Date.now() < deadline) {
    await sleep(500)
    last = await sampleTiles(page)
    const ok = deviceIds.every((id) => {
      const before = first.tiles.find((t) => t.deviceId === id)
      const now = last.tiles.find((t) => t.deviceId === id)
      return before && now && now.state === 'live' && before.width > 0 && now.width > 0 && now.total >= before.total + 5
    })
    if (ok && last.tiles.length === deviceIds.length) return
    // Start the count again from a sample where every tile had a picture.
    if (!first.tiles.every((t) => t.width > 0) || first.tiles.length !== deviceIds.length) first = last
  }
  throw new Error(`not every tile is live and decoding after ${timeoutMs} ms (want ${deviceIds.length}): ${JSON.stringify(last.tiles.map((t) => ({ id: t.deviceId, state: t.state, width: t.width, frames: t.total })))}`)
}

/**
 * Starts the hub, the shared camera and one doorbell per camera of `zones` (zone order, then
 * camera number: `<zone>-cam-1` …), each paired into its zone. Nothing is left running when it fails.
 */
export async function startConsoleLoad (o: { dir: string, zones: ZoneOfCameras[], camera?: DeviceConfig['camera'] }): Promise<ConsoleLoad> {
  const lines: string[] = []
  const screens = new Set<ConsoleScreen>()
  const nodes: LoadNode[] = []
  let home: HomeHub | null = null
  let camera: Camera | null = null

  const stop = async (): Promise<void> => {
    await runAll([
      ['doorbells', async () => { await Promise.all(nodes.map(async (n) => { await n.doorbell.stop() })) }],
      ['camera', async () => { await camera?.stop() }],
      ['hub', async () => { if (home) await kill(home.hub, 'SIGTERM') }],
      ['screens', async () => { for (const s of [...screens]) await s.close() }]
    ])
  }

  try {
    home = await startHomeHub(o.dir, { mesh: { enabled: false } })
    const h = home
    const cam = camera = new Camera(o.camera ?? LOAD_CAMERA, memoryLogger(lines, 'camera'))
    await cam.start()
    const wanted = o.zones.flatMap((z) => Array.from({ length: z.cameras }, (_, i) => ({ zone: z.zone, deviceId: `${z.zone.toLowerCase()}-cam-${i + 1}`, name: `${z.zone} camera ${i + 1}` })))
    if (wanted.length > 200) throw new Error(`at most 200 cameras (one loopback address each), not ${wanted.length}`)
    const started = await Promise.allSettled(wanted.map(async (w, n) => {
      const dataDir = join(o.dir, w.deviceId)
      await pairFrom(h, { ...w, dataDir, localAddress: cameraAddress(n) })
      const doorbell = await startDoorbell({
        hubUrl: h.mqttUrl,
        deviceId: w.deviceId,
        deviceName: w.name,
        dataDir,
        mesh: { enabled: false },
        iceAdditionalHostAddresses: ['127.0.0.1'],
        // Cameras for the console, which plays no sound: no encoder per node (the load is the video's).
        audio: { source: 'none' }
      }, { camera: cam, log: memoryLogger(lines, w.deviceId) })
      nodes.push({ ...w, doorbell })
      await doorbell.hubConnected(AbortSignal.timeout(20_000))
    }))
    const failed = started.flatMap((r) => r.status === 'rejected' ? [(r.reason as Error).message] : [])
    if (failed.length > 0) throw new Error(`${failed.length} of ${wanted.length} cameras did not start: ${failed.slice(0, 3).join('; ')}`)
    // Grid order, whatever order they started in.
    nodes.sort((a, b) => wanted.findIndex((w) => w.deviceId === a.deviceId) - wanted.findIndex((w) => w.deviceId === b.deviceId))
  } catch (err) {
    await stop().catch((e: Error) => { lines.push(e.message) })
    throw new Error(`${(err as Error).message}\n${[...lines.slice(-20), ...(home?.hub.lines.slice(-20) ?? [])].join('\n')}`)
  }
  const h = home
  const cam = camera

  const openConsole = async (c: { zones: string[], name: string }): Promise<ConsoleScreen> => {
    const deviceIds = nodes.filter((n) => c.zones.includes(n.zone)).map((n) => n.deviceId)
    const invite = await h.asOwner.invite({ kind: 'viewer', role: 'operator', zones: c.zones })
    const operator = await openResident(`${h.base}/`, c.name, invite.code)
    let cpu: ChromiumCpu | null = null
    let closed = false
    const close = async (): Promise<void> => {
      if (closed) return
      closed = true
      screens.delete(screen)
      await cpu?.close()
      await operator.close()
    }
    const screen: ConsoleScreen = { operator, page: operator.page, deviceIds, renderer: 0, measure: async () => { throw new Error('not ready') }, close }
    screens.add(screen)
    try {
      const page = operator.page
      await page.setViewportSize({ width: 1920, height: 1080 })
      await page.goto(`${h.base}/console`)
      await allLiveAndDecoding(page, deviceIds, 60_000)
      cpu = await ChromiumCpu.of(operator.context)
      screen.renderer = await cpu.rendererOf(page)
      // The page's main thread just spun: let the tiles' frame pacing settle before anyone measures.
      await sleep(SETTLE_MS)
      const chromium = cpu
      screen.measure = async (windowMs) => await measure(page, chromium, screen.renderer, h, windowMs)
      return screen
    } catch (err) {
      const said = operator.console.slice(-15).join('\n')
      await close()
      throw new Error(`${(err as Error).message}\nthe page said:\n${said}`)
    }
  }

  return {
    home: h,
    camera: cam,
    nodes,
    lines,
    openConsole,
    diagnostics: () => [...lines.slice(-40), ...h.hub.lines.slice(-30), ...[...screens].flatMap((s) => s.operator.console.slice(-20))].join('\n'),
    stop
  }
}

/** Busy and total clock ticks of the whole machine (/proc/stat). */
async function machineTicks (): Promise<{ busy: number, total: number }> {
  const m = await machineCpu()
  if (m === null) throw new Error('no /proc/stat: the machine\'s CPU cannot be read')
  return { busy: m.busy, total: m.all }
}

async function measure (page: Page, chromium: ChromiumCpu, renderer: number, home: HomeHub, windowMs: number): Promise<ConsoleReading> {
  const hubPid = home.hub.proc.pid!
  const ffmpegPid = await childNamed(process.pid, 'ffmpeg')
  const samples = [await sampleTiles(page)]
  const procsA = await chromium.processes()
  const nodeA = process.cpuUsage()
  const [hubA, ffmpegA, machineA] = await Promise.all([cpuTicks(hubPid), ffmpegPid ? cpuTicks(ffmpegPid) : NaN, machineTicks()])
  const startedAt = performance.now()
  // A sample a second: the worst second says more about smoothness than the window's mean.
  const seconds = Math.max(1, Math.round(windowMs / 1000))
  for (let i = 1; i <= seconds; i++) {
    await sleep(startedAt + (i * windowMs) / seconds - performance.now())
    samples.push(await sampleTiles(page))
  }
  const procsB = await chromium.processes()
  const nodeB = process.cpuUsage(nodeA)
  const [hubB, ffmpegB, machineB] = await Promise.all([cpuTicks(hubPid), ffmpegPid ? cpuTicks(ffmpegPid) : NaN, machineTicks()])
  const elapsed = (performance.now() - startedAt) / 1000
  const cpu = cpuBetween(procsA, procsB, elapsed)
  const a = samples[0]!
  const b = samples.at(-1)!
  const rate = (from: { at: number, tiles: TileSample[] }, to: { at: number, tiles: TileSample[] }, id: string, k: 'total' | 'presented'): number => {
    const x = from.tiles.find((t) => t.deviceId === id)
    const y = to.tiles.find((t) => t.deviceId === id)
    // The presented-frame counter starts with a screen's first sample: a count still at 0 is no rate.
    return x && y && (k === 'total' || x.presented > 0) ? (y[k] - x[k]) / ((to.at - from.at) / 1000) : NaN
  }
  const tiles = b.tiles.map((t): TileReading => {
    const perSecond = samples.slice(1).map((s, i) => rate(samples[i]!, s, t.deviceId, 'total')).filter(Number.isFinite)
    return {
      deviceId: t.deviceId,
      state: t.state,
      width: t.width,
      fps: rate(a, b, t.deviceId, 'total'),
      worstSecondFps: perSecond.length > 0 ? Math.min(...perSecond) : NaN,
      presentedFps: rate(a, b, t.deviceId, 'presented'),
      dropped: t.dropped - (a.tiles.find((x) => x.deviceId === t.deviceId)?.dropped ?? NaN),
      shownFps: t.shownFps
    }
  })
  const fps = tiles.map((t) => t.fps)
  return {
    windowMs,
    feeds: tiles.length,
    rendererCpu: cpu.find((p) => p.pid === renderer)?.percent ?? NaN,
    chromium: cpuByType(cpu),
    doorbellsCpu: (100 * (nodeB.user + nodeB.system) / 1e6) / elapsed,
    ffmpegCpu: (ffmpegB - ffmpegA) / elapsed,
    hubCpu: (hubB - hubA) / elapsed,
    machine: { cores: cpus().length, busyPct: (100 * (machineB.busy - machineA.busy)) / (machineB.total - machineA.total) },
    tiles,
    medianFps: median(fps),
    minFps: Math.min(...fps),
    worstSecondFps: Math.min(...tiles.map((t) => t.worstSecondFps)),
    medianPresentedFps: median(tiles.map((t) => t.presentedFps).filter(Number.isFinite)),
    dropped: tiles.reduce((sum, t) => sum + t.dropped, 0)
  }
}

/** One line for a log: the renderer's CPU, the other processes, the tiles' fps. */
export function describeReading (r: ConsoleReading): string {
  const f = (x: number): string => Number.isFinite(x) ? x.toFixed(1) : '—'
  const others = Object.entries(r.chromium).map(([k, v]) => `${k} ${f(v)} %`).join(', ')
  return `${r.feeds} feeds, ${r.windowMs / 1000} s: console renderer ${f(r.rendererCpu)} % of a core (Chromium by process: ${others}); ` +
    `doorbells (this process) ${f(r.doorbellsCpu)} %, ffmpeg ${f(r.ffmpegCpu)} %, hub ${f(r.hubCpu)} %; machine ${f(r.machine.busyPct)} % busy of ${r.machine.cores} cores; ` +
    `fps per tile median ${f(r.medianFps)} (lowest ${f(r.minFps)}, worst second ${f(r.worstSecondFps)}), presented median ${f(r.medianPresentedFps)}, ` +
    `dropped ${r.dropped}; tile figures say ${[...new Set(r.tiles.map((t) => t.shownFps.replace(/^⚠ out of bounds: /, '⚠ ')))].join(' / ')}`
}
