import { createSocket, type Socket } from 'node:dgram'
import type { DeviceConfig, Logger } from '@doorbell/core'
import { findFfmpeg, type RtpListener } from '../camera/camera'
import { AudioDeviceError } from './errors'
import { howToList, microphoneArgs, sourceProbeArgs, type MicrophoneSource } from './ffmpegArgs'
import { askCameraSound, scrubUrl } from './cameraSound'
import { FfmpegProcess, lastLine, runToEnd } from './ffmpegProcess'
import type { HalfDuplexGate } from './halfDuplex'
import { OpusPacer } from './pacer'
import { MicrophoneTiming } from './timing'

/**
 * How long a packet may wait for its slot unless the config says (`audio.pacingMs`): off, until
 * a bench on a quieter machine shows pacing's gain (docs/audio.md: mixed on this one).
 */
export const DEFAULT_PACING_MS = 0

/**
 * The doorbell's microphone: one Opus encode for every viewer, like the camera. ffmpeg writes
 * RTP to a loopback socket; each datagram is handed, as the same raw Buffer, to every listener
 * (one werift track per viewer; werift rewrites headers per sender). Listeners are the
 * connected sessions only: audio leaves the device in a session and nowhere else.
 * Source "none": nothing runs and nobody is ever called. Source "camera": the RTSP camera's sound
 * (`cameraUrl`, the camera's `source.url`), copied when it is Opus, else encoded (cameraSound.ts).
 */
export class Microphone {
  private socket: Socket | null = null
  private encoder: FfmpegProcess | null = null
  private readonly listeners = new Set<RtpListener>()
  private pacer: OpusPacer | null = null
  private timing: MicrophoneTiming | null = null
  private timingTimer: NodeJS.Timeout | null = null
  /** The last packet handed on (past the half-duplex gate and the pacer), and when (performance.now()): two fields, no object per packet. */
  private lastPacket: Buffer | null = null
  private lastAt = 0
  packets = 0

  /**
   * `gate`: half duplex, nothing is sent while the speaker plays (halfDuplex.ts). `cameraUrl`: the
   * RTSP camera's URL, for source "camera" (the config refuses "camera" without one).
   */
  constructor (private readonly config: DeviceConfig['audio'], private readonly log: Logger, private readonly gate: HalfDuplexGate | null = null,
    private readonly cameraUrl: string | null = null) {}

  get enabled (): boolean { return this.config.source.kind !== 'none' }

  /** How many sessions the microphone is sent to now (a preview gets none before Answer; tests check it). */
  get listening (): number { return this.listeners.size }

  /** Rejects with an AudioDeviceError when the capture device is not there (or the camera sends no sound). */
  async start (): Promise<void> {
    const configured = this.config.source
    if (configured.kind === 'none') return
    const bin = findFfmpeg(this.config.ffmpegPath)
    let source: MicrophoneSource
    let copy = false
    let scrub: ((text: string) => string) | undefined
    if (configured.kind === 'camera') {
      if (this.cameraUrl === null) throw new AudioDeviceError('audio.source "camera" is the sound of an RTSP camera: set camera.source to { "kind": "rtsp", "url": … }')
      source = { kind: 'camera', url: this.cameraUrl }
      scrub = scrubUrl(this.cameraUrl)
      copy = (await askCameraSound(bin, this.cameraUrl, this.config.frameMs, this.log)).copy
    } else {
      source = configured
    }
    if (source.kind === 'alsa' || source.kind === 'pulse') {
      const probe = await runToEnd(bin, sourceProbeArgs(source))
      if (probe.code !== 0) {
        const name = source.kind === 'alsa' ? `ALSA capture device "${source.device}"` : `PulseAudio source "${source.device ?? 'default'}"`
        throw new AudioDeviceError(`the microphone cannot be opened: ${name}: ${lastLine(probe.stderr)}; ${howToList(source.kind, 'capture')}, ` +
          'then set audio.source in the config (or "none")')
      }
    }
    const socket = this.socket = createSocket('udp4')
    const timing = this.timing = this.startTiming()
    // Each packet's schedule, from its arrival to its hand-over (the pacer may hold it in between).
    const due = new WeakMap<Buffer, number>()
    const fanOut = (packet: Buffer): void => {
      const startedAt = performance.now()
      this.lastPacket = packet
      this.lastAt = startedAt
      for (const listener of this.listeners) listener(packet)
      const at = due.get(packet)
      if (timing !== null && at !== undefined && this.listeners.size > 0) timing.handed(at, startedAt)
    }
    const holdMs = this.config.pacingMs ?? DEFAULT_PACING_MS
    const pacer = this.pacer = holdMs > 0 ? new OpusPacer({ send: fanOut, holdMs }) : null
    socket.on('message', (packet) => {
      this.packets++
      this.encoder?.healthy()
      if (this.gate !== null && !this.gate.open()) { this.lastPacket = null; return }
      if (timing !== null && this.listeners.size > 0) {
        const at = timing.arrived(packet)
        if (at !== null) due.set(packet, at)
      }
      if (pacer !== null) pacer.push(packet)
      else fanOut(packet)
    })
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    const rtpPort = socket.address().port
    this.log.info('microphone starting', { ffmpeg: bin, source: source.kind, encode: copy ? 'copy' : 'opus', pacingMs: holdMs, frameMs: this.config.frameMs ?? 20 })
    const args = (): string[] => microphoneArgs({ source, bitrateKbps: this.config.bitrateKbps, rtpPort, copy, ...(this.config.frameMs !== undefined ? { frameMs: this.config.frameMs } : {}) })
    this.encoder = new FfmpegProcess({ bin, args, what: 'microphone', log: this.log, ...(scrub ? { scrub } : {}) })
    this.encoder.start()
  }

  /**
   * Live Opus RTP from now on, until the returned function is called. `fromLast`: the frame that
   * was handed on last goes to the listener at once, if it is still the current one (younger than
   * a frame and a half), so a session that opens its audio (a call connected, a preview answered)
   * hears the doorbell now and not with the encoder's next frame, up to a frame later. Never an
   * older frame, and never one the half-duplex gate held back.
   */
  subscribe (listener: RtpListener, o: { fromLast?: boolean } = {}): () => void {
    if (!this.enabled) return () => {}
    this.listeners.add(listener)
    const last = this.lastPacket
    if (o.fromLast === true && last !== null && performance.now() - this.lastAt <= 1.5 * (this.config.frameMs ?? 20)) listener(last)
    return () => { this.listeners.delete(listener) }
  }

  /** `audio.timingLogSeconds`: the packets' lateness and the loop's delay, logged each period (only while someone listens). */
  private startTiming (): MicrophoneTiming | null {
    const seconds = this.config.timingLogSeconds
    if (seconds === undefined) return null
    const timing = new MicrophoneTiming((o) => { this.log.info('microphone onset', { ...o }) })
    this.timingTimer = setInterval(() => {
      const report = timing.report()
      if (report.packets > 0) this.log.info('microphone timing', { ...report })
    }, seconds * 1000)
    this.timingTimer.unref()
    return timing
  }

  /** What the pacer saw (null: pacing off): how many packets came later than their slot. */
  get pacing (): OpusPacer['stats'] | null { return this.pacer?.stats ?? null }

  async stop (): Promise<void> {
    await this.encoder?.stop()
    if (this.pacer !== null) this.log.info('microphone pacing', { ...this.pacer.stats })
    this.pacer?.stop()
    if (this.timingTimer !== null) clearInterval(this.timingTimer)
    this.timing?.stop()
    this.listeners.clear()
    this.lastPacket = null
    await new Promise<void>((resolve) => { this.socket ? this.socket.close(() => resolve()) : resolve() })
    this.socket = null
  }
}
