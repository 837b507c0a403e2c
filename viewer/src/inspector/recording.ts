import type { InspectBatch, TraceEntry } from '@doorbell/core'
import { applyEntry, emptyModel, type CallSpan, type InspectorModel } from './model'

/**
 * Everything the page received, in arrival order, without the rosters' repeats: what the live
 * view, pause, step and scrub, and exported traces are made from. Bounded: past `max` entries the
 * oldest are dropped (an actor's announcement is kept, so its chart still shows).
 */
export class Recording {
  readonly entries: TraceEntry[] = []
  private readonly announced = new Set<string>()
  private readonly lastSnapshot = new Map<string, { at: number, text: string }>()
  private readonly lastEvent = new Map<string, string>()

  constructor (private readonly max = 20_000) {}

  /** Adds a batch's new entries; returns how many were new. */
  add (batch: InspectBatch): TraceEntry[] {
    const added: TraceEntry[] = []
    for (const event of batch.events) {
      if (event.type === 'actor') {
        if (this.announced.has(event.actor)) continue
        this.announced.add(event.actor)
      } else if (event.type === 'snapshot') {
        const text = `${event.status}:${JSON.stringify(event.value)}`
        const last = this.lastSnapshot.get(event.actor)
        if (last && (event.at < last.at || (event.at === last.at && last.text === text))) continue
        this.lastSnapshot.set(event.actor, { at: event.at, text })
      } else {
        const id = `${event.at}|${event.event}`
        if (this.lastEvent.get(event.to) === id) continue
        this.lastEvent.set(event.to, id)
      }
      const entry = { source: batch.source, event }
      this.entries.push(entry)
      added.push(entry)
    }
    if (this.entries.length > this.max) {
      const cut = this.entries.length - Math.floor(this.max * 0.9)
      const kept = this.entries.slice(0, cut).filter((e) => e.event.type === 'actor')
      this.entries.splice(0, cut, ...kept)
    }
    return added
  }

  /** Replaces the recording with a loaded trace's entries. */
  load (entries: TraceEntry[]): void {
    this.entries.length = 0
    this.announced.clear()
    this.lastSnapshot.clear()
    this.lastEvent.clear()
    for (const e of entries) this.add({ source: e.source, events: [e.event] })
  }
}

/** The model as it was at time `t` (every entry recorded at or before it, in arrival order). */
export function modelAt (entries: readonly TraceEntry[], t = Infinity): InspectorModel {
  const model = emptyModel()
  entries.forEach((e, i) => { if (e.event.at <= t) applyEntry(model, e, i) })
  return model
}

/**
 * The times a step stops at: each distinct time an actor took an event (its state after it), oldest
 * first. The state's time, not the event's: a step shows what the event did.
 */
export function stepTimes (entries: readonly TraceEntry[]): number[] {
  const after = entries.filter((e) => e.event.type === 'snapshot' && e.event.event !== 'xstate.init')
  return [...new Set(after.map((e) => e.event.at))].sort((a, b) => a - b)
}

/** How long after a call's end its trace and filter reach: a screen's last states arrive late. */
export const CALL_TAIL_MS = 1500

/**
 * The entries of a time range, replayable on their own: every actor's announcement, each actor's
 * last state before the range (where the replay starts), then everything inside the range.
 */
export function entriesBetween (entries: readonly TraceEntry[], from: number, to: number): TraceEntry[] {
  const baseline = new Map<string, number>()
  entries.forEach((e, i) => { if (e.event.type === 'snapshot' && e.event.at < from) baseline.set(e.event.actor, i) })
  const starts = new Set(baseline.values())
  return entries.filter((e, i) => e.event.type === 'actor' ? e.event.at <= to : starts.has(i) || (e.event.at >= from && e.event.at <= to))
}

export const callRange = (call: CallSpan, now: number): { from: number, to: number } =>
  ({ from: call.from, to: (call.to ?? now) + CALL_TAIL_MS })
