/**
 * One opening's path across both processes, on one clock (issue 21: where the transport's
 * milliseconds go). A bounded experiment, not a figure:
 * `node --import tsx tests/bench/diag/openPath.ts [opens]` (from tests/, inside scripts/isolated.sh).
 *
 * As the `call` bench: a hub, the built doorbell in its own process with its 720p30 camera, the
 * viewer in Chromium, one answered call, then openings at the door guard's pace. The doorbell is
 * preloaded with diag/udpStamps.mjs (when each data-channel datagram was read from or handed to
 * its UDP socket); the page's marks are moved onto the system clock by an offset measured each
 * round (Chromium's clock can be hundreds of ms off it). `OPEN_PATH_AB=1`: blocks of 5 openings
 * alternate between the doorbell's UDP sends after a tick (diag/sendAfterTick.mjs: as before
 * device/src/peer/promptSend.ts) and as shipped, in the same process, call and camera. For looking
 * into the doorbell: `OPEN_PATH_NODE_ARGS` (more Node flags for it, e.g. --trace-gc), `OPEN_PATH_NICE`
 * (its niceness, as systemd's Nice=), `OPEN_PATH_DEVICE_LOG=FILE` (its lines, with when each was read).
 * Per opening:
 *   page → doorbell socket: the page's send to the doorbell's read (Chromium out, kernel, the
 *     doorbell's wake-up);
 *   doorbell socket → "unlocked" out: werift in, the doorbell's own part, werift out;
 *   doorbell socket → page: that datagram to the page's mark (kernel, Chromium in, its main thread).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawn } from 'node:child_process'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/core'
import type { Page } from 'playwright-core'
import { openResident } from '../../src/browser'
import { VIEWER_DIST } from '../../src/harness'
import { deviceInvite, inviteCode } from '../../src/trust'
import { CALL_CAMERA } from '../call'
import { round, spread } from '../lib'
import { openOnce } from '../openHops'
import { epochNow, startDeviceProcess } from '../proc'

/** The page's clock minus the system's (ms), from the tightest of a few bracketed reads. */
async function pageOffset (page: Page): Promise<number> {
  let best = { width: Infinity, offset: 0 }
  for (let i = 0; i < 5; i++) {
    const before = epochNow()
    const at = await page.evaluate('performance.timeOrigin + performance.now()') as number
    const after = epochNow()
    if (after - before < best.width) best = { width: after - before, offset: at - (before + after) / 2 }
  }
  return best.offset
}

const opens = Number(process.argv[2] ?? 30)
const ab = process.env.OPEN_PATH_AB === '1'
const BLOCK = 5
const diag = (name: string): string[] => ['--import', fileURLToPath(new URL(`./${name}`, import.meta.url))]
// The kernel's own times for the same datagrams, when tcpdump is there (inside isolated.sh's
// namespace, lo carries nothing else): DTLS application data only (the UDP payload's first byte 23).
const wire: Array<{ at: number, from: number, bytes: number }> = []
const tcpdump = spawn('tcpdump', ['-i', 'lo', '-n', '-tt', '-l', '--time-stamp-precision=micro', 'udp and udp[8] == 23'], { stdio: ['ignore', 'pipe', 'ignore'] })
tcpdump.on('error', () => { process.stderr.write('no tcpdump: the kernel\'s times are left out\n') })
let partial = ''
tcpdump.stdout.on('data', (d: Buffer) => {
  const lines = (partial + d.toString()).split('\n')
  partial = lines.pop()!
  for (const line of lines) {
    const m = /^([0-9.]+) IP [0-9.]+\.([0-9]+) > .*length ([0-9]+)/.exec(line)
    if (m) wire.push({ at: Number(m[1]) * 1000, from: Number(m[2]), bytes: Number(m[3]) })
  }
})
const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-diag-open-'))
const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, viewerDir: VIEWER_DIST, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
const device = await startDeviceProcess({ hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, 'front-door') }, iceAdditionalHostAddresses: ['127.0.0.1'], relockSeconds: 0.2, ringTimeoutSeconds: 60, camera: CALL_CAMERA, livePreview: false }, 'diag-open-device', { nodeArgs: [...(ab ? diag('sendAfterTick.mjs') : []), ...diag('udpStamps.mjs'), ...(process.env.OPEN_PATH_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? [])], ...(process.env.OPEN_PATH_NICE !== undefined ? { nice: Number(process.env.OPEN_PATH_NICE) } : {}) })
const resident = await openResident(hub.url, 'Diag', await inviteCode(hub, 'owner'))
const { page } = resident
const rows: Array<Record<string, number | string>> = []
const loads = [loadavg()[0]!]
try {
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
  await page.evaluate(`new MutationObserver(() => {
    if (document.querySelector('[data-door=unlocked]') && !window.openShownAt) window.openShownAt = performance.now()
  }).observe(document.body, { subtree: true, childList: true, attributes: true })`)
  device.ring()
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await page.getByTestId('answer').click()
  await page.waitForFunction(() => [...document.querySelectorAll('video')].some((v) => v.readyState >= 2), undefined, { timeout: 10_000 })
  let lastOpenAt = 0
  for (let i = 0; i < opens; i++) {
    // The guard's rate: 5 at once, then one every 2 s.
    if (i >= 4) await page.waitForTimeout(Math.max(0, lastOpenAt + 2100 - Date.now()))
    lastOpenAt = Date.now()
    // The first block sends after a tick (before), the next as shipped, and so on.
    if (ab && i > 0 && i % BLOCK === 0) process.kill(device.pid, 'SIGUSR2')
    const variant = ab && Math.floor(i / BLOCK) % 2 === 0 ? 'before' : 'shipped'
    const from = device.lines.length
    const one = await openOnce(page, device)
    const offset = await pageOffset(page)
    // The page's marks on the system clock.
    const marks = await page.evaluate(`(() => {
      const at = (m) => performance.timeOrigin + m.startTime
      const sent = performance.getEntriesByName('doorbell:command-sent')[0]
      return { sent: at(sent), replies: performance.getEntriesByName('doorbell:reply-received').filter((m) => m.startTime >= sent.startTime).map((m) => ({ at: at(m), type: m.detail?.type })) }
    })()`) as { sent: number, replies: Array<{ at: number, type: string }> }
    await page.waitForTimeout(150)
    const stamps = device.lines.slice(from).map((l) => /udp-stamp (in|out) ([0-9.]+) ([0-9]+)/.exec(l.text)).filter((m) => m !== null).map((m) => ({ way: m[1]!, at: Number(m[2]), bytes: Number(m[3]) }))
    const sent = marks.sent - offset
    // The command: the first large datagram read after the page sent it; the replies: large datagrams out after it (SACKs are small).
    const command = stamps.find((s) => s.way === 'in' && s.bytes >= 150 && s.at >= sent - 2)
    const out = stamps.filter((s) => command !== undefined && s.way === 'out' && s.bytes >= 100 && s.at >= command.at)
    // "Door open" is shown from the second report (unlocking, unlocked, ack).
    const told = marks.replies.findIndex((r) => r.type === 'lock') === -1 ? -1 : marks.replies.filter((r) => r.type === 'lock').length >= 2 ? 1 : 0
    const reply = marks.replies[told]
    const datagram = out[told]
    if (command === undefined || reply === undefined || datagram === undefined) { process.stderr.write(`round ${i}: not matched (${stamps.length} stamps, ${marks.replies.length} replies)\n`); continue }
    if (process.env.OPEN_PATH_VERBOSE === '1') process.stderr.write(`round ${i}: wire ${wire.filter((w) => w.at >= sent - 2 && w.at <= sent + 40).map((w) => `${round(w.at - sent, 2)} :${w.from} (${w.bytes})`).join(', ')}\n  socket: sent 0, ${stamps.filter((s) => s.at >= sent - 2).map((s) => `${s.way} ${round(s.at - sent, 2)} (${s.bytes} B)`).join(', ')}; page replies ${marks.replies.map((r) => `${r.type} ${round(r.at - offset - sent, 2)}`).join(', ')}; ${device.lines.slice(from).find((l) => l.text.includes('open-door timing'))?.text.slice(25) ?? ''}\n`)
    // The same two datagrams as the kernel saw them (by size and time).
    const kernelCommand = wire.find((w) => w.bytes === command.bytes && w.at >= sent - 2 && w.at <= command.at + 0.5)
    const kernelReply = wire.find((w) => w.bytes === datagram.bytes && w.at >= datagram.at - 0.5)
    rows.push({
      variant,
      wait: one.round.wait,
      inToWire: kernelReply === undefined ? NaN : kernelReply.at - command.at,
      pageToKernel: kernelCommand === undefined ? NaN : kernelCommand.at - sent,
      kernelToDoorbell: kernelCommand === undefined ? NaN : command.at - kernelCommand.at,
      kernelToPage: kernelReply === undefined ? NaN : reply.at - offset - kernelReply.at,
      doorbellSpan: one.round.doorbell ?? NaN,
      pageToSocket: command.at - sent,
      socketToSocket: datagram.at - command.at,
      socketToPage: reply.at - offset - datagram.at,
      render: one.round.render,
      shown: one.round.shown
    })
  }
  loads.push(loadavg()[0]!)
} finally {
  await resident.close()
  await device.stop()
  // OPEN_PATH_DEVICE_LOG=FILE: the doorbell's lines, each with when the bench read it (a --trace-gc run).
  if (process.env.OPEN_PATH_DEVICE_LOG !== undefined) await writeFile(process.env.OPEN_PATH_DEVICE_LOG, device.lines.map((l) => `${l.at.toFixed(2)} ${l.text}`).join('\n'))
  await hub.stop()
  await rm(dataDir, { recursive: true, force: true })
  tcpdump.kill()
}
const stats = (xs: number[]): string => spread(xs, 2)
console.log(`${rows.length} openings, load ${loads.map((l) => round(l, 2)).join(' → ')}; p50 / p95 / p99 ms`)
for (const variant of ab ? ['before', 'shipped'] : ['shipped']) {
  const these = rows.filter((r) => r.variant === variant)
  console.log(`${ab ? `${variant} (${these.length} openings)` : ''}`)
  for (const k of Object.keys(these[0] ?? {}).filter((k) => k !== 'variant')) console.log(`  ${k.padEnd(16)} ${stats(these.map((r) => r[k] as number).filter(Number.isFinite))}`)
  console.log('  slowest (wait): ' + [...these].sort((a, b) => (b.wait as number) - (a.wait as number)).slice(0, 3).map((r) => Object.entries(r).filter(([k]) => k !== 'variant').map(([k, v]) => `${k} ${round(v as number, 2)}`).join(', ')).join('\n                  '))
}
process.exit(0)
