import type { HistoryEvent, KeptRing } from '@doorbell/core'

/**
 * The history view's pure parts (docs/history.md): how an event reads, and how pages join. The
 * component (CallHistory.vue) fetches pages from the hub's `/api/events` and shows them.
 */

/** One line for an event, in the doorbell's words. */
export function describeEvent (e: HistoryEvent): string {
  if (e.kind === 'talk') {
    const who = e.who[0] ?? 'someone'
    return e.outcome === 'allowed' ? `${who} talked${e.durationMs === null ? '' : ` for ${Math.max(1, Math.round(e.durationMs / 1000))} s`}` : `talk refused to ${who}${e.detail ? ` (${e.detail})` : ''}`
  }
  if (e.kind === 'door') {
    const who = e.who[0] ?? 'someone'
    return e.outcome === 'allowed' ? `door opened by ${who}` : `door refused to ${who}${e.detail ? ` (${e.detail})` : ''}`
  }
  if (e.outcome === 'ringing') return 'ringing'
  if (e.outcome === 'missed') return 'missed ring'
  if (e.outcome === 'dismissed') return `dismissed by ${e.who.join(', ') || 'someone'}${e.everyoneDismissed === true ? ' (everyone it was shown to)' : ''}`
  const seconds = e.durationMs === null ? null : Math.round(e.durationMs / 1000)
  return `answered by ${e.who.join(', ') || 'someone'}${seconds === null ? '' : `, ${seconds} s`}`
}

/**
 * A page joined to what is shown: newer events first, an event once (its newest copy), in the
 * hub's order (time, then id, both descending).
 */
export function mergeEvents (shown: readonly HistoryEvent[], page: readonly HistoryEvent[]): HistoryEvent[] {
  const byId = new Map<number, HistoryEvent>()
  for (const e of shown) byId.set(e.id, e)
  for (const e of page) byId.set(e.id, e)
  return [...byId.values()].sort((a, b) => b.at - a.at || b.id - a.id)
}

/** The events of one page that this member has not seen (missed rings only). */
export const unseenIds = (events: readonly HistoryEvent[]): number[] => events.filter((e) => e.unseen).map((e) => e.id)

/** One line for a ring the doorbell kept (read directly while the hub is down): how it ended, as far as the doorbell knows. */
export function describeKept (k: KeptRing): string {
  const r = k.record
  const dismissedBy = [...new Set((k.dismissals ?? []).map((d) => d.memberName))]
  // As the hub will record it: dismissed, by whom, unless someone answered.
  if (dismissedBy.length > 0 && r?.outcome !== 'answered') return `dismissed by ${dismissedBy.join(', ')}${r === null ? ' (still ringing)' : ''}`
  if (r === null) return 'rang (how it ended is not known yet)'
  if (r.outcome === 'missed') return 'missed ring'
  const who = [...new Set(r.answeredBy.map((a) => a.viewerName))]
  return `answered by ${who.join(', ') || 'someone'}, ${Math.round((r.endedAt - r.startedAt) / 1000)} s`
}
