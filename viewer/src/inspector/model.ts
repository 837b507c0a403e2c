import type { InspectBatch, InspectEvent, MachineNode } from '@doorbell/core'
import { activePaths } from '@doorbell/machines'

/** What the inspector page knows: every actor of every source, and the recent events. */
export interface InspectedActor {
  key: string
  name: string
  source: InspectBatch['source']
  parent: string | null
  machine: MachineNode | null
  value: unknown
  status: 'active' | 'done' | 'error' | 'stopped'
  /** The states it went through, newest last, repeats collapsed: reads as its history. */
  trail: string[]
  lastAt: number
}

export interface TimelineEntry {
  at: number
  from: string
  to: string
  event: string
}

export interface InspectorModel {
  actors: Map<string, InspectedActor>
  timeline: TimelineEntry[]
}

const TIMELINE_MAX = 300
const TRAIL_MAX = 50

export function emptyModel (): InspectorModel {
  return { actors: new Map(), timeline: [] }
}

/** "active.connected.ready" for nested values; parallel regions joined with " | ". */
export function valueText (value: unknown): string {
  if (value === null || value === undefined) return ''
  const paths = activePaths(value)
  const leaves = paths.filter((p) => !paths.some((q) => q.startsWith(p + '.')))
  return leaves.join(' | ')
}

/** Folds one batch into the model. Re-sent rosters (same actor, same time) change nothing. */
export function applyBatch (model: InspectorModel, batch: InspectBatch): void {
  const name = (key: string | null): string => {
    if (key === null) return '(outside)'
    const a = model.actors.get(key)
    return a ? `${a.source.name} · ${a.name}` : key
  }
  for (const e of batch.events) apply(model, batch.source, e, name)
}

function apply (model: InspectorModel, source: InspectBatch['source'], e: InspectEvent, name: (k: string | null) => string): void {
  switch (e.type) {
    case 'actor': {
      if (model.actors.has(e.actor)) return
      model.actors.set(e.actor, { key: e.actor, name: e.name, source, parent: e.parent, machine: e.machine, value: null, status: 'active', trail: [], lastAt: e.at })
      return
    }
    case 'snapshot': {
      const a = model.actors.get(e.actor)
      if (!a || e.at < a.lastAt) return
      a.lastAt = e.at
      a.status = e.status
      a.value = e.value
      const text = valueText(e.value)
      if (text && a.trail.at(-1) !== text) {
        a.trail.push(text)
        if (a.trail.length > TRAIL_MAX) a.trail.shift()
      }
      return
    }
    case 'event': {
      const last = model.timeline.at(-1)
      const entry = { at: e.at, from: name(e.from), to: name(e.to), event: e.event }
      if (last && last.at === entry.at && last.to === entry.to && last.event === entry.event) return
      model.timeline.push(entry)
      if (model.timeline.length > TIMELINE_MAX) model.timeline.splice(0, model.timeline.length - TIMELINE_MAX)
    }
  }
}
