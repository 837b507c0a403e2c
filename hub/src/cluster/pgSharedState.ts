import pg from 'pg'
import { SignedReplies, type Logger, type StockDoorSettingView } from '@doorbell/core'
import type { RepliesStore } from '../replies/store'
import type { DoorbellSettingsChange, StockSettingsStore } from '../trust/stockSettings'
import { ClusterStoreError } from './syncPg'

/**
 * The state a single hub keeps in files beside its data, on the cluster's PostgreSQL (schema:
 * ./sharedStateMigration.ts), read without a cache so a change through any hub is what every hub
 * serves and signs next. Asynchronous (a pool): its callers already are, unlike the trust store's.
 * PostgreSQL down: `ClusterStoreError` ("unavailable"), which the API answers with 503.
 */
export class PgSharedState {
  private readonly pool: pg.Pool

  constructor (o: { url: string, timeoutMs: number, nodeId: string, log: Logger }) {
    this.pool = new pg.Pool({ connectionString: o.url, connectionTimeoutMillis: o.timeoutMs, query_timeout: o.timeoutMs, max: 4, application_name: `doorbell-hub ${o.nodeId} shared` })
    // An idle connection lost (PostgreSQL restarting): the next query makes another.
    this.pool.on('error', (err) => { o.log.warn('a PostgreSQL connection for the shared state was lost', { error: err.message }) })
  }

  async query<R extends pg.QueryResultRow = Record<string, unknown>> (sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params)
    } catch (err) {
      const code = (err as { code?: string }).code
      // A statement PostgreSQL refused (a class 22/23/42 code) is a bug or bad data, not an outage.
      const refused = typeof code === 'string' && /^(22|23|42)/.test(code)
      throw new ClusterStoreError(refused ? 'refused' : 'unavailable', `PostgreSQL: ${(err as Error).message}`)
    }
  }

  /** The owner's per-doorbell settings; each change takes the next seq in one statement (row-locked), whichever hub makes it. */
  stockSettings (): StockSettingsStore {
    return {
      list: async () => (await this.query('SELECT * FROM doorbell_settings ORDER BY device_id')).rows.map(toSetting),
      change: async (deviceId: string, change: DoorbellSettingsChange, at: number) => {
        const row = (await this.query(`INSERT INTO doorbell_settings (device_id, accept_unsigned_open_door, live_preview, clip, seq, at) VALUES ($1, $2, $3, $4, 1, $5)
          ON CONFLICT (device_id) DO UPDATE SET
            accept_unsigned_open_door = COALESCE(EXCLUDED.accept_unsigned_open_door, doorbell_settings.accept_unsigned_open_door),
            live_preview = COALESCE(EXCLUDED.live_preview, doorbell_settings.live_preview),
            clip = COALESCE(EXCLUDED.clip, doorbell_settings.clip),
            seq = doorbell_settings.seq + 1, at = EXCLUDED.at
          RETURNING *`, [deviceId, change.acceptUnsignedOpenDoor ?? null, change.livePreview ?? null, change.clip ?? null, at])).rows[0]!
        return toSetting(row)
      }
    }
  }

  /**
   * The owner's quick replies, as signed. A list is kept only over one with a lower stamp `seq`
   * and an older `at` (compare and set in one statement): two hubs that stamped the same next seq
   * at once cannot both keep it; the loser's save is false, and it re-reads and stamps again.
   */
  replies (): RepliesStore {
    return {
      load: async () => {
        const row = (await this.query<{ value: unknown }>("SELECT value FROM shared_documents WHERE name = 'replies'")).rows[0]
        if (row === undefined) return { signed: null }
        const parsed = SignedReplies.safeParse(row.value)
        return parsed.success ? { signed: parsed.data } : { signed: null, problem: `the kept quick replies are not a signed list: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
      },
      save: async (signed, at, seq) => (await this.query(`INSERT INTO shared_documents (name, value, at, seq) VALUES ('replies', $1, $2, $3)
        ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, at = EXCLUDED.at, seq = EXCLUDED.seq
        WHERE shared_documents.at < EXCLUDED.at AND shared_documents.seq < EXCLUDED.seq`, [JSON.stringify(signed), at, seq])).rowCount === 1
    }
  }

  async close (): Promise<void> {
    await this.pool.end()
  }
}

function toSetting (r: Record<string, unknown>): StockDoorSettingView {
  return {
    deviceId: String(r.device_id),
    ...(r.accept_unsigned_open_door !== null ? { acceptUnsignedOpenDoor: r.accept_unsigned_open_door === true } : {}),
    ...(r.live_preview !== null ? { livePreview: r.live_preview === true } : {}),
    ...(r.clip !== null && r.clip !== undefined ? { clip: r.clip === true } : {}),
    seq: Number(r.seq),
    at: Number(r.at)
  }
}
