import type { AnyStateMachine, InspectionEvent } from 'xstate'

/** The parts of an actor ref the inspector reads (inspection events type refs loosely). */
type Ref = { sessionId: string, id?: string, systemId?: string, _parent?: Ref, logic?: unknown }
import type { InspectEvent, MachineNode } from '@doorbell/core'

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

/** Dot-joined paths of every active state in a state value ("active", "active.connected", ...). */
export function activePaths (value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value]
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) =>
    [prefix + key, ...activePaths(child, `${prefix}${key}.`)])
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
        o.emit({ type: 'event', at, from: ev.sourceRef ? key(ev.sourceRef as unknown as Ref) : null, to: key(ev.actorRef as unknown as Ref), event: ev.event.type })
        break
      case '@xstate.microstep': {
        if (shown.has(ev.event) || ev.event.type.startsWith('xstate.')) return
        shown.add(ev.event)
        const self = key(ev.actorRef as unknown as Ref)
        o.emit({ type: 'event', at, from: self, to: self, event: ev.event.type })
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
