/**
 * Issue 17's talk figures, against the doorbell in its own process (its microphone fed by the
 * bench, talkMic.ts; its speaker writing a WAV into a FIFO this bench reads as it is written), the hub (startHub) and
 * one headless Chromium page whose fake microphone plays a repeating 300-1500 Hz sweep, on loopback:
 *   Talk down → first audio at the speaker: the hold-to-talk button's `pointerdown` (the event's
 *     timeStamp in the page, as epoch ms) to the arrival here of the first speaker PCM chunk with
 *     sound in it (a 10 ms window above RMS 0.02). The microphone is already open (a warm-up
 *     press first); the first press of the call, which also opens it, is its own figure.
 *   Viewer microphone → doorbell speaker, one way: while Talk is held and silence is flowing,
 *     the page's microphone is switched from silence to the sweep (a WebAudio gain after the fake
 *     capture, set to 1 at a page epoch time) to the first chunk with sound at the speaker.
 * Page times are brought onto the bench's clock by an offset measured over CDP (pageClockOffset).
 *   Doorbell microphone → page, one way: the device's microphone input switched from silence to
 *     its tone (talkMic.ts: when the bench writes the first tone frame into the encoder's pipe)
 *     to the first poll of an analyser on the page's received call audio that hears it.
 * The speaker is the WAV sink (ffmpeg decoding to a pipe); an ALSA or PulseAudio sink adds its
 * own buffer on top.
 * Doorbell → page is measured for several doorbells, each in a new call, in one run: paced
 * (`audio.pacingMs`), unpaced (the default), and in a full run the page's audio receiver at
 * `jitterBufferTarget` 0, unpaced again and paced again (so neither setting is always first),
 * 10 ms frames and the priority controls; each with the share of samples the page concealed.
 */
import { execFileSync } from 'node:child_process'
import { constants, openSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { Socket } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/core'
import { openResident, videoIsPlaying, waitForText } from '../src/browser'
import { VIEWER_DIST } from '../src/harness'
import { deviceInvite, inviteCode } from '../src/trust'
import type { Page } from 'playwright-core'
import { DOORBELL_HZ } from '../src/audio'
import { percentile, round, sleep, type Bench, type Figure } from './lib'
import { epochNow, startDeviceProcess, type DeviceProcess } from './proc'
import { installPageEar, MicrophonePipe, pageOnset, pageQuiet } from './talkMic'
import { Hops } from './hops'
import { backChain, backFigures, LoopProbe, niceChromium, pageArrivalJitter, pageSideFigures, setJitterTarget, timingLines, timingSummary } from './talkHops'

/** 10 ms at 48 kHz mono: the window whose RMS says "sound". The fake microphone's sweep is about 0.18, Opus's decoded silence about 0. */
const WINDOW = 480
/** The paced doorbell's `audio.pacingMs` (the unpaced one has 0). */
const PACED_MS = 40
const LOUD_RMS = 0.01

/** One chunk of the speaker's PCM as it arrived (epoch ms), and whether it holds sound. */
interface Chunk { at: number, loud: boolean, rms: number }

/**
 * Reads the speaker's WAV from a FIFO as ffmpeg writes it (`-flush_packets 1`). Opened
 * read-write so that it neither blocks waiting for ffmpeg nor ends if ffmpeg reopens it.
 */
export class SpeakerTap {
  readonly chunks: Chunk[] = []
  private readonly socket: Socket
  private head = Buffer.alloc(0)
  private inData = false
  private odd: Buffer = Buffer.alloc(0)

  constructor (readonly path: string) {
    execFileSync('mkfifo', [path])
    this.socket = new Socket({ fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false })
    this.socket.on('data', (d: Buffer) => { this.take(d, epochNow()) })
  }

  /** The header (up to the `data` chunk) is skipped; then 16-bit mono samples, windowed. */
  take (d: Buffer, at: number): void {
    let pcm = d
    if (!this.inData) {
      this.head = Buffer.concat([this.head, d])
      const i = this.head.indexOf('data', 12, 'latin1')
      if (i < 0 || this.head.length < i + 8) return
      this.inData = true
      pcm = this.head.subarray(i + 8)
    }
    const bytes = Buffer.concat([this.odd, pcm])
    const usable = bytes.length - (bytes.length % 2)
    this.odd = bytes.subarray(usable)
    let rms = 0
    for (let start = 0; start < usable / 2; start += WINDOW) {
      const end = Math.min(usable / 2, start + WINDOW)
      let sum = 0
      for (let i = start; i < end; i++) sum += (bytes.readInt16LE(i * 2) / 32768) ** 2
      rms = Math.max(rms, Math.sqrt(sum / Math.max(1, end - start)))
    }
    this.chunks.push({ at, loud: rms > LOUD_RMS, rms })
  }

  /** The arrival time of the first chunk with sound after `after` (epoch ms). */
  async firstLoud (after: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const hit = this.chunks.find((c) => c.at >= after && c.loud)
      if (hit) return hit.at
      await sleep(2)
    }
    const late = this.chunks.filter((c) => c.at >= after)
    throw new Error(`no sound at the doorbell's speaker within ${timeoutMs} ms (${late.length} chunks came, loudest RMS ${Math.max(0, ...late.map((c) => c.rms)).toFixed(4)})`)
  }

  /** Waits until the speaker has played only silence for `quietMs` (what was said has drained). */
  async quiet (quietMs: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const lastLoud = this.chunks.findLast((c) => c.loud)?.at ?? 0
      if (epochNow() - lastLoud >= quietMs) return
      await sleep(10)
    }
    throw new Error(`the doorbell's speaker was not quiet for ${quietMs} ms within ${timeoutMs} ms`)
  }

  close (): void { this.socket.destroy() }
}

/**
 * In the page, before the first Talk: the microphone the viewer asks for is the fake capture
 * through a WebAudio gain the bench sets (0 silence, 1 the sweep), each hold-to-talk
 * pointerdown's time is kept, and so is each RTCPeerConnection the page makes. No named inner functions: tsx would wrap them in a helper the page lacks.
 */
const INSTALL = `(() => {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices)
  window.__talkBench = { gain: null, context: null, downAt: NaN, pcs: [] }
  // Kept to read the received audio's jitter buffer (getStats): where the time goes.
  const RealPc = window.RTCPeerConnection
  window.RTCPeerConnection = class extends RealPc { constructor (...a) { super(...a); window.__talkBench.pcs.push(this) } }
  navigator.mediaDevices.getUserMedia = async (c) => {
    const stream = await real(c)
    const context = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' })
    await context.resume()
    const gain = context.createGain()
    gain.gain.value = 1
    const out = context.createMediaStreamDestination()
    context.createMediaStreamSource(stream).connect(gain).connect(out)
    Object.assign(window.__talkBench, { gain, context })
    return out.stream
  }
  document.addEventListener('pointerdown', (e) => {
    if (e.target instanceof Element && e.target.closest('[data-testid=hold-to-talk]')) window.__talkBench.downAt = performance.timeOrigin + e.timeStamp
  }, true)
})()`

/**
 * The received audio's jitter buffer so far, summed over the page's connections: seconds of
 * delay, of target delay and of the minimum the network alone needs (the target less what
 * lip sync with the video or a requested delay adds), and samples emitted (inbound-rtp); and
 * the samples received and concealed (made up for missing or late audio: a buffer set too
 * small for the arrivals shows as concealment).
 */
const JITTER = `(async () => {
  let delay = 0
  let target = 0
  let minimum = 0
  let emitted = 0
  let received = 0
  let concealed = 0
  for (const pc of window.__talkBench.pcs) {
    if (pc.connectionState === 'closed') continue
    for (const r of (await pc.getStats()).values()) {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        delay += r.jitterBufferDelay ?? 0
        target += r.jitterBufferTargetDelay ?? 0
        minimum += r.jitterBufferMinimumDelay ?? 0
        emitted += r.jitterBufferEmittedCount ?? 0
        received += r.totalSamplesReceived ?? 0
        concealed += r.concealedSamples ?? 0
      }
    }
  }
  return { delay, target, minimum, emitted, received, concealed }
})()`

interface Jitter { delay: number, target: number, minimum: number, emitted: number, received: number, concealed: number }

/** Sets the microphone's gain in the page; returns when it was set (epoch ms). */
const setGain = (value: number): string => `(() => {
  const b = window.__talkBench
  b.gain.gain.setValueAtTime(${value}, b.context.currentTime)
  return performance.timeOrigin + performance.now()
})()`

/**
 * Rounds of the doorbell's microphone from silence to its tone, heard in the page (the call in
 * the page must be up): each round's one-way time and the page's jitter buffer (mean per sample).
 */
async function backRounds (page: Page, microphone: MicrophonePipe, offset: number, rounds: number, budgetMs: number, log: (m: string) => void, device: DeviceProcess, probe: LoopProbe): Promise<BackRounds> {
  await installPageEar(page)
  const deviceToPage: number[] = []
  const jitter: number[] = []
  const arrivalJitter: number[] = []
  const hops = new Hops()
  const back = Date.now()
  const since = epochNow()
  const first = await page.evaluate(JITTER) as Jitter
  for (let i = 0; i < rounds && Date.now() - back < budgetMs; i++) {
    microphone.toneOff()
    const before = await page.evaluate(JITTER) as Jitter
    await pageQuiet(page, 300, 5000)
    const on = await microphone.toneOn()
    const heard = await pageOnset(page, on + offset, 5000) - offset
    deviceToPage.push(heard - on)
    await sleep(200)
    const after = await page.evaluate(JITTER) as Jitter
    hops.add(backChain(device.lines, on, heard))
    arrivalJitter.push(await pageArrivalJitter(page))
    // Means over this round's samples: time in the jitter buffer, its target, and the network's minimum.
    const mean = (k: keyof Jitter): number => (after[k] - before[k]) / (after.emitted - before.emitted) * 1000
    if (after.emitted > before.emitted) jitter.push(mean('delay'))
    log(`round ${i + 1}/${rounds}: doorbell mic → page ${round(deviceToPage.at(-1)!)} ms (page jitter buffer: held ${round(mean('delay'))} ms, target ${round(mean('target'))} ms, network minimum ${round(mean('minimum'))} ms)`)
  }
  microphone.toneOff()
  if (deviceToPage.length === 0) throw new Error('no doorbell → page round finished within the time budget')
  const last = await page.evaluate(JITTER) as Jitter
  // Of the samples received over these rounds, the share the page had to make up (late or lost audio).
  const concealed = last.received > first.received ? (last.concealed - first.concealed) / (last.received - first.received) : NaN
  log(`concealed ${round(concealed * 100, 2)} % of ${last.received - first.received} samples received; load ${loadavg()[0]!.toFixed(1)}`)
  log(hops.table('where the time goes, by hop'))
  const timing = timingSummary(timingLines(device.lines, since))
  const control = probe.since(since)
  log(`doorbell, per ${TIMING_S} s period (medians of the periods): packets late out of ffmpeg p95 ${timing.arrivalP95} ms (max ${timing.arrivalMax}), late once handed to werift p95 ${timing.sentP95} ms (max ${timing.sentMax}); event loop late p99 ${timing.loopP99} ms (max ${timing.loopMax}); an idle Node process's meanwhile: p99 ${control.loopP99} ms (max ${control.loopMax}); page's interarrival jitter p50 ${round(percentile(arrivalJitter, 50))} ms`)
  return { deviceToPage, jitter, hops, timing, control, arrivalJitter, concealed }
}

interface BackRounds { deviceToPage: number[], jitter: number[], hops: Hops, timing: ReturnType<typeof timingSummary>, control: { loopP99: number, loopMax: number }, arrivalJitter: number[], concealed: number }
/** The raised doorbell's niceness (systemd's Nice= in deployment/systemd/doorbell-device.service). */
const RAISED_NICE = -10
/** The doorbell's `audio.timingLogSeconds` in this bench. */
const TIMING_S = 2

/**
 * The fake microphone's file: a sweep from 300 to 1500 Hz every second, for 20 s (it loops).
 * A steady tone does not do: the microphone's noise suppression learns it as noise and fades
 * it within seconds (a tone sent at RMS 0.09 reached the speaker at 0.016 by the third press),
 * while a sweep stays in no band long.
 */
function sweepWav (path: string): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', "aevalsrc=0.25*sin(2*PI*(300*t+600*mod(t\\,1)^2)):s=48000:d=20", '-ac', '1', '-c:a', 'pcm_s16le', path])
}

/**
 * How far the page's epoch clock is ahead of this process's: each side's performance.timeOrigin
 * is its own reading of the system clock. Taken NTP-style over CDP (the reading against the
 * midpoint of the round trip), from the shortest of `n` round trips.
 */
async function pageClockOffset (page: Page, n = 15): Promise<{ offset: number, rtt: number }> {
  let best = { offset: 0, rtt: Infinity }
  for (let i = 0; i < n; i++) {
    const t0 = epochNow()
    const p = await page.evaluate('performance.timeOrigin + performance.now()') as number
    const t1 = epochNow()
    if (t1 - t0 < best.rtt) best = { offset: p - (t0 + t1) / 2, rtt: t1 - t0 }
  }
  return best
}

export const talkBench: Bench = async ({ smoke, log }) => {
  const rounds = smoke ? 2 : 20
  const budgetMs = smoke ? 40_000 : 150_000
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-bench-talk-'))
  const voice = join(dir, 'resident.wav')
  let tap: SpeakerTap | null = null
  let mic: MicrophonePipe | null = null
  let hub: Awaited<ReturnType<typeof startHub>> | null = null
  let resident: Awaited<ReturnType<typeof openResident>> | null = null
  let device: Awaited<ReturnType<typeof startDeviceProcess>> | null = null
  const probe = new LoopProbe(TIMING_S * 1000)
  try {
    sweepWav(voice)
    const speaker = tap = new SpeakerTap(join(dir, 'speaker.fifo'))
    const microphone = mic = new MicrophonePipe(dir, DOORBELL_HZ)
    microphone.start()
    hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dir, 'hub'), viewerDir: VIEWER_DIST, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
    resident = await openResident(hub.url, 'Bench', await inviteCode(hub, 'owner'), { microphone: voice })
    const { page } = resident
    device = await startDeviceProcess({
      deviceId: 'front-door',
      deviceName: 'Front door',
      hubUrl: hub.mqttUrl,
      mesh: { enabled: false },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      ringTimeoutSeconds: 60,
      camera: { source: { kind: 'test-pattern', width: 640, height: 360, fps: 15 }, codec: 'h264', keyframeInterval: 15, bitrateKbps: 600 },
      audio: { source: { kind: 'test-tone', frequencyHz: DOORBELL_HZ }, speaker: { kind: 'wav', path: speaker.path }, ffmpegPath: microphone.ffmpeg, pacingMs: PACED_MS, timingLogSeconds: TIMING_S },
      pairing: { url: await deviceInvite(hub, 'front-door') }
    }, 'talk')
    await page.getByTestId('doorbell-front-door').waitFor({ timeout: 20_000 })
    await page.evaluate(INSTALL)
    device.ring()
    await page.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
    await page.getByTestId('answer').click()
    await videoIsPlaying(page)

    const clock = await pageClockOffset(page)
    log(`talk: the page's clock is ${round(clock.offset, 2)} ms ahead (CDP round trip ${round(clock.rtt, 2)} ms)`)
    const hold = page.getByTestId('hold-to-talk')
    const box = (await hold.boundingBox())!
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
    const down = async (): Promise<number> => {
      await page.evaluate('window.__talkBench.downAt = NaN')
      await page.mouse.down()
      await waitForText(page, 'talk-status', /Front door hears you/)
      const at = await page.evaluate('window.__talkBench.downAt') as number
      if (!Number.isFinite(at)) throw new Error('the hold-to-talk pointerdown was not seen in the page')
      return at - clock.offset
    }
    /** Silence goes out last, so no sound is left in the decoder for the next round. */
    const up = async (): Promise<void> => {
      await page.evaluate(setGain(0))
      await sleep(200)
      await page.mouse.up()
      await speaker.quiet(300, 5000)
      await page.evaluate(setGain(1))
    }

    // The first press of the call: the microphone is opened then (granted unasked).
    const coldAt = await down()
    const cold = await speaker.firstLoud(coldAt, 10_000) - coldAt
    await up()
    log(`talk: first press of the call (opens the microphone) → sound at the speaker ${round(cold)} ms`)

    const downToSound: number[] = []
    const oneWay: number[] = []
    const started = Date.now()
    for (let i = 0; i < rounds && Date.now() - started < budgetMs; i++) {
      // The DoorGuard lets 10 talk commands through, then one a second: one press a round stays inside.
      await sleep(300)
      const at = await down()
      downToSound.push(await speaker.firstLoud(at, 5000) - at)
      // Held: silence (still sending, well under the lease's 2 s), then the sweep.
      await page.evaluate(setGain(0))
      await speaker.quiet(300, 5000)
      const onAt = await page.evaluate(setGain(1)) as number - clock.offset
      oneWay.push(await speaker.firstLoud(onAt, 5000) - onAt)
      await up()
      log(`talk: round ${i + 1}/${rounds}: Talk down → sound ${round(downToSound.at(-1)!)} ms; viewer mic → speaker ${round(oneWay.at(-1)!)} ms`)
    }
    if (downToSound.length === 0) throw new Error('no talk round finished within the time budget')

    // The other way: the doorbell's microphone from silence to its tone, heard in the page; paced
    // (`audio.pacingMs` PACED_MS). In a new call, as for the unpaced doorbell below: the page's jitter buffer
    // grows over a call on this machine, so both are measured from the same call age.
    await page.getByTestId('hang-up').click()
    await sleep(1000)
    device.ring()
    await page.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
    await page.getByTestId('answer').click()
    await videoIsPlaying(page)
    const paced = await backRounds(page, microphone, clock.offset, rounds, budgetMs, (m) => { log(`talk: paced: ${m}`) }, device, probe)

    // The same, side by side in this run, from a doorbell that sends its microphone's packets as
    // ffmpeg hands them over (`audio.pacingMs: 0`, the default), then from the same at a raised
    // scheduling priority (`nice -n ${RAISED_NICE}`, systemd's Nice= in
    // deployment/systemd/doorbell-device.service): each one before stops (the microphone's pipe
    // has one reader), the next is rung and answered.
    await page.getByTestId('hang-up').click()
    await device.stop()
    device = null
    const another = async (id: string, name: string, label: string, o: { nice?: number, frameMs?: 10, pacingMs?: number, jitterBufferTarget?: number } = {}): Promise<BackRounds> => {
      const { nice } = o
      const next = device = await startDeviceProcess({
        deviceId: id,
        deviceName: name,
        hubUrl: hub!.mqttUrl,
        mesh: { enabled: false },
        iceAdditionalHostAddresses: ['127.0.0.1'],
        ringTimeoutSeconds: 60,
        camera: { source: { kind: 'test-pattern', width: 640, height: 360, fps: 15 }, codec: 'h264', keyframeInterval: 15, bitrateKbps: 600 },
        audio: { source: { kind: 'test-tone', frequencyHz: DOORBELL_HZ }, speaker: { kind: 'wav', path: join(dir, `${id}-speaker.wav`) }, ffmpegPath: microphone.ffmpeg, pacingMs: o.pacingMs ?? 0, timingLogSeconds: TIMING_S, ...(o.frameMs !== undefined ? { frameMs: o.frameMs } : {}) },
        pairing: { url: await deviceInvite(hub!, id) }
      }, `talk-${id}`, nice === undefined ? {} : { nice })
      await page.getByTestId(`doorbell-${id}`).waitFor({ timeout: 20_000 })
      next.ring()
      await page.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
      await page.getByTestId('answer').click()
      await videoIsPlaying(page)
      if (o.jitterBufferTarget !== undefined) log(`talk: ${label}: the page's audio receivers read back ${JSON.stringify(await page.evaluate(setJitterTarget(o.jitterBufferTarget)))}`)
      const result = await backRounds(page, microphone, clock.offset, rounds, budgetMs, (m) => { log(`talk: ${label}: ${m}`) }, next, probe)
      await page.getByTestId('hang-up').click()
      await next.stop()
      device = null
      return result
    }
    const unpaced = await another('back-door', 'Back door', 'unpaced')
    // The page's side (a full run only): the audio receiver's jitterBufferTarget set to 0 (and
    // playoutDelayHint where Chromium has it), between two calls with the browser's own, and
    // pacing measured again after them (it was always first): each setting in a new call.
    const jb0 = smoke ? null : await another('gate', 'Gate', 'unpaced, page jitterBufferTarget 0', { jitterBufferTarget: 0 })
    const unpacedAgain = smoke ? null : await another('shed', 'Shed', 'unpaced, again')
    const pacedAgain = smoke ? null : await another('yard', 'Yard', `paced (${PACED_MS} ms), again`, { pacingMs: PACED_MS })
    // audio.frameMs 10: half the wait for a full Opus frame (the first hop's median is one frame).
    // The controls below only in a full run: the smoke run stays within the suite's time.
    const short = smoke ? null : await another('porch', 'Porch', 'unpaced, 10 ms frames', { frameMs: 10 })
    // Raising a priority takes root (or CAP_SYS_NICE); without it nice would run the doorbell as is.
    const root = process.getuid?.() === 0 && !smoke
    const raised = root ? await another('side-door', 'Side door', `raised (nice ${RAISED_NICE})`, { nice: RAISED_NICE }) : null
    if (!root && !smoke) log('talk: not root here: the raised-priority doorbell and page are not measured')
    // The control for the page's side: the same raised doorbell with Chromium raised too.
    let raisedPage: BackRounds | null = null
    if (root) {
      log(`talk: Chromium's ${await niceChromium(RAISED_NICE)} threads at nice ${RAISED_NICE}`)
      try {
        raisedPage = await another('garage-door', 'Garage door', 'raised doorbell and page', { nice: RAISED_NICE })
      } finally {
        await niceChromium(0)
      }
    }
    const { deviceToPage, jitter } = paced

    const conditions = `loopback, headless Chromium (Debian) on ${cpus().length} shared cores, the doorbell in its own process (speaker = ffmpeg Opus decode to a WAV read from a FIFO as written), one hub (startHub), home network; Chromium's fake microphone (a 300-1500 Hz sweep file, the viewer's echo cancellation, noise suppression and auto gain on) through a WebAudio gain; page clock offset measured over CDP and taken off; sound = first 10 ms window above RMS ${LOUD_RMS} in a speaker chunk, timed on arrival; ${downToSound.length} rounds after one warm-up press`
    const backConditions = `loopback, headless Chromium (Debian) on ${cpus().length} shared cores, the doorbell in its own process, one hub (startHub), home network; the doorbell's own ffmpeg Opus encode with its input a FIFO of raw 48 kHz PCM the bench writes in real time in 10 ms periods (silence, then a ${DOORBELL_HZ} Hz tone: start = the write of its first frame); end = the first 2 ms poll of a WebAudio analyser (512 samples) on the call's received audio above RMS 0.01; page clock offset measured over CDP and taken off; ${deviceToPage.length} rounds`
    const f = (id: string, name: string, value: number, target?: Figure['target']): Figure =>
      ({ id, name, value: round(value), unit: 'ms', ...(target ? { target } : {}), conditions, group: 'audio' })
    return [
      f('talk-down-audio-p50', 'Talk down → first audio at the doorbell\'s speaker, p50', percentile(downToSound, 50)),
      f('talk-down-audio-p95', 'Talk down → first audio at the doorbell\'s speaker, p95', percentile(downToSound, 95), { op: '<=', value: 200 }),
      f('talk-down-audio-first', 'Talk down → first audio, first press of a call (opens the microphone)', cold),
      f('talk-oneway-viewer-device-p50', 'viewer microphone → doorbell speaker, one way, p50', percentile(oneWay, 50)),
      f('talk-oneway-viewer-device-p95', 'viewer microphone → doorbell speaker, one way, p95', percentile(oneWay, 95), { op: '<=', value: 150 }),
      { ...f('talk-oneway-device-viewer-p50', 'doorbell microphone → page, one way, p50, paced (audio.pacingMs 40)', percentile(deviceToPage, 50)), conditions: backConditions },
      // The target is on the default (unpaced) figure below: pacing is an option, off by default.
      { ...f('talk-oneway-device-viewer-p95', 'doorbell microphone → page, one way, p95, paced (audio.pacingMs 40)', percentile(deviceToPage, 95)), conditions: backConditions },
      { ...f('talk-page-jitter-buffer-p50', 'of which in the page\'s jitter buffer (mean per round), p50', percentile(jitter, 50)), conditions: backConditions },
      { ...f('talk-oneway-device-viewer-unpaced-p95', 'doorbell microphone → page, one way, p95, unpaced (audio.pacingMs 0, the default; same run)', percentile(unpaced.deviceToPage, 95), { op: '<=', value: 150 }), conditions: backConditions },
      { ...f('talk-page-jitter-buffer-unpaced-p50', 'of which in the page\'s jitter buffer, p50, unpaced (same run)', percentile(unpaced.jitter, 50)), conditions: backConditions },
      ...backFigures(unpaced, short, raised, raisedPage).map((x) => ({ ...x, conditions: backConditions })),
      ...pageSideFigures({ paced, unpaced, jb0, unpacedAgain, pacedAgain }, PACED_MS).map((x) => ({ ...x, conditions: backConditions }))
    ]
  } finally {
    await resident?.close()
    await device?.stop()
    await hub?.stop()
    probe.stop()
    tap?.close()
    mic?.close()
    await rm(dir, { recursive: true, force: true })
  }
}
