import type { HistoryEvent } from '@doorbell/core'

/**
 * An `events` row as the API shows it: one mapping for SQLite (store.ts) and a cluster's
 * PostgreSQL (hub/src/cluster/pgHistory.ts). `seen`: the ids this member has seen;
 * `everyone`: the dismissed ids every member it was shown to dismissed.
 */
export function eventOfRow (r: Record<string, unknown>, seen: ReadonlySet<number>, everyone: ReadonlySet<number>): HistoryEvent {
  const id = Number(r.id)
  const outcome = String(r.outcome) as HistoryEvent['outcome']
  return {
    id,
    kind: String(r.kind) as HistoryEvent['kind'],
    deviceId: String(r.device_id),
    deviceName: String(r.device_name),
    at: Number(r.at),
    outcome,
    who: JSON.parse(String(r.who)) as string[],
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    detail: r.detail === null ? null : String(r.detail),
    ringId: r.ring_id === null ? null : String(r.ring_id),
    snapshot: r.snapshot_bytes !== null,
    noPicture: r.no_picture === null ? null : String(r.no_picture),
    unseen: r.kind === 'ring' && outcome === 'missed' && !seen.has(id),
    ...(outcome === 'dismissed' ? { everyoneDismissed: everyone.has(id) } : {})
  }
}

/**
 * One page of `events` rows, asked for one more than `limit` (newest first): the events as the API
 * shows them and the `next` cursor (`at-id` of the last one shown) when more follow.
 */
export function eventsPage (rows: Array<Record<string, unknown>>, limit: number, seenOf: (ids: number[]) => number[], everyoneDismissed: (ids: number[]) => ReadonlySet<number>): { events: HistoryEvent[], next: string | null } {
  const page = rows.slice(0, limit)
  const seen = new Set(seenOf(page.map((r) => Number(r.id))))
  const dismissedByAll = everyoneDismissed(page.filter((r) => r.outcome === 'dismissed').map((r) => Number(r.id)))
  const last = page.at(-1)
  return {
    events: page.map((r) => eventOfRow(r, seen, dismissedByAll)),
    next: rows.length > limit && last ? `${Number(last.at)}-${Number(last.id)}` : null
  }
}
