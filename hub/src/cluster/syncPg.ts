import { createRequire } from 'node:module'
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'

/** PostgreSQL could not answer (down, unreachable, too slow) or refused a statement. */
export class ClusterStoreError extends Error {
  override readonly name = 'ClusterStoreError'
  constructor (readonly code: 'unavailable' | 'refused', message: string) {
    super(message)
  }
}

export type Row = Record<string, unknown>
export interface Result { rows: Row[], rowCount: number }

/**
 * The worker: one pg connection, made again on the next query after it is lost. Plain JS so it
 * runs the same under tsx and from a build. A connection lost inside a transaction is not
 * silently replaced: every statement fails until the caller's ROLLBACK, so no write of a half
 * transaction ever runs on a fresh connection in autocommit.
 */
const WORKER = `
const { workerData } = require('node:worker_threads')
const pg = require(workerData.pgPath)
let client = null
let inTx = false
let txLost = false
async function connection () {
  if (client !== null) return client
  const c = new pg.Client({ connectionString: workerData.url, connectionTimeoutMillis: workerData.timeoutMs, query_timeout: workerData.timeoutMs, application_name: workerData.name })
  c.on('error', () => { if (client === c) { client = null; if (inTx) txLost = true } })
  c.on('end', () => { if (client === c) { client = null; if (inTx) txLost = true } })
  await c.connect()
  client = c
  return c
}
// Loading pg can take seconds on a busy machine: say when ready, so that it is not counted as PostgreSQL's slowness.
workerData.port.postMessage({ ready: true })
Atomics.add(workerData.flag, 0, 1)
Atomics.notify(workerData.flag, 0)
const toBuffer = (v) => v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v
workerData.port.on('message', async ({ id, sql, params }) => {
  let reply
  const ends = sql === 'COMMIT' || sql === 'ROLLBACK'
  try {
    if (txLost && sql !== 'ROLLBACK') throw Object.assign(new Error('the connection to PostgreSQL was lost inside a transaction'), { unavailable: true })
    if (txLost) { txLost = false; inTx = false; reply = { id, rows: [], rowCount: 0 } } else {
      const c = await connection().catch((err) => { throw Object.assign(err, { unavailable: true }) })
      if (sql === 'BEGIN') inTx = true
      const r = await c.query(sql, (params || []).map(toBuffer))
      if (ends) inTx = false
      reply = { id, rows: r.rows, rowCount: r.rowCount ?? 0 }
    }
  } catch (err) {
    if (ends) inTx = false
    const unavailable = err.unavailable === true || client === null || /timeout|terminat|ECONN|EPIPE/i.test(err.message)
    reply = { id, error: err.message, unavailable }
  }
  workerData.port.postMessage(reply)
  Atomics.add(workerData.flag, 0, 1)
  Atomics.notify(workerData.flag, 0)
})
`

const WORKER_START_MS = 30_000

/**
 * PostgreSQL with synchronous calls: a worker thread runs `pg`, and the caller waits for its
 * answer (Atomics.wait), as node:sqlite makes it wait for the disk. This keeps the trust store's
 * contract (a transaction's reads and writes run without another call interleaving in this
 * process) with no change to the code that uses it; the price is that the event loop is blocked
 * for a round trip per statement (≈0.2-1 ms on a LAN), at most `timeoutMs` when PostgreSQL hangs.
 */
export class SyncPg {
  private readonly worker: Worker
  private readonly port: MessagePort
  private readonly flag = new Int32Array(new SharedArrayBuffer(4))
  private nextId = 1
  private ready = false
  private closed = false

  constructor (private readonly o: { url: string, timeoutMs: number, name: string }) {
    const { port1, port2 } = new MessageChannel()
    this.port = port1
    const pgPath = createRequire(import.meta.url).resolve('pg')
    this.worker = new Worker(WORKER, { eval: true, workerData: { url: o.url, timeoutMs: o.timeoutMs, name: o.name, pgPath, port: port2, flag: this.flag }, transferList: [port2] })
    // It must not keep the process alive after close(), nor take it down with an unhandled error.
    this.worker.unref()
    this.worker.on('error', () => {})
  }

  query (sql: string, params: unknown[] = []): Result {
    if (this.closed) throw new ClusterStoreError('unavailable', 'the PostgreSQL trust store is closed')
    if (!this.ready) this.awaitWorker()
    const id = this.nextId++
    this.port.postMessage({ id, sql, params })
    // Some slack over the worker's own timeouts: a connect plus a query.
    const limit = this.o.timeoutMs * 2 + 500
    const deadline = Date.now() + limit
    for (;;) {
      // The worker bumps the counter after each answer: read it before looking, wait only while it stays.
      const seen = Atomics.load(this.flag, 0)
      const got = receiveMessageOnPort(this.port)
      if (got !== undefined) {
        const reply = got.message as { id: number, rows?: Row[], rowCount?: number, error?: string, unavailable?: boolean }
        // An answer to a call that timed out earlier: not ours.
        if (reply.id !== id) continue
        if (reply.error !== undefined) {
          throw new ClusterStoreError(reply.unavailable === true ? 'unavailable' : 'refused', reply.unavailable === true ? `PostgreSQL is unavailable: ${reply.error}` : reply.error)
        }
        return { rows: reply.rows ?? [], rowCount: reply.rowCount ?? 0 }
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new ClusterStoreError('unavailable', `PostgreSQL did not answer within ${limit} ms`)
      Atomics.wait(this.flag, 0, seen, left)
    }
  }

  /** The worker's first message: pg loaded. Bounded apart from the queries' timeout. */
  private awaitWorker (): void {
    const deadline = Date.now() + WORKER_START_MS
    for (;;) {
      const seen = Atomics.load(this.flag, 0)
      const got = receiveMessageOnPort(this.port)
      if (got !== undefined && (got.message as { ready?: boolean }).ready === true) { this.ready = true; return }
      const left = deadline - Date.now()
      if (left <= 0) throw new ClusterStoreError('unavailable', `the PostgreSQL client did not load within ${WORKER_START_MS} ms`)
      Atomics.wait(this.flag, 0, seen, left)
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.port.close()
    await this.worker.terminate()
  }
}
