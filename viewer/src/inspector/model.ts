import type { InspectBatch, InspectEvent, MachineNode, TraceEntry } from '@doorbell/core'
import { activePaths, type MachineTransition } from '@doorbell/machines'
import { firedTransitions, transitionsOf } from './definitions'

/** What the inspector page knows: every actor of every source, and the recent events. */
export interface InspectedActor {
  key: string
  name: string
  source: InspectBatch['source']
  parent: string | null
  machine: MachineNode | null
  /** Its definition's transitions (matched by machine id), null when this viewer does not know it. */
  transitions: MachineTransition[] | null
  value: unknown
  status: 'active' | 'done' | 'error' | 'stopped'
  /** The states it went through, newest last, repeats collapsed: reads as its history. */
  trail: string[]
  lastAt: number
  /** The transitions that fired, oldest first, each with the event that caused it. */
  fired: FiredTransition[]
  /** Event types it took since its last snapshot (what the next snapshot's transitions answered). */
  pending: string[]
}

export interface FiredTransition {
  /** The recorded entry's index: tells a fresh firing from an old one. */
  seq: number
  at: number
  transition: MachineTransition
  event: string
}

export interface TimelineEntry {
  at: number
  from: string
  to: string
  event: string
}

/** One arrow of the sequence view: an event from one lifeline (an actor) to another. */
export interface SequenceEntry {
  seq: number
  at: number
  /** Lifeline keys: an actor's key, or "<source>/(outside)" for what a program's code sent. */
  from: string
  to: string
  event: string
  /** The path that carried it (home network, direct, cloud), when the event says. */
  path: string | null
  payload: unknown
  before: string
  /** Filled when the receiver's next state arrives. */
  after: string | null
}

export interface Lifeline {
  key: string
  name: string
  source: InspectBatch['source']
}

/** From a ring (the device's call leaving idle) until its call machine is idle again. */
export interface CallSpan {
  n: number
  source: string
  from: number
  to: number | null
}

export interface InspectorModel {
  actors: Map<string, InspectedActor>
  timeline: TimelineEntry[]
  sequence: SequenceEntry[]
  lifelines: Map<string, Lifeline>
  calls: CallSpan[]
  /** The time of the last entry applied. */
  now: number
}

const TIMELINE_MAX = 300
const TRAIL_MAX = 50
const FIRED_MAX = 40
const SEQUENCE_MAX = 2000

export function emptyModel (): InspectorModel {
  return { actors: new Map(), timeline: [], sequence: [], lifelines: new Map(), calls: [], now: 0 }
}

/** "active.connected.ready" for nested values; parallel regions joined with " | ". */
export function valueText (value: unknown): string {
  if (value === null || value === undefined) return ''
  const paths = activePaths(value)
  const leaves = paths.filter((p) => !paths.some((q) => q.startsWith(p + '.')))
  return leaves.join(' | ')
}

/** Folds one batch into the model. Re-sent rosters (same actor, same time) change nothing. */
export function applyBatch (model: InspectorModel, batch: InspectBatch, seq = 0): void {
  for (const e of batch.events) applyEntry(model, { source: batch.source, event: e }, seq)
}

const outside = (source: InspectBatch['source']): Lifeline =>
  ({ key: `${source.id}/(outside)`, name: `${source.name} · outside`, source })

/**
 * Who sent an event that came from outside the machines: a screen's call machine when the event
 * names that screen's viewer (an offer, a bye, an unlock "by"), else the receiving program's code.
 */
function senderOf (model: InspectorModel, source: InspectBatch['source'], payload: unknown): Lifeline {
  const fields = (payload ?? {}) as Record<string, unknown>
  const viewerId = typeof fields.viewerId === 'string' ? fields.viewerId : null
  // A door command names its member ("by"), which is the name the screen reports under.
  const by = typeof fields.by === 'string' ? fields.by : null
  if ((viewerId !== null || by !== null) && source.kind === 'device') {
    const screen = [...model.actors.values()].filter((a) => a.source.kind === 'viewer' &&
      (viewerId !== null ? a.source.id.startsWith(`viewer-${viewerId}-`) : a.source.name === by))
    const call = screen.find((a) => a.name === `viewerCall:${source.id}`) ?? screen[0]
    if (call) return lifelineOf(call)
  }
  return outside(source)
}

const lifelineOf = (a: InspectedActor): Lifeline => ({ key: a.key, name: `${a.source.name} · ${a.name}`, source: a.source })

/** Folds one recorded entry into the model; `seq` is its index in the recording. */
export function applyEntry (model: InspectorModel, { source, event: e }: TraceEntry, seq: number): void {
  model.now = Math.max(model.now, e.at)
  const name = (key: string | null): string => {
    if (key === null) return '(outside)'
    const a = model.actors.get(key)
    return a ? `${a.source.name} · ${a.name}` : key
  }
  switch (e.type) {
    case 'actor': {
      if (model.actors.has(e.actor)) return
      const transitions = e.machine ? transitionsOf(e.machine.key) : null
      model.actors.set(e.actor, { key: e.actor, name: e.name, source, parent: e.parent, machine: e.machine, transitions, value: null, status: 'active', trail: [], lastAt: e.at, fired: [], pending: [] })
      return
    }
    case 'snapshot': {
      const a = model.actors.get(e.actor)
      if (!a || e.at < a.lastAt) return
      // A roster re-sent: the same state at the same time, not a new step.
      if (e.at === a.lastAt && e.status === a.status && JSON.stringify(e.value) === JSON.stringify(a.value)) return
      const before = a.value
      a.lastAt = e.at
      a.status = e.status
      a.value = e.value
      if (a.transitions && before !== null) {
        const events = [e.event, ...a.pending].filter((t, i, all) => all.indexOf(t) === i)
        for (const t of firedTransitions(a.transitions, events, before, e.value)) {
          a.fired.push({ seq, at: e.at, transition: t, event: t.label })
          if (a.fired.length > FIRED_MAX) a.fired.shift()
        }
      }
      a.pending = []
      const text = valueText(e.value)
      if (text && a.trail.at(-1) !== text) {
        a.trail.push(text)
        if (a.trail.length > TRAIL_MAX) a.trail.shift()
      }
      for (let i = model.sequence.length - 1; i >= 0 && i >= model.sequence.length - 50; i--) {
        const s = model.sequence[i]!
        if (s.to === e.actor && s.after === null) s.after = text
      }
      if (a.name === 'deviceCall') trackCall(model, source.id, before, e.value, e.at)
      return
    }
    case 'event': {
      const last = model.timeline.at(-1)
      const entry = { at: e.at, from: name(e.from), to: name(e.to), event: e.event }
      if (last && last.at === entry.at && last.to === entry.to && last.event === entry.event) return
      model.timeline.push(entry)
      if (model.timeline.length > TIMELINE_MAX) model.timeline.splice(0, model.timeline.length - TIMELINE_MAX)
      const to = model.actors.get(e.to)
      to?.pending.push(e.event)
      const from = e.from !== null && model.actors.has(e.from) ? lifelineOf(model.actors.get(e.from)!) : senderOf(model, source, e.payload)
      const receiver = to ? lifelineOf(to) : { key: e.to, name: e.to, source }
      for (const l of [from, receiver]) if (!model.lifelines.has(l.key)) model.lifelines.set(l.key, l)
      const fields = (e.payload ?? {}) as Record<string, unknown>
      model.sequence.push({
        seq,
        at: e.at,
        from: from.key,
        to: receiver.key,
        event: e.event,
        path: typeof fields.path === 'string' ? fields.path : null,
        payload: e.payload ?? null,
        before: to ? valueText(to.value) : '',
        after: null
      })
      if (model.sequence.length > SEQUENCE_MAX) model.sequence.splice(0, model.sequence.length - SEQUENCE_MAX)
    }
  }
}

function trackCall (model: InspectorModel, source: string, before: unknown, after: unknown, at: number): void {
  const open = model.calls.findLast((c) => c.source === source && c.to === null)
  if (after === 'idle' && open) open.to = at
  else if (after !== 'idle' && after !== null && (before === 'idle' || before === null) && !open) {
    model.calls.push({ n: model.calls.length + 1, source, from: at, to: null })
  }
}
