import { createReadStream, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { ClipContainer, clipMimeType, type EventClip } from '@doorbell/core'
import { z } from 'zod'

/**
 * The rings' clips (docs/history.md, "The clip"), beside the history's pictures:
 * `dataDir/history/clips/<event id>.<mp4|webm>` and `<event id>.json`, which says what the file is
 * or why there is none. Files, like the pictures: the size cap counts them (`bytes()`), and a clip
 * goes with its event (`sweep`, after retention or a deletion). Rows stay in the history's
 * database untouched: a clip is an optional extra of an event.
 */

const Meta = z.union([
  z.strictObject({ container: ClipContainer, seconds: z.number().positive(), bytes: z.number().int().positive() }),
  z.strictObject({ failed: z.string().max(200) })
])
type Meta = z.infer<typeof Meta>

/** A kept clip, for serving: its type and size, and its bytes (all, or `start`..`end` inclusive). */
export interface ClipVideo {
  type: string
  bytes: number
  open: (range?: { start: number, end: number }) => Readable
}

/** A value now, or later: one hub's files answer at once, a cluster's PostgreSQL through its pool. */
type Now<T> = T | Promise<T>

/**
 * Where the clips are kept: one hub's files (`ClipStore`, below) or a cluster's PostgreSQL
 * (../cluster/pgClips.ts), so a clip taken by hub A plays from hub B. A cluster's store answers
 * everything asynchronously (its pool), so neither a clip's bytes nor what a clip is ever holds
 * up the event loop while PostgreSQL waits; callers await each answer.
 */
export interface ClipBackend {
  put: (id: number, container: ClipContainer, seconds: number, video: Buffer) => Now<void>
  failed: (id: number, reason: string) => Now<void>
  state: (id: number) => Now<EventClip | undefined>
  /** What each of these events' clips is (absent: none recorded), for a page of the history at once. */
  states: (ids: number[]) => Now<Map<number, EventClip>>
  video: (id: number) => Now<ClipVideo | null>
  remove: (id: number) => Now<boolean>
  /** Each kept clip's size, for a store the history's own size cap must count (files; PostgreSQL counts its own). */
  bytes?: () => Map<number, number>
  /** `exists` may answer later (one hub's history is on its own thread: threadStore.ts). */
  sweep: (exists: (id: number) => Now<boolean>) => Now<number>
  close?: () => void | Promise<void>
}

export class ClipStore {
  readonly dir: string
  private readonly meta = new Map<number, Meta>()

  constructor (historyDir: string) {
    this.dir = join(historyDir, 'clips')
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    for (const name of readdirSync(this.dir)) {
      const m = /^([1-9]\d{0,14})\.json$/.exec(name)
      if (!m) continue
      try {
        const parsed = Meta.parse(JSON.parse(readFileSync(join(this.dir, name), 'utf8')))
        // A clip whose video is gone (removed by hand) is no clip.
        if ('container' in parsed && statSync(this.file(Number(m[1]), parsed.container)).size !== parsed.bytes) throw new Error('the video does not match')
        this.meta.set(Number(m[1]), parsed)
      } catch {
        this.remove(Number(m[1]))
      }
    }
  }

  private file (id: number, container: ClipContainer): string { return join(this.dir, `${id}.${container}`) }
  private metaFile (id: number): string { return join(this.dir, `${id}.json`) }

  /** Keeps an event's clip (a second copy replaces the first). Throws when the disk cannot hold it; nothing is kept then. */
  put (id: number, container: ClipContainer, seconds: number, video: Buffer): void {
    this.remove(id)
    const meta: Meta = { container, seconds, bytes: video.length }
    try {
      writeFileSync(this.file(id, container), video, { mode: 0o600 })
      writeFileSync(this.metaFile(id), JSON.stringify(meta), { mode: 0o600 })
    } catch (err) {
      this.remove(id)
      throw err
    }
    this.meta.set(id, meta)
  }

  /** The event has no clip, and why (a clip already kept stays). */
  failed (id: number, reason: string): void {
    if (this.meta.has(id) && 'container' in this.meta.get(id)!) return
    const meta: Meta = { failed: reason.slice(0, 200) }
    // Best effort: on a full disk the reason lives until the hub restarts.
    try { writeFileSync(this.metaFile(id), JSON.stringify(meta), { mode: 0o600 }) } catch {}
    this.meta.set(id, meta)
  }

  /** What an event's `clip` says; undefined: none was recorded. */
  state (id: number): EventClip | undefined {
    const m = this.meta.get(id)
    if (!m) return undefined
    return 'failed' in m ? { failed: m.failed } : { type: clipMimeType(m.container) as 'video/mp4' | 'video/webm', bytes: m.bytes, seconds: m.seconds }
  }

  states (ids: number[]): Map<number, EventClip> {
    const out = new Map<number, EventClip>()
    for (const id of ids) {
      const clip = this.state(id)
      if (clip !== undefined) out.set(id, clip)
    }
    return out
  }

  /** The clip's file, for serving. */
  video (id: number): ClipVideo & { path: string } | null {
    const m = this.meta.get(id)
    if (!m || 'failed' in m) return null
    const path = this.file(id, m.container)
    return { path, type: clipMimeType(m.container), bytes: m.bytes, open: (range) => createReadStream(path, range ?? {}) }
  }

  /** Each kept clip's size by event id (the history's size cap counts them with the pictures). */
  bytes (): Map<number, number> {
    const out = new Map<number, number>()
    for (const [id, m] of this.meta) if ('bytes' in m) out.set(id, m.bytes)
    return out
  }

  remove (id: number): boolean {
    const had = this.meta.delete(id)
    for (const c of ClipContainer.options) rmSync(this.file(id, c), { force: true })
    rmSync(this.metaFile(id), { force: true })
    return had
  }

  /** Removes the clips whose event is gone (retention, deletion); returns how many. */
  sweep (exists: (id: number) => Now<boolean>): Now<number> {
    const ids = [...this.meta.keys()]
    const answers = ids.map(exists)
    const removeGone = (alive: boolean[]): number => ids.filter((id, i) => !alive[i] && this.remove(id)).length
    return answers.some((a) => a instanceof Promise) ? Promise.all(answers).then(removeGone) : removeGone(answers as boolean[])
  }
}
