import type { HistoryStore } from './store'

/** A value now, or later (the store on a thread of its own: threadStore.ts). */
type Now<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => R | Promise<R> : T[K] }

/**
 * What the history's ingest, routes and module use of a store: the single hub's `HistoryThread`
 * (./threadStore.ts: `HistoryStore`, node:sqlite and files, on a thread of its own, so every
 * answer comes later) or a cluster's `PgHistoryStore` (PostgreSQL, shared by every hub:
 * ../cluster/pgHistory.ts, synchronous). Callers take either: they await the answer, and send a
 * message's calls in the message's order. Taken from the sqlite store's own signatures, so the
 * stores cannot drift apart.
 */
export type HistoryBackend = Now<Pick<HistoryStore,
  'addRing' | 'ringEventId' | 'endRing' | 'dismiss' | 'addShown' | 'addTalk' | 'addDoor' | 'setSnapshot' | 'snapshot' |
  'get' | 'list' | 'markSeen' | 'delete' | 'prune' | 'count' | 'close'>>
