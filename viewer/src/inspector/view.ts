import type { TraceEntry } from '@doorbell/core'
import { activePaths } from '@doorbell/machines'
import type { CallSpan, InspectedActor, InspectorModel, Lifeline, SequenceEntry } from './model'
import { callRange } from './recording'

/** The pure parts of what the page shows: filters, lifeline order, lit states. Unit-tested. */

export interface SequenceFilter {
  /** A lifeline key: only the events from or to it. */
  actor: string | null
  /** A call's number: only the events of that call (its span, plus a short tail). */
  call: number | null
}

export function filterSequence (model: InspectorModel, filter: SequenceFilter): SequenceEntry[] {
  const call = filter.call === null ? null : model.calls.find((c) => c.n === filter.call) ?? null
  const range = call ? callRange(call, model.now) : null
  return model.sequence.filter((s) =>
    (filter.actor === null || s.from === filter.actor || s.to === filter.actor) &&
    (range === null || (s.at >= range.from && s.at <= range.to)))
}

/** The lifelines the shown events touch: the doorbells' first (each beside its outside), then the screens'. */
export function lifelinesFor (model: InspectorModel, entries: SequenceEntry[]): Lifeline[] {
  const used = new Set(entries.flatMap((s) => [s.from, s.to]))
  const rank = (l: Lifeline): string => `${l.source.kind === 'viewer' ? 1 : 0}|${l.source.name}|${l.key.endsWith('/(outside)') ? 0 : 1}|${l.name}`
  return [...model.lifelines.values()].filter((l) => used.has(l.key)).sort((a, b) => rank(a).localeCompare(rank(b)))
}

/** The charts shown: machines first, then bare actors that are alive; by source then name. */
export function shownActors (model: InspectorModel): InspectedActor[] {
  return [...model.actors.values()]
    .filter((a) => a.machine !== null || a.status === 'active')
    .sort((a, b) => a.source.name.localeCompare(b.source.name) || a.key.localeCompare(b.key))
}

export const litStates = (a: InspectedActor): Set<string> => new Set(['', ...activePaths(a.value)])

/** The transitions to highlight on an actor's chart: those that fired at its latest step (live), or at `at` (paused). */
export function firedNow (a: InspectedActor, at: number | null): { ids: Set<string>, key: number } {
  const last = a.fired.at(-1)
  if (!last) return { ids: new Set(), key: 0 }
  const step = a.fired.filter((f) => at === null ? f.seq === last.seq : f.at === at)
  return { ids: new Set(step.map((f) => f.transition.id)), key: step.at(-1)?.seq ?? 0 }
}

export const callLabel = (c: CallSpan): string =>
  `Call ${c.n} · ${new Date(c.from).toISOString().slice(11, 19)}${c.to === null ? ' (in progress)' : ''}`

/** The recorded time span, for the scrub bar. */
export function timeSpan (entries: readonly TraceEntry[]): { from: number, to: number } | null {
  if (entries.length === 0) return null
  let from = Infinity
  let to = 0
  for (const e of entries) { from = Math.min(from, e.event.at); to = Math.max(to, e.event.at) }
  return { from, to }
}
