import { Worker } from 'node:worker_threads'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { HistoryBackend } from './backend'
import type { HistoryStore } from './store'
import { READS, type ThreadCall, type ThreadError, type ThreadMethod, type ThreadReply } from './threadCalls'

/** The history's thread stopped, or was closed: the call was not run. */
export class HistoryThreadError extends Error {
  override readonly name = 'HistoryThreadError'
}

type Later<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<R> : never }

/** Calls waiting for the thread when the hub says its disk is behind (a ring is 2-4 calls). */
const BACKLOG_WARN_AT = 500

/** `behind`: `waiting` calls are unanswered (held in memory, none dropped); `caught-up`: all answered, `waiting` the most that waited. */
export type BacklogListener = (state: 'behind' | 'caught-up', waiting: number) => void

/** A thread that dies is started again at most this often a minute; past it, calls fail (a call that kills it every time). */
const RESTARTS_PER_MINUTE = 3

/** The thread's file beside this one: .ts under tsx (the hub's way of running), .js from a build. */
const THREAD_FILE = new URL(`./storeThread${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)

/**
 * One hub's history (`HistoryStore`, node:sqlite) on a thread of its own (storeThread.ts), so that
 * a slow disk holds that thread and never the broker's: a ring's row and its screens were written
 * on the broker's thread right after the fan-out, 0.2 ms most of the time but 15-140 ms when the
 * disk was busy, and the next ring waited behind it (docs/performance.md, "Fourth pass").
 *
 * - Order: every call is a message to the one thread, which runs them one at a time as sent.
 * - Nothing lost: a call waits in the thread's queue however slow the disk is; the process is kept
 *   alive while any is unanswered; `close()` answers all of them (and those their answers set off)
 *   before the database closes.
 * - Read-your-writes: a read (the API's) waits until every write sent before it is answered, and
 *   one turn more (what those answers set off is sent by then: a ring's screens after its id),
 *   then is sent; reads do not wait for each other.
 * - Errors come back as they were thrown (name, message, errno `code`: a full disk is `ENOSPC`).
 * - A thread that dies (a crash, not a store error) is started again on the same file, and the
 *   calls it had not answered are sent again in order: each write is safe to make twice (an
 *   upsert, or ON CONFLICT DO NOTHING), so a call it had made before dying changes nothing more.
 *   More than RESTARTS_PER_MINUTE deaths a minute: every waiting and later call fails, logged.
 */
export class HistoryThread implements Later<Pick<HistoryStore, ThreadMethod>>, HistoryBackend {
  private readonly pending = new Map<number, { call: ThreadCall, resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private readonly waiters: Array<{ upTo: number, resolve: () => void }> = []
  private nextId = 1
  private lastAnswered = 0
  /** The last call sent that writes (or leads to a write): what a read waits for. */
  private lastWrite = 0
  private state: 'open' | 'closing' | 'closed' = 'open'
  private failure: Error | null = null
  private closing: Promise<void> | null = null
  /** The thread was told to end (close): its exit is no failure. */
  private ending = false
  private exited: Promise<void> = Promise.resolve()
  private worker!: Worker
  private restarts: number[] = []

  /** Opens `dir/history.db` on its own thread; rejects with the store's own error (a newer schema, a folder that cannot be made). */
  static async open (dir: string, o: { onFailure?: (err: Error, restarted: boolean) => void, onBacklog?: BacklogListener, backlogWarnAt?: number } = {}): Promise<HistoryThread> {
    const worker = new Worker(THREAD_FILE, { workerData: { dir }, name: 'doorbell history' })
    const listeners: { message?: (r: ThreadReply) => void, error?: (e: Error) => void, exit?: (code: number) => void } = {}
    const opened = new Promise<void>((resolve, reject) => {
      listeners.message = (reply) => {
        if (reply.id !== 0) return
        if (reply.ok) resolve()
        else reject(errorOf(reply.error))
      }
      listeners.error = reject
      listeners.exit = (code) => { reject(new HistoryThreadError(`the history's thread ended (${code}) before the database opened`)) }
    })
    worker.on('message', listeners.message!).on('error', listeners.error!).on('exit', listeners.exit!)
    try {
      await opened
    } catch (err) {
      await worker.terminate()
      throw err
    } finally {
      // Only ours: the Worker keeps listeners of its own (its port's ref count).
      worker.off('message', listeners.message!).off('error', listeners.error!).off('exit', listeners.exit!)
    }
    return new HistoryThread(worker, dir, o.onFailure ?? (() => {}), o.onBacklog ?? (() => {}), o.backlogWarnAt ?? BACKLOG_WARN_AT)
  }

  /**
   * `onFailure`: the thread died; `restarted` says whether it was started again (else every call now fails).
   * `onBacklog`: the calls waiting reached `warnAt` (a disk that stalls: they are held in memory,
   * none dropped), then once, when all were answered, how many waited at most.
   */
  private constructor (worker: Worker, private readonly dir: string, private readonly onFailure: (err: Error, restarted: boolean) => void,
    private readonly onBacklog: BacklogListener, private readonly warnAt: number) {
    this.attach(worker)
  }

  /** The most calls waiting since the backlog was last reported (0: not behind). */
  private behind = 0

  private attach (worker: Worker): void {
    this.worker = worker
    if (this.pending.size > 0) worker.ref()
    else worker.unref()
    let why: Error | null = null
    worker.on('message', (reply: ThreadReply) => { if (this.worker === worker) this.answer(reply) })
    worker.on('error', (err) => { why = err })
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        if (this.worker === worker && !this.ending) this.restart(why ?? new HistoryThreadError(`the history's thread ended (${code})`))
        // Told to end: the close call (and anything after it) is answered now, whatever came of it,
        // and a read still waiting for a write is told the history is closed (not left waiting).
        else if (this.worker === worker) {
          this.failure ??= new HistoryThreadError('the history is closed')
          this.dropPending(this.failure)
        }
        resolve()
      })
    })
  }

  private restart (why: Error): void {
    const err = why instanceof HistoryThreadError ? why : new HistoryThreadError(`the history's thread stopped: ${why.message}`)
    const now = Date.now()
    this.restarts = this.restarts.filter((t) => now - t < 60_000)
    if (this.restarts.length >= RESTARTS_PER_MINUTE) { this.fail(err); return }
    this.restarts.push(now)
    try {
      this.attach(new Worker(THREAD_FILE, { workerData: { dir: this.dir }, name: 'doorbell history' }))
    } catch (startErr) {
      this.fail(startErr as Error)
      return
    }
    // Queued by the new thread until it has opened the database, then made in order.
    for (const p of this.pending.values()) this.worker.postMessage({ ...p.call, resent: true })
    this.onFailure(err, true)
  }

  addRing = this.write('addRing')
  endRing = this.write('endRing')
  dismiss = this.write('dismiss')
  addShownEncoded = this.write('addShownEncoded')
  /** Both lists cross as JSON strings (store.ts `addShownEncoded`): a ring's 100 screens were a structured clone of 100 objects on the broker's thread. */
  addShown = async (eventId: number, memberIds: readonly string[], screens: ReadonlyArray<{ memberId: string, screen: string }> = []): Promise<void> => {
    await this.addShownEncoded(eventId, JSON.stringify(memberIds), JSON.stringify(screens))
  }

  addTalk = this.write('addTalk')
  addDoor = this.write('addDoor')
  setSnapshot = this.write('setSnapshot')
  markSeen = this.write('markSeen')
  delete = this.write('delete')
  prune = this.write('prune')
  ringEventId = this.write('ringEventId')
  get = this.read('get')
  list = this.read('list')
  count = this.read('count')

  async snapshot (id: number): Promise<Buffer | null> {
    const jpeg = await this.read('snapshot')(id)
    // A Buffer arrives as a Uint8Array (structured clone): Fastify sends a Buffer as bytes.
    return jpeg === null ? null : Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength)
  }

  /** The thread's CPU time so far (the bench counts it beside the broker's thread). */
  async cpuUsage (): Promise<NodeJS.CpuUsage | null> {
    // Worker#cpuUsage is Node 24.6's; the hub runs on Node 22 too.
    const worker = this.worker as Worker & { cpuUsage?: () => Promise<NodeJS.CpuUsage> }
    return typeof worker.cpuUsage === 'function' ? await worker.cpuUsage() : null
  }

  /** Calls unanswered: 0 once everything sent has been written (tests, logs). */
  get backlog (): number { return this.pending.size }

  /** Answers every call (and those their answers set off), then closes the database and ends the thread. */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing'
      while (this.failure === null && this.lastAnswered < this.nextId - 1) {
        await this.answeredUpTo(this.nextId - 1)
        await nextTurn()
      }
      this.ending = true
      if (this.failure === null) await this.send('close', []).catch(() => {})
      this.state = 'closed'
      await this.worker.terminate()
      await this.exited
    })()
    await this.closing
  }

  private write<M extends ThreadMethod>(method: M): (...args: Parameters<HistoryStore[M]>) => Promise<ReturnType<HistoryStore[M]>> {
    return async (...args) => await (this.send(method, args) as Promise<ReturnType<HistoryStore[M]>>)
  }

  private read<M extends ThreadMethod>(method: M): (...args: Parameters<HistoryStore[M]>) => Promise<ReturnType<HistoryStore[M]>> {
    if (!READS.has(method)) throw new TypeError(`${method} is not a read`)
    return async (...args) => {
      if (this.lastAnswered < this.lastWrite) {
        await this.answeredUpTo(this.lastWrite)
        await nextTurn()
      }
      return await (this.send(method, args) as Promise<ReturnType<HistoryStore[M]>>)
    }
  }

  private async send (method: ThreadCall['method'], args: unknown[]): Promise<unknown> {
    if (this.failure !== null) throw this.failure
    if (this.state === 'closed' || (this.ending && method !== 'close')) throw new HistoryThreadError('the history is closed')
    const id = this.nextId
    const call: ThreadCall = { id, method, args }
    // A value that cannot cross to the thread throws here (DataCloneError): nothing was sent.
    this.worker.postMessage(call)
    this.nextId++
    if (method === 'close' || !READS.has(method)) this.lastWrite = id
    // Kept alive while anything is unwritten; not after (a test that forgets to close is not held).
    if (this.pending.size === 0) this.worker.ref()
    const answered = new Promise((resolve, reject) => { this.pending.set(id, { call, resolve, reject }) })
    if (this.behind > 0) this.behind = Math.max(this.behind, this.pending.size)
    else if (this.pending.size >= this.warnAt) { this.behind = this.pending.size; this.report('behind', this.behind) }
    return await answered
  }

  private answer (reply: ThreadReply): void {
    // A thread started again says whether it opened the database: if not, nothing can be written.
    if (reply.id === 0) { if (!reply.ok) this.fail(errorOf(reply.error)); return }
    const p = this.pending.get(reply.id)
    this.pending.delete(reply.id)
    this.lastAnswered = Math.max(this.lastAnswered, reply.id)
    if (p) {
      if (reply.ok) p.resolve(reply.value)
      else p.reject(errorOf(reply.error))
    }
    if (this.pending.size === 0) {
      this.worker.unref()
      if (this.behind > 0) { const most = this.behind; this.behind = 0; this.report('caught-up', most) }
    }
    this.wake()
  }

  /** Nothing more will be written (closed, or failed): every waiting call is told why, no backlog is left to report, and reads waiting for a write go on. */
  private dropPending (why: Error): void {
    for (const p of this.pending.values()) p.reject(why)
    this.pending.clear()
    this.behind = 0
    this.wake()
  }

  /** The backlog told to the hub; a listener that throws changes nothing here (it only logs). */
  private report (state: 'behind' | 'caught-up', waiting: number): void {
    try { this.onBacklog(state, waiting) } catch {}
  }

  private async answeredUpTo (upTo: number): Promise<void> {
    if (this.lastAnswered >= upTo || this.failure !== null) return
    await new Promise<void>((resolve) => { this.waiters.push({ upTo, resolve }) })
  }

  private wake (): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!
      if (this.lastAnswered >= w.upTo || this.failure !== null) { this.waiters.splice(i, 1); w.resolve() }
    }
  }

  /** The thread died (a crash, not a store error): every call waiting fails, and so does every later one. */
  private fail (err: Error): void {
    if (this.failure !== null) return
    this.failure = err instanceof HistoryThreadError ? err : new HistoryThreadError(`the history's thread stopped: ${err.message}`)
    this.dropPending(this.failure)
    this.onFailure(this.failure, false)
  }
}

const errorOf = (e: ThreadError): Error => {
  const err = new Error(e.message) as NodeJS.ErrnoException
  err.name = e.name
  if (e.code !== undefined) err.code = e.code
  return err
}
