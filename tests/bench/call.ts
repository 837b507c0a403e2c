/**
 * What a resident feels, measured in headless Chromium against a doorbell in its own process:
 *   button press -> ring banner; viewer join (ICE connected) -> first decoded frame;
 *   Answer click -> first decoded frame; open door (hold complete) -> lock actuated ->
 *   "Door open" shown from the device's acknowledgement.
 * Times inside the page are User Timing marks (the viewer sets them); the first decoded
 * frame is the video's first requestVideoFrameCallback.
 */
import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startHub } from '@doorbell/hub'
import { CAMERA_NICENESS, memoryLogger } from '@doorbell/core'
import type { Page } from 'playwright-core'
import { ffmpegArgs } from '../../device/src/camera/ffmpegArgs'
import { findFfmpeg } from '../../device/src/camera/camera'
import { spawnChild } from '../../device/src/children'
import { openResident } from '../src/browser'
import { VIEWER_DIST } from '../src/harness'
import { deviceInvite, inviteCode } from '../src/trust'
import { percentile, round, type Bench, type Figure } from './lib'
import { epochNow, setThreadNiceness, startDeviceProcess, threadNiceness, type DeviceProcess } from './proc'
import { openSideBySide } from './openAb'
import { hopValues, openOnce, openReport, type OpenRound } from './openHops'
import { LoopProbe } from './talkHops'
import { HelloLog, Hops, deviceSession, firstFrame, pageMarks, setupChain } from './hops'

export const CALL_CAMERA = { source: { kind: 'test-pattern', width: 1280, height: 720, fps: 30 }, codec: 'h264', keyframeInterval: 30, bitrateKbps: 2500 } as const
const conditions = (n: number, what: string): string =>
  `loopback, headless Chromium (Debian) on ${cpus().length} shared cores, device in its own process, 1280x720@30 H.264 test pattern, keyframe every 30 frames, ${n} ${what}`

/**
 * `DOORBELL_BENCH_CALL_DIAG=DIR`: a diagnostic run. The doorbell also logs its event loop's delay
 * (diag/loopDelay.mjs) and writes a CPU profile to DIR when it stops. Off by default: the figures
 * stay comparable with runs without it.
 */
function diagnostics (): { nodeArgs?: string[] } {
  const dir = process.env.DOORBELL_BENCH_CALL_DIAG
  if (!dir) return {}
  return { nodeArgs: ['--import', fileURLToPath(new URL('./diag/loopDelay.mjs', import.meta.url)), '--cpu-prof', `--cpu-prof-dir=${dir}`] }
}

/**
 * The side by side (DOORBELL_BENCH_CALL_AB=1): this doorbell as shipped, against a second one
 * checking signatures through WebCrypto as before (`signatureCheck: 'webcrypto'`), started only
 * now so that its camera does not load the figures above. Logged, not figures.
 * `DOORBELL_BENCH_CALL_AB_BEFORE=FILE`: the second one is instead that build of device/dist/main.js
 * (the code before a change, built and copied out of dist/ first), configured as the first.
 */
async function sideBySide (hub: Awaited<ReturnType<typeof startHub>>, page: Page, shipped: DeviceProcess, o: { rounds: number, perBlock: number, log: (line: string) => void }): Promise<void> {
  const bundle = process.env.DOORBELL_BENCH_CALL_AB_BEFORE
  const before = await startDeviceProcess({ deviceId: 'back-door', deviceName: 'Back door', mesh: { enabled: true, tcpPort: 0, directPort: 0 }, hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, 'back-door') }, iceAdditionalHostAddresses: ['127.0.0.1'], relockSeconds: 0.2, ringTimeoutSeconds: 60, camera: CALL_CAMERA, livePreview: false, ...(bundle ? {} : { signatureCheck: 'webcrypto' as const }) }, 'call-device-before', { ...diagnostics(), ...(bundle ? { bundle } : {}) })
  try {
    await page.getByTestId('doorbell-back-door').waitFor({ timeout: 15_000 })
    await openSideBySide({ page, variants: [{ name: 'shipped', device: shipped }, { name: bundle ? 'before' : 'webcrypto', device: before }], rounds: o.rounds, perBlock: o.perBlock, log: o.log })
  } finally {
    await before.stop()
  }
}

/**
 * `DOORBELL_BENCH_CALL_AB=nice`: the camera's encoder nicer than the doorbell (camera.niceness,
 * 10 as shipped) against at the doorbell's own priority (0, as before), on the one doorbell of the
 * figures, its encoder's threads set to one or the other before each block. Two doorbells could not
 * show it: both encoders run from start-up, so the machine would hold one at each niceness in both
 * sides' blocks. `DOORBELL_BENCH_CALL_AB_ENCODERS=N`: N more encoders alike (their RTP dropped here),
 * switched with it, for the side by side only: a stand-in for a doorbell whose encoder takes most of
 * its CPU (a Pi encoding a USB webcam in software), not a measure of one.
 */
async function niceSideBySide (page: Page, device: DeviceProcess, o: { rounds: number, perBlock: number, log: (line: string) => void }): Promise<void> {
  const sink = createSocket('udp4').on('message', () => {})
  await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve))
  const extra = Array.from({ length: Number(process.env.DOORBELL_BENCH_CALL_AB_ENCODERS ?? 0) }, () =>
    spawnChild(findFfmpeg(), ffmpegArgs({ ...CALL_CAMERA, rtpPort: sink.address().port }), { stdio: ['pipe', 'ignore', 'ignore'], deathSignal: 'KILL' }))
  const nice = (niceness: number) => async (): Promise<string> => {
    // The encoder the doorbell says it started last (the snapshot decoder is an ffmpeg too).
    const pid = Number(/ pid=(\d+)/.exec(device.lines.findLast((l) => l.text.includes('camera starting'))?.text ?? '')?.[1])
    if (!(pid > 0)) throw new Error('the doorbell has not said which ffmpeg is its camera\'s encoder (its "camera starting" line)')
    for (const p of [pid, ...extra.map((e) => e.pid!)]) await setThreadNiceness(p, niceness)
    return `camera ffmpeg ${pid}${extra.length > 0 ? ` and ${extra.length} more encoders` : ''}, its threads at niceness ${[...new Set(await threadNiceness(pid))].join(', ')}`
  }
  try {
    await openSideBySide({ page, variants: [{ name: 'encoder nice 10', device, prepare: nice(CAMERA_NICENESS) }, { name: 'encoder nice 0', device, prepare: nice(0) }], rounds: o.rounds, perBlock: o.perBlock, log: o.log })
  } finally {
    for (const e of extra) e.kill('SIGKILL')
    sink.close()
  }
}

export const callBench: Bench = async ({ smoke, log }) => {
  const joins = smoke ? 2 : 24
  // The doorbell lets each member open at most 5 times in a row, then once every 2 s (DoorGuard's
  // rate): past the burst the opens are paced to it, so every sample is a real opening. 100 and
  // not 60: a nearest-rank p99 of 60 samples is their largest, and one opening that met a stall of
  // the whole machine (an idle process late by 45 ms at the same moment) was the figure
  // (docs/performance.md); of 100 it is the second largest.
  const opens = smoke ? 3 : 100
  const OPEN_BURST = 5
  const OPEN_REFILL_MS = 2000
  // Plain HTTP on loopback (tls 'off'), as before pairing existed: the figures stay comparable.
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-call-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, viewerDir: VIEWER_DIST, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  // Live preview off: Answer makes the connection here, as these figures always measured (the preview's are bench/preview.ts).
  const device = await startDeviceProcess({ hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, 'front-door') }, iceAdditionalHostAddresses: ['127.0.0.1'], relockSeconds: 0.2, ringTimeoutSeconds: 60, camera: CALL_CAMERA, livePreview: false }, 'call-device', diagnostics())
  // The browser pairs through its pairing screen with the owner's setup code; the door opens with signed commands.
  const resident = await openResident(hub.url, 'Bench', await inviteCode(hub, 'owner'))
  const { page } = resident
  let machine: LoopProbe | null = null
  try {
    await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
    await page.evaluate(`(() => {
      new MutationObserver(() => {
        if (document.querySelector('[data-testid=ring-banner]') && !window.bannerAt) window.bannerAt = performance.timeOrigin + performance.now()
        if (document.querySelector('[data-door=unlocked]') && !window.openShownAt) window.openShownAt = performance.now()
      }).observe(document.body, { subtree: true, childList: true, attributes: true })
    })()`)

    const ringToBanner: number[] = []
    const answerToFrame: number[] = []
    const joinToFrame: number[] = []
    const answerToOffer: number[] = []
    const offerToAnswer: number[] = []
    const answerToIce: number[] = []
    // Answer → first frame by hop (./hops.ts), the doorbell's DTLS hellos, and the machine's load.
    const answerHops = new Hops()
    const hellos = new HelloLog()
    const loads: number[] = []
    for (let i = 0; i < joins; i++) {
      await page.evaluate('window.bannerAt = 0; performance.clearMarks()')
      loads.push(loadavg()[0]!)
      const pressedAt = epochNow()
      device.ring()
      await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
      ringToBanner.push(await page.evaluate('window.bannerAt') as number - pressedAt)
      await page.getByTestId('answer').click()
      const t = await firstFrame(page)
      answerToFrame.push(t.frameAt - t.answer)
      joinToFrame.push(t.frameAt - t.iceConnected)
      answerToOffer.push(t.offerSent - t.answer)
      offerToAnswer.push(t.answerReceived - t.offerSent)
      answerToIce.push(t.iceConnected - t.answerReceived)
      const marks = await pageMarks(page, pressedAt)
      const session = marks.find((m) => m.name === 'doorbell:session-start')?.session ?? ''
      answerHops.add([['Answer', t.origin + t.answer], ...setupChain(marks, device.lines, pressedAt, session, t.origin + t.frameAt)])
      hellos.add(deviceSession(device.lines, pressedAt, session).hellos)
      if (i < joins - 1) {
        await page.getByTestId('hang-up').click()
        await page.getByTestId('ended').waitFor()
        await page.getByTestId('seen').click()
        await page.waitForTimeout(200)
      }
      log(`call: join ${i + 1}/${joins}: join -> frame ${round(joinToFrame.at(-1)!)} ms, answer -> frame ${round(answerToFrame.at(-1)!)} ms`)
    }

    loads.push(loadavg()[0]!)
    log(`call: load ${round(Math.min(...loads))}-${round(Math.max(...loads))} (1-minute average, sampled each join); ${hellos.toString()}`)
    log(answerHops.table('call: Answer → first frame, by hop'))

    // Open the door again and again in the last call: hold, "Door open", relock, "Locked".
    const openToShown: number[] = []
    const openToActuated: number[] = []
    // The hops of one opening (ms), each on one clock: the page signs and sends; the round trip to
    // the doorbell's first word back (page clock); inside it, the doorbell's checked command → lock
    // open, from its own timing line (before 2026-12-07: its log lines' times, ms resolution); the
    // page shows "Door open". Page and doorbell clocks are not compared: Chromium's timeOrigin was
    // seen 400 ms off the system clock.
    const hops: Record<'sign' | 'roundTrip' | 'lock' | 'render', number[]> = { sign: [], roundTrip: [], lock: [], render: [] }
    const rounds: OpenRound[] = []
    machine = new LoopProbe(5000)
    const opensFrom = Date.now()
    let lastOpenAt = 0
    for (let i = 0; i < opens; i++) {
      if (i >= OPEN_BURST - 1) await page.waitForTimeout(Math.max(0, lastOpenAt + OPEN_REFILL_MS + 100 - Date.now()))
      lastOpenAt = Date.now()
      const one = await openOnce(page, device)
      openToShown.push(one.round.shown)
      rounds.push(one.round)
      if (one.actuated !== null) openToActuated.push(one.actuated)
      if (Object.values(one.hop).every(Number.isFinite)) for (const [k, v] of Object.entries(one.hop)) hops[k as keyof typeof hops].push(v)
      if ((i + 1) % 20 === 0 || i === opens - 1) log(`call: open door ${i + 1}/${opens}: p50 ${round(percentile(openToShown, 50))} ms`)
    }
    log(`call: open door, hop by hop over ${hops.sign.length} opens (p50 / p95 / max ms): ${Object.entries(hops).map(([k, v]) => `${k} ${round(percentile(v, 50))} / ${round(percentile(v, 95))} / ${round(Math.max(...v))}`).join('; ')}`)
    // The machine's own stalls over the same time: an idle process's event-loop delay (a stall it shares is the scheduler's).
    const control = machine.since(opensFrom)
    machine.stop()
    log(`call: ${openReport(rounds)}\n  an idle process on this machine meanwhile ran its 10 ms timer late by p99 ${control.loopP99} ms (median of 5 s windows), at most ${control.loopMax} ms`)
    const loopLines = device.lines.filter((l) => l.text.includes(' loop-delay ') && l.at >= opensFrom)
    if (loopLines.length > 0) log(`call: the doorbell's own loop delay while opening (5 s windows):\n${loopLines.map((l) => `  ${l.text}`).join('\n')}`)
    await page.getByTestId('hang-up').click()
    const ab = process.env.DOORBELL_BENCH_CALL_AB
    if (ab === '1' || ab === 'nice') {
      await page.getByTestId('ended').waitFor()
      await page.getByTestId('seen').click()
      const sides = { rounds: smoke ? 1 : 6, perBlock: smoke ? 2 : 10, log }
      if (ab === 'nice') await niceSideBySide(page, device, sides)
      else await sideBySide(hub, page, device, sides)
    }

    const f = (id: string, name: string, value: number, what: string, target?: Figure['target']): Figure =>
      ({ id, name, value: round(value), unit: 'ms', ...(target ? { target } : {}), conditions: conditions(what === 'opens' ? opens : joins, what), group: id.startsWith('ring') ? 'ring' : id.startsWith('open') ? 'door' : 'video' })
    return [
      f('ring-banner-p50', 'button press → ring banner on the page, p50', percentile(ringToBanner, 50), 'rings'),
      f('ring-banner-p99', 'button press → ring banner on the page, p99', percentile(ringToBanner, 99), 'rings'),
      f('join-frame-p50', 'join (ICE connected) → first decoded frame, p50', percentile(joinToFrame, 50), 'joins'),
      f('join-frame-p95', 'join (ICE connected) → first decoded frame, p95', percentile(joinToFrame, 95), 'joins', { op: '<=', value: 100 }),
      f('answer-frame-p50', 'Answer click → first decoded frame, p50', percentile(answerToFrame, 50), 'joins', { op: '<=', value: 400 }),
      f('answer-frame-p95', 'Answer click → first decoded frame, p95', percentile(answerToFrame, 95), 'joins'),
      f('answer-offer-p50', '· of which: Answer click → offer sent (gathering), p50', percentile(answerToOffer, 50), 'joins'),
      f('answer-sdp-p50', '· of which: offer sent → answer back from the device, p50', percentile(offerToAnswer, 50), 'joins'),
      f('answer-ice-p50', '· of which: answer back → ICE connected, p50', percentile(answerToIce, 50), 'joins'),
      f('open-shown-p50', 'open door (hold complete) → "Door open" shown, p50', percentile(openToShown, 50), 'opens'),
      f('open-shown-p99', 'open door (hold complete) → "Door open" shown, p99', percentile(openToShown, 99), 'opens', { op: '<=', value: 10 }),
      f('open-actuated-p50', '· of which: open door → relay actuated on the device, p50', percentile(openToActuated, 50), 'opens'),
      f('open-hop-sign-p50', '· hop: hold complete → signed command sent (the page), p50', percentile(hops.sign, 50), 'opens'),
      f('open-hop-round-trip-p50', '· hop: sent → the doorbell\'s word back on the page (transport both ways, guard, lock), p50', percentile(hops.roundTrip, 50), 'opens'),
      f('open-hop-lock-p50', '· · of which: checked → lock open on the doorbell (lock machine, relay), p50', percentile(hops.lock, 50), 'opens'),
      f('open-hop-render-p50', '· hop: word on the page → "Door open" shown, p50', percentile(hops.render, 50), 'opens'),
      f('open-shown-p95', 'open door (hold complete) → "Door open" shown, p95', percentile(openToShown, 95), 'opens'),
      f('open-hop-doorbell-p50', '· hop: on the doorbell, command read → viewer told "open" (guard, lock), p50', percentile(hopValues(rounds, 'doorbell'), 50), 'opens'),
      f('open-hop-doorbell-p99', '· hop: on the doorbell, command read → viewer told "open" (guard, lock), p99', percentile(hopValues(rounds, 'doorbell'), 99), 'opens'),
      f('open-hop-transport-p50', '· hop: transport both ways (page wait − doorbell), p50', percentile(hopValues(rounds, 'transport'), 50), 'opens'),
      f('open-hop-transport-p99', '· hop: transport both ways (page wait − doorbell), p99', percentile(hopValues(rounds, 'transport'), 99), 'opens')
    ]
  } finally {
    machine?.stop()
    await resident.close()
    await device.stop()
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}
