/**
 * The call's figures, measured against real peers on loopback (not a test: these machines are
 * noisy, so this reports medians and spreads and asserts nothing).
 *   ring -> alert shown on the page; answer click -> first decoded frame; open door -> "Door open"
 *   from the device's acknowledgement; device CPU and RSS with 1 and 4 viewers.
 * Usage: npm run bench  (writes docs/figures.md and bench/call-figures.json)
 */
import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/core'
import { openResident } from '../src/browser'
import { VIEWER_DIST, eventually } from '../src/harness'
import { nodeViewer } from '../src/nodeViewer'

const ROUNDS = Number(process.env.ROUNDS ?? 10)
const root = fileURLToPath(new URL('../../', import.meta.url))

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}
const summary = (xs: number[]) => ({ n: xs.length, p50: pct(xs, 50), p90: pct(xs, 90), min: Math.min(...xs), max: Math.max(...xs) })

async function cpuTicks (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12]) // utime + stime, in clock ticks (100/s)
}
async function rssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}
async function cpuPercent (pid: number, ms: number): Promise<number> {
  const a = await cpuTicks(pid)
  await new Promise((r) => setTimeout(r, ms))
  // Clock ticks are 1/100 s: ticks per second = percent of one core.
  return ((await cpuTicks(pid)) - a) / (ms / 1000)
}

const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, viewerDir: VIEWER_DIST }, { log: memoryLogger([], 'hub') })
const configPath = `${root}/bench/tmp/device.json`
await mkdir(`${root}/bench/tmp`, { recursive: true })
await writeFile(configPath, JSON.stringify({ hubUrl: hub.mqttUrl, iceAdditionalHostAddresses: ['127.0.0.1'], relockSeconds: 1, ringTimeoutSeconds: 60 }))
const device = spawn(process.execPath, ['--import', 'tsx', 'device/src/main.ts', '--config', configPath], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] })
let deviceOut = ''
device.stdout!.on('data', (d: Buffer) => { deviceOut += d.toString() })
const ring = (): void => { device.stdin!.write('\n') }
await eventually('the device to reach the hub', () => deviceOut.includes('connected to hub'), 20_000)

const resident = await openResident(hub.url, 'Bench')
const page = resident.page
await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })

// Instrument the page: when the banner appears, when the door shows open.
await page.evaluate(() => {
  const w = window as unknown as Record<string, number>
  new MutationObserver(() => {
    if (document.querySelector('[data-testid=ring-banner]') && !w.bannerAt) w.bannerAt = Date.now()
    if (document.querySelector('[data-door=unlocked]') && !w.openShownAt) w.openShownAt = performance.now()
  }).observe(document.body, { subtree: true, childList: true, attributes: true })
})

const ringToAlert: number[] = []
const answerToFrame: number[] = []
const openToAck: number[] = []
for (let i = 0; i < ROUNDS; i++) {
  await page.evaluate(() => { const w = window as unknown as Record<string, number>; w.bannerAt = 0; w.openShownAt = 0; performance.clearMarks() })
  const pressedAt = Date.now()
  ring()
  await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  ringToAlert.push(await page.evaluate(() => (window as unknown as Record<string, number>).bannerAt!) - pressedAt)

  await page.getByTestId('answer').click()
  // A string, not a function: tsx's helpers do not exist inside the page.
  answerToFrame.push(await page.evaluate(`(async () => {
    const mark = performance.getEntriesByName('doorbell:answer')[0].startTime
    let video = null
    while (!(video = document.querySelector('video'))) await new Promise((r) => requestAnimationFrame(r))
    return await new Promise((resolve) => video.requestVideoFrameCallback((now) => resolve(now - mark)))
  })()`) as number)


  const button = page.getByTestId('open-door')
  await page.waitForFunction(() => !(document.querySelector('[data-testid=open-door]') as HTMLButtonElement).disabled)
  const box = (await button.boundingBox())!
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
  await page.mouse.down()
  await page.waitForSelector('[data-door=unlocked]', { timeout: 5000 })
  await page.mouse.up()
  openToAck.push(await page.evaluate(() => (window as unknown as Record<string, number>).openShownAt! - performance.getEntriesByName('doorbell:open-door')[0]!.startTime))
  await page.waitForSelector('[data-door=locked]', { timeout: 5000 })
  await page.getByTestId('hang-up').click()
  await page.getByTestId('ended').waitFor()
  await page.waitForTimeout(300)
}
await resident.close()

// Device load with Node viewers (werift), so the browser's own CPU does not skew it.
const load: Array<{ viewers: number, cpuPercent: number, rssMb: number, ffmpegCpuPercent: number }> = []
const ffmpegPid = Number(/ffmpeg/.test(deviceOut) ? await findChild(device.pid!, 'ffmpeg') : 0)
const idleRss = await rssMb(device.pid!)
for (const count of [1, 4]) {
  const viewers = Array.from({ length: count }, (_, k) => nodeViewer(hub.mqttUrl, 'home', `bench${k}`, `Bench ${k}`))
  await eventually('viewers connected', () => viewers.every((v) => v.home.hub.connected))
  for (const v of viewers) {
    v.home.doorbell('front-door')
    v.home.watch('front-door')
  }
  await eventually('video at every viewer', () => viewers.every((v) => v.rtp.length > 60), 20_000)
  await new Promise((r) => setTimeout(r, 1000))
  const [cpu, ff] = await Promise.all([cpuPercent(device.pid!, 5000), ffmpegPid ? cpuPercent(ffmpegPid, 5000) : Promise.resolve(NaN)])
  load.push({ viewers: count, cpuPercent: Math.round(cpu * 10) / 10, rssMb: Math.round(await rssMb(device.pid!)), ffmpegCpuPercent: Math.round(ff * 10) / 10 })
  for (const v of viewers) v.home.hangUp('front-door')
  await new Promise((r) => setTimeout(r, 500))
  await Promise.all(viewers.map((v) => v.close()))
  await new Promise((r) => setTimeout(r, 1000))
}

async function findChild (parent: number, name: string): Promise<number> {
  const { readdir } = await import('node:fs/promises')
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === parent && stat.includes(`(${name})`)) return Number(pid)
    } catch {}
  }
  return 0
}

device.kill('SIGTERM')
await new Promise((r) => device.once('exit', r))
await hub.stop()

const result = {
  at: new Date().toISOString(),
  conditions: `loopback, ${ROUNDS} rounds, 640x480@30 H.264 test pattern, keyframe every 15 frames, Chromium ${process.env.CHROMIUM_VERSION ?? '(Debian)'}, werift viewers for load`,
  ringToAlertMs: summary(ringToAlert),
  answerToFirstFrameMs: summary(answerToFrame.map(Math.round)),
  openDoorToShownMs: summary(openToAck.map((x) => Math.round(x * 10) / 10)),
  deviceIdleRssMb: Math.round(idleRss),
  load
}
await mkdir(`${root}/bench`, { recursive: true })
await writeFile(`${root}/bench/call-figures.json`, JSON.stringify(result, null, 2) + '\n')
const row = (name: string, s: ReturnType<typeof summary>) => `| ${name} | ${s.p50} | ${s.p90} | ${s.min} | ${s.max} | ${s.n} |`
const md = `# Call figures

Measured by \`npm run bench\` (tests/bench/call-figures.ts) on ${result.at.slice(0, 10)}: ${result.conditions}.
A shared, noisy 2-core machine: read medians, not single runs.

| figure (ms) | p50 | p90 | min | max | n |
|---|---|---|---|---|---|
${row('button press → ring banner on the page', result.ringToAlertMs)}
${row('Answer click → first decoded frame', result.answerToFirstFrameMs)}
${row('open door (hold complete) → "Door open" from the device ack', result.openDoorToShownMs)}

| viewers | device CPU (% of one core) | device RSS (MB) | ffmpeg CPU (% of one core) |
|---|---|---|---|
${load.map((l) => `| ${l.viewers} | ${l.cpuPercent} | ${l.rssMb} | ${l.ffmpegCpuPercent} |`).join('\n')}

Device RSS before any viewer: ${result.deviceIdleRssMb} MB.
`
await writeFile(`${root}/docs/figures.md`, md)
console.log(md)
process.exit(0)
