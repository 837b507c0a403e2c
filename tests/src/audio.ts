import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import type { Page } from 'playwright-core'
import { waitForText } from './browser'
import { eventually } from './harness'

/**
 * A WAV for Chromium's fake microphone: a sine, then a second of silence (FIELD-NOTES: the end
 * of a file otherwise repeats as a buzz). 16-bit PCM, 48 kHz, mono.
 */
export function toneWav (path: string, frequencyHz: number, seconds: number): void {
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `sine=frequency=${frequencyHz}:sample_rate=48000:duration=${seconds}`,
    '-f', 'lavfi', '-i', 'anullsrc=r=48000:cl=mono:d=1',
    '-filter_complex', '[0:a][1:a]concat=n=2:v=0:a=1', '-ac', '1', '-c:a', 'pcm_s16le', path
  ])
}

/** The first channel of a 16-bit PCM WAV file, and its sample rate. */
export function readWav (path: string): { samples: Float64Array, rate: number } {
  const file = readFileSync(path)
  if (file.toString('latin1', 0, 4) !== 'RIFF' || file.toString('latin1', 8, 12) !== 'WAVE') throw new Error(`${path} is not a WAV file`)
  let at = 12
  let rate = 0
  let channels = 1
  while (at + 8 <= file.length) {
    const id = file.toString('latin1', at, at + 4)
    const size = file.readUInt32LE(at + 4)
    if (id === 'fmt ') {
      if (file.readUInt16LE(at + 8) !== 1 || file.readUInt16LE(at + 22) !== 16) throw new Error('not 16-bit PCM')
      channels = file.readUInt16LE(at + 10)
      rate = file.readUInt32LE(at + 12)
    }
    if (id === 'data') {
      const end = Math.min(file.length, at + 8 + size)
      const frames = Math.floor((end - at - 8) / (2 * channels))
      const samples = new Float64Array(frames)
      for (let i = 0; i < frames; i++) samples[i] = file.readInt16LE(at + 8 + i * 2 * channels) / 32768
      return { samples, rate }
    }
    at += 8 + size + (size & 1)
  }
  throw new Error(`${path} has no data chunk`)
}

/** In-place radix-2 FFT (re, im of a power-of-two length). */
function fft (re: Float64Array, im: Float64Array): void {
  const n = re.length
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1
    for (; j & bit; bit >>= 1) j ^= bit
    j ^= bit
    if (i < j) { [re[i], re[j]] = [re[j]!, re[i]!]; [im[i], im[j]] = [im[j]!, im[i]!] }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = -2 * Math.PI / len
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(angle * k)
        const wi = Math.sin(angle * k)
        const a = i + k
        const b = a + len / 2
        const tr = re[b]! * wr - im[b]! * wi
        const ti = re[b]! * wi + im[b]! * wr
        re[b] = re[a]! - tr; im[b] = im[a]! - ti
        re[a] = re[a]! + tr; im[a] = im[a]! + ti
      }
    }
  }
}

/**
 * The strongest frequency in the loudest 16384-sample window (Hann-windowed FFT, the peak
 * refined by parabolic interpolation), and how loud the window is (RMS).
 */
export function dominantFrequency (samples: Float64Array, rate: number, size = 16384): { hz: number, rms: number } {
  if (samples.length < size) throw new Error(`only ${samples.length} samples: too short to tell a frequency`)
  let best = 0
  let bestRms = -1
  for (let start = 0; start + size <= samples.length; start += size / 2) {
    let sum = 0
    for (let i = start; i < start + size; i++) sum += samples[i]! ** 2
    if (sum > bestRms) { bestRms = sum; best = start }
  }
  const re = new Float64Array(size)
  const im = new Float64Array(size)
  for (let i = 0; i < size; i++) re[i] = samples[best + i]! * (0.5 - 0.5 * Math.cos(2 * Math.PI * i / (size - 1)))
  fft(re, im)
  let peak = 1
  const mag = (k: number): number => Math.hypot(re[k]!, im[k]!)
  for (let k = 2; k < size / 2; k++) if (mag(k) > mag(peak)) peak = k
  const [a, b, c] = [mag(peak - 1), mag(peak), mag(peak + 1)]
  const shift = (a - c) / (2 * (a - 2 * b + c) || 1)
  return { hz: (peak + shift) * rate / size, rms: Math.sqrt(bestRms / size) }
}

/**
 * The frequency of the loudest tone the page hears from the call's <audio> element, by a
 * WebAudio AnalyserNode on its stream (the element must be attached: FIELD-NOTES), once it is
 * above -70 dB; polled for up to `timeoutMs`.
 */
export async function pageToneFrequency (page: Page, timeoutMs = 15_000): Promise<number> {
  // No named inner functions: tsx would wrap them in a helper the page does not have.
  return await page.evaluate(async (timeout) => {
    const deadline = performance.now() + timeout
    let el: HTMLAudioElement | null = null
    while (!(el = document.querySelector('[data-testid=call-audio]'))?.srcObject || (el.srcObject as MediaStream).getAudioTracks().length === 0) {
      if (performance.now() > deadline) throw new Error('the call has no audio track')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const context = new AudioContext()
    await context.resume()
    const analyser = context.createAnalyser()
    analyser.fftSize = 16384
    analyser.smoothingTimeConstant = 0
    context.createMediaStreamSource(el.srcObject as MediaStream).connect(analyser)
    const bins = new Float32Array(analyser.frequencyBinCount)
    try {
      while (performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200))
        analyser.getFloatFrequencyData(bins)
        let peak = 1
        for (let k = 2; k < bins.length; k++) if (bins[k]! > bins[peak]!) peak = k
        if (bins[peak]! > -70) return peak * context.sampleRate / analyser.fftSize
      }
      throw new Error('the page heard nothing above -70 dB')
    } finally {
      await context.close()
    }
  }, timeoutMs)
}

/** What the resident says (Chromium's fake microphone) and what the doorbell's microphone hears: two tones a test can tell apart. */
export const RESIDENT_HZ = 440
export const DOORBELL_HZ = 660
/** An FFT bin at 48 kHz / 16384 is 2.9 Hz; Opus and the analyser keep a tone within a few. */
export const near = (hz: number, target: number): boolean => Math.abs(hz - target) < 8

/** How many packets of a resident's voice the doorbell's speaker has played (`device.audio.speaker.packets`). */
export type SpeakerPackets = () => number

/**
 * The two-way tone check of one answered call, whatever path carries it: the page hears the
 * doorbell's test tone; nothing reaches the speaker before Talk; with Talk on the resident's
 * microphone reaches the speaker; with Talk off nothing more does. Returns what the page heard.
 */
export async function talkBothWays (page: Page, packets: SpeakerPackets, o: { heardBy?: RegExp } = {}): Promise<number> {
  // The doorbell's microphone reaches the page: its tone, found by an analyser on the received track.
  const heard = await pageToneFrequency(page)
  assert.ok(near(heard, DOORBELL_HZ), `the page hears ${heard.toFixed(1)} Hz from the doorbell (its microphone is ${DOORBELL_HZ} Hz)`)

  // Not talking yet: the audio line is up, and nothing reaches the speaker.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.equal(packets(), 0, 'no sound from a resident who has not pressed Talk')

  // Talk: the microphone is asked for now (granted), swapped in, and the doorbell plays it.
  await page.getByTestId('talk-toggle').click()
  await waitForText(page, 'talk-status', o.heardBy ?? /Front door hears you/)
  assert.equal(await page.getByTestId('talk-toggle').getAttribute('aria-pressed'), 'true')
  await eventually('the resident\'s voice at the doorbell\'s speaker', () => packets() >= 150, 15_000)
  // Stop talking: nothing more is sent.
  await page.getByTestId('talk-toggle').click()
  await waitForText(page, 'talk-toggle', /^Talk$/)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const afterStop = packets()
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.ok(packets() - afterStop <= 2, 'talk off sends nothing')
  return heard
}

/**
 * The speaker's WAV (written when the doorbell stops) holds at least two seconds of the
 * resident's tone: the check's second half, once the doorbell has stopped.
 */
export function speakerPlayedTone (path: string, hz = RESIDENT_HZ): { hz: number, rms: number, seconds: number } {
  assert.ok(existsSync(path), 'the speaker wrote its WAV')
  const { samples, rate } = readWav(path)
  assert.equal(rate, 48000)
  assert.ok(samples.length > rate * 2, `at least two seconds were played (${(samples.length / rate).toFixed(2)} s)`)
  const tone = dominantFrequency(samples, rate)
  assert.ok(tone.rms > 0.005, `the speaker's sound is not silence (RMS ${tone.rms.toFixed(4)})`)
  assert.ok(near(tone.hz, hz), `the doorbell's speaker played ${tone.hz.toFixed(1)} Hz (the resident's microphone plays ${hz} Hz)`)
  return { ...tone, seconds: samples.length / rate }
}

/**
 * Is this speech (a quick reply by espeak-ng), not silence and not a tone? The loudest window's
 * RMS; how long the sound lasts (20 ms frames above -40 dBFS); the share of the window's energy
 * in the voice band (100-4000 Hz); and the share of that in its strongest 5 % of bins, which a
 * pure tone fills almost alone while a voice spreads over its harmonics and formants.
 */
export function speechOf (samples: Float64Array, rate: number, size = 16384): { rms: number, voicedMs: number, voiceBand: number, peakShare: number } {
  if (samples.length < size) throw new Error(`only ${samples.length} samples: too short to analyse`)
  const frame = Math.round(rate / 50)
  let voiced = 0
  for (let at = 0; at + frame <= samples.length; at += frame) {
    let sum = 0
    for (let i = at; i < at + frame; i++) sum += samples[i]! ** 2
    if (Math.sqrt(sum / frame) > 0.01) voiced++
  }
  let best = 0
  let bestSum = -1
  for (let start = 0; start + size <= samples.length; start += size / 4) {
    let sum = 0
    for (let i = start; i < start + size; i++) sum += samples[i]! ** 2
    if (sum > bestSum) { bestSum = sum; best = start }
  }
  const re = new Float64Array(size)
  const im = new Float64Array(size)
  for (let i = 0; i < size; i++) re[i] = samples[best + i]! * (0.5 - 0.5 * Math.cos(2 * Math.PI * i / (size - 1)))
  fft(re, im)
  const power = Array.from({ length: size / 2 }, (_, k) => re[k]! ** 2 + im[k]! ** 2)
  const total = power.reduce((a, b) => a + b, 0) || 1
  const lo = Math.ceil(100 * size / rate)
  const hi = Math.floor(4000 * size / rate)
  const band = power.slice(lo, hi + 1)
  const bandSum = band.reduce((a, b) => a + b, 0) || 1
  const top = [...band].sort((a, b) => b - a).slice(0, Math.ceil(band.length * 0.05)).reduce((a, b) => a + b, 0)
  return { rms: Math.sqrt(bestSum / size), voicedMs: voiced * 20, voiceBand: bandSum / total, peakShare: top / bandSum }
}
