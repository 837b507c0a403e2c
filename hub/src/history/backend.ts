import type { HistoryStore } from './store'

/**
 * What the history's ingest, routes and module use of a store: the single hub's `HistoryStore`
 * (node:sqlite and files, ./store.ts) or a cluster's `PgHistoryStore` (PostgreSQL, shared by every
 * hub: ../cluster/pgHistory.ts). Both are synchronous, as the broker's publish listener needs
 * (a ring's row is written before its snapshot's arrives). Taken from the sqlite store's own
 * signatures, so the two cannot drift apart.
 */
export type HistoryBackend = Pick<HistoryStore,
  'addRing' | 'ringEventId' | 'endRing' | 'dismiss' | 'addShown' | 'addTalk' | 'addDoor' | 'setSnapshot' | 'snapshot' |
  'get' | 'list' | 'markSeen' | 'delete' | 'prune' | 'count' | 'close'>
