import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync, type SQLOutputValue, type StatementSync } from 'node:sqlite'

/** The broker's file in the hub's data folder. */
export const BROKER_DB_FILE = 'broker.db'
const SCHEMA_VERSION = 1

const SCHEMA = `
CREATE TABLE IF NOT EXISTS retained (
  topic TEXT PRIMARY KEY,
  meta TEXT NOT NULL,
  payload BLOB
) STRICT;
CREATE TABLE IF NOT EXISTS subscriptions (
  client_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  options TEXT NOT NULL,
  PRIMARY KEY (client_id, topic)
) STRICT;
CREATE TABLE IF NOT EXISTS outgoing (
  seq INTEGER PRIMARY KEY,
  client_id TEXT NOT NULL,
  meta TEXT NOT NULL,
  payload BLOB
) STRICT;
CREATE INDEX IF NOT EXISTS outgoing_by_client ON outgoing (client_id, seq);
`

/** A packet as stored: everything but the payload as JSON, the payload as bytes (null: none, as in a PUBREL). */
export interface StoredPacket { meta: string, payload: Uint8Array | null }

export type Row = Record<string, SQLOutputValue>

export function toStored (packet: object): StoredPacket {
  const { payload, ...meta } = packet as { payload?: string | Uint8Array }
  return {
    meta: JSON.stringify(meta),
    payload: payload === undefined ? null : typeof payload === 'string' ? Buffer.from(payload) : payload
  }
}

export function fromStored (row: Row): Record<string, unknown> {
  const packet = JSON.parse(String(row.meta)) as Record<string, unknown>
  if (row.payload !== null && row.payload !== undefined) packet.payload = Buffer.from(row.payload as Uint8Array)
  return packet
}

/**
 * The broker's state on disk (`dataDir/broker.db`, SQLite in WAL mode): retained messages, the
 * subscriptions of persistent sessions and their queued messages. Writes are queued and run in one
 * transaction a turn of the event loop after the turn that queued them (group commit): a ring
 * fanned out to many persistent screens costs one commit, not one per screen, and comes after the
 * ring's deliveries are written. Each caller's promise, and `committed()`, settle once the write
 * is committed, so the broker acknowledges (PUBACK) nothing that is not on disk.
 */
export class BrokerStore {
  readonly db: DatabaseSync
  readonly q: ReturnType<typeof prepare>
  private batch: { ops: Array<() => void>, promise: Promise<void>, resolve: () => void, reject: (err: Error) => void } | null = null
  private closed = false

  constructor (dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    this.db = new DatabaseSync(join(dir, BROKER_DB_FILE), { timeout: 5000 })
    try {
      this.db.exec('PRAGMA journal_mode = WAL')
      // NORMAL in WAL mode: a commit survives the hub's process dying (SIGKILL, a crash); only a
      // power cut may lose the last few, and a FULL sync per ring would put a disk flush on its path.
      this.db.exec('PRAGMA synchronous = NORMAL')
      const version = Number((this.db.prepare('PRAGMA user_version').get() as Row).user_version)
      if (version > SCHEMA_VERSION) throw new Error(`${join(dir, BROKER_DB_FILE)} was written by a newer hub (schema ${version}, this hub knows ${SCHEMA_VERSION})`)
      this.db.exec(SCHEMA)
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
    } catch (err) {
      this.db.close()
      throw err
    }
    this.q = prepare(this.db)
  }

  /** Queues a write; resolves once the transaction holding it has committed. */
  write (op: () => void): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the broker store is closed'))
    if (this.batch === null) {
      let resolve!: () => void
      let reject!: (err: Error) => void
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
      this.batch = { ops: [], promise, resolve, reject }
      // Two turns of the check phase: what this turn queues to be sent (a ring's deliveries to the
      // screens online, each a setImmediate in aedes) is written to the sockets before the commit,
      // so the disk (and SQLite's occasional WAL checkpoint) is never on a notification's path.
      setImmediate(() => { setImmediate(() => { this.flush() }) })
    }
    this.batch.ops.push(op)
    return this.batch.promise
  }

  /** Settles once every write queued so far has committed (at once when none waits); rejects if that commit failed. */
  committed (): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the broker store is closed'))
    return this.batch === null ? Promise.resolve() : this.batch.promise
  }

  /** Commits what is queued now (also run by `close`). */
  flush (): void {
    const batch = this.batch
    if (batch === null) return
    this.batch = null
    try {
      this.db.exec('BEGIN')
      try {
        for (const op of batch.ops) op()
        this.db.exec('COMMIT')
      } catch (err) {
        this.db.exec('ROLLBACK')
        throw err
      }
      batch.resolve()
    } catch (err) {
      batch.reject(err as Error)
    }
  }

  close (): void {
    if (this.closed) return
    this.flush()
    this.closed = true
    this.db.close()
  }
}

function prepare (db: DatabaseSync): Record<string, StatementSync> {
  return {
    allRetained: db.prepare('SELECT topic, meta, payload FROM retained'),
    putRetained: db.prepare('INSERT INTO retained (topic, meta, payload) VALUES (?, ?, ?) ON CONFLICT (topic) DO UPDATE SET meta = excluded.meta, payload = excluded.payload'),
    delRetained: db.prepare('DELETE FROM retained WHERE topic = ?'),
    allSubscriptions: db.prepare('SELECT client_id, topic, options FROM subscriptions ORDER BY rowid'),
    putSubscription: db.prepare('INSERT INTO subscriptions (client_id, topic, options) VALUES (?, ?, ?) ON CONFLICT (client_id, topic) DO UPDATE SET options = excluded.options'),
    delSubscription: db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND topic = ?'),
    delSubscriptionsOf: db.prepare('DELETE FROM subscriptions WHERE client_id = ?'),
    allOutgoing: db.prepare('SELECT seq, client_id, meta, payload FROM outgoing ORDER BY seq'),
    putOutgoing: db.prepare('INSERT INTO outgoing (seq, client_id, meta, payload) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO UPDATE SET meta = excluded.meta, payload = excluded.payload'),
    delOutgoing: db.prepare('DELETE FROM outgoing WHERE seq = ?'),
    delOutgoingOf: db.prepare('DELETE FROM outgoing WHERE client_id = ?')
  }
}
