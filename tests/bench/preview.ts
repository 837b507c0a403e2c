/**
 * Issue 21's live preview, side by side in one run: two doorbells in their own processes on one
 * hub, the same camera, one with live preview (the default) and one with it off (`livePreview:
 * false`), rung in turn, watched by one headless Chromium page:
 *   ring → first live frame in the banner (preview on): the button press (epoch clock) to the
 *         banner's preview <video>'s first presented frame (requestVideoFrameCallback);
 *   Answer → two-way audio ready (preview on): the Answer click's mark to `doorbell:audio-ready`,
 *         set when the doorbell says it opened audio on the preview's connection (`call-taken`:
 *         from then on it plays what the page sends under the talk lease), and the first packet of
 *         the doorbell's sound in the page (`doorbell:first-audio`, its audio track unmuting): the
 *         two-way figure is the later of the two, per ring. And what the resident hears: Answer →
 *         the doorbell's tone first heard by an analyser on the call's <audio> element (ARM_EAR),
 *         which adds the page's jitter buffer (the one-way figure of the `talk` bench);
 *   Answer → first frame (preview off): the Answer click's mark to the call view's first frame,
 *         a new connection made at Answer (as before the preview).
 * Each is broken into hops (./hops.ts: the page's marks and the doorbells' log lines), and
 * measured both ways in one run, rounds alternated: with the spare connection the app keeps
 * gathered before a ring (as shipped; viewer/src/lib/peerSpare.ts) and with `?spare=off`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub } from '@doorbell/hub'
import { memoryLogger, type DeviceConfigInput } from '@doorbell/core'
import { openResident } from '../src/browser'
import { VIEWER_DIST } from '../src/harness'
import { deviceInvite, inviteCode } from '../src/trust'
import { percentile, round, type Bench, type Figure } from './lib'
import { epochNow, startDeviceProcess, type DeviceProcess } from './proc'
import { CALL_CAMERA } from './call'
import { HelloLog, Hops, deviceAt, deviceSession, markOf, pageMarks, setupChain } from './hops'

const LIVE = 'front-door'
const OFF = 'back-door'

/** In the page: the banner's preview video's first presented frame, as epoch ms. */
const PREVIEW_FRAME = `(async () => {
  let video = null
  while (!(video = document.querySelector('[data-testid=doorbell-${LIVE}] [data-testid=ring-preview]'))) await new Promise((r) => setTimeout(r, 2))
  const at = await new Promise((resolve) => video.requestVideoFrameCallback((now) => resolve(now)))
  return performance.timeOrigin + at
})()`

/** In the page: the call view's first presented frame, against the Answer mark, and as epoch ms. */
const CALL_FRAME = `(async () => {
  let video = null
  while (!(video = document.querySelector('[data-testid=doorbell-${OFF}] [data-testid=video]'))) await new Promise((r) => setTimeout(r, 2))
  const frameAt = await new Promise((resolve) => video.requestVideoFrameCallback((now) => resolve(now)))
  return { ms: frameAt - (performance.getEntriesByName('doorbell:answer').at(-1)?.startTime ?? NaN), at: performance.timeOrigin + frameAt }
})()`

const AUDIO_READY = `(async () => {
  const deadline = performance.now() + 10000
  while (performance.now() < deadline) {
    const ready = performance.getEntriesByName('doorbell:audio-ready').at(-1)
    const answer = performance.getEntriesByName('doorbell:answer').at(-1)
    if (ready && answer && ready.startTime >= answer.startTime) return ready.startTime - answer.startTime
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error('no doorbell:audio-ready after Answer')
})()`

/**
 * `BENCH_PREVIEW_COMPARE=keepEarlyDtls`: instead of the spare against `?spare=off`, the doorbells'
 * `keepEarlyDtls` on (as shipped) against off, in alternating blocks of rounds, the doorbells
 * restarted between blocks (their pairing kept), every screen with its spare. Its figures are the
 * shipped ones and `…-early-dtls-off-…`.
 */
const COMPARE = process.env['BENCH_PREVIEW_COMPARE'] === 'keepEarlyDtls'
const COMPARE_BLOCK = 6

/**
 * In the page, armed before Answer: an analyser (its AudioContext already running) that is
 * connected to the call's <audio> element as soon as Answer puts it there, polled every few ms
 * (timers clamp to 4 ms), resolving with the first moment (epoch ms) its 512 samples are above
 * RMS 0.01: the doorbell's tone (RMS ~0.09) is playing. Nothing plays before Answer: the
 * doorbell sends no audio to a preview. No named inner functions: tsx would wrap them in a helper the page lacks.
 */
const ARM_EAR = `(() => {
  window.__heard = (async () => {
    const context = new AudioContext({ latencyHint: 'interactive' })
    await context.resume()
    const analyser = context.createAnalyser()
    analyser.fftSize = 512
    const data = new Float32Array(analyser.fftSize)
    const deadline = performance.now() + 15000
    let el = null
    try {
      while (!(el = document.querySelector('[data-testid=doorbell-${LIVE}] [data-testid=call-audio]'))?.srcObject) {
        if (performance.now() > deadline) throw new Error('no call audio element after Answer')
        await new Promise((r) => setTimeout(r, 1))
      }
      context.createMediaStreamSource(el.srcObject).connect(analyser)
      while (performance.now() < deadline) {
        analyser.getFloatTimeDomainData(data)
        let sum = 0
        for (let i = 0; i < data.length; i++) sum += data[i] * data[i]
        if (Math.sqrt(sum / data.length) > 0.01) return performance.timeOrigin + performance.now()
        await new Promise((r) => setTimeout(r, 1))
      }
      throw new Error('the doorbell was not heard within 15 s of Answer')
    } finally {
      void context.close()
    }
  })()
})()`

/** One screen's way of calling: its figures and their hops. */
class Variant {
  readonly ringToLive: number[] = []
  readonly answerToAudio: number[] = []
  /** Answer → the doorbell's first audio packet in the page; the later of that and `call-taken` (two-way); the tone heard. */
  readonly answerToFirstAudio: number[] = []
  readonly answerToTwoWay: number[] = []
  readonly answerToHeard: number[] = []
  readonly answerToFrameOff: number[] = []
  readonly ringHops = new Hops()
  readonly audioHops = new Hops()
  readonly heardHops = new Hops()
  readonly offHops = new Hops()
  readonly ringHellos = new HelloLog()
  readonly offHellos = new HelloLog()
}

export const previewBench: Bench = async ({ smoke, log }) => {
  // 24 rings a way: with 12, a p95 was the slowest ring of the run, whatever else happened.
  const rounds = smoke ? 1 : 24
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-preview-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, viewerDir: VIEWER_DIST, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  const common = { hubUrl: hub.mqttUrl, mesh: { enabled: false }, iceAdditionalHostAddresses: ['127.0.0.1'], ringTimeoutSeconds: 60, camera: CALL_CAMERA, audio: { source: { kind: 'test-tone' as const, frequencyHz: 660 } } }
  const devices: Record<string, DeviceProcess> = {}
  const resident = await openResident(hub.url, 'Bench', await inviteCode(hub, 'owner'))
  const { page } = resident
  try {
    const configs: Record<string, DeviceConfigInput> = {
      [LIVE]: { ...common, deviceId: LIVE, deviceName: 'Front door', pairing: { url: await deviceInvite(hub, LIVE) } },
      [OFF]: { ...common, deviceId: OFF, deviceName: 'Back door', livePreview: false, pairing: { url: await deviceInvite(hub, OFF) } }
    }
    const procNames: Record<string, string> = { [LIVE]: 'preview-live', [OFF]: 'preview-off' }
    devices[LIVE] = await startDeviceProcess(configs[LIVE]!, procNames[LIVE])
    devices[OFF] = await startDeviceProcess(configs[OFF]!, procNames[OFF])
    for (const id of [LIVE, OFF]) await page.getByTestId(`doorbell-${id}`).waitFor({ timeout: 20_000 })
    // The cameras' first groups of pictures are cached before the first press.
    await page.waitForTimeout(2000)
    // Two screens' ways, alternated round by round in one run: with the spare connection the app
    // keeps gathered before a ring (as shipped), and with `?spare=off` (gathered at the ring).
    // COMPARE instead alternates the doorbells' setting in blocks (restarted between, pairing kept), spare on.
    const variants: Record<string, Variant> = COMPARE ? { kept: new Variant(), dropped: new Variant() } : { spare: new Variant(), nospare: new Variant() }
    const loads: number[] = []
    for (let i = 0; i < 2 * rounds; i++) {
      loads.push(loadavg()[0]!)
      const name = COMPARE ? (Math.floor(i / COMPARE_BLOCK) % 2 === 0 ? 'kept' : 'dropped') : (i % 2 === 0 ? 'spare' : 'nospare')
      const v = variants[name]!
      if (COMPARE && i > 0 && i % COMPARE_BLOCK === 0) {
        for (const id of [LIVE, OFF]) {
          await devices[id]!.stop()
          devices[id] = await startDeviceProcess({ ...configs[id]!, keepEarlyDtls: name === 'kept' }, procNames[id]!, { keepData: true })
        }
        await page.waitForTimeout(2000)
      }
      // Reloaded with its way, then left idle as a screen is before a ring (its spare, if any, is made).
      await page.goto(`${hub.url}${name === 'nospare' ? '?spare=off' : ''}`)
      for (const id of [LIVE, OFF]) await page.getByTestId(`doorbell-${id}`).waitFor({ timeout: 20_000 })
      await page.waitForTimeout(1500)
      // Preview on: ring → live frame in the banner; Answer → audio open on the same connection.
      const live = page.getByTestId(`doorbell-${LIVE}`)
      const frame = page.evaluate(PREVIEW_FRAME) as Promise<number>
      const pressedAt = epochNow()
      devices[LIVE].ring()
      const liveAt = await frame
      v.ringToLive.push(liveAt - pressedAt)
      await live.locator('[data-testid=ring-preview][data-preview=live]').waitFor({ timeout: 10_000 })
      const ringMarks = await pageMarks(page, pressedAt)
      const previewSession = ringMarks.find((m) => m.name === 'doorbell:session-start')?.session ?? ''
      const liveLines = devices[LIVE].lines
      v.ringHops.add([
        ['press', pressedAt],
        ['doorbell: press handled (ring)', deviceAt(liveLines, pressedAt, (t) => / ring ringId=/.test(t))],
        ['hub: ring relayed to the screen', ringMarks.find((m) => m.name === 'doorbell:ring-received')?.at ?? null],
        ['screen: decides to preview', markOf(ringMarks, 'session-start', previewSession)],
        ...setupChain(ringMarks, liveLines, pressedAt, previewSession, liveAt).slice(1)
      ])
      v.ringHellos.add(deviceSession(liveLines, pressedAt, previewSession).hellos)
      await page.evaluate(ARM_EAR)
      const answeredAt = epochNow()
      await live.getByTestId('answer').click()
      v.answerToAudio.push(await page.evaluate(AUDIO_READY) as number)
      const heardAt = await page.evaluate('window.__heard') as number
      const takeMarks = await pageMarks(page, answeredAt)
      const answerMark = takeMarks.find((m) => m.name === 'doorbell:answer')?.at ?? NaN
      const takenAt = markOf(takeMarks, 'audio-ready', previewSession)
      const firstAudioAt = markOf(takeMarks, 'first-audio', previewSession)
      if (!Number.isFinite(answerMark) || takenAt === null || firstAudioAt === null) throw new Error('the page has no Answer, call-taken or first-audio mark for this ring')
      v.answerToFirstAudio.push(firstAudioAt - answerMark)
      v.answerToTwoWay.push(Math.max(firstAudioAt, takenAt) - answerMark)
      v.answerToHeard.push(heardAt - answerMark)
      const d = deviceSession(liveLines, answeredAt, previewSession)
      v.audioHops.add([
        ['Answer', answerMark],
        ['screen: take-call sent', markOf(takeMarks, 'take-call-sent', previewSession)],
        ['doorbell: take-call in', d.takeCallIn],
        ['doorbell: audio opened, call-taken sent', d.audioOpen],
        ['screen: call-taken in (audio ready)', takenAt]
      ])
      v.heardHops.add([
        ['doorbell: take-call in', d.takeCallIn],
        ['doorbell: first audio packet out', d.audioOut],
        ['screen: first audio packet', firstAudioAt],
        ['screen: the doorbell heard', heardAt]
      ])
      await live.getByTestId('hang-up').click()
      await live.getByTestId('seen').click()
      // Preview off: Answer makes the connection (after the screen's idle moment, as a resident's would be).
      const off = page.getByTestId(`doorbell-${OFF}`)
      await page.waitForTimeout(1500)
      const offRingAt = epochNow()
      devices[OFF].ring()
      await off.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
      const callFrame = page.evaluate(CALL_FRAME) as Promise<{ ms: number, at: number }>
      await off.getByTestId('answer').click()
      const offFrame = await callFrame
      v.answerToFrameOff.push(offFrame.ms)
      const offMarks = await pageMarks(page, offRingAt)
      const offSession = offMarks.find((m) => m.name === 'doorbell:session-start')?.session ?? ''
      v.offHops.add([
        ['Answer', offMarks.find((m) => m.name === 'doorbell:answer')?.at ?? null],
        ['screen: session starts', markOf(offMarks, 'session-start', offSession)],
        ...setupChain(offMarks, devices[OFF].lines, offRingAt, offSession, offFrame.at).slice(1)
      ])
      v.offHellos.add(deviceSession(devices[OFF].lines, offRingAt, offSession).hellos)
      await off.getByTestId('hang-up').click()
      await off.getByTestId('seen').click()
      log(`preview (${name}): round ${v.ringToLive.length}/${rounds}: ring → live frame ${round(v.ringToLive.at(-1)!)} ms, answer → audio ${round(v.answerToAudio.at(-1)!)} ms (two-way ${round(v.answerToTwoWay.at(-1)!)} ms, heard ${round(v.answerToHeard.at(-1)!)} ms); preview off: answer → frame ${round(v.answerToFrameOff.at(-1)!)} ms; load ${loadavg()[0]!.toFixed(1)}`)
    }
    loads.push(loadavg()[0]!)
    const load = `load ${round(Math.min(...loads))}-${round(Math.max(...loads))} (1-minute average, sampled each round)`
    log(`preview: ${load}`)
    for (const [name, v] of Object.entries(variants)) {
      log(`preview (${name}), ring: ${v.ringHellos.toString()}`)
      log(`preview off (${name}), Answer: ${v.offHellos.toString()}`)
      log(v.ringHops.table(`preview (${name}): ring → first live frame, by hop`))
      log(v.audioHops.table(`preview (${name}): Answer → two-way audio ready, by hop`))
      log(v.heardHops.table(`preview (${name}): take-call in the doorbell → its sound heard on the page`))
      log(v.offHops.table(`preview off (${name}): Answer → first frame, by hop`))
    }
    const conditions = `loopback, headless Chromium (Debian) on ${cpus().length} shared cores, two doorbells in their own processes on one hub (startHub), 1280x720@30 H.264 test pattern, keyframe every 30 frames, Opus test tone; one with live preview, one with it off, rung in turn, the page reloaded and idle 1.5 s before each; ${COMPARE ? `${rounds} rings each with the doorbells' keepEarlyDtls on (as shipped) and off, in alternating blocks of ${COMPARE_BLOCK}, the spare connection on` : `${rounds} rings each with the spare connection (as shipped) and ${rounds} with ?spare=off, alternated`}; ${load}`
    const f = (id: string, name: string, value: number, target?: Figure['target']): Figure =>
      ({ id, name, value: round(value), unit: 'ms', ...(target ? { target } : {}), conditions, group: 'video' })
    // The hops' medians (as shipped), in the report's own section: where the time goes.
    const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')
    const hop = (prefix: string, label: string, hops: Hops): Figure[] => hops.summary().map((h) =>
      ({ id: `${prefix}-${slug(h.hop)}-p50`, name: `${label}: ${h.hop}, p50`, value: h.p50, unit: 'ms' as const, conditions, group: 'preview-hops' }))
    const spare = COMPARE ? variants['kept']! : variants['spare']!
    const nospare = COMPARE ? variants['dropped']! : variants['nospare']!
    if (COMPARE) {
      return [
        f('preview-live-frame-p50', 'ring → first live frame in the banner (preview), p50', percentile(spare.ringToLive, 50)),
        f('preview-live-frame-p95', 'ring → first live frame in the banner (preview), p95', percentile(spare.ringToLive, 95), { op: '<=', value: 600 }),
        f('preview-off-answer-frame-p50', 'Answer → first decoded frame (preview off), p50', percentile(spare.answerToFrameOff, 50), { op: '<=', value: 200 }),
        f('preview-off-answer-frame-p95', 'Answer → first decoded frame (preview off), p95', percentile(spare.answerToFrameOff, 95)),
        f('preview-live-frame-early-dtls-off-p50', 'ring → first live frame in the banner (preview), keepEarlyDtls off, p50', percentile(nospare.ringToLive, 50)),
        f('preview-live-frame-early-dtls-off-p95', 'ring → first live frame in the banner (preview), keepEarlyDtls off, p95', percentile(nospare.ringToLive, 95)),
        f('preview-off-answer-frame-early-dtls-off-p50', 'Answer → first decoded frame (preview off), keepEarlyDtls off, p50', percentile(nospare.answerToFrameOff, 50)),
        f('preview-off-answer-frame-early-dtls-off-p95', 'Answer → first decoded frame (preview off), keepEarlyDtls off, p95', percentile(nospare.answerToFrameOff, 95))
      ]
    }
    return [
      ...hop('preview-hop-ring', 'ring → live frame', spare.ringHops),
      ...hop('preview-hop-audio', 'Answer → audio ready', spare.audioHops),
      ...hop('preview-hop-heard', 'Answer → heard', spare.heardHops),
      ...hop('preview-hop-off', 'Answer → frame (preview off)', spare.offHops),
      f('preview-live-frame-p50', 'ring → first live frame in the banner (preview), p50', percentile(spare.ringToLive, 50)),
      f('preview-live-frame-p95', 'ring → first live frame in the banner (preview), p95', percentile(spare.ringToLive, 95), { op: '<=', value: 600 }),
      // The issue's target is on the two-way figure below: call-taken alone says the doorbell takes the page's audio, not that its own reached the page.
      f('preview-answer-audio-p50', 'Answer → call-taken (preview: the doorbell takes the page\'s audio), p50', percentile(spare.answerToAudio, 50)),
      f('preview-answer-audio-p95', 'Answer → call-taken (preview: the doorbell takes the page\'s audio), p95', percentile(spare.answerToAudio, 95)),
      f('preview-answer-first-audio-p50', 'Answer → the doorbell\'s first audio packet in the page (preview), p50', percentile(spare.answerToFirstAudio, 50)),
      f('preview-answer-two-way-p50', 'Answer → two-way audio open (preview: call-taken and the doorbell\'s first audio packet in the page, the later), p50', percentile(spare.answerToTwoWay, 50)),
      f('preview-answer-two-way-p95', 'Answer → two-way audio open (preview: call-taken and the doorbell\'s first audio packet in the page, the later), p95', percentile(spare.answerToTwoWay, 95), { op: '<=', value: 50 }),
      f('preview-answer-heard-p50', 'Answer → the doorbell\'s tone heard on the page (preview; adds the page\'s jitter buffer), p50', percentile(spare.answerToHeard, 50)),
      f('preview-answer-heard-p95', 'Answer → the doorbell\'s tone heard on the page (preview; adds the page\'s jitter buffer), p95', percentile(spare.answerToHeard, 95)),
      f('preview-off-answer-frame-p50', 'Answer → first decoded frame (preview off), p50', percentile(spare.answerToFrameOff, 50), { op: '<=', value: 200 }),
      f('preview-off-answer-frame-p95', 'Answer → first decoded frame (preview off), p95', percentile(spare.answerToFrameOff, 95)),
      f('preview-live-frame-nospare-p50', 'ring → first live frame in the banner (preview), gathered at the ring (?spare=off), p50', percentile(nospare.ringToLive, 50)),
      f('preview-live-frame-nospare-p95', 'ring → first live frame in the banner (preview), gathered at the ring (?spare=off), p95', percentile(nospare.ringToLive, 95)),
      f('preview-answer-audio-nospare-p50', 'Answer → call-taken (preview), ?spare=off, p50', percentile(nospare.answerToAudio, 50)),
      f('preview-off-answer-frame-nospare-p50', 'Answer → first decoded frame (preview off), gathered at Answer (?spare=off), p50', percentile(nospare.answerToFrameOff, 50)),
      f('preview-off-answer-frame-nospare-p95', 'Answer → first decoded frame (preview off), gathered at Answer (?spare=off), p95', percentile(nospare.answerToFrameOff, 95))
    ]
  } finally {
    await resident.close()
    for (const d of Object.values(devices)) await d.stop()
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}
