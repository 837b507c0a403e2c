import type { ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { createRequire } from 'node:module'
import { CAMERA_NICENESS, type DeviceConfig, type Logger } from '@doorbell/core'
import { ffmpegArgs, parseSourceVideo, passthrough, probeArgs, rpicamArgs } from './ffmpegArgs'
import { cameraProblem, redact } from './problems'
import { GopCache } from './gop'
import { RtpContinuity } from './continuity'
import { backoffDelay } from '@doorbell/machines'
import { spawnChild } from '../children'

export type RtpListener = (packet: Buffer) => void

/** No ffmpeg anywhere: the production install (scripts/install-device.mjs) relies on Debian's. */
export class FfmpegMissingError extends Error {
  override name = 'FfmpegMissingError'
}

const bundledFfmpeg = (): string => (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path

/** The system's ffmpeg if there is one, else the static build that @ffmpeg-installer ships (in a development checkout). */
export function findFfmpeg (configured?: string, path = process.env.PATH ?? '', bundled = bundledFfmpeg): string {
  if (configured) return configured
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir, 'ffmpeg')
    if (dir && existsSync(candidate)) return candidate
  }
  try {
    return bundled()
  } catch (err) {
    throw new FfmpegMissingError(`no ffmpeg on PATH and no @ffmpeg-installer/ffmpeg (${(err as Error).message.split('\n')[0]}): install Debian's (sudo apt install ffmpeg) or set camera.ffmpegPath / audio.ffmpegPath`)
  }
}

/** ffmpeg restarts with the shared backoff: 0.5 s doubling to 10 s, from the start again once packets flow. */
const RESTART_BACKOFF = { firstMs: 500, maxMs: 10_000 }
/** How long an RTSP camera may take to describe its streams. */
const PROBE_TIMEOUT_MS = 10_000

/**
 * One encoder for every viewer: ffmpeg writes RTP to a loopback socket and each packet is
 * handed, as the same raw Buffer, to every listener (one werift track per viewer). It runs
 * from start-up and keeps the last group of pictures (gop.ts), so a viewer who joins gets a
 * keyframe at once instead of at the encoder's next one. It restarts with backoff if
 * ffmpeg dies.
 */
export class Camera {
  private socket: Socket | null = null
  private proc: ChildProcess | null = null
  private helper: ChildProcess | null = null
  /** An RTSP camera being asked what it sends. */
  private prober: ChildProcess | null = null
  private readonly listeners = new Set<RtpListener>()
  private stopped = false
  /** Restarts since packets last flowed: the backoff's exponent. */
  private restarts = 0
  private restartTimer: NodeJS.Timeout | null = null
  private readonly gop: GopCache
  /** Sequence numbers and timestamps that run on when ffmpeg is restarted. */
  private readonly continuity = new RtpContinuity()
  packets = 0

  constructor (private readonly config: DeviceConfig['camera'], private readonly log: Logger) {
    this.gop = new GopCache(config.codec)
  }

  get codec (): 'h264' | 'vp8' { return this.config.codec }

  async start (): Promise<void> {
    const socket = this.socket = createSocket('udp4')
    socket.on('message', (packet) => {
      this.continuity.rewrite(packet)
      this.packets++
      this.restarts = 0
      this.gop.push(packet)
      for (const listener of this.listeners) listener(packet)
    })
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    this.spawnEncoder()
  }

  /**
   * Live packets from now on. With `fromKeyframe`, the cached group of pictures comes
   * first (synchronously, so nothing falls between it and the live packets): call it once
   * the viewer's transport can send, or the replay is dropped.
   */
  subscribe (listener: RtpListener, options: { fromKeyframe?: boolean } = {}): () => void {
    if (options.fromKeyframe) for (const packet of this.gop.replay()) listener(packet)
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /**
   * A recording's packets (a ring's clip): the cached group as it was sent (its own timestamps),
   * then the live packets, each a copy (werift rewrites the shared Buffer in place).
   */
  record (listener: RtpListener): () => void {
    for (const packet of this.gop.group()) listener(packet)
    const copy: RtpListener = (packet) => { listener(Buffer.from(packet)) }
    this.listeners.add(copy)
    return () => { this.listeners.delete(copy) }
  }

  /** The newest whole keyframe (copies), for a snapshot; empty while the camera is down. */
  keyframe (): Buffer[] { return this.gop.keyframe() }

  /** The ffmpeg this camera runs, for one-off decodes (snapshots). */
  get ffmpeg (): string { return findFfmpeg(this.config.ffmpegPath) }

  /** How much nicer than the doorbell the encoder's programs run (`camera.niceness`): video never keeps a command waiting for a CPU. */
  private get niceness (): number { return this.config.niceness ?? CAMERA_NICENESS }

  private spawnEncoder (): void {
    const source = this.config.source
    if (source.kind === 'rtsp') {
      this.probeThenEncode(source.url).catch((err: Error) => { this.restartLater({ why: 'the RTSP camera could not be asked', error: err.message }) })
      return
    }
    this.encode({})
  }

  /**
   * An RTSP camera is asked what it sends first (each time: it may have been reconfigured while
   * it was away), then its H.264 is passed through as it is, or re-encoded where that is needed;
   * the log says which and why.
   */
  private async probeThenEncode (url: string): Promise<void> {
    const bin = findFfmpeg(this.config.ffmpegPath)
    const said = await this.probe(bin, url)
    if (this.stopped) return
    const video = parseSourceVideo(said)
    if (video === null) {
      const lines = this.scrub(said).trim().split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/At least one output file/.test(l))
      const problem = lines.map((l) => cameraProblem(this.config.source, l)).find((p) => p !== null)
      if (problem) this.log.error(`camera: ${problem}`, { ffmpeg: lines.at(-1) ?? '' })
      this.restartLater({ why: 'the RTSP camera did not answer', detail: lines.at(-1) ?? '' })
      return
    }
    const decision = passthrough(this.config.codec, video)
    if (decision.copy) this.log.info('camera: passing the RTSP camera\'s H.264 through, not re-encoding', { why: decision.why })
    else this.log.warn('camera: re-encoding the RTSP camera', { why: decision.why })
    this.encode({ copyRtsp: decision.copy })
  }

  /** What ffmpeg says about the camera's streams (it exits having no output). */
  private async probe (bin: string, url: string): Promise<string> {
    const proc = this.prober = spawnChild(bin, probeArgs(url), { stdio: ['ignore', 'ignore', 'pipe'], deathSignal: 'KILL', niceness: this.niceness, warn: (line) => { this.log.warn(line) } })
    let said = ''
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => { said = (said + d).slice(-8192) })
    const timer = setTimeout(() => { proc.kill('SIGKILL') }, PROBE_TIMEOUT_MS)
    await new Promise<void>((resolve) => { proc.once('close', () => { resolve() }); proc.once('error', (err) => { said += err.message; resolve() }) })
    clearTimeout(timer)
    this.prober = null
    return said
  }

  /** A line from ffmpeg or rpicam-vid; one that names a known problem is logged as an error saying what to do. */
  private said (program: string, raw: string): void {
    const line = this.scrub(raw)
    this.log.warn(program, { line })
    const problem = cameraProblem(this.config.source, line)
    if (problem !== null) this.log.error(`camera: ${problem}`, { [program]: line })
  }

  /** An RTSP camera's password stays out of the log (ffmpeg repeats the URL in its errors). */
  private scrub (text: string): string {
    const source = this.config.source
    return source.kind === 'rtsp' ? text.replaceAll(source.url, redact(source.url)) : text
  }

  /** Another try after the shared backoff. */
  private restartLater (why: Record<string, unknown>): void {
    if (this.stopped) return
    const inMs = backoffDelay(this.restarts++, RESTART_BACKOFF)
    this.log.warn('camera stopped, restarting', { ...why, inMs })
    this.restartTimer = setTimeout(() => { this.restartTimer = null; this.spawnEncoder() }, inMs)
  }

  private encode (o: { copyRtsp?: boolean }): void {
    const port = (this.socket!.address()).port
    const args = ffmpegArgs({ ...this.config, rtpPort: port, ...o })
    const bin = findFfmpeg(this.config.ffmpegPath)
    // spawnChild: the encoder dies with the doorbell, even on a SIGKILL of it (children.ts), and
    // runs `niceness` steps below it, as does rpicam-vid feeding it.
    const warn = (line: string): void => { this.log.warn(line) }
    const niceness = this.niceness
    const proc = this.proc = spawnChild(bin, args, { stdio: ['pipe', 'ignore', 'pipe'], deathSignal: 'KILL', niceness, warn })
    this.log.info('camera starting', { ffmpeg: bin, pid: proc.pid ?? null, niceness, source: this.config.source.kind, codec: this.config.codec })
    this.continuity.restart()
    if (this.config.source.kind === 'picam') {
      const { width, height, fps } = this.config.source
      const helper = this.helper = spawnChild('rpicam-vid', rpicamArgs({ width, height, fps }), { stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'KILL', niceness, warn })
      helper.stdout!.pipe(proc.stdin!)
      proc.stdin!.on('error', () => {}) // ffmpeg gone first: rpicam-vid's next write fails, and it is ended with it
      helper.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.trim()) this.said('rpicam-vid', line.trim())
      })
      helper.on('error', (err) => {
        this.said('rpicam-vid', err.message)
        this.log.error('rpicam-vid failed to start', { error: err.message })
        proc.stdin!.end()
      })
    }
    proc.stderr!.setEncoding('utf8')
    proc.stderr!.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) this.said('ffmpeg', line.trim())
    })
    proc.on('error', (err) => this.log.error('ffmpeg failed to start', { error: err.message }))
    proc.on('exit', (code, sig) => {
      this.proc = null
      // A new encoder starts a new stream: the old group must not be replayed before it.
      this.gop.clear()
      this.helper?.kill('SIGTERM')
      this.helper = null
      this.restartLater({ code, signal: sig })
    })
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.restartTimer) clearTimeout(this.restartTimer)
    this.prober?.kill('SIGKILL')
    const proc = this.proc
    if (proc && proc.exitCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 2000)
      await exited
      clearTimeout(timer)
    }
    this.helper?.kill('SIGTERM')
    this.listeners.clear()
    await new Promise<void>((resolve) => { this.socket ? this.socket.close(() => resolve()) : resolve() })
    this.socket = null
  }
}
