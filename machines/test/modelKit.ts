/**
 * The generic part of the model-based tests (model.test.ts, preview.model.test.ts): paths from
 * a machine's graph (`buildModel`), their replay on a real actor (`replay`), and time steps on a
 * SimulatedClock (`Timers`). How the paths are made and replayed: model.test.ts's header.
 */
import assert from 'node:assert/strict'
import type { AnyStateMachine, EventObject, SimulatedClock } from 'xstate'
import { getAdjacencyMap, getShortestPaths, type AdjacencyMap } from 'xstate/graph'
import type { DeviceState, Reply } from '@doorbell/core'

// ------------------------------------------------------------------ generic: paths from the graph

/** Events of the model: the machine's own, the `xstate.*` ones of timers and children, and `TICK`. */
export type ModelEvent = EventObject & Record<string, unknown>

/** What the generic part needs of a machine snapshot. */
export interface ModelSnapshot {
  value: unknown
  context: unknown
  _nodes: ReadonlyArray<{ ownEvents: readonly string[] }>
}

export interface Step<S> {
  event: ModelEvent
  /** The model's state before the event (the adjacency map's representative of its abstract state). */
  from: S
  /** The model's state after the event. */
  to: S
}

export interface ModelSpec<S extends ModelSnapshot> {
  name: string
  machine: AnyStateMachine
  input: unknown
  /** The abstract state: everything transitions, event choice and checked invariants depend on. */
  key: (s: S) => string
  /** Representative events for a state. */
  events: (s: S) => ModelEvent[]
  depth: number
  maxSelfLoops: number
}

export interface Model<S> {
  initial: S
  paths: Array<Array<Step<S>>>
  stats: { states: number, transitions: number, walks: number, extra: number, longest: number }
}

export const TICK: ModelEvent = { type: 'TICK' }
export const serializeEvent = (e: ModelEvent): string => JSON.stringify(e)

export const ownEvents = new WeakMap<ModelSnapshot, string[]>()

/** The state's own `xstate.after.*` / `xstate.done.actor.*` / `xstate.error.actor.*` events, read off the definition. */
export function internalEvents (s: ModelSnapshot, error: unknown): ModelEvent[] {
  let own = ownEvents.get(s)
  if (own === undefined) ownEvents.set(s, own = [...new Set(s._nodes.flatMap((n) => [...n.ownEvents]))])
  return own.flatMap((type): ModelEvent[] => {
    // Wildcards (`xstate.done.actor.*`: the call's admissions) are not events: the spec names the real ones.
    if (type.endsWith('*')) return []
    if (type.startsWith('xstate.after.') || type.startsWith('xstate.done.actor.')) return [{ type }]
    if (type.startsWith('xstate.error.actor.')) return [{ type, error }]
    return []
  })
}

export function buildModel<S extends ModelSnapshot> (spec: ModelSpec<S>): Model<S> {
  // The graph utilities' types want the machine's own event union; ours adds timer, child and TICK events.
  const options = { input: spec.input, serializeState: (s: S) => spec.key(s), events: (s: S) => spec.events(s) } as never
  const adj = getAdjacencyMap(spec.machine, options) as unknown as AdjacencyMap<S, ModelEvent>
  const keys = Object.keys(adj)
  const initialKey = keys[0]!
  const initial = adj[initialKey as keyof typeof adj]!.state
  const vertex = (k: string) => adj[k as keyof typeof adj]!
  let transitions = 0
  for (const k of keys) transitions += Object.keys(vertex(k).transitions).length

  // Every walk up to `depth` steps.
  const covered = new Set<string>()
  const walks: Array<Array<Step<S>>> = []
  const stack: Array<Step<S>> = []
  const walk = (k: string, selfLoops: number, lastSelfLoop: string | null): void => {
    const v = vertex(k)
    let extended = false
    if (stack.length < spec.depth) {
      for (const [es, t] of Object.entries(v.transitions)) {
        const next = spec.key(t.state)
        const self = next === k
        // The same self-loop twice in a row adds nothing (no time passes between the two).
        if (self && (selfLoops >= spec.maxSelfLoops || es === lastSelfLoop)) continue
        extended = true
        covered.add(`${k}|${es}`)
        stack.push({ event: t.event, from: v.state, to: t.state })
        walk(next, selfLoops + (self ? 1 : 0), self ? es : null)
        stack.pop()
      }
    }
    if (!extended) walks.push([...stack])
  }
  walk(initialKey, 0, null)

  // Every transition the walks did not take: the shortest path to its source, then the transition.
  const shortest = new Map<string, ModelEvent[]>()
  for (const p of getShortestPaths(spec.machine, options) as unknown as Array<{ state: S, steps: Array<{ event: ModelEvent }> }>) {
    shortest.set(spec.key(p.state), p.steps.slice(1).map((s) => s.event))
  }
  assert.equal(shortest.size, keys.length, `${spec.name}: every abstract state has a shortest path`)
  const toSteps = (events: ModelEvent[]): Array<Step<S>> => {
    let k = initialKey
    return events.map((event) => {
      const v = vertex(k)
      const t = v.transitions[serializeEvent(event) as keyof typeof v.transitions]
      assert.ok(t, `${spec.name}: no transition ${serializeEvent(event)} from ${k}`)
      covered.add(`${k}|${serializeEvent(event)}`)
      k = spec.key(t.state)
      return { event: t.event, from: v.state, to: t.state }
    })
  }
  const extra: Array<Array<Step<S>>> = []
  for (const k of [...keys].sort((a, b) => shortest.get(b)!.length - shortest.get(a)!.length)) {
    for (const [es, t] of Object.entries(vertex(k).transitions)) {
      if (covered.has(`${k}|${es}`)) continue
      const head = toSteps(shortest.get(k)!)
      assert.equal(head.length === 0 ? initialKey : spec.key(head.at(-1)!.to), k, `${spec.name}: the shortest path reaches ${k}`)
      covered.add(`${k}|${es}`)
      extra.push([...head, { event: t.event, from: vertex(k).state, to: t.state }])
    }
  }
  assert.equal(covered.size, transitions, `${spec.name}: every abstract transition is taken`)
  const paths = [...walks, ...extra]
  return {
    initial,
    paths,
    stats: { states: keys.length, transitions, walks: walks.length, extra: extra.length, longest: Math.max(...paths.map((p) => p.length)) }
  }
}

/** The system under test for one path: a real actor, its test doubles, and the checks. */
export interface Harness<S> {
  /** Performs a step on the real system. */
  exec: (step: Step<S>) => void | Promise<void>
  /** The actor must be in the model's abstract state, and the invariants must hold. */
  check: (model: S) => void
  /** Checks at the end of the path. */
  finish: () => void | Promise<void>
  stop: () => void
}

export const describeEvent = (e: ModelEvent): string => {
  const { type, ...rest } = e
  const parts = type.split('.')
  // xstate.after.<delay>.<state id>, xstate.done.actor.<invoke id ending in the state>
  const short = type.startsWith('xstate.after.') ? `after:${parts[2]}` : type.startsWith('xstate.') ? `${parts[1]}:${parts.at(-1)}` : type
  const detail = Object.entries(rest)
    .filter(([k]) => !['at', 'sdp', 'viewerName'].includes(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? describeObject(v) : String(v)}`)
  return detail.length > 0 ? `${short}(${detail.join(',')})` : short
}

/** Rings, device states and replies, in short. */
export const describeObject = (v: object): string => {
  if ('ringId' in v && 'count' in v) return `${String(v.ringId)}#${String(v.count)}`
  if ('call' in v) {
    const d = v as DeviceState
    return `${d.call.status}:${d.call.ringId}${d.lastRing ? `,lastRing:${d.lastRing.ringId}:${d.lastRing.outcome}` : ''},lock:${d.lock ? `v${d.lock.version}` : 'none'}`
  }
  if ('type' in v) {
    const r = v as Reply
    return r.type === 'lock' ? `lock:v${r.lock.version}` : `${r.type}:${r.id}`
  }
  return JSON.stringify(v)
}

export async function replay<S> (model: Model<S>, create: () => Harness<S>, keyOf: (s: S) => string): Promise<void> {
  for (const [i, path] of model.paths.entries()) {
    const h = create()
    let at = 0
    try {
      h.check(model.initial)
      for (const step of path) {
        const pending = h.exec(step)
        if (pending) await pending
        h.check(step.to)
        at++
      }
      await h.finish()
    } catch (err) {
      const steps = path.map((s, j) => `${j === at ? '>>' : '  '} ${describeEvent(s.event)} -> ${keyOf(s.to)}`)
      const message = err instanceof Error ? err.message : String(err)
      throw new Error(`path ${i + 1} of ${model.paths.length}, step ${at + 1} of ${path.length}:\n${steps.join('\n')}\n${message}`, { cause: err })
    } finally {
      h.stop()
    }
  }
}

/**
 * Time steps. Tracks when the actor entered its current state, and advances the clock: to the
 * deadline of the model's timer (`xstate.after.<delay>`), or short of it (`TICK`; a minute where
 * the model has no timer). Deadlines come from the configured delays, not from the actor.
 */
export class Timers {
  private startedAt = 0
  private current: string | null = null
  constructor (readonly clock: SimulatedClock, readonly delays: Record<string, number>) {}
  /** Call with a key that changes whenever the actor (re)enters a state, i.e. restarts its timer. */
  observe (key: string): void {
    if (key !== this.current) {
      this.current = key
      this.startedAt = this.clock.now()
    }
  }

  /** `xstate.after.*`: to the deadline of a timer of `ms`. */
  fire (ms: number): void {
    const wait = this.startedAt + ms - this.clock.now()
    assert.ok(wait > 0, `the timer of ${ms} ms should have fired already`)
    this.clock.increment(wait)
  }

  /** `TICK`: 1 ms before the deadline of a timer of `ms`, or a minute when none runs. */
  tick (ms: number | null): void {
    this.clock.increment(ms === null ? 60_000 : Math.max(0, this.startedAt + ms - 1 - this.clock.now()))
  }

  /** Performs `event` if it is a time step from the model's state `from`; false if it is not one. */
  step (event: ModelEvent, from: unknown): boolean {
    const ms = (name: string): number => {
      const value = this.delays[name]
      assert.ok(value !== undefined, `no configured delay ${name}`)
      return value
    }
    const delay = delayOf(event.type)
    if (delay !== null) {
      this.fire(ms(delay))
      return true
    }
    if (event.type !== TICK.type) return false
    const due = internalEvents(from as ModelSnapshot, null).map((e) => delayOf(e.type)).filter((d) => d !== null).map(ms)
    this.tick(due.length > 0 ? Math.min(...due) : null)
    return true
  }
}

export const delayOf = (type: string): string | null =>
  type.startsWith('xstate.after.') ? type.split('.')[2]! : null

/** Lets promise callbacks (the lock driver's answer) reach the machine. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export const sorted = (xs: Iterable<string>): string[] => [...xs].sort()

