import { Readable } from 'node:stream'
import { clipMimeType, type ClipContainer, type EventClip } from '@doorbell/core'
import type { ClipBackend, ClipVideo } from '../history/clipStore'
import { SyncPg } from './syncPg'

/** A clip's bytes are kept in rows of this size: a Range request reads only the rows it covers. */
export const CLIP_ROW_BYTES = 256 * 1024

/**
 * A cluster's ring clips (docs/cluster.md): in the PostgreSQL every hub shares, beside the
 * history's rows and pictures, so a clip the doorbell sent through hub A plays from hub B, and
 * still does once A is gone. `history_clips` says what each event's clip is (or why there is
 * none); the video is in `history_clip_parts`, CLIP_ROW_BYTES a row. Both go with their event
 * (ON DELETE CASCADE), and retention counts the clips' bytes with the pictures'
 * (./pgHistory.ts). Synchronous, as the single hub's `ClipStore` is (./syncPg.ts).
 */
export class PgClipStore implements ClipBackend {
  private readonly pg: SyncPg

  constructor (o: { url: string, timeoutMs: number, nodeId: string }) {
    this.pg = new SyncPg({ url: o.url, timeoutMs: o.timeoutMs, name: `doorbell-hub ${o.nodeId} clips` })
  }

  /** Keeps an event's clip, whole or not at all (one transaction); a second copy replaces the first. */
  put (id: number, container: ClipContainer, seconds: number, video: Buffer): void {
    this.transaction(() => {
      this.pg.query('DELETE FROM history_clips WHERE event_id = $1', [id])
      this.pg.query('INSERT INTO history_clips (event_id, container, seconds, bytes) VALUES ($1, $2, $3, $4)', [id, container, seconds, video.length])
      for (let part = 0; part * CLIP_ROW_BYTES < video.length; part++) {
        this.pg.query('INSERT INTO history_clip_parts (event_id, part, data) VALUES ($1, $2, $3)', [id, part, video.subarray(part * CLIP_ROW_BYTES, (part + 1) * CLIP_ROW_BYTES)])
      }
    })
  }

  /** The event has no clip, and why (a clip already kept stays). */
  failed (id: number, reason: string): void {
    this.pg.query(`INSERT INTO history_clips (event_id, failed) VALUES ($1, $2)
      ON CONFLICT (event_id) DO UPDATE SET failed = excluded.failed WHERE history_clips.bytes IS NULL`, [id, reason.slice(0, 200)])
  }

  state (id: number): EventClip | undefined {
    const r = this.pg.query('SELECT container, seconds, bytes, failed FROM history_clips WHERE event_id = $1', [id]).rows[0]
    if (r === undefined) return undefined
    if (r.failed !== null) return { failed: String(r.failed) }
    return { type: clipMimeType(r.container as ClipContainer) as 'video/mp4' | 'video/webm', bytes: Number(r.bytes), seconds: Number(r.seconds) }
  }

  video (id: number): ClipVideo | null {
    const r = this.pg.query('SELECT container, bytes FROM history_clips WHERE event_id = $1 AND bytes IS NOT NULL', [id]).rows[0]
    if (r === undefined) return null
    const bytes = Number(r.bytes)
    const read = (start: number, end: number): Readable => {
      const pg = this.pg
      // Row by row as the response drains: a 16 MB clip is never in memory whole.
      return Readable.from((function * () {
        for (let part = Math.floor(start / CLIP_ROW_BYTES); part * CLIP_ROW_BYTES <= end; part++) {
          const row = pg.query('SELECT data FROM history_clip_parts WHERE event_id = $1 AND part = $2', [id, part]).rows[0]
          if (row === undefined) throw new Error(`clip ${id}: part ${part} is missing`)
          const data = row.data as Uint8Array
          const base = part * CLIP_ROW_BYTES
          yield Buffer.from(data.buffer, data.byteOffset, data.byteLength).subarray(Math.max(0, start - base), end - base + 1)
        }
      })())
    }
    return { type: clipMimeType(r.container as ClipContainer), bytes, open: (range) => read(range?.start ?? 0, range?.end ?? bytes - 1) }
  }

  bytes (): Map<number, number> {
    return new Map(this.pg.query('SELECT event_id, bytes FROM history_clips WHERE bytes IS NOT NULL').rows.map((r) => [Number(r.event_id), Number(r.bytes)]))
  }

  remove (id: number): boolean {
    return this.pg.query('DELETE FROM history_clips WHERE event_id = $1', [id]).rowCount > 0
  }

  /** A clip goes with its event in the database itself (ON DELETE CASCADE): nothing is left to sweep. */
  sweep (): number { return 0 }

  close (): void { void this.pg.close() }

  private transaction (fn: () => void): void {
    this.pg.query('BEGIN')
    try {
      fn()
      this.pg.query('COMMIT')
    } catch (err) {
      try { this.pg.query('ROLLBACK') } catch { /* the connection is gone: PostgreSQL rolled it back */ }
      throw err
    }
  }
}
