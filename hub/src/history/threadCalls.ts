import type { HistoryStore } from './store'

/** What the history's thread (storeThread.ts) and its caller (threadStore.ts) say to each other. */

/** The store's calls the thread runs: what `HistoryBackend` is made of (backend.ts), `close` apart. */
export const HISTORY_THREAD_CALLS = new Set([
  'addRing', 'ringEventId', 'endRing', 'dismiss', 'addShown', 'addShownEncoded', 'addTalk', 'addDoor', 'setSnapshot', 'snapshot',
  'get', 'list', 'markSeen', 'delete', 'prune', 'count'
] as const)

export type ThreadMethod = typeof HISTORY_THREAD_CALLS extends Set<infer M> ? M : never

/**
 * The calls that only read (the API's, retention's): they wait for the writes sent before them
 * (read-your-writes, threadStore.ts), not for each other. `ringEventId` is not one of them: the
 * ingest asks it on its way to a write (a ring's picture), so reads wait for it like a write.
 */
export const READS: ReadonlySet<ThreadMethod> = new Set<ThreadMethod>(['snapshot', 'get', 'list', 'count'])

/** `resent`: sent again to a thread started after a crash (the first may have run it already). */
export interface ThreadCall { id: number, method: ThreadMethod | 'close', args: unknown[], resent?: true }

/** An error as it crosses the thread: name, message and errno code (a full disk is `ENOSPC`). */
export interface ThreadError { name: string, message: string, code?: string }

/** Id 0 is the thread's first word: the database opened, or why not. */
export type ThreadReply = { id: number, ok: true, value: unknown } | { id: number, ok: false, error: ThreadError }

export type StoreCall<M extends ThreadMethod> = HistoryStore[M]
