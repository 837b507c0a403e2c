import type { AnyStateMachine, InspectionEvent } from 'xstate'

/** The parts of an actor ref the inspector reads (inspection events type refs loosely). */
type Ref = { sessionId: string, id?: string, systemId?: string, _parent?: Ref, logic?: unknown }
import { eventPayload, type InspectEvent, type MachineNode } from '@doorbell/core'

type AnyStateNode = AnyStateMachine['root']

/** A machine's statechart as plain data, read from its definition: what the inspector draws. */
export function describeMachine (machine: AnyStateMachine): MachineNode {
  const walk = (node: AnyStateNode): MachineNode => ({
    key: node.key,
    path: node.path.join('.'),
    type: node.type,
    initial: node.type === 'compound' ? (node.initial.target[0]?.key ?? null) : null,
    states: Object.values(node.states as Record<string, AnyStateNode>).map(walk),
    on: [...node.transitions.keys()]
      .map((type) => type.startsWith('xstate.after.') ? `after ${type.split('.')[2]}` : type)
      .filter((type) => !type.startsWith('xstate.'))
  })
  return walk(machine.root)
}

/** One transition of a statechart, as the inspector draws it: an arrow from `source` to `target`. */
export interface MachineTransition {
  /** Stable within a machine: the source path, the event and the transition's index. */
  id: string
  source: string
  /** The first target's path; the source itself for a transition without a target (drawn as a loop). */
  target: string
  /** The event type as XState keys it (`xstate.after.<delay>.<id>` for a delay, `` for `always`). */
  eventType: string
  /** What the arrow says: the event, "after <delay>", "done: <actor>", "error: <actor>", "always". */
  label: string
  guard: string | null
  delay: string | null
  /** No target: actions only, the state is not left. */
  internal: boolean
}

type TransitionDef = { eventType: string, target?: ReadonlyArray<{ path: string[] }> | undefined, guard?: unknown, reenter?: boolean, delay?: unknown }

const guardName = (guard: unknown): string | null => {
  if (guard === undefined || guard === null) return null
  if (typeof guard === 'string') return guard
  if (typeof guard === 'function') return guard.name || 'guard'
  if (typeof guard === 'object' && 'type' in guard && typeof guard.type === 'string') return guard.type
  return 'guard'
}

const eventLabel = (eventType: string, delay: string | null): string => {
  if (delay !== null) return `after ${delay}`
  if (eventType === '') return 'always'
  const actor = /^xstate\.(done|error)\.actor\.(.*)$/.exec(eventType)
  // Invoked actors are keyed "<n>.<machine>.<state path>": the state says which.
  if (actor) return `${actor[1]}: ${actor[2] === '*' ? 'any actor' : actor[2]!.replace(/^\d+\./, '')}`
  if (eventType.startsWith('xstate.done.state.')) return 'done'
  return eventType
}

/**
 * Every transition of a machine, read from its definition (`on`, `after`, `always`, invoke's
 * `onDone`/`onError`), in document order: what the inspector draws as arrows.
 */
export function describeTransitions (machine: AnyStateMachine): MachineTransition[] {
  const out: MachineTransition[] = []
  const add = (source: string, defs: readonly TransitionDef[], eventType: string): void => {
    defs.forEach((t, i) => {
      const delay = t.delay === undefined ? null : String(t.delay)
      const target = t.target?.[0]?.path.join('.') ?? source
      out.push({
        id: `${source}|${eventType}|${i}`,
        source,
        target,
        eventType,
        label: eventLabel(eventType, delay),
        guard: guardName(t.guard),
        delay,
        internal: t.target === undefined || t.target.length === 0
      })
    })
  }
  const walk = (node: AnyStateNode): void => {
    const source = node.path.join('.')
    for (const [eventType, defs] of node.transitions as Map<string, TransitionDef[]>) add(source, defs, eventType)
    if (node.always) add(source, node.always as unknown as TransitionDef[], '')
    for (const child of Object.values(node.states as Record<string, AnyStateNode>)) walk(child)
  }
  walk(machine.root)
  return out
}

/** Dot-joined paths of every active state in a state value ("active", "active.connected", ...). */
export function activePaths (value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value]
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) =>
    [prefix + key, ...activePaths(child, `${prefix}${key}.`)])
}

/** The event's fields, redacted (no keys, tokens, proofs or signatures leave the recorder). */
const payloadOf = (event: { type: string }): { payload?: NonNullable<ReturnType<typeof eventPayload>> } => {
  const payload = eventPayload(event as { type: string } & Record<string, unknown>)
  return payload === null ? {} : { payload }
}

export interface RecorderOptions {
  /** Distinguishes this source's actors from another's (a device id, a viewer tab). */
  source: string
  now: () => number
  emit: (event: InspectEvent) => void
}

/**
 * Turns XState's inspection events into the inspector's compact events. Pass the result as
 * `createActor(machine, { inspect })`; with inspection off, pass nothing and nothing runs.
 */
export function inspectionRecorder (o: RecorderOptions): (event: InspectionEvent) => void {
  const key = (ref: Ref): string => `${o.source}/${ref.sessionId}`
  const nameOf = (ref: Ref): string => ref.systemId ?? ref.id ?? ref.sessionId
  // The events already on the timeline: an event a machine raises to itself (an admitted offer
  // goes on as an OFFER) reaches the inspector only as a microstep, with an event object of its own.
  const shown = new WeakSet<object>()
  return (ev) => {
    const at = o.now()
    switch (ev.type) {
      case '@xstate.actor': {
        const ref = ev.actorRef as unknown as Ref
        const logic = ref.logic as AnyStateMachine | undefined
        const isMachine = logic !== undefined && typeof logic === 'object' && 'root' in logic
        o.emit({
          type: 'actor',
          at,
          actor: key(ref),
          name: nameOf(ref),
          parent: ref._parent ? key(ref._parent) : null,
          machine: isMachine ? describeMachine(logic) : null
        })
        break
      }
      case '@xstate.event':
        // Internal housekeeping events (init, done.invoke, timers) stay out of the timeline.
        shown.add(ev.event)
        if (ev.event.type.startsWith('xstate.') && ev.event.type !== 'xstate.init') return
        o.emit({ type: 'event', at, from: ev.sourceRef ? key(ev.sourceRef as unknown as Ref) : null, to: key(ev.actorRef as unknown as Ref), event: ev.event.type, ...payloadOf(ev.event) })
        break
      case '@xstate.microstep': {
        if (shown.has(ev.event) || ev.event.type.startsWith('xstate.')) return
        shown.add(ev.event)
        const self = key(ev.actorRef as unknown as Ref)
        o.emit({ type: 'event', at, from: self, to: self, event: ev.event.type, ...payloadOf(ev.event) })
        break
      }
      case '@xstate.snapshot': {
        const snap = ev.snapshot as { status: 'active' | 'done' | 'error' | 'stopped', value?: unknown }
        o.emit({
          type: 'snapshot',
          at,
          actor: key(ev.actorRef as unknown as Ref),
          event: ev.event.type,
          status: snap.status,
          value: (snap.value ?? null) as Extract<InspectEvent, { type: 'snapshot' }>['value']
        })
        break
      }
      default:
        break
    }
  }
}
