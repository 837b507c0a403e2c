/**
 * The doorbell's microphone as a marker the talk bench can switch: the device's own ffmpeg
 * encode (Opus, RTP to the device, fanned out by werift) with its input, the generated test
 * tone, replaced by raw PCM the bench writes into a FIFO in real time, as ALSA would deliver a
 * microphone's periods. The device is given a wrapper as `audio.ffmpegPath`: it runs the real
 * ffmpeg with every argument as the device wrote it, but for that one input; the speaker's
 * decode goes through it unchanged.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, closeSync, constants, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { epochNow } from './proc'

const RATE = 48_000
/** One write: 10 ms, as an ALSA period of a USB microphone might be (short enough for 10 ms Opus frames not to come in pairs). */
const FRAME = 480

export class MicrophonePipe {
  readonly fifo: string
  readonly ffmpeg: string
  private fd: number | null = null
  private timer: NodeJS.Timeout | null = null
  private started = 0
  private written = 0
  private tone = false
  /** When the first tone samples were written (epoch ms), per `toneOn`. */
  private onsetAt: number | null = null

  constructor (dir: string, private readonly hz: number) {
    this.fifo = join(dir, 'microphone.fifo')
    execFileSync('mkfifo', [this.fifo])
    this.ffmpeg = join(dir, 'ffmpeg')
    // Only the test tone's three arguments (-re, -f lavfi, -i sine=…) change; anything else is passed as it is.
    writeFileSync(this.ffmpeg, `#!/usr/bin/env bash
if [[ "$*" != *"sine=frequency="* ]]; then exec ffmpeg "$@"; fi
args=()
while (($#)); do
  case "$1" in
    -re) shift ;;
    -f) if [[ "$2" == lavfi ]]; then shift 2; else args+=("$1"); shift; fi ;;
    -i) if [[ "$2" == sine=* ]]; then args+=(-f s16le -ar ${RATE} -ac 1 -probesize 32 -analyzeduration 0 -i '${this.fifo}'); else args+=("$1" "$2"); fi; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
exec ffmpeg "\${args[@]}"
`)
    chmodSync(this.ffmpeg, 0o755)
  }

  /**
   * Writes silence (or the tone) in real time while ffmpeg reads: the pipe is opened for
   * writing only once it has a reader (so nothing stale waits in it), and again after a restart.
   */
  start (): void {
    this.timer = setInterval(() => { this.pump() }, 5)
  }

  private pump (): void {
    if (this.fd === null) {
      try { this.fd = openSync(this.fifo, constants.O_WRONLY | constants.O_NONBLOCK) } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENXIO') return // no reader yet
        throw err
      }
      this.started = epochNow()
      this.written = 0
    }
    const due = Math.floor((epochNow() - this.started) * RATE / 1000)
    while (this.written + FRAME <= due) {
      const buf = Buffer.alloc(FRAME * 2)
      const tone = this.tone
      if (tone) for (let i = 0; i < FRAME; i++) buf.writeInt16LE(Math.round(0.25 * 32767 * Math.sin(2 * Math.PI * this.hz * (this.written + i) / RATE)), i * 2)
      this.written += FRAME
      try { writeSync(this.fd, buf) } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EPIPE') { closeSync(this.fd); this.fd = null; return } // ffmpeg went: wait for the next one
        if (code === 'EAGAIN') continue // ffmpeg is behind: the frame is dropped, as a microphone overrun drops it
        throw err
      }
      if (tone && this.onsetAt === null) this.onsetAt = epochNow()
    }
  }

  /** From the next frame on, the tone; resolves with when its first samples went into the pipe. */
  async toneOn (): Promise<number> {
    this.onsetAt = null
    this.tone = true
    const deadline = Date.now() + 2000
    while (this.onsetAt === null) {
      if (Date.now() > deadline) throw new Error('the microphone pipe wrote nothing for 2 s')
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    return this.onsetAt
  }

  toneOff (): void { this.tone = false }

  close (): void {
    if (this.timer) clearInterval(this.timer)
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
  }
}

/**
 * In the page: an analyser on the call's received audio (what the <audio> element plays),
 * watched every 2 ms. `quiet` waits until it has heard nothing for `ms`; `onset` resolves
 * with the first time (page epoch ms) a 512-sample window is above RMS 0.01.
 * No named inner functions: tsx would wrap them in a helper the page lacks.
 */
export async function installPageEar (page: Page): Promise<void> {
  await page.evaluate(`(async () => {
    const el = document.querySelector('[data-testid=call-audio]')
    if (!el || !el.srcObject) throw new Error('the call has no audio element with a stream')
    const context = new AudioContext({ latencyHint: 'interactive' })
    await context.resume()
    const analyser = context.createAnalyser()
    analyser.fftSize = 512
    context.createMediaStreamSource(el.srcObject).connect(analyser)
    const data = new Float32Array(analyser.fftSize)
    const ear = { loudAt: [], context }
    setInterval(() => {
      analyser.getFloatTimeDomainData(data)
      let sum = 0
      for (let i = 0; i < data.length; i++) sum += data[i] * data[i]
      if (Math.sqrt(sum / data.length) > 0.01) ear.loudAt.push(performance.timeOrigin + performance.now())
      if (ear.loudAt.length > 2000) ear.loudAt.splice(0, 1000)
    }, 2)
    window.__talkEar = ear
  })()`)
}

/** Until the page has heard nothing for `ms` (bounded by `timeoutMs`). */
export async function pageQuiet (page: Page, ms: number, timeoutMs: number): Promise<void> {
  await page.evaluate(`(async () => {
    const deadline = performance.now() + ${timeoutMs}
    while (performance.now() < deadline) {
      const last = window.__talkEar.loudAt.at(-1) ?? 0
      if (performance.timeOrigin + performance.now() - last >= ${ms}) return
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error('the page did not go quiet for ${ms} ms')
  })()`)
}

/** The first time (page epoch ms) the page heard sound after `after` (page epoch ms). */
export async function pageOnset (page: Page, after: number, timeoutMs: number): Promise<number> {
  return await page.evaluate(`(async () => {
    const deadline = performance.now() + ${timeoutMs}
    while (performance.now() < deadline) {
      const hit = window.__talkEar.loudAt.find((t) => t >= ${after})
      if (hit !== undefined) return hit
      await new Promise((r) => setTimeout(r, 5))
    }
    throw new Error('the page heard nothing within ${timeoutMs} ms')
  })()`) as number
}
