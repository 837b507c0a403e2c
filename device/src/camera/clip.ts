import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import {
  CLIP_PART_BYTES, CLIP_SECONDS, ClipMessage, MAX_CLIP_BYTES, describeError,
  type ClipContainer, type ClipPart, type Logger
} from '@doorbell/core'
import { h264AnnexB, vp8Ivf } from './snapshot'
import { isKeyframePacket } from './gop'

/**
 * The ring's clip (docs/history.md, "The clip"): when the owner turned clips on for this doorbell,
 * the first `seconds` after the press are cut from the video the camera already sends: its cached
 * group of pictures (from the keyframe before the press) and the live RTP after it, unpacked (H.264
 * to Annex B, VP8 to IVF with its RTP times) and remuxed by ffmpeg with `-c copy` into MP4 (H.264)
 * or WebM (VP8). No second encode. The file goes to the hub in parts (`ClipPart`); a clip that
 * cannot be made goes as `clip-failed` with the reason. The ring never waits for any of this.
 */

export class ClipError extends Error {
  override readonly name = 'ClipError'
}

export interface RingClipsOptions {
  deviceId: string
  camera: { codec: 'h264' | 'vp8', ffmpeg: string, record: (listener: (packet: Buffer) => void) => () => void }
  /** Where the remuxed file is written for a moment (`dataDir/clips`; emptied at start). */
  dir: string
  /** The owner's setting, read at each ring. */
  enabled: () => boolean
  seconds?: number
  /** Sends one message to the hub; resolves once the hub has it (PUBACK), rejects when it cannot. */
  send: (message: ClipMessage) => Promise<void>
  /** Whether the hub is reachable now; a clip made while it is not goes to `keep` instead. */
  connected?: () => boolean
  /**
   * The doorbell's copy of a clip the hub could not take (unreachable at the clip's end, or the
   * link lost on the way): handed over with the kept ring when the hub is back (clipKeep.ts).
   * Absent: a clip that cannot be sent is lost, as before.
   */
  keep?: (ringId: string, clip: Clip) => void
  log: Logger
  maxBytes?: number
}

export interface Clip { container: ClipContainer, seconds: number, bytes: Buffer }

export class RingClips {
  private readonly recording = new Map<string, () => void>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private stopped = false
  readonly seconds: number

  constructor (private readonly o: RingClipsOptions) {
    this.seconds = Math.min(CLIP_SECONDS.max, Math.max(CLIP_SECONDS.min, o.seconds ?? CLIP_SECONDS.default))
    mkdirSync(o.dir, { recursive: true, mode: 0o700 })
    // A file left by a run that died mid-clip is of no use to anyone.
    for (const name of readdirSync(o.dir)) rmSync(join(o.dir, name), { force: true })
  }

  /** Called after each ring has gone out: records its clip when the owner wants one (once per ring). */
  afterRing (ringId: string): void {
    if (this.stopped || !this.o.enabled() || this.recording.has(ringId)) return
    void this.recordAndSend(ringId)
  }

  /**
   * Records, remuxes and sends one ring's clip, or why there is none; never throws. A clip the hub
   * cannot take now (unreachable, or the link lost on the way) is kept for it ('kept').
   */
  async recordAndSend (ringId: string): Promise<'sent' | 'kept' | 'failed' | 'stopped'> {
    let clip: Clip
    try {
      const started = performance.now()
      clip = await this.record(ringId)
      if (this.stopped) return 'stopped'
      this.o.log.info('clip recorded', { ringId, container: clip.container, seconds: Math.round(clip.seconds * 10) / 10, bytes: clip.bytes.length, ms: Math.round(performance.now() - started) })
    } catch (err) {
      if (this.stopped) return 'stopped'
      return await this.failed(ringId, err)
    }
    const keep = this.o.keep
    if (keep && this.o.connected?.() === false) { keep(ringId, clip); return 'kept' }
    try {
      for (const p of clipParts(this.o.deviceId, ringId, clip)) {
        await this.o.send(p)
        if (this.stopped) return 'stopped'
      }
      return 'sent'
    } catch (err) {
      if (this.stopped) return 'stopped'
      if (keep) {
        this.o.log.warn('the hub did not take the clip: it is kept for when the hub is back', { ringId, error: describeError(err) })
        keep(ringId, clip)
        return 'kept'
      }
      return await this.failed(ringId, err)
    }
  }

  /** Tells the hub why this ring has no clip (the event then says so). */
  private async failed (ringId: string, err: unknown): Promise<'failed'> {
    const reason = describeError(err).slice(0, 200)
    this.o.log.warn('no clip for this ring', { ringId, reason })
    try { await this.o.send(ClipMessage.parse({ type: 'clip-failed', deviceId: this.o.deviceId, ringId, reason })) } catch (e) { this.o.log.warn('could not tell the hub why there is no clip', { ringId, error: describeError(e) }) }
    return 'failed'
  }

  /** The clip of the next `seconds` (from the keyframe before now), remuxed. */
  async record (ringId: string): Promise<Clip> {
    const packets: Buffer[] = []
    let bytes = 0
    let full = false
    const max = this.o.maxBytes ?? MAX_CLIP_BYTES
    await new Promise<void>((resolve) => {
      let stop = (): void => {}
      const done = (): void => {
        clearTimeout(timer)
        this.timers.delete(timer)
        stop()
        this.recording.delete(ringId)
        resolve()
      }
      const timer = setTimeout(done, this.seconds * 1000)
      this.timers.add(timer)
      this.recording.set(ringId, done)
      stop = this.o.camera.record((packet) => {
        if (full) return
        // Most of the bound for the packets: the remuxed file adds its own boxes, and must fit too.
        if (bytes + packet.length > max * 0.9) { full = true; this.o.log.warn('the clip reached its size bound: it ends early', { ringId, bytes }); return }
        packets.push(packet)
        bytes += packet.length
      })
    })
    if (this.stopped) throw new ClipError('the doorbell is stopping')
    return await this.remux(ringId, packets)
  }

  private async remux (ringId: string, packets: Buffer[]): Promise<Clip> {
    const codec = this.o.camera.codec
    const start = packets.findIndex((p) => isKeyframePacket(codec, p))
    if (start === -1) throw new ClipError('the camera sent no picture to record (is it running?)')
    // From the first keyframe on: a frame before it cannot be decoded.
    const from = packets.slice(start)
    const first = from[0]!.readUInt32BE(4)
    const last = from[from.length - 1]!.readUInt32BE(4)
    const frames = new Set(from.map((p) => p.readUInt32BE(4))).size
    const span = ((last - first) >>> 0) / 90_000
    // A frame's own duration after the last one's start; the RTP times say how fast the camera ran.
    const fps = frames > 1 && span > 0 ? (frames - 1) / span : 30
    const seconds = span + 1 / fps
    const container: ClipContainer = codec === 'h264' ? 'mp4' : 'webm'
    const input = codec === 'h264' ? h264AnnexB(from) : vp8Ivf(from, 640, 480, true)
    const file = join(this.o.dir, `${ringId}.${container}`)
    const args = codec === 'h264'
      ? ['-f', 'h264', '-framerate', fps.toFixed(3), '-i', 'pipe:0', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4']
      : ['-f', 'ivf', '-i', 'pipe:0', '-c', 'copy', '-f', 'webm']
    try {
      await runFfmpeg(this.o.camera.ffmpeg, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-fflags', '+genpts', ...args, '-y', file], input)
      const out = readFileSync(file)
      if (out.length === 0) throw new ClipError('ffmpeg wrote an empty clip')
      if (out.length > MAX_CLIP_BYTES) throw new ClipError(`the clip is ${out.length} bytes (at most ${MAX_CLIP_BYTES})`)
      return { container, seconds, bytes: out }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC' || /No space left/i.test(describeError(err))) throw new ClipError('the doorbell\'s disk is full: no clip')
      throw err
    } finally {
      rmSync(file, { force: true })
    }
  }

  stop (): void {
    this.stopped = true
    for (const done of [...this.recording.values()]) done()
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }
}

/** A clip as the hub takes it: its parts on `…/clip`, each with the whole clip's size and SHA-256. */
export function clipParts (deviceId: string, ringId: string, clip: Clip): ClipPart[] {
  const sha256 = createHash('sha256').update(clip.bytes).digest('hex')
  const parts = Math.ceil(clip.bytes.length / CLIP_PART_BYTES)
  return Array.from({ length: parts }, (_, part) => ({
    type: 'clip' as const,
    deviceId,
    ringId,
    container: clip.container,
    seconds: Math.round(clip.seconds * 1000) / 1000,
    bytes: clip.bytes.length,
    sha256,
    part,
    parts,
    data: clip.bytes.subarray(part * CLIP_PART_BYTES, (part + 1) * CLIP_PART_BYTES).toString('base64')
  }))
}

async function runFfmpeg (bin: string, args: string[], input: Buffer): Promise<void> {
  const proc = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] })
  let said = ''
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { said = (said + d).slice(-2000) })
  proc.stdin.on('error', () => {}) // ffmpeg gone early: its exit says why
  proc.stdin.end(input)
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('close', resolve)
  }).catch((err: Error) => { throw new ClipError(`ffmpeg could not run: ${err.message}`) })
  if (code !== 0) {
    const line = said.trim().split('\n').at(-1) ?? ''
    if (/No space left/i.test(said)) throw new ClipError('the doorbell\'s disk is full: no clip')
    throw new ClipError(`ffmpeg could not make the clip (exit ${code}): ${line}`)
  }
}
