import { Readable } from 'node:stream'
import pg from 'pg'
import { clipMimeType, type ClipContainer, type EventClip, type Logger } from '@doorbell/core'
import type { ClipBackend, ClipVideo } from '../history/clipStore'
import { ClusterStoreError } from './syncPg'

/** A clip's bytes are kept in rows of this size: a Range request reads only the rows it covers. */
export const CLIP_ROW_BYTES = 256 * 1024

/**
 * A cluster's ring clips (docs/cluster.md): in the PostgreSQL every hub shares, beside the
 * history's rows and pictures, so a clip the doorbell sent through hub A plays from hub B, and
 * still does once A is gone. `history_clips` says what each event's clip is (or why there is
 * none); the video is in `history_clip_parts`, CLIP_ROW_BYTES a row. Both go with their event
 * (ON DELETE CASCADE), and retention counts the clips' bytes with the pictures'
 * (./pgHistory.ts).
 *
 * Everything goes through an async pool, never the synchronous client (./syncPg.ts) the trust
 * store uses: storing a clip (up to 16 MB, 64 rows) or serving one row by row would stall this
 * hub's event loop (its broker, its API) for the whole transfer, and even the small statements
 * (what a page's clips are, a failure, a removal) would stall it for as long as PostgreSQL waits
 * (a lock, a restart: up to `postgresTimeoutMs`).
 */
export class PgClipStore implements ClipBackend {
  private readonly pool: pg.Pool
  /** Puts run one after the other: two copies of one clip never race on its rows. */
  private writing: Promise<void> = Promise.resolve()

  constructor (o: { url: string, timeoutMs: number, nodeId: string, log?: Logger }) {
    this.pool = new pg.Pool({ connectionString: o.url, connectionTimeoutMillis: o.timeoutMs, query_timeout: o.timeoutMs, max: 4, application_name: `doorbell-hub ${o.nodeId} clips` })
    // An idle connection lost (PostgreSQL restarting): the next query makes another.
    this.pool.on('error', (err) => { o.log?.warn('a PostgreSQL connection for the clips was lost', { error: err.message }) })
  }

  /** Keeps an event's clip, whole or not at all (one transaction); a second copy replaces the first. */
  async put (id: number, container: ClipContainer, seconds: number, video: Buffer): Promise<void> {
    const run = this.writing.then(async () => { await this.store(id, container, seconds, video) })
    this.writing = run.catch(() => {})
    await run
  }

  private async store (id: number, container: ClipContainer, seconds: number, video: Buffer): Promise<void> {
    const client = await this.pool.connect().catch((err: unknown) => { throw storeError(err) })
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      await client.query('DELETE FROM history_clips WHERE event_id = $1', [id])
      await client.query('INSERT INTO history_clips (event_id, container, seconds, bytes) VALUES ($1, $2, $3, $4)', [id, container, seconds, video.length])
      for (let part = 0; part * CLIP_ROW_BYTES < video.length; part++) {
        await client.query('INSERT INTO history_clip_parts (event_id, part, data) VALUES ($1, $2, $3)', [id, part, video.subarray(part * CLIP_ROW_BYTES, (part + 1) * CLIP_ROW_BYTES)])
      }
      await client.query('COMMIT')
    } catch (err) {
      try { await client.query('ROLLBACK') } catch (e) { broken = e as Error /* the connection is gone: PostgreSQL rolled it back */ }
      throw storeError(err)
    } finally {
      // A connection that could not roll back is not given back to the pool.
      client.release(broken)
    }
  }

  /** The event has no clip, and why (a clip already kept stays). */
  async failed (id: number, reason: string): Promise<void> {
    await this.query(`INSERT INTO history_clips (event_id, failed) VALUES ($1, $2)
      ON CONFLICT (event_id) DO UPDATE SET failed = excluded.failed WHERE history_clips.bytes IS NULL`, [id, reason.slice(0, 200)])
  }

  async state (id: number): Promise<EventClip | undefined> {
    return (await this.states([id])).get(id)
  }

  /** What each of these events' clips is, in one statement (a page of the history). */
  async states (ids: number[]): Promise<Map<number, EventClip>> {
    if (ids.length === 0) return new Map()
    const rows = (await this.query('SELECT event_id, container, seconds, bytes, failed FROM history_clips WHERE event_id = ANY($1::bigint[])', [ids])).rows
    return new Map(rows.map((r) => [Number(r.event_id), r.failed !== null
      ? { failed: String(r.failed) }
      : { type: clipMimeType(r.container as ClipContainer) as 'video/mp4' | 'video/webm', bytes: Number(r.bytes), seconds: Number(r.seconds) }]))
  }

  async video (id: number): Promise<ClipVideo | null> {
    const r = (await this.query('SELECT container, bytes FROM history_clips WHERE event_id = $1 AND bytes IS NOT NULL', [id])).rows[0]
    if (r === undefined) return null
    const bytes = Number(r.bytes)
    const pool = this.pool
    const read = (start: number, end: number): Readable =>
      // Row by row as the response drains (a 16 MB clip is never in memory whole), each row a
      // query on the pool: the event loop goes on while PostgreSQL answers.
      Readable.from((async function * () {
        for (let part = Math.floor(start / CLIP_ROW_BYTES); part * CLIP_ROW_BYTES <= end; part++) {
          const row = (await pool.query<{ data: Buffer }>('SELECT data FROM history_clip_parts WHERE event_id = $1 AND part = $2', [id, part]).catch((err: unknown) => { throw storeError(err) })).rows[0]
          if (row === undefined) throw new Error(`clip ${id}: part ${part} is missing`)
          const base = part * CLIP_ROW_BYTES
          yield row.data.subarray(Math.max(0, start - base), end - base + 1)
        }
      })())
    return { type: clipMimeType(r.container as ClipContainer), bytes, open: (range) => read(range?.start ?? 0, range?.end ?? bytes - 1) }
  }

  async remove (id: number): Promise<boolean> {
    return ((await this.query('DELETE FROM history_clips WHERE event_id = $1', [id])).rowCount ?? 0) > 0
  }

  /** A clip goes with its event in the database itself (ON DELETE CASCADE): nothing is left to sweep. */
  sweep (): number { return 0 }

  /** After the puts under way. */
  async close (): Promise<void> {
    await this.writing
    await this.pool.end()
  }

  private async query (sql: string, params: unknown[]): Promise<pg.QueryResult> {
    return await this.pool.query(sql, params).catch((err: unknown) => { throw storeError(err) })
  }
}

/** As the other PostgreSQL stores say it: a statement refused (class 22/23/42) is a bug or bad data, anything else an outage. */
function storeError (err: unknown): ClusterStoreError {
  if (err instanceof ClusterStoreError) return err
  const code = (err as { code?: string }).code
  const refused = typeof code === 'string' && /^(22|23|42)/.test(code)
  return new ClusterStoreError(refused ? 'refused' : 'unavailable', `PostgreSQL: ${(err as Error).message}`)
}
