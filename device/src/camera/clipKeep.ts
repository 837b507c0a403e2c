import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { ClipContainer, Id, MAX_CLIP_BYTES, describeError, type ClipMessage, type Logger } from '@doorbell/core'
import { clipParts, type Clip } from './clip'

/**
 * The doorbell's copy of the clips the hub could not take (docs/history.md, "The clip"): a ring's
 * clip made while the hub was unreachable (or whose parts stopped on the way) is the file the
 * recorder made (no second encode: the same `-c copy` remux, the same length and size bound), kept
 * in `dataDir/kept-clips` beside a small record of what it is, and handed to the hub on `…/clip`,
 * part by part, once the hub has the ring itself (the kept ring, snapshotKeep.ts: the hub files a
 * clip by its ring's event, and drops one for a ring it does not have). The hub takes it by ring
 * id, and a clip it already has changes nothing, so handing one over twice is harmless. The file
 * goes when the hub has acknowledged every part. Bounded: past `maxClips` or `maxBytes` the oldest
 * is dropped, logged; a file that does not match its record is dropped at start, logged.
 */

/** What a kept clip is: its ring, its container, length, size and hash, and when it was kept. */
const KeptClipRecord = z.strictObject({
  deviceId: Id,
  ringId: Id,
  container: ClipContainer,
  seconds: z.number().positive(),
  bytes: z.number().int().min(1).max(MAX_CLIP_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.number().int().nonnegative()
})
export type KeptClipRecord = z.infer<typeof KeptClipRecord>

/** 20 clips of the default 10 s at 1.5 Mbit/s are about 40 MB; one clip is at most 16 MB. */
export const KEPT_CLIPS = { maxClips: 20, maxBytes: 48 * 1024 * 1024 } as const

export interface ClipKeepOptions {
  dir: string
  deviceId: string
  log: Logger
  /** Sends one part to the hub; resolves once the hub has it (PUBACK), rejects when it cannot. */
  send: (message: ClipMessage) => Promise<void>
  /** Whether the hub is reachable now (the link is connected). */
  connected: () => boolean
  /** Whether the doorbell still holds this ring for the hub (not yet acknowledged): its clip waits for it. */
  ringHeld: (ringId: string) => boolean
  maxClips?: number
  maxBytes?: number
  now?: () => number
}

export class ClipKeep {
  private readonly kept = new Map<string, KeptClipRecord>()
  private sending: Promise<void> | null = null
  /** A hand-over was asked for while one was under way: one more pass after it. */
  private again = false
  private stopped = false
  private readonly now: () => number

  constructor (private readonly o: ClipKeepOptions) {
    this.now = o.now ?? Date.now
    mkdirSync(o.dir, { recursive: true, mode: 0o700 })
    const names = readdirSync(o.dir)
    for (const name of names) {
      if (!name.endsWith('.json')) continue
      try {
        const record = KeptClipRecord.parse(JSON.parse(readFileSync(join(o.dir, name), 'utf8')))
        if (name !== `${record.ringId}.json` || record.deviceId !== o.deviceId) throw new Error('the record is another clip\'s')
        const video = readFileSync(this.video(record))
        if (video.length !== record.bytes || sha256(video) !== record.sha256) throw new Error('the video does not match its record')
        this.kept.set(record.ringId, record)
      } catch (err) {
        o.log.warn('a kept clip could not be read: dropped', { file: name, error: describeError(err) })
        this.remove(name.slice(0, -'.json'.length))
      }
    }
    // What a run that died mid-write left, or a video whose record is gone.
    for (const name of names) {
      const ringId = name.replace(/\.(mp4|webm|json)(\.tmp)?$/, '')
      if (name.endsWith('.tmp') || !this.kept.has(ringId)) rmSync(join(o.dir, name), { force: true })
    }
  }

  /** Clips not yet taken by the hub, oldest first. */
  pending (): KeptClipRecord[] { return [...this.kept.values()].sort((a, b) => a.at - b.at) }

  /** Keeps a ring's clip for the hub (on disk, then within the bound), and hands it over if the hub is back already. */
  keep (ringId: string, clip: Clip): void {
    if (clip.bytes.length === 0 || clip.bytes.length > MAX_CLIP_BYTES) {
      this.o.log.warn('a clip over its bound is not kept', { ringId, bytes: clip.bytes.length })
      return
    }
    const record: KeptClipRecord = { deviceId: this.o.deviceId, ringId, container: clip.container, seconds: clip.seconds, bytes: clip.bytes.length, sha256: sha256(clip.bytes), at: this.now() }
    this.remove(ringId)
    try {
      writeAtomically(this.video(record), clip.bytes)
      writeAtomically(join(this.o.dir, `${ringId}.json`), Buffer.from(JSON.stringify(record)))
    } catch (err) {
      this.remove(ringId)
      this.o.log.error('could not keep a clip on disk: it is lost', { ringId, error: describeError(err) })
      return
    }
    this.kept.set(ringId, record)
    this.o.log.info('kept a ring\'s clip for the hub', { ringId, bytes: record.bytes, seconds: Math.round(record.seconds * 10) / 10 })
    this.bound()
    this.handOver()
  }

  /**
   * Sends the hub each kept clip whose ring it has (oldest first, one at a time, every part
   * acknowledged); a clip the hub did not take stays for the next connection. Called when the hub
   * link connects, and when the hub acknowledges a kept ring.
   */
  handOver (): void {
    if (this.stopped || !this.o.connected()) return
    if (this.sending !== null) { this.again = true; return }
    this.sending = this.sendAll().finally(() => {
      this.sending = null
      if (this.again) { this.again = false; this.handOver() }
    })
  }

  /** Stops handing over; resolves once a part on its way has its answer (the file stays for the next start). */
  async stop (): Promise<void> {
    this.stopped = true
    await this.sending
  }

  private async sendAll (): Promise<void> {
    for (const record of this.pending()) {
      if (this.stopped || !this.o.connected()) return
      if (this.o.ringHeld(record.ringId) || this.kept.get(record.ringId) !== record) continue
      try {
        const clip: Clip = { container: record.container, seconds: record.seconds, bytes: readFileSync(this.video(record)) }
        for (const part of clipParts(this.o.deviceId, record.ringId, clip)) {
          if (this.stopped) return
          await this.o.send(part)
        }
      } catch (err) {
        this.o.log.warn('the hub did not take a kept clip; it is kept for the next connection', { ringId: record.ringId, error: describeError(err) })
        return
      }
      if (this.kept.get(record.ringId) !== record) continue
      this.kept.delete(record.ringId)
      this.remove(record.ringId)
      this.o.log.info('the hub has a kept clip', { ringId: record.ringId, bytes: record.bytes })
    }
  }

  private video (r: Pick<KeptClipRecord, 'ringId' | 'container'>): string { return join(this.o.dir, `${r.ringId}.${r.container}`) }

  private remove (ringId: string): void {
    this.kept.delete(ringId)
    for (const ext of ['json', ...ClipContainer.options]) rmSync(join(this.o.dir, `${ringId}.${ext}`), { force: true })
  }

  /** Oldest first out, past the count or the size. */
  private bound (): void {
    const maxClips = this.o.maxClips ?? KEPT_CLIPS.maxClips
    const maxBytes = this.o.maxBytes ?? KEPT_CLIPS.maxBytes
    const all = this.pending()
    let bytes = all.reduce((n, r) => n + r.bytes, 0)
    while (all.length > 0 && (all.length > maxClips || bytes > maxBytes)) {
      const oldest = all.shift()!
      bytes -= oldest.bytes
      this.remove(oldest.ringId)
      this.o.log.warn('the doorbell\'s copy of its clips is full: the oldest is dropped', { ringId: oldest.ringId, bytes: oldest.bytes, maxClips, maxBytes })
    }
  }
}

function sha256 (bytes: Buffer): string { return createHash('sha256').update(bytes).digest('hex') }

function writeAtomically (file: string, bytes: Buffer): void {
  const tmp = `${file}.tmp`
  writeFileSync(tmp, bytes, { mode: 0o600 })
  renameSync(tmp, file)
}
