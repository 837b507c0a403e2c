/**
 * Where doorbell microphone → page goes, per round, from the doorbell's `audio.timingLogSeconds`
 * lines (device/src/audio/timing.ts) and the page's getStats:
 *   written → out of ffmpeg: the bench writes the tone's first frame into the encoder's pipe, to
 *     the doorbell's receipt of the first loud Opus packet (`microphone onset arrivedAt`);
 *   in the doorbell: to its hand-over to werift (`sentAt`: after the pacer, SRTP and the send);
 *   doorbell → page heard: the rest (loopback, Chromium's receive, jitter buffer, decode, the
 *     audio graph, the analyser's 2 ms poll).
 * And, per period of the doorbell's log: how late packets came out of ffmpeg and left the
 * doorbell against their own timestamps (the spread a jitter buffer has to absorb), and the
 * event loop's delay.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { setPriority } from 'node:os'
import type { Page } from 'playwright-core'
import type { Chain, Hops } from './hops'
import { percentile, round, type Figure } from './lib'

export interface DeviceOnset { arrivedAt: number, sentAt: number }

/** The doorbell's first `microphone onset` whose packet came after `after` (epoch ms). */
export function deviceOnset (lines: Array<{ text: string }>, after: number): DeviceOnset | null {
  for (const { text } of lines) {
    const m = /microphone onset arrivedAt=([\d.]+) lateMs=[-\d.e]+ sentAt=([\d.]+)/.exec(text)
    if (m && Number(m[1]) >= after) return { arrivedAt: Number(m[1]), sentAt: Number(m[2]) }
  }
  return null
}

/** One round's chain for `Hops`: written, out of ffmpeg, handed to werift, heard in the page. */
export function backChain (lines: Array<{ text: string }>, writtenAt: number, heardAt: number): Chain {
  const onset = deviceOnset(lines, writtenAt)
  return [
    ['tone written', writtenAt],
    ['out of ffmpeg (doorbell receives it)', onset?.arrivedAt ?? null],
    ['handed to werift (pacer, SRTP, send)', onset?.sentAt ?? null],
    ['heard in the page', heardAt]
  ]
}

interface Spread { p50: number, p95: number, max: number }
export interface TimingLine { at: number, arrival: Spread, sent: Spread, loop: { p50: number, p99: number, max: number } }

/** The doorbell's `microphone timing` lines logged after `since` (epoch ms). */
export function timingLines (lines: Array<{ at: number, text: string }>, since: number): TimingLine[] {
  const out: TimingLine[] = []
  for (const { at, text } of lines) {
    if (at < since || !text.includes('microphone timing')) continue
    const field = (k: string): unknown => JSON.parse(new RegExp(` ${k}=(\\{[^}]*\\})`).exec(text)?.[1] ?? 'null')
    const arrival = field('arrival') as Spread | null
    const sent = field('sent') as Spread | null
    const loop = field('loop') as TimingLine['loop'] | null
    if (arrival && sent && loop) out.push({ at, arrival, sent, loop })
  }
  return out
}

/** The periods' medians: lateness p95 out of ffmpeg and once sent, and the loop's p99 and max. */
export function timingSummary (t: TimingLine[]): { arrivalP95: number, sentP95: number, arrivalMax: number, sentMax: number, loopP99: number, loopMax: number } {
  const med = (xs: number[]): number => xs.length > 0 ? round(percentile(xs, 50)) : NaN
  return {
    arrivalP95: med(t.map((x) => x.arrival.p95)),
    sentP95: med(t.map((x) => x.sent.p95)),
    arrivalMax: round(Math.max(...t.map((x) => x.arrival.max))),
    sentMax: round(Math.max(...t.map((x) => x.sent.max))),
    loopP99: med(t.map((x) => x.loop.p99)),
    loopMax: round(Math.max(...t.map((x) => x.loop.max)))
  }
}

/** The page's interarrival jitter estimate for the call's received audio (RFC 3550, ms; inbound-rtp `jitter`). */
export async function pageArrivalJitter (page: Page): Promise<number> {
  return await page.evaluate(`(async () => {
    let jitter = 0
    for (const pc of window.__talkBench.pcs) {
      if (pc.connectionState === 'closed') continue
      for (const r of (await pc.getStats()).values()) if (r.type === 'inbound-rtp' && r.kind === 'audio') jitter = Math.max(jitter, (r.jitter ?? 0) * 1000)
    }
    return jitter
  })()`) as number
}

/**
 * The control: an idle Node process on the same machine, measuring how late its event loop runs
 * a 10 ms timer (perf_hooks) over the same periods as the doorbell. A stall the doorbell shares
 * with it comes from the machine (waiting for a CPU), not from the doorbell's own work.
 * perf_hooks records each whole interval, the 10 ms period included: it is taken off, so an idle,
 * unhindered process reads ~0 (before 2026-12-07 these figures had the 10 ms in them).
 */
export class LoopProbe {
  private readonly proc: ChildProcess
  readonly periods: Array<{ at: number, p99: number, max: number }> = []

  constructor (periodMs: number) {
    const script = `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 10 }); h.enable();
      const late = (ns) => Math.max(0, ns / 1e6 - 10);
      setInterval(() => { console.log(JSON.stringify({ p99: late(h.percentile(99)), max: late(h.max) })); h.reset() }, ${periodMs})`
    this.proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let partial = ''
    this.proc.stdout!.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n')
      partial = parts.pop()!
      for (const line of parts) this.periods.push({ at: Date.now(), ...(JSON.parse(line) as { p99: number, max: number }) })
    })
  }

  /** Medians of the periods' p99 and the largest max since `since` (epoch ms). */
  since (since: number): { loopP99: number, loopMax: number } {
    const t = this.periods.filter((p) => p.at >= since)
    return { loopP99: t.length > 0 ? round(percentile(t.map((p) => p.p99), 50)) : NaN, loopMax: round(Math.max(...t.map((p) => p.max))) }
  }

  stop (): void { this.proc.kill() }
}

/** What one doorbell's rounds of microphone → page gave (talk.ts `backRounds`). */
export interface BackResult {
  deviceToPage: number[]
  jitter: number[]
  hops: Hops
  timing: ReturnType<typeof timingSummary>
  control: { loopP99: number, loopMax: number }
  /** Of the samples the page received over the rounds, the share it concealed (0-1). */
  concealed: number
}

/**
 * The breakdown's figures, unpaced (the default), with 10 ms frames and, when measured, at a
 * raised priority (then with Chromium raised too), side by side in one run (conditions are the caller's).
 */
export function backFigures (unpaced: BackResult, short: BackResult | null, raised: BackResult | null, raisedPage: BackResult | null): Array<Omit<Figure, 'conditions'>> {
  const out: Array<Omit<Figure, 'conditions'>> = []
  const f = (id: string, name: string, value: number): void => { if (Number.isFinite(value)) out.push({ id, name, value: round(value), unit: 'ms', group: 'audio' }) }
  const each = (r: BackResult, key: string, label: string): void => {
    const hop = (name: string): { p50: number, p95: number } | undefined => r.hops.summary().find((h) => h.hop === name)
    f(`talk-oneway-device-viewer-${key}-p50`, `doorbell microphone → page, one way, p50, ${label}`, percentile(r.deviceToPage, 50))
    if (key !== 'unpaced') f(`talk-oneway-device-viewer-${key}-p95`, `doorbell microphone → page, one way, p95, ${label}`, percentile(r.deviceToPage, 95))
    if (key !== 'unpaced') f(`talk-page-jitter-buffer-${key}-p50`, `of which in the page's jitter buffer, p50, ${label}`, percentile(r.jitter, 50))
    f(`talk-hop-ffmpeg-${key}-p95`, `hop: tone written → out of ffmpeg at the doorbell, p95, ${label}`, hop('out of ffmpeg (doorbell receives it)')?.p95 ?? NaN)
    f(`talk-hop-doorbell-${key}-p95`, `hop: in the doorbell (to werift's send), p95, ${label}`, hop('handed to werift (pacer, SRTP, send)')?.p95 ?? NaN)
    f(`talk-hop-page-${key}-p50`, `hop: doorbell → heard in the page, p50, ${label}`, hop('heard in the page')?.p50 ?? NaN)
    f(`talk-doorbell-loop-${key}-p99`, `how late the doorbell's event loop ran a 10 ms timer, p99 (median of 2 s periods; before 2026-12-07 the 10 ms was counted in), ${label}`, r.timing.loopP99)
    f(`talk-control-loop-${key}-p99`, `how late an idle Node process ran a 10 ms timer meanwhile, p99 (the machine's share; before 2026-12-07 the 10 ms was counted in), ${label}`, r.control.loopP99)
  }
  each(unpaced, 'unpaced', 'unpaced (the default)')
  if (short !== null) each(short, 'frame10', 'unpaced, 10 ms Opus frames (audio.frameMs 10; same run)')
  if (raised !== null) each(raised, 'raised', 'unpaced at a raised priority (nice -10; same run)')
  if (raisedPage !== null) each(raisedPage, 'raised-page', 'the doorbell and the page\'s Chromium both at nice -10 (a control; same run)')
  return out
}

/**
 * Sets the niceness of every thread of this process's Chromium (the page's side: its network,
 * audio and renderer threads), as a control: does the page's jitter buffer shrink when the page
 * is not left waiting for a CPU? Linux keeps a niceness per thread, so each task is set.
 * Returns how many threads were set.
 */
export async function niceChromium (nice: number): Promise<number> {
  const parents = new Map<number, number>()
  const names = new Map<number, string>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      names.set(Number(entry), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')))
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const ours = (pid: number): boolean => {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) if (p === process.pid) return true
    return false
  }
  let set = 0
  for (const [pid, name] of names) {
    if (!/chrom|headless/i.test(name) || !ours(pid)) continue
    for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
      try { setPriority(Number(task), nice); set++ } catch {}
    }
  }
  return set
}

/**
 * Sets the page's audio receivers' `jitterBufferTarget` (ms; null: the browser's own) on every
 * open connection, and `playoutDelayHint` (s) where this Chromium still has it; returns what
 * the receivers read back.
 */
export const setJitterTarget = (ms: number | null): string => `(() => {
  const out = []
  for (const pc of window.__talkBench.pcs) {
    if (pc.connectionState === 'closed') continue
    for (const r of pc.getReceivers()) {
      if (r.track?.kind !== 'audio') continue
      r.jitterBufferTarget = ${ms === null ? 'null' : ms}
      if ('playoutDelayHint' in r) r.playoutDelayHint = ${ms === null ? 'null' : ms / 1000}
      out.push({ target: r.jitterBufferTarget ?? null, hint: 'playoutDelayHint' in r ? r.playoutDelayHint : 'absent' })
    }
  }
  return out
})()`

/**
 * The page's side, side by side in one run: each way's one-way p50/p95 and jitter buffer, and
 * the share of received samples the page concealed (a buffer too small for the arrivals
 * conceals more): paced, unpaced, jitterBufferTarget 0, unpaced again, paced again.
 */
export function pageSideFigures (r: Record<'paced' | 'unpaced' | 'jb0' | 'unpacedAgain' | 'pacedAgain', BackResult | null>, pacedMs: number): Array<Omit<Figure, 'conditions'>> {
  const labels = { paced: `paced (audio.pacingMs ${pacedMs})`, unpaced: 'unpaced (the default)', jb0: 'unpaced, the page\'s jitterBufferTarget 0', unpacedAgain: 'unpaced, again after jitterBufferTarget 0', pacedAgain: `paced (${pacedMs} ms), again, measured after the unpaced` }
  const keys = { paced: 'paced', unpaced: 'unpaced', jb0: 'jbt0', unpacedAgain: 'unpaced2', pacedAgain: 'paced2' }
  const out: Array<Omit<Figure, 'conditions'>> = []
  for (const [k, v] of Object.entries(r) as Array<[keyof typeof labels, BackResult | null]>) {
    if (v === null) continue
    const key = keys[k]
    if (Number.isFinite(v.concealed)) out.push({ id: `talk-page-concealed-${key}`, name: `page: received samples concealed, ${labels[k]} (same run)`, value: round(v.concealed * 100, 2), unit: '%', group: 'audio' })
    if (k === 'paced' || k === 'unpaced') continue
    out.push({ id: `talk-oneway-device-viewer-${key}-p50`, name: `doorbell microphone → page, one way, p50, ${labels[k]} (same run)`, value: round(percentile(v.deviceToPage, 50)), unit: 'ms', group: 'audio' })
    out.push({ id: `talk-oneway-device-viewer-${key}-p95`, name: `doorbell microphone → page, one way, p95, ${labels[k]} (same run)`, value: round(percentile(v.deviceToPage, 95)), unit: 'ms', group: 'audio' })
    out.push({ id: `talk-page-jitter-buffer-${key}-p50`, name: `of which in the page's jitter buffer, p50, ${labels[k]} (same run)`, value: round(percentile(v.jitter, 50)), unit: 'ms', group: 'audio' })
  }
  return out
}
