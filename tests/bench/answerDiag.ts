/**
 * Diagnosis (not a bench figure): Answer on a live preview, traced on both ends. A doorbell in its
 * own process, one headless Chromium page, N rings; per ring the page's marks and the doorbell's
 * log lines, hop by hop, and the figures the `preview` bench reports (Answer → call-taken, → first
 * audio, → the later of the two). Answer comes 0-1 s after the live picture (spread the same way
 * on each side). Options (environment):
 * - `DIAG_OLD_VIEWER=DIR`: a second hub serves that build of the viewer (`vite build --outDir DIR`
 *   from another commit), with its own doorbell; rings alternate: before/after in one run.
 * - `DIAG_STATS=1`: the audio receiver's own stats (`inbound-rtp` packetsReceived and
 *   lastPacketReceivedTimestamp, polled every 2 ms from Answer): when the first packet reached
 *   Chromium's network thread, whatever the main thread was doing (the poll itself costs the page
 *   main-thread time, so it is off by default).
 * - `DIAG_TRACE=1`: a CPU profile and a trace of the page's main thread around Answer.
 * - `DIAG_PREVIEW_CPU=1`: the browser's CPU time (all its processes, from /proc) over 3 s of live
 *   preview before each Answer: what the page costs while it waits for Answer.
 * - `DIAG_WAIT=MS`: Answer that long after the live picture; `DIAG_VERBOSE=1`: the page's peer
 *   connections made near Answer and its click timing.
 * - `DIAG_OTHER_DOORBELL=1`: a second doorbell (preview off, the same camera) paired to the hub,
 *   running through every other ring and stopped through the others: what a doorbell that is not
 *   rung costs the one that is, on this machine's shared cores (docs/performance.md, "Fifth look").
 *   `DIAG_OTHER_DOORBELL=rung`: it runs throughout, and before every other ring it is rung and
 *   answered (a call without preview, hung up once its video shows), as the preview bench
 *   interleaves its two doorbells; before the others it is left alone. With `DIAG_OTHER_PAUSE=MS`
 *   it is rung before every ring, and before every other ring the page waits MS more after its call.
 *   With `DIAG_OTHER_BEFORE=BUNDLE` it is rung before every ring, running this build of the doorbell
 *   before every other ring and BUNDLE (another build's dist/main.js) before the others.
 * Run: bash scripts/isolated.sh node --import tsx tests/bench/answerDiag.ts [rings]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/core'
import { openResident } from '../src/browser'
import { VIEWER_DIST } from '../src/harness'
import { deviceInvite, inviteCode, pairPage } from '../src/trust'
import { percentile, round } from './lib'
import { epochNow, startDeviceProcess, type DeviceProcess } from './proc'
import { CALL_CAMERA } from './call'
import { Hops, deviceAt, markOf, pageMarks } from './hops'

const ID = 'front-door'
const TRACE = process.env['DIAG_TRACE'] === '1'
const STATS = process.env['DIAG_STATS'] === '1'
const VERBOSE = process.env['DIAG_VERBOSE'] === '1'
const OLD_VIEWER = process.env['DIAG_OLD_VIEWER']
const WAIT = process.env['DIAG_WAIT'] !== undefined ? Number(process.env['DIAG_WAIT']) : null
const PREVIEW_CPU = process.env['DIAG_PREVIEW_CPU'] === '1'
const OTHER_DOORBELL = process.env['DIAG_OTHER_DOORBELL'] === '1' || process.env['DIAG_OTHER_DOORBELL'] === 'rung'
const OTHER_RUNG = process.env['DIAG_OTHER_DOORBELL'] === 'rung'
const OTHER_PAUSE = process.env['DIAG_OTHER_PAUSE'] !== undefined ? Number(process.env['DIAG_OTHER_PAUSE']) : null
const OTHER_BEFORE = process.env['DIAG_OTHER_BEFORE']

/** CPU time (ms, user + system) of this process's descendants that run Chromium (Linux /proc; clock ticks of 10 ms). */
function browserCpuMs (): number {
  const parent = new Map<number, number>()
  const ticks = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      // The fields after the command (which may hold spaces) in /proc/PID/stat: state, ppid, … utime (14), stime (15).
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      parent.set(Number(name), Number(f[1]))
      if (readlinkSync(`/proc/${name}/exe`).includes('chrom')) ticks.set(Number(name), Number(f[11]) + Number(f[12]))
    } catch { /* gone, or not ours to read */ }
  }
  const mine = (pid: number): boolean => { for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === process.pid) return true; return false }
  let total = 0
  for (const [pid, t] of ticks) if (mine(pid)) total += t
  return total * 10
}

/** JS self time by function over the profile (idle and program left out), the top 25, and the total of Vue's own functions. */
function profileSummary (profile: any): void {
  const byId = new Map<number, any>(profile.nodes.map((n: any) => [n.id, n]))
  const self = new Map<string, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i])
    const f = n.callFrame
    if (f.functionName === '(idle)' || f.functionName === '(program)') continue
    const key = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}:${f.columnNumber}`
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i + 1] ?? 100) / 1000)
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  console.log(`  js self ${total.toFixed(1)} ms: ${[...self].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${k} ${v.toFixed(1)}`).join('; ')}`)
}

/** The renderer main thread's top-level tasks from the Answer mark on, with their longest children. */
function traceSummary (events: any[]): void {
  const answer = events.find((e) => e.name === 'doorbell:answer')
  if (!answer) { console.log('  trace: no answer mark'); return }
  const t0 = answer.ts
  const tid = answer.tid
  const main = events.filter((e) => e.tid === tid && e.ts >= t0 - 30000 && e.ts <= t0 + 80000 && e.ph === 'X')
  // Chromium names a task twice (an outer ThreadControllerImpl::RunTask around RunTask): the outer one, where there is one.
  const outer = main.filter((e) => e.name === 'ThreadControllerImpl::RunTask')
  const top = outer.length > 0 ? outer : main.filter((e) => e.name === 'RunTask')
  for (const t of top) {
    if ((t.dur ?? 0) < 300) continue
    const kids = main.filter((e) => e !== t && e.ts >= t.ts && e.ts + (e.dur ?? 0) <= t.ts + t.dur && (e.dur ?? 0) >= 500 && e.name !== 'RunTask' && e.name !== 'ThreadControllerImpl::RunTask')
      .map((e) => `${e.name}${e.args?.data?.functionName ? ':' + e.args.data.functionName : ''}${e.args?.data?.type ? ':' + e.args.data.type : ''} ${(e.dur / 1000).toFixed(1)}`)
    console.log(`  task at ${((t.ts - t0) / 1000).toFixed(1)} ms, ${(t.dur / 1000).toFixed(1)} ms: ${kids.slice(0, 14).join(', ')}`)
  }
  const marks = events.filter((e) => e.tid === tid && typeof e.name === 'string' && e.name.startsWith('doorbell:') && e.ts >= t0)
  console.log(`  marks: ${marks.map((m) => `${m.name} ${((m.ts - t0) / 1000).toFixed(1)}`).join(', ')}`)
}
const rings = Number(process.argv[2] ?? 12)

/** Every RTCPeerConnection the page makes, kept for the stats poll. */
const KEEP_PEERS = `(() => {
  const Original = window.RTCPeerConnection
  window.__pcs = []
  window.__pcMade = []
  window.RTCPeerConnection = function (...args) { const t = performance.now(); const pc = new Original(...args); window.__pcMade.push([t, performance.now()]); window.__pcs.push(pc); return pc }
  window.RTCPeerConnection.prototype = Original.prototype
  Object.setPrototypeOf(window.RTCPeerConnection, Original)
  // The clicks' own timing (Event Timing: handler start/end, next paint) and frames longer than 50 ms.
  window.__events = []
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__events.push({ type: e.entryType, name: e.name, start: e.startTime, ps: e.processingStart, pe: e.processingEnd, duration: e.duration, blocking: e.blockingDuration }) })
    .observe({ type: 'event', durationThreshold: 16, buffered: true })
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__events.push({ type: e.entryType, name: e.name, start: e.startTime, duration: e.duration, blocking: e.blockingDuration, scripts: e.scripts?.map((s) => [s.invoker, Math.round(s.duration)]) }) })
    .observe({ type: 'long-animation-frame', buffered: true })
})()`

/** Armed before Answer: polls the live audio receivers' stats until one has a packet; its first packet's arrival (epoch ms). */
const ARM_STATS = `(() => {
  window.__firstPacket = (async () => {
    const deadline = performance.now() + 5000
    while (performance.now() < deadline) {
      for (const pc of window.__pcs) {
        if (pc.connectionState !== 'connected') continue
        for (const r of pc.getReceivers()) {
          if (r.track?.kind !== 'audio') continue
          const stats = await r.getStats()
          for (const s of stats.values()) {
            if (s.type === 'inbound-rtp' && s.packetsReceived > 0) return { last: s.lastPacketReceivedTimestamp, n: s.packetsReceived, polledAt: performance.timeOrigin + performance.now() }
          }
        }
      }
      await new Promise((r) => setTimeout(r, 2))
    }
    return null
  })()
})()`

interface Side {
  name: string, url: string, device: DeviceProcess, twoWay: number[], taken: number[], firstAudio: number[], hops: Hops, pageHops: Hops
  /** The Answer click's handlers and what they ran (Event Timing: processing start to end), and the click to its next paint. */
  clickWork: number[], clickToPaint: number[]
  /** With DIAG_PREVIEW_CPU: the browser's CPU time over 3 s of live preview, per ring (ms). */
  previewCpu: number[]
}

const main = async (): Promise<void> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-diag-answer-'))
  // `DIAG_OLD_VIEWER=DIR`: a second hub serves that build of the viewer, with its own doorbell; rings alternate between the two.
  const builds: Array<[string, string]> = [['this viewer', VIEWER_DIST], ...(OLD_VIEWER ? [['old viewer', OLD_VIEWER] as [string, string]] : [])]
  const hubs = await Promise.all(builds.map(async ([, dir], i) => await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dataDir, `hub${i}`), viewerDir: dir, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })))
  const resident = await openResident(hubs[0]!.url, 'Diag', await inviteCode(hubs[0]!, 'owner'))
  const { page } = resident
  for (const hub of hubs.slice(1)) await pairPage(page, hub.url, await inviteCode(hub, 'owner'), 'Diag')
  await page.addInitScript(KEEP_PEERS)
  if (OTHER_DOORBELL && OLD_VIEWER) throw new Error('DIAG_OTHER_DOORBELL and DIAG_OLD_VIEWER: one comparison at a time')
  const sides: Side[] = []
  const common = { mesh: { enabled: false }, iceAdditionalHostAddresses: ['127.0.0.1'], ringTimeoutSeconds: 60, camera: CALL_CAMERA, audio: { source: { kind: 'test-tone' as const, frequencyHz: 660 } } }
  for (const [i, hub] of hubs.entries()) {
    const device = await startDeviceProcess({ ...common, hubUrl: hub.mqttUrl, deviceId: ID, deviceName: 'Front door', pairing: { url: await deviceInvite(hub, ID) } }, `diag-answer-${i}`)
    const side = (name: string): Side => ({ name, url: hub.url, device, twoWay: [], taken: [], firstAudio: [], hops: new Hops(), pageHops: new Hops(), clickWork: [], clickToPaint: [], previewCpu: [] })
    if (OTHER_RUNG && OTHER_BEFORE !== undefined) sides.push(side('the other doorbell as built'), side(`the other doorbell from ${OTHER_BEFORE}`))
    else if (OTHER_RUNG) sides.push(side('after a call on the other doorbell'), side(OTHER_PAUSE === null ? 'the other doorbell idle' : `${OTHER_PAUSE} ms after a call on the other doorbell`))
    else if (OTHER_DOORBELL) sides.push(side('the other doorbell running'), side('the other doorbell stopped'))
    else sides.push(side(builds[i]![0]))
  }
  // The other doorbell (DIAG_OTHER_DOORBELL): paired once, then started or stopped before each ring (its camera warm 2 s before the ring).
  const otherConfig = { ...common, hubUrl: hubs[0]!.mqttUrl, deviceId: 'back-door', deviceName: 'Back door', livePreview: false, pairing: { url: OTHER_DOORBELL ? await deviceInvite(hubs[0]!, 'back-door') : '' } }
  let other: DeviceProcess | null = null
  let otherBundle: string | undefined
  let otherPaired = false
  const otherRunning = async (running: boolean, bundle?: string): Promise<void> => {
    if (running && other !== null && otherBundle !== bundle) { await other.stop(); other = null }
    if (running && other === null) {
      otherBundle = bundle
      other = await startDeviceProcess(otherConfig, 'diag-answer-other', { keepData: otherPaired, ...(bundle !== undefined ? { bundle } : {}) })
      otherPaired = true
      await page.waitForTimeout(2000)
    } else if (!running && other !== null) {
      await other.stop()
      other = null
    }
  }
  const loads: number[] = []
  try {
    for (let i = 0; i < rings * sides.length; i++) {
      const side = sides[i % sides.length]!
      if (OTHER_RUNG) {
        await otherRunning(true, OTHER_BEFORE !== undefined && i % 2 === 1 ? OTHER_BEFORE : undefined)
        if (i % 2 === 0 || OTHER_PAUSE !== null || OTHER_BEFORE !== undefined) {
          // As the preview bench's rounds do: the other doorbell rung, answered and hung up, then this one's round.
          const card = page.getByTestId('doorbell-back-door')
          other!.ring()
          await card.getByTestId('answer').click({ timeout: 10_000 })
          await card.locator('[data-testid=call-view] [data-testid=video]').waitFor({ timeout: 10_000 })
          await page.waitForTimeout(300)
          await card.getByTestId('hang-up').click()
          await card.getByTestId('seen').click()
          if (i % 2 === 1 && OTHER_PAUSE !== null) await page.waitForTimeout(OTHER_PAUSE)
        }
      } else if (OTHER_DOORBELL) await otherRunning(i % 2 === 0)
      const { device, hops, pageHops } = side
      // The Answer's moment after the live picture: spread over 0-1 s, the same spread on each side.
      const wait = WAIT ?? (Math.floor(i / sides.length) * 379) % 1000
      loads.push(loadavg()[0]!)
      await page.goto(side.url)
      await page.getByTestId(`doorbell-${ID}`).waitFor({ timeout: 20_000 })
      await page.waitForTimeout(1500)
      const card = page.getByTestId(`doorbell-${ID}`)
      const pressedAt = epochNow()
      device.ring()
      await card.locator('[data-testid=ring-preview][data-preview=live]').waitFor({ timeout: 10_000 })
      if (PREVIEW_CPU) {
        // Past the frame that mounts the waiting call view (a changed viewer), then 3 s of preview.
        await page.waitForTimeout(200)
        const before = browserCpuMs()
        await page.waitForTimeout(3000)
        side.previewCpu.push(browserCpuMs() - before)
      }
      await page.waitForTimeout(wait)
      const session = (await pageMarks(page, pressedAt)).find((m) => m.name === 'doorbell:session-start')?.session ?? ''
      if (STATS) await page.evaluate(ARM_STATS)
      const cdp = TRACE ? await page.context().newCDPSession(page) : null
      const events: any[] = []
      if (cdp) {
        cdp.on('Tracing.dataCollected', (d: any) => { events.push(...d.value) })
        await cdp.send('Profiler.enable')
        await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
        await cdp.send('Profiler.start')
        await cdp.send('Tracing.start', { categories: 'devtools.timeline,blink.user_timing,disabled-by-default-devtools.timeline,toplevel,v8.execute,media,webrtc', transferMode: 'ReportEvents' })
      }
      const answeredAt = epochNow()
      await card.getByTestId('answer').click()
      const packet = STATS ? await page.evaluate('window.__firstPacket') as { last: number, n: number, polledAt: number } | null : null
      await page.waitForTimeout(300)
      if (cdp) {
        const { profile } = await cdp.send('Profiler.stop') as any
        profileSummary(profile)
        const done = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve))
        await cdp.send('Tracing.end')
        await done
        traceSummary(events)
      }
      const pageEvents = await page.evaluate(`(() => { const a = performance.getEntriesByName('doorbell:answer').at(-1)?.startTime ?? 0; return window.__events.filter((e) => e.start >= a - 20 && (e.type !== 'event' || e.name === 'click')).map((e) => ({ ...e, start: Math.round(e.start - a), ps: Math.round(e.ps - a), pe: Math.round(e.pe - a) })) })()`)
      const made = await page.evaluate(`(() => { const a = performance.getEntriesByName('doorbell:answer').at(-1)?.startTime ?? 0; return window.__pcMade.map(([t, e]) => [Math.round(t - a), Math.round(e - t)]).filter(([t]) => t > -3000) })()`)
      const click = (pageEvents as Array<{ type: string, name: string, ps: number, pe: number, duration: number }>).find((e) => e.type === 'event' && e.name === 'click')
      if (click) { side.clickWork.push(click.pe - click.ps); side.clickToPaint.push(click.duration) }
      if (VERBOSE) console.log(`  peer connections made (ms from Answer, ms to construct): ${JSON.stringify(made)}; page events: ${JSON.stringify(pageEvents)}`)
      const marks = await pageMarks(page, answeredAt)
      const lines = device.lines
      const own = (what: string) => (t: string): boolean => t.includes(`session ${session}]`) && t.includes(what)
      const answer = marks.find((m) => m.name === 'doorbell:answer')?.at ?? null
      // The first packet's arrival, where the first poll saw only one (else unknown: packets may come closer than a frame apart).
      const firstPacketAt = packet && packet.n === 1 ? packet.last : null
      const m = (n: string): number | null => markOf(marks, n, session)
      const chain: Array<[string, number | null]> = [
        ['Answer', answer],
        ['screen: take-call sent', m('take-call-sent')],
        ['doorbell: take-call in', deviceAt(lines, answeredAt, own('] take-call in'))],
        ['doorbell: first audio out', deviceAt(lines, answeredAt, own('] audio out'))],
        ['doorbell: call-taken sent (logged after)', deviceAt(lines, answeredAt, own('] preview answered'))],
        ...(STATS ? [['screen: first audio packet (stats, network)', firstPacketAt] as [string, number | null]] : []),
        ['screen: first audio (unmute mark)', m('first-audio')],
        ['screen: call-taken in (mark)', m('audio-ready')]
      ]
      hops.add(chain)
      const a = answer ?? NaN
      const taken = (m('audio-ready') ?? NaN) - a
      const first = (m('first-audio') ?? NaN) - a
      side.taken.push(taken)
      side.firstAudio.push(first)
      side.twoWay.push(Math.max(taken, first))
      pageHops.add([['Answer', a], ['→ first packet (stats, network)', firstPacketAt]])
      const spareNear = (made as Array<[number, number]>).some(([t]) => t > -300 && t < 100)
      console.log(`${side.name} ring ${Math.floor(i / sides.length) + 1} (answered ${wait} ms after live${spareNear ? ', a spare made near Answer' : ''}): ${chain.map(([n, t]) => `${n} ${t === null || answer === null ? '-' : (t - answer).toFixed(1)}`).join(' | ')}; load ${loadavg()[0]!.toFixed(1)}`)
      await card.getByTestId('hang-up').click()
      await card.getByTestId('seen').click()
    }
    for (const side of sides) {
      console.log(side.hops.table(`${side.name}: Answer → two-way, by hop (each from the one before)`))
      if (STATS) console.log(side.pageHops.table(`${side.name}: from Answer`))
      const f = (xs: number[]): string => `p50 ${round(percentile(xs, 50))} / p95 ${round(percentile(xs, 95))} ms`
      const within = side.twoWay.filter((ms) => ms <= 50).length
      // Event Timing rounds to 8 ms the click's duration to its next paint (and keeps only clicks of 16 ms or more).
      if (PREVIEW_CPU) console.log(`${side.name}: the browser's CPU time over 3 s of live preview ${f(side.previewCpu)} (each ring: ${side.previewCpu.join(' ')})`)
      console.log(`${side.name}: the Answer click's work ${f(side.clickWork)}, click → next paint ${f(side.clickToPaint)} (n=${side.clickWork.length})`)
      console.log(`${side.name}: Answer → call-taken ${f(side.taken)}; → first audio ${f(side.firstAudio)}; → two-way ${f(side.twoWay)} (n=${side.twoWay.length}, ${within} within 50 ms)`)
    }
    console.log(`load ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} (1-minute average, sampled each ring)`)
  } finally {
    await resident.close()
    await otherRunning(false)
    for (const device of new Set(sides.map((side) => side.device))) await device.stop()
    for (const hub of hubs) await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

void main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1) })
