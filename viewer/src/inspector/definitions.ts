import * as machines from '@doorbell/machines'
import { activePaths, describeTransitions, type MachineTransition } from '@doorbell/machines'
import type { AnyStateMachine } from 'xstate'

/**
 * Every machine the product runs, from `@doorbell/machines` (bundled with the viewer, so a trace
 * replays offline): a recorded actor is matched to its definition by machine id, the root key
 * of the statechart it reported. A machine added to the package appears here by itself.
 */
const isMachine = (v: unknown): v is AnyStateMachine =>
  typeof v === 'object' && v !== null && 'root' in v && 'provide' in v && typeof (v as { id?: unknown }).id === 'string'

export const DEFINITIONS: ReadonlyMap<string, AnyStateMachine> = new Map(
  Object.values(machines).filter(isMachine).map((m) => [m.id, m]))

const cache = new Map<string, MachineTransition[]>()

/** A machine's transitions by its id; null for a machine this viewer does not know. */
export function transitionsOf (machineId: string): MachineTransition[] | null {
  const machine = DEFINITIONS.get(machineId)
  if (!machine) return null
  let ts = cache.get(machineId)
  if (!ts) { ts = describeTransitions(machine); cache.set(machineId, ts) }
  return ts
}

const matches = (eventType: string, key: string): boolean =>
  key === eventType || (key.endsWith('.*') && eventType.startsWith(key.slice(0, -1))) || key === '*'

const depth = (path: string): number => path === '' ? 0 : path.split('.').length

/**
 * Which transitions fired between two state values, given the events the actor took in between
 * (an event it raised to itself included), in order. For each event, the deepest transition
 * whose source was active and whose target is active after; a transition that stays put needs
 * only its source. Guarded alternatives that leave the state alone cannot be told apart: the
 * first one is named.
 */
export function firedTransitions (transitions: MachineTransition[], events: string[], before: unknown, after: unknown): MachineTransition[] {
  const was = new Set(['', ...activePaths(before)])
  const now = new Set(['', ...activePaths(after)])
  const fired: MachineTransition[] = []
  const pick = (candidates: MachineTransition[]): void => {
    const sorted = [...candidates].sort((a, b) => depth(b.source) - depth(a.source))
    const moved = sorted.find((t) => !t.internal && t.source !== t.target && was.has(t.source) && now.has(t.target))
    const stayed = sorted.find((t) => (t.internal || t.source === t.target) && was.has(t.source) && now.has(t.source))
    const t = moved ?? stayed
    if (t && !fired.includes(t)) fired.push(t)
  }
  for (const e of events) pick(transitions.filter((t) => matches(e, t.eventType)))
  // An eventless (`always`) transition taken on the way.
  if (JSON.stringify(before) !== JSON.stringify(after)) {
    pick(transitions.filter((t) => t.eventType === '' && !t.internal))
  }
  return fired
}
