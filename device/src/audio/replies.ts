import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '@doorbell/core'
import type { QuickReplyPlayer } from '../answering/talk'
import { OPUS_PAYLOAD_TYPE } from './ffmpegArgs'
import { lastLine, runToEnd } from './ffmpegProcess'
import { opusPackets } from './oggOpus'

/** One Opus packet is 20 ms of sound (the render asks ffmpeg for 20 ms frames). */
const FRAME_MS = 20
const SAMPLES_PER_FRAME = 960
/** Rendering one reply: espeak-ng, then ffmpeg; far longer than either takes. */
const RENDER_TIMEOUT_MS = 20_000

/** Where each packet of a playing reply goes (the Speaker's `play`, keyed by source). */
export interface ReplySink {
  play: (from: string, packet: Uint8Array) => void
  readonly enabled: boolean
}

export interface QuickRepliesOptions {
  /** The cache: one Ogg Opus file per reply text and voice. */
  dir: string
  ffmpeg: string
  /** espeak-ng's binary; default: on the PATH. */
  espeak?: string
  voice?: string
  speaker: ReplySink
  log: Logger
}

/**
 * The doorbell's quick replies: each reply of the owner's list rendered once, when the list
 * changes, by espeak-ng and ffmpeg into Ogg Opus in a cache folder (a text said before is not
 * rendered again), and played on a signed command as 20 ms RTP packets into the speaker's
 * decoder, paced like a talker. Without espeak-ng the replies are off: one warning at start,
 * and `has` says no to every reply (the command is refused with no-reply).
 */
export class QuickReplies implements QuickReplyPlayer {
  private readonly rendered = new Map<string, Uint8Array[]>()
  private espeak: string | null = null
  private rendering: Promise<void> = Promise.resolve()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  /** Each reply playing now, by its end: `stop` ends them all, so each one's lease is released. */
  private readonly playing = new Set<() => void>()
  private readonly voice: string

  constructor (private readonly o: QuickRepliesOptions) {
    this.voice = o.voice ?? 'en'
  }

  /** Finds espeak-ng; missing, it warns and the replies stay off (never throws). */
  async start (): Promise<void> {
    const bin = this.o.espeak ?? 'espeak-ng'
    const probe = await runToEnd(bin, ['--version'])
    if (probe.code !== 0) {
      this.o.log.warn(`quick replies are off: espeak-ng cannot be run (${lastLine(probe.stderr)}); install it (apt-get install espeak-ng) or set audio.espeakPath`)
      return
    }
    if (!this.o.speaker.enabled) { this.o.log.warn('quick replies are off: the doorbell has no speaker'); return }
    mkdirSync(this.o.dir, { recursive: true, mode: 0o700 })
    this.espeak = bin
  }

  get enabled (): boolean { return this.espeak !== null }

  /** The replies now rendered (in the list's order). */
  texts (): string[] { return [...this.rendered.keys()] }

  has (text: string): boolean { return this.rendered.has(text) }

  /**
   * The owner's list changed: render the new replies, forget the removed ones (their cache
   * files too). Lists are taken one after another; a reply that fails to render is logged
   * and left out. Resolves when this list is ready.
   */
  async use (list: readonly string[]): Promise<void> {
    const next = this.rendering.then(async () => { await this.render(list) })
    this.rendering = next.catch(() => {})
    await next
  }

  private async render (list: readonly string[]): Promise<void> {
    const espeak = this.espeak
    if (espeak === null) return
    const keep = new Map<string, Uint8Array[]>()
    const files = new Set<string>()
    for (const text of list) {
      const file = join(this.o.dir, `${this.keyOf(text)}.opus`)
      files.add(file)
      try {
        let packets = this.rendered.get(text) ?? null
        if (packets === null) {
          try { packets = opusPackets(readFileSync(file)) } catch { packets = await this.renderOne(espeak, text, file) }
        }
        keep.set(text, packets)
      } catch (err) {
        this.o.log.error('could not render a quick reply', { reply: text, error: (err as Error).message })
      }
    }
    this.rendered.clear()
    for (const [text, packets] of keep) this.rendered.set(text, packets)
    // The cache holds what the list says, nothing the owner removed.
    for (const name of readdirSync(this.o.dir)) {
      const path = join(this.o.dir, name)
      if (!files.has(path)) rmSync(path, { force: true })
    }
    this.o.log.info('quick replies ready', { count: this.rendered.size })
  }

  private keyOf (text: string): string {
    return createHash('sha256').update(`${this.voice}\n${text}`).digest('hex').slice(0, 32)
  }

  private async renderOne (espeak: string, text: string, file: string): Promise<Uint8Array[]> {
    const tmp = join(this.o.dir, `.render-${randomBytes(6).toString('hex')}`)
    try {
      // The text goes in a file, never on the command line: a reply starting with "-" is said, not taken as an option.
      writeFileSync(`${tmp}.txt`, text)
      const said = await runToEnd(espeak, ['-v', this.voice, '-w', `${tmp}.wav`, '-f', `${tmp}.txt`], RENDER_TIMEOUT_MS)
      if (said.code !== 0) throw new Error(`espeak-ng: ${lastLine(said.stderr)}`)
      const encoded = await runToEnd(this.o.ffmpeg, [
        '-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', `${tmp}.wav`,
        '-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-application', 'voip', '-frame_duration', String(FRAME_MS), '-b:a', '32k', '-f', 'ogg', `${tmp}.ogg`
      ], RENDER_TIMEOUT_MS)
      if (encoded.code !== 0) throw new Error(`ffmpeg: ${lastLine(encoded.stderr)}`)
      const packets = opusPackets(readFileSync(`${tmp}.ogg`))
      if (packets.length === 0) throw new Error('espeak-ng said nothing')
      renameSync(`${tmp}.ogg`, file)
      return packets
    } finally {
      for (const ext of ['.txt', '.wav', '.ogg']) rmSync(`${tmp}${ext}`, { force: true })
    }
  }

  /**
   * Plays a rendered reply on the speaker, paced at one packet per 20 ms, and calls `done` at its
   * end. Returns how long it lasts, or null when it is not rendered.
   */
  play (text: string, done: () => void): number | null {
    const packets = this.rendered.get(text)
    if (packets === undefined) return null
    const source = `reply:${randomBytes(4).toString('hex')}`
    const ssrc = randomBytes(4).readUInt32BE()
    const firstSeq = randomBytes(2).readUInt16BE()
    const started = Date.now()
    let sent = 0
    // Called once, at the end or at `stop`: whoever holds the talk lease for this reply lets it go.
    const end = (): void => {
      if (!this.playing.delete(end)) return
      done()
    }
    this.playing.add(end)
    const tick = (): void => {
      // Every packet whose time has come (a late timer catches up rather than stretching the reply).
      const due = Math.min(packets.length, Math.floor((Date.now() - started) / FRAME_MS) + 1)
      for (; sent < due; sent++) this.o.speaker.play(source, rtpPacket(packets[sent]!, (firstSeq + sent) & 0xffff, sent * SAMPLES_PER_FRAME, ssrc, sent === 0))
      if (sent < packets.length) { schedule(FRAME_MS) } else { end() }
    }
    const schedule = (ms: number): void => {
      const t = setTimeout(() => { this.timers.delete(t); tick() }, ms)
      this.timers.add(t)
    }
    tick()
    return packets.length * FRAME_MS
  }

  /** Stops every reply playing now and ends each one (its `done` is called, so its lease is released). */
  stop (): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const end of [...this.playing]) end()
  }
}

/** One RTP packet (RFC 3550, no extensions) of Opus. */
export function rtpPacket (payload: Uint8Array, seq: number, timestamp: number, ssrc: number, marker: boolean): Uint8Array {
  const out = Buffer.alloc(12 + payload.length)
  out[0] = 0x80
  out[1] = (marker ? 0x80 : 0) | OPUS_PAYLOAD_TYPE
  out.writeUInt16BE(seq & 0xffff, 2)
  out.writeUInt32BE(timestamp >>> 0, 4)
  out.writeUInt32BE(ssrc >>> 0, 8)
  out.set(payload, 12)
  return out
}
