/**
 * How many viewers one doorbell carries: the device in its own process at 720p30 H.264, with
 * 1, 4, 8 and 12 viewers (werift peers running the viewer's own call logic, in this process so
 * that a browser's CPU does not blur the device's). Per step: device and ffmpeg CPU (% of one
 * core), device RSS, and packet loss seen by the viewers (sequence gaps, duplicates ignored).
 * Then an RTSP camera (GStreamer's RTSP server, tests/src/rtsp.ts) at 720p30 with 1 and 4 viewers,
 * side by side: its Constrained Baseline H.264 passed through, against Main profile re-encoded
 * (CPU and RSS; RSS <= 150 MB with 4 viewers). Between them, preview sessions counted: 4 screens
 * preview a ring, then one answers and the others join (./loadPreview.ts). Last, the same doorbell
 * with its microphone on and 1 and 4 viewers receiving its sound too (./loadAudio.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/core'
import { eventually } from '../src/harness'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'
import { deviceInvite } from '../src/trust'
import { pairViewerInProcess, round, sleep, type Bench, type Figure } from './lib'
import { cpuPercent, rssMb, startDeviceProcess } from './proc'
import { startRtspCamera, type RtspProfile } from '../src/rtsp'
import { previewLoad } from './loadPreview'
import { audioLoad, type VideoOnly } from './loadAudio'

export const CAMERA = { source: { kind: 'test-pattern', width: 1280, height: 720, fps: 30 }, codec: 'h264', keyframeInterval: 30, bitrateKbps: 2500 } as const

/** Share of packets missing between the first and last sequence number each viewer saw. */
export function lossPercent (seqs: number[][]): number {
  let expected = 0
  let received = 0
  for (const list of seqs) {
    if (list.length < 2) continue
    // Unwrap 16-bit sequence numbers in arrival order.
    let base = 0
    let prev = list[0]!
    const seen = new Set<number>([prev])
    for (const s of list.slice(1)) {
      if (s - prev < -30000) base += 65536
      else if (s - prev > 30000) base -= 65536
      seen.add(base + s)
      prev = s
    }
    const sorted = [...seen].sort((a, b) => a - b)
    expected += sorted.at(-1)! - sorted[0]! + 1
    received += sorted.length
  }
  return expected === 0 ? NaN : (100 * (expected - received)) / expected
}

/** Calls per viewer before a step gives up (the first, and two more after a failed one). */
const WATCH_ATTEMPTS = 3
/** How long one step may take to get video to every viewer (three calls' connect timeouts, and slack). */
const WATCH_DEADLINE_MS = 120_000

/** Every viewer hangs up, its bye reaches the doorbell, then it disconnects (the end of each step). */
export async function endCalls (viewers: NodeViewer[], deviceId: string): Promise<void> {
  for (const v of viewers) v.home.hangUp(deviceId)
  await sleep(500) // the byes reach the device before the viewers disconnect
  await Promise.all(viewers.map(async (v) => { await v.close() }))
}

/**
 * Every viewer watches the doorbell until its video flows. On this busy machine (two shared
 * cores, load 20 and more) one of a dozen calls may time out its ICE: a call that ended without
 * video is made again, up to WATCH_ATTEMPTS calls per viewer, as soon as its machine says it
 * ended (no fixed pause), all within WATCH_DEADLINE_MS. The figures are about carrying viewers,
 * not about a loaded machine's first connection. A step that still fails names each viewer's
 * packets, calls and state, and what the device said last.
 */
export async function watchAll (viewers: NodeViewer[], deviceId: string, lines: () => string[]): Promise<void> {
  const flowing = (v: NodeViewer): boolean => v.rtp.length > 30
  const calls = new Map<NodeViewer, number>(viewers.map((v) => [v, 1]))
  for (const v of viewers) v.home.watch(deviceId)
  const stateOf = (v: NodeViewer): { value: string, ended: boolean, endReason: string | null } => {
    const s = v.home.doorbell(deviceId).getSnapshot()
    return { value: JSON.stringify(s.value), ended: s.matches('ended'), endReason: s.context.endReason }
  }
  await eventually(`video at all ${viewers.length} viewers`, () => {
    for (const v of viewers) {
      if (flowing(v) || calls.get(v)! >= WATCH_ATTEMPTS || !stateOf(v).ended) continue
      calls.set(v, calls.get(v)! + 1)
      v.home.watch(deviceId)
    }
    return viewers.every(flowing)
  }, WATCH_DEADLINE_MS).catch((err: Error) => {
    const each = viewers.map((v, i) => { const s = stateOf(v); return `#${i}: ${v.rtp.length} RTP, ${calls.get(v)} call(s), ${s.value}${s.endReason ? ` (${s.endReason})` : ''}` })
    throw new Error(`${err.message}; viewers: ${each.join('; ')}; device said:\n${lines().slice(-15).join('\n')}`)
  })
}

export const loadBench: Bench = async ({ smoke, log }) => {
  const steps = process.env.LOAD_STEPS ? process.env.LOAD_STEPS.split(',').map(Number) : smoke ? [1, 2] : [1, 4, 8, 12]
  const windowMs = smoke ? 1000 : 15_000
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-load-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  // The doorbell pairs on its first start with a device invite, as at home.
  const device = await startDeviceProcess({ hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, 'front-door') }, iceAdditionalHostAddresses: ['127.0.0.1'], camera: CAMERA, ringTimeoutSeconds: 120 }, 'load-device')
  const figures: Figure[] = []
  const conditions = (n: number): string => `loopback, ${device.built ? 'built device (npm run start:dist flags)' : 'device through tsx'} in its own process on ${cpus().length} shared cores, 1280x720@30 H.264 test pattern at 2.5 Mbit/s, ${n} werift viewers, ${windowMs / 1000} s window`
  let viewers: NodeViewer[] = []
  let carried = 0
  try {
    await sleep(1000)
    const idle = await rssMb(device.pid)
    figures.push({ id: 'load-rss-idle', name: 'device RSS, no viewer', value: Math.round(idle), unit: 'MB', conditions: conditions(0), group: 'load' })
    const cpuByCount: Array<[number, number]> = []
    const videoOnly: VideoOnly = new Map()
    for (const count of steps) {
      // Each viewer a paired member of the home, as every screen is.
      const paired = await Promise.all(Array.from({ length: count }, async (_, k) => await pairViewerInProcess(hub, { name: `Load ${k}`, viewerId: `load${count}x${k}` })))
      viewers = paired.map((p) => nodeViewer(hub.mqttUrl, p))
      await eventually('viewers connected to the hub', () => viewers.every((v) => v.home.hub.connected))
      await watchAll(viewers, 'front-door', () => device.lines.map((l) => l.text))
      await sleep(1000)
      for (const v of viewers) v.rtp.length = 0
      const ffmpeg = await device.ffmpegPid()
      // RSS is the highest reading over the window: V8's heap breathes under RTP traffic.
      let rss = 0
      const sampler = setInterval(() => { void rssMb(device.pid).then((mb) => { rss = Math.max(rss, mb) }, () => {}) }, 250)
      const load = loadavg()[0]!
      const [cpu, ff] = await cpuPercent(ffmpeg ? [device.pid, ffmpeg] : [device.pid], windowMs).finally(() => { clearInterval(sampler) })
      const loss = lossPercent(viewers.map((v) => v.rtp.map((p) => p.header.sequenceNumber)))
      rss = Math.max(rss, await rssMb(device.pid))
      log(`load: ${count} viewers: device CPU ${round(cpu!)} %, ffmpeg ${round(ff ?? NaN)} %, RSS ${Math.round(rss)} MB, loss ${round(loss, 2)} %, load ${round(load, 2)}`)
      const c = conditions(count)
      figures.push(
        { id: `load-cpu-${count}`, name: `device CPU, ${count} viewer${count > 1 ? 's' : ''}`, value: round(cpu!), unit: '%', conditions: c, group: 'load' },
        { id: `load-rss-${count}`, name: `device RSS, ${count} viewer${count > 1 ? 's' : ''}`, value: Math.round(rss), unit: 'MB', ...(count === 4 ? { target: { op: '<=' as const, value: 150 } } : {}), conditions: c, group: 'load' },
        { id: `load-loss-${count}`, name: `packet loss, ${count} viewer${count > 1 ? 's' : ''}`, value: round(loss, 2), unit: '%', conditions: c, group: 'load' },
        { id: `load-ffmpeg-cpu-${count}`, name: `ffmpeg CPU (one encode for all), ${count} viewer${count > 1 ? 's' : ''}`, value: round(ff ?? NaN), unit: '%', conditions: c, group: 'load' }
      )
      if (cpu! < 100 && loss < 1) carried = count
      cpuByCount.push([count, cpu!])
      videoOnly.set(count, { cpu: cpu!, rss, load })
      await endCalls(viewers, 'front-door')
      viewers = []
      await sleep(1000)
    }
    if (cpuByCount.length >= 2) {
      // What one more viewer costs: the least-squares slope of device CPU over the viewer counts
      // (the camera's share, paid once, is the intercept).
      const n = cpuByCount.length
      const mx = cpuByCount.reduce((a, [x]) => a + x, 0) / n
      const my = cpuByCount.reduce((a, [, y]) => a + y, 0) / n
      const slope = cpuByCount.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / cpuByCount.reduce((a, [x]) => a + (x - mx) ** 2, 0)
      figures.push({ id: 'load-cpu-per-viewer', name: 'device CPU per viewer (slope over the viewer counts)', value: round(slope, 2), unit: '%', conditions: `${conditions(steps.at(-1)!)}; least-squares slope of device CPU over ${cpuByCount.map(([x]) => x).join(', ')} viewers (each a call session)`, group: 'load' })
    }
    // Preview sessions counted (issue 21): screens that preview a ring, then a call made from them.
    figures.push(...await previewLoad(hub, device, { windowMs, count: smoke ? 2 : 4, conditions: conditions(smoke ? 2 : 4).replace(/, \d+ werift viewers/, ''), log }))
    figures.push(...await rtspCpu(hub, windowMs, log, smoke ? [1] : [1, 4]))
    // Issue 17: the same doorbell with its microphone on, alone on the machine as the video-only one was.
    await device.stop()
    figures.push(...await audioLoad(hub, { counts: [1, 4], windowMs, videoOnly, log }))
    figures.push({ id: 'load-max-viewers', name: 'viewers carried on one core with < 1 % loss (most tried)', value: carried, unit: 'viewers', target: { op: '>=', value: smoke ? 2 : 12 }, conditions: conditions(steps.at(-1)!), group: 'load' })
    return figures
  } finally {
    await Promise.all(viewers.map(async (v) => { await v.close() }))
    await device.stop()
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

/**
 * The device with an RTSP camera at 720p30, side by side in one run: passthrough (Constrained
 * Baseline, copied) against re-encoding (Main profile, decoded and encoded to Baseline), each with
 * 1 and then 4 viewers (werift, in this process). Per step: device CPU, its ffmpeg's CPU (% of one
 * core) and the device's peak RSS (target: <= 150 MB with 4 viewers, a Pi's budget). The same
 * server, picture and rate for both; the server's own CPU is not counted.
 */
async function rtspCpu (hub: Awaited<ReturnType<typeof startHub>>, windowMs: number, log: (line: string) => void, counts: number[]): Promise<Figure[]> {
  const figures: Figure[] = []
  const measured: Record<string, { cpu: number, ff: number, rss: number }> = {}
  for (const [profile, mode] of [['constrained-baseline', 'passthrough'], ['main', 're-encoding']] as Array<[RtspProfile, string]>) {
    const camera = await startRtspCamera(profile, '1280x720')
    const deviceId = `rtsp-${profile === 'main' ? 'main' : 'base'}`
    const device = await startDeviceProcess({ deviceId, mesh: { enabled: false }, hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, deviceId) }, iceAdditionalHostAddresses: ['127.0.0.1'], camera: { source: { kind: 'rtsp', url: camera.url }, codec: 'h264' } }, `load-${deviceId}`)
    let viewers: NodeViewer[] = []
    try {
      for (const count of counts) {
        const paired = await Promise.all(Array.from({ length: count }, async (_, k) => await pairViewerInProcess(hub, { name: `RTSP ${mode} ${k}`, viewerId: `load${deviceId}x${count}x${k}` })))
        viewers = paired.map((p) => nodeViewer(hub.mqttUrl, p))
        await eventually('the viewers connected to the hub', () => viewers.every((v) => v.home.hub.connected))
        // The device probes the camera before it starts its encoder (seconds on a loaded machine): viewers come after.
        await eventually('the camera\'s encoder started', () => device.lines.some((l) => /camera starting/.test(l.text)), 30_000)
        await watchAll(viewers, deviceId, () => device.lines.map((l) => l.text))
        await sleep(1000)
        const ffmpeg = await device.ffmpegPid()
        let rss = 0
        const sampler = setInterval(() => { void rssMb(device.pid).then((mb) => { rss = Math.max(rss, mb) }, () => {}) }, 250)
        const [cpu, ff] = await cpuPercent(ffmpeg ? [device.pid, ffmpeg] : [device.pid], windowMs).finally(() => { clearInterval(sampler) })
        rss = Math.max(rss, await rssMb(device.pid))
        measured[`${mode} ${count}`] = { cpu: cpu!, ff: ff ?? NaN, rss }
        log(`load: RTSP ${mode}, ${count} viewer${count > 1 ? 's' : ''}: device CPU ${round(cpu!)} %, ffmpeg ${round(ff ?? NaN)} %, RSS ${Math.round(rss)} MB`)
        const c = `loopback, RTSP camera (GStreamer's RTSP server, 1280x720@30 H.264 ${profile}), ${mode}, ${count} werift viewer${count > 1 ? 's' : ''}, ${device.built ? 'built device' : 'device through tsx'}, ${windowMs / 1000} s window; the server's CPU not counted`
        const id = `${mode === 'passthrough' ? 'passthrough' : 'reencode'}`
        const viewersName = `${count} viewer${count > 1 ? 's' : ''}`
        figures.push(
          { id: `load-rtsp-${id}-cpu-${count}`, name: `device CPU, RTSP camera ${mode}, ${viewersName}`, value: round(cpu!), unit: '%', conditions: c, group: 'load' },
          { id: `load-rtsp-${id}-ffmpeg-cpu-${count}`, name: `ffmpeg CPU, RTSP camera ${mode}, ${viewersName}`, value: round(ff ?? NaN), unit: '%', conditions: c, group: 'load' },
          { id: `load-rtsp-${id}-rss-${count}`, name: `device RSS, RTSP camera ${mode}, ${viewersName}`, value: Math.round(rss), unit: 'MB', ...(count === 4 ? { target: { op: '<=' as const, value: 150 } } : {}), conditions: c, group: 'load' }
        )
        await endCalls(viewers, deviceId)
        viewers = []
        await sleep(1000)
      }
    } finally {
      await Promise.all(viewers.map(async (v) => { await v.close() }))
      await device.stop()
      await camera.stop()
    }
  }
  for (const count of counts) {
    const [p, r] = [measured[`passthrough ${count}`], measured[`re-encoding ${count}`]]
    const f = (m?: { cpu: number, ff: number, rss: number }): string => m ? `device ${round(m.cpu)} % + ffmpeg ${round(m.ff)} %, ${Math.round(m.rss)} MB` : 'n/a'
    log(`load: RTSP side by side, ${count} viewer${count > 1 ? 's' : ''}: passthrough ${f(p)} / re-encoding ${f(r)}`)
  }
  return figures
}
