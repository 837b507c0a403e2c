/**
 * Model-based tests of the reconnecting machines (the KVS master, the IoT link, the viewer's cloud
 * channel, the console's feed), as machines/test/model.test.ts does for the call machines: paths
 * generated from each machine's definition with xstate/graph (`getAdjacencyMap` over an
 * abstraction of the snapshot, every walk up to `depth` steps, then the shortest path to every
 * transition no walk took), replayed on a real actor, provided with test doubles, on a
 * SimulatedClock; the actor must be in the model's abstract state after every step, and the
 * invariants must hold.
 *
 * Time: the clock records every timer the actor sets (its length and deadline). A step
 * `xstate.after.<delay>` moves the clock to the deadline of the pending timer whose length is the
 * one expected for that delay (computed here from the input and the shared backoff, not read from
 * the actor: a wrong delay is a missing timer); `TICK` moves it to 1 ms before the earliest deadline
 * (a minute when none is pending), so a timer that fires early is caught.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromPromise, type AnyStateMachine, type EventObject } from 'xstate'
import { getAdjacencyMap, getShortestPaths, type AdjacencyMap } from 'xstate/graph'
import { backoffDelay } from '../src/backoff'
import { kvsMasterMachine, type KvsMasterInput, type KvsReason } from '../src/kvsMaster'
import { iotLinkMachine } from '../src/iotLink'
import { kvsIceMachine } from '../src/kvsIce'
import { cloudChannelMachine, type CloudChannelInput } from '../src/cloudChannel'
import { feedMachine, type FeedFacts, type FeedInput } from '../src/feed'

// ------------------------------------------------------------------ generic

type ModelEvent = EventObject & Record<string, unknown>
interface Snap { value: unknown, context: any, _nodes: ReadonlyArray<{ ownEvents: readonly string[] }> }
interface Step { event: ModelEvent, from: Snap, to: Snap }
interface Spec {
  name: string
  machine: AnyStateMachine
  input: unknown
  key: (s: Snap) => string
  events: (s: Snap) => ModelEvent[]
  depth: number
}
const TICK: ModelEvent = { type: 'TICK' }

/** The state's own timer and child events, read off the definition. */
function internalEvents (s: Snap): ModelEvent[] {
  return [...new Set(s._nodes.flatMap((n) => [...n.ownEvents]))].flatMap((type): ModelEvent[] => {
    if (type.startsWith('xstate.after.') || type.startsWith('xstate.done.actor.')) return [{ type }]
    if (type.startsWith('xstate.error.actor.')) return [{ type, error: new Error('refused') }]
    return []
  })
}

function paths (spec: Spec): { paths: Step[][], states: number, transitions: number } {
  const options = { input: spec.input, serializeState: (s: Snap) => spec.key(s), events: (s: Snap) => spec.events(s) } as never
  const adj = getAdjacencyMap(spec.machine, options) as unknown as AdjacencyMap<Snap, ModelEvent>
  const keys = Object.keys(adj)
  const vertex = (k: string) => adj[k as keyof typeof adj]!
  let transitions = 0
  for (const k of keys) transitions += Object.keys(vertex(k).transitions).length
  const covered = new Set<string>()
  const out: Step[][] = []
  const stack: Step[] = []
  const walk = (k: string, last: string | null): void => {
    let extended = false
    if (stack.length < spec.depth) {
      for (const [es, t] of Object.entries(vertex(k).transitions)) {
        const next = spec.key(t.state)
        if (next === k && es === last) continue // the same self-loop twice in a row adds nothing
        extended = true
        covered.add(`${k}|${es}`)
        stack.push({ event: t.event, from: vertex(k).state, to: t.state })
        walk(next, next === k ? es : null)
        stack.pop()
      }
    }
    if (!extended) out.push([...stack])
  }
  walk(keys[0]!, null)
  const shortest = new Map<string, ModelEvent[]>()
  for (const p of getShortestPaths(spec.machine, options) as unknown as Array<{ state: Snap, steps: Array<{ event: ModelEvent }> }>) {
    shortest.set(spec.key(p.state), p.steps.slice(1).map((s) => s.event))
  }
  for (const k of keys) {
    for (const [es, t] of Object.entries(vertex(k).transitions)) {
      if (covered.has(`${k}|${es}`)) continue
      let at = keys[0]!
      const head = shortest.get(k)!.map((event) => {
        const v = vertex(at)
        const next = v.transitions[JSON.stringify(event) as keyof typeof v.transitions]!
        covered.add(`${at}|${JSON.stringify(event)}`)
        at = spec.key(next.state)
        return { event: next.event, from: v.state, to: next.state }
      })
      covered.add(`${k}|${es}`)
      out.push([...head, { event: t.event, from: vertex(k).state, to: t.state }])
    }
  }
  assert.equal(covered.size, transitions, `${spec.name}: every abstract transition is taken`)
  return { paths: out, states: keys.length, transitions }
}

/** A SimulatedClock that knows its pending timers. */
class TimerClock extends SimulatedClock {
  readonly pending = new Map<unknown, { ms: number, at: number }>()
  override setTimeout (fn: (...args: any[]) => void, timeout: number): number {
    // eslint-disable-next-line prefer-const
    let id: number
    const wrapped = () => { this.pending.delete(id); fn() }
    id = super.setTimeout(wrapped, timeout) as number
    this.pending.set(id, { ms: timeout, at: this.now() + timeout })
    return id
  }

  override clearTimeout (id: unknown): void {
    this.pending.delete(id)
    super.clearTimeout(id as number)
  }

  /** To the deadline of the pending timer of `ms`. */
  fire (ms: number, what: string): void {
    const t = [...this.pending.values()].filter((p) => p.ms === ms).sort((a, b) => a.at - b.at)[0]
    assert.ok(t, `${what}: no pending timer of ${ms} ms (pending: ${[...this.pending.values()].map((p) => p.ms).join(', ') || 'none'})`)
    this.increment(t.at - this.now())
  }

  /** To 1 ms before the earliest deadline (not at all before a timer of 0 ms), or a minute on. */
  tick (): void {
    const next = Math.min(...[...this.pending.values()].map((p) => p.at))
    if (!Number.isFinite(next)) { this.increment(60_000); return }
    if (next - 1 > this.now()) this.increment(next - 1 - this.now())
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

interface Harness {
  exec: (step: Step) => Promise<void>
  check: (model: Snap) => void
  stop: () => void
}

async function replay (spec: Spec, model: { paths: Step[][] }, create: () => Harness): Promise<void> {
  for (const [i, path] of model.paths.entries()) {
    const h = create()
    let at = 0
    try {
      for (const step of path) {
        await h.exec(step)
        h.check(step.to)
        at++
      }
    } catch (err) {
      const steps = path.map((s, j) => `${j === at ? '>>' : '  '} ${s.event.type} -> ${spec.key(s.to)}`)
      throw new Error(`${spec.name}: path ${i + 1} of ${model.paths.length}, step ${at + 1}:\n${steps.join('\n')}\n${(err as Error).message}`, { cause: err })
    } finally {
      h.stop()
    }
  }
}

/** A promise actor's double: each run waits for the test to settle it. */
function deferredActor<I> () {
  const runs: Array<{ input: I, resolve: () => void, reject: (e: unknown) => void, state: 'pending' | 'done' | 'aborted' }> = []
  const logic = fromPromise<void, I>(({ input, signal }) => new Promise<void>((resolve, reject) => {
    const run = { input, resolve: () => { run.state = 'done'; resolve() }, reject: (e: unknown) => { run.state = 'done'; reject(e) }, state: 'pending' as 'pending' | 'done' | 'aborted' }
    signal.addEventListener('abort', () => { if (run.state === 'pending') run.state = 'aborted' })
    runs.push(run)
  }))
  const pending = () => runs.filter((r) => r.state === 'pending')
  return { logic, runs, pending }
}

const leaf = (value: unknown): string => typeof value === 'string' ? value : JSON.stringify(value)

// ------------------------------------------------------------------ KVS master

const KVS_INPUT = { renewAfterMs: 10_000, idleRenewMs: 4000, openTimeoutMs: 1000, backoff: { firstMs: 100, maxMs: 400 } } satisfies KvsMasterInput

const kvsSpec: Spec = {
  name: 'kvsMaster',
  machine: kvsMasterMachine,
  input: KVS_INPUT,
  key: (s) => JSON.stringify([s.value, s.context.connected, Math.min(s.context.attempt, 3)]),
  events: (s) => [
    { type: 'OPENED' },
    { type: 'PENDING_FAILED', error: 'closed' },
    ...(s.context.connected ? [{ type: 'CURRENT_LOST', error: 'closed' }] : []),
    { type: 'SENT' },
    ...internalEvents(s),
    TICK
  ],
  depth: 5
}

function kvsHarness (): Harness {
  const clock = new TimerClock()
  const prepare = deferredActor<{ reason: KvsReason, failures: number }>()
  let current = false
  let pendingClient = false
  let opens = 0
  let ups = 0
  let downs = 0
  let openedAt = 0
  let sentAt = 0
  /** Backoffs since a connection last opened: the expected wait's exponent. */
  let backoffs = 0
  const actor = createActor(kvsMasterMachine.provide({
    actors: { prepare: prepare.logic },
    actions: {
      openPending: () => { assert.ok(pendingClient, 'opens a client it has'); opens++ },
      promote: () => { assert.ok(pendingClient, 'promotes a client it has'); current = true; pendingClient = false },
      retirePending: () => { pendingClient = false },
      up: () => { ups++ },
      down: () => { downs++ }
    }
  }), { input: KVS_INPUT, clock })
  actor.start()
  return {
    async exec ({ event, from }) {
      const t = event.type
      if (t.startsWith('xstate.after.')) {
        const delay = t.split('.')[2]!
        const ms = delay === 'openTimeout'
          ? KVS_INPUT.openTimeoutMs
          : delay === 'idleRenew'
            ? KVS_INPUT.idleRenewMs
            : delay === 'renewAge' ? KVS_INPUT.renewAfterMs : backoffDelay(backoffs - 1, KVS_INPUT.backoff)
        clock.fire(ms, delay)
        if (delay === 'renewAge') assert.equal(clock.now(), openedAt + KVS_INPUT.renewAfterMs, 'renewed renewAfterMs after opening')
        if (delay === 'idleRenew') assert.equal(clock.now(), sentAt + KVS_INPUT.idleRenewMs, 'renewed idleRenewMs after the last message')
      } else if (t === 'TICK') {
        clock.tick()
      } else if (t.startsWith('xstate.done.actor.')) {
        const [run] = prepare.pending()
        assert.ok(run, 'a prepare in flight')
        pendingClient = true
        run.resolve()
        await settle()
      } else if (t.startsWith('xstate.error.actor.')) {
        prepare.pending()[0]!.reject(new Error('ResourceNotFoundException'))
        await settle()
      } else {
        if (t === 'OPENED' && from.value === 'opening') { openedAt = sentAt = clock.now(); backoffs = 0 }
        if (t === 'SENT') sentAt = clock.now()
        if (t === 'CURRENT_LOST') current = false
        actor.send(event as never)
      }
      if (actor.getSnapshot().value === 'backoff' && from.value !== 'backoff') backoffs++
    },
    check (model) {
      const s = actor.getSnapshot()
      assert.equal(kvsSpec.key(s as unknown as Snap), kvsSpec.key(model), 'in the model\'s state')
      assert.equal(s.context.connected, current, 'connected exactly while a connection is current')
      assert.equal(ups - downs, current ? 1 : 0, '"up" and "down" alternate with the connection')
      assert.equal(prepare.pending().length, s.value === 'preparing' ? 1 : 0, 'one prepare, only while preparing')
      if (s.value === 'opening') assert.ok(pendingClient && opens > 0, 'a pending client, opened')
      if (s.value === 'backoff') {
        const want = backoffDelay(backoffs - 1, KVS_INPUT.backoff)
        assert.ok([...clock.pending.values()].some((p) => p.ms === want), `a backoff of ${want} ms`)
      }
      if (typeof s.value === 'object') assert.ok(current && !pendingClient, 'open: one connection, none pending')
    },
    stop: () => { actor.stop() }
  }
}

// ------------------------------------------------------------------ the KVS master's TURN servers

const ICE_RETRY_MS = 30_000
const ICE_REFRESH_MS = 240_000
const iceSpec: Spec = {
  name: 'kvsIce',
  machine: kvsIceMachine,
  input: { retryMs: ICE_RETRY_MS },
  key: (s) => JSON.stringify(s.value),
  events: (s) => [
    { type: 'FETCH' },
    ...internalEvents(s),
    // No channel yet: the fetch answers null.
    ...internalEvents(s).filter((e) => e.type.startsWith('xstate.done.actor.')).map((e) => ({ ...e, output: null })),
    TICK
  ],
  depth: 6
}

function iceHarness (): Harness {
  const clock = new TimerClock()
  const runs: Array<{ resolve: (ms: number | null) => void, reject: (e: unknown) => void, aborted: boolean, settled: boolean }> = []
  const actor = createActor(kvsIceMachine.provide({
    actors: {
      fetchIce: fromPromise<number | null>(({ signal }) => new Promise((resolve, reject) => {
        const run = { resolve: (ms: number | null) => { run.settled = true; resolve(ms) }, reject: (e: unknown) => { run.settled = true; reject(e) }, aborted: false, settled: false }
        signal.addEventListener('abort', () => { run.aborted = true })
        runs.push(run)
      }))
    }
  }), { input: { retryMs: ICE_RETRY_MS }, clock })
  actor.start()
  const inFlight = () => runs.filter((r) => !r.settled && !r.aborted)
  return {
    async exec ({ event, from }) {
      const t = event.type
      if (t.startsWith('xstate.after.')) {
        clock.fire(from.value === 'fresh' ? ICE_REFRESH_MS : ICE_RETRY_MS, t.split('.')[2]!)
      } else if (t === 'TICK') {
        clock.tick()
      } else if (t.startsWith('xstate.done.actor.')) {
        inFlight()[0]!.resolve('output' in event ? null : ICE_REFRESH_MS)
        await settle()
      } else if (t.startsWith('xstate.error.actor.')) {
        inFlight()[0]!.reject(new Error('AccessDeniedException'))
        await settle()
      } else {
        actor.send(event as never)
      }
    },
    check (model) {
      const s = actor.getSnapshot()
      assert.equal(iceSpec.key(s as unknown as Snap), iceSpec.key(model))
      assert.equal(inFlight().length, s.value === 'fetching' ? 1 : 0, 'one fetch, only while fetching')
      const timers = [...clock.pending.values()].map((p) => p.ms)
      assert.deepEqual(timers, s.value === 'fresh' ? [ICE_REFRESH_MS] : s.value === 'retrying' ? [ICE_RETRY_MS] : [], 'refreshed when the answer says, retried after retryMs, nothing otherwise')
    },
    stop: () => { actor.stop() }
  }
}

// ------------------------------------------------------------------ IoT link

const IOT_BACKOFF = { firstMs: 200, maxMs: 800, jitter: 0.25 }
const iotSpec: Spec = {
  name: 'iotLink',
  machine: iotLinkMachine,
  input: { backoff: IOT_BACKOFF },
  key: (s) => JSON.stringify([s.value, Math.min(s.context.attempt, 4)]),
  events: (s) => [{ type: 'CONNECTED' }, { type: 'CLOSED' }, ...internalEvents(s), TICK],
  depth: 7
}

function iotHarness (): Harness {
  const clock = new TimerClock()
  let reconnects = 0
  let ups = 0
  let losses = 0
  let retries = 0
  const random = Math.random
  // The jitter's random source, fixed for the replay: every wait is then known.
  Math.random = () => 0.75
  const actor = createActor(iotLinkMachine.provide({
    actions: { reconnect: () => { reconnects++ }, connected: () => { ups++ }, lost: () => { losses++ } }
  }), { input: { backoff: IOT_BACKOFF }, clock })
  actor.start()
  const expected = (): number => retries === 1 ? IOT_BACKOFF.firstMs : backoffDelay(retries - 1, IOT_BACKOFF, () => 0.75)
  return {
    async exec ({ event, from }) {
      if (event.type.startsWith('xstate.after.')) {
        clock.fire(expected(), 'backoff')
      } else if (event.type === 'TICK') {
        clock.tick()
      } else {
        if (event.type === 'CONNECTED') retries = 0
        actor.send(event as never)
      }
      if (actor.getSnapshot().value === 'retrying' && from.value !== 'retrying') retries++
    },
    check (model) {
      const s = actor.getSnapshot()
      assert.equal(iotSpec.key(s as unknown as Snap), iotSpec.key(model))
      assert.equal(ups - losses, s.value === 'up' ? 1 : 0, 'lost once per time up')
      if (s.value === 'retrying') assert.ok([...clock.pending.values()].some((p) => p.ms === expected()), `a wait of ${expected()} ms`)
      else assert.equal(clock.pending.size, 0, 'no timer outside retrying')
      assert.ok(reconnects <= ups + losses + 10_000)
    },
    stop: () => { actor.stop(); Math.random = random }
  }
}

// ------------------------------------------------------------------ cloud channel

const CHANNEL_INPUT = { openTimeoutMs: 1000, idleMs: 5000 } satisfies CloudChannelInput

const channelSpec: Spec = {
  name: 'cloudChannel',
  machine: cloudChannelMachine,
  input: CHANNEL_INPUT,
  key: (s) => JSON.stringify([s.value, s.context.error !== null]),
  events: (s) => [{ type: 'OPENED' }, { type: 'REFUSED', message: 'refused' }, { type: 'CLOSED' }, { type: 'TOUCH' }, ...internalEvents(s), TICK],
  depth: 5
}

function channelHarness (inUse: boolean): () => Harness {
  return () => {
    const clock = new TimerClock()
    const connect = deferredActor<unknown>()
    const did: string[] = []
    let openedAt = 0
    let usedAt = 0
    const actor = createActor(cloudChannelMachine.provide({
      actors: { connect: connect.logic },
      actions: {
        openClient: () => { did.push('openClient') },
        flush: () => { did.push('flush') },
        failChannel: () => { did.push('fail') },
        closeIdle: () => { did.push('closeIdle') },
        closedUnderCall: () => { did.push('closedUnderCall') }
      },
      guards: { inUse: () => inUse }
    }), { input: CHANNEL_INPUT, clock })
    actor.start()
    return {
      async exec ({ event }) {
        const t = event.type
        if (t.startsWith('xstate.after.')) {
          const delay = t.split('.')[2]!
          clock.fire(delay === 'openTimeout' ? CHANNEL_INPUT.openTimeoutMs : CHANNEL_INPUT.idleMs, delay)
          if (delay === 'openTimeout') assert.equal(clock.now(), CHANNEL_INPUT.openTimeoutMs, 'failed openTimeoutMs after it began')
          if (delay === 'idle') { assert.equal(clock.now(), usedAt + CHANNEL_INPUT.idleMs, 'idle idleMs after its last use'); usedAt = clock.now() }
        } else if (t === 'TICK') {
          clock.tick()
        } else if (t.startsWith('xstate.done.actor.')) {
          connect.pending()[0]!.resolve()
          await settle()
        } else if (t.startsWith('xstate.error.actor.')) {
          connect.pending()[0]!.reject(new Error('there is no signaling channel'))
          await settle()
        } else {
          const before = actor.getSnapshot()
          actor.send(event as never)
          if (t === 'OPENED' && before.matches({ starting: 'opening' })) openedAt = usedAt = clock.now()
          if (t === 'TOUCH' && before.matches('open')) usedAt = clock.now()
        }
      },
      check (model) {
        const s = actor.getSnapshot()
        assert.equal(channelSpec.key(s as unknown as Snap), channelSpec.key(model))
        const done = s.value === 'failed' || s.value === 'closed'
        assert.equal(s.status, done ? 'done' : 'active', 'failed and closed are final')
        if (done) assert.equal(clock.pending.size, 0, 'no timer left')
        // Every failure is told to the waiting offers once; a close is one or the other.
        const endings = did.filter((d) => d === 'fail' || d === 'closeIdle' || d === 'closedUnderCall')
        assert.equal(endings.length, done ? 1 : 0, `ended once: ${did.join(', ')}`)
        assert.equal(s.value === 'failed', did.includes('fail'))
        if (s.value === 'failed') assert.ok(s.context.error, 'a reason for the resident')
        if (s.matches('open') || s.value === 'closed') assert.ok(did.includes('openClient') && did.indexOf('flush') > did.indexOf('openClient'), 'what waited is sent only once open')
        assert.ok(!(inUse && did.includes('closeIdle')), 'never closed as idle while a call needs it')
        void openedAt
      },
      stop: () => { actor.stop() }
    }
  }
}

// ------------------------------------------------------------------ console feed

const FEED_INPUT = { backoff: { firstMs: 1000, maxMs: 4000 }, stallMs: 5000 } satisfies FeedInput
const update = (change: Partial<FeedFacts>): ModelEvent => ({ type: 'UPDATE', change })

const feedSpec: Spec = {
  name: 'feed',
  machine: feedMachine,
  input: FEED_INPUT,
  key: (s) => JSON.stringify([s.value, s.context.facts, Math.min(s.context.retries, 3), s.context.dropped, s.context.promptly, s.context.shown]),
  events: (s) => {
    const f = s.context.facts as FeedFacts
    return [
      update({ linkUp: !f.linkUp }),
      update({ online: f.online !== true }),
      update({ refused: !f.refused }),
      // What the call machine does (the runtime's hang-up and start make it so).
      ...(f.call === 'idle' || f.call === 'ended' ? [update({ call: 'connecting' }), update({ call: 'incoming' })] : []),
      ...(f.call === 'connecting' ? [update({ call: 'connected' })] : []),
      ...(f.call === 'connected' ? [update({ firstFrame: true }), update({ mediaOk: !f.mediaOk })] : []),
      ...(f.call !== 'idle' && f.call !== 'ended' ? [update({ call: 'ended', firstFrame: false })] : []),
      // Two timers at once (a retry waiting, a stall watched): the model takes the retry's; which one
      // is due first depends on when each began, which the abstract state does not hold.
      ...internalEvents(s).filter((e) => !(e.type.startsWith('xstate.after.stall') && JSON.stringify(s.value).includes('"waiting"'))),
      TICK
    ]
  },
  depth: 4
}

function feedHarness (): Harness {
  const clock = new TimerClock()
  const start = deferredActor<unknown>()
  const did: string[] = []
  const shown: string[] = []
  let retries = 0
  let runsSeen = 0
  const actor = createActor(feedMachine.provide({
    actors: { startCall: start.logic },
    actions: {
      hangUp: () => { did.push('hangUp') },
      dismiss: () => { did.push('dismiss') },
      showTile: ({ context }) => { shown.push(context.shown!) }
    }
  }), { input: FEED_INPUT, clock })
  actor.start()
  return {
    async exec ({ event, from, to }) {
      const t = event.type
      if (t.startsWith('xstate.after.')) {
        const delay = t.split('.')[2]!
        // The retry's wait: at once (first call, or back online), else the backoff of the retries so far.
        const ms = delay === 'stall' ? FEED_INPUT.stallMs : from.context.waitMs as number
        if (delay === 'retry') {
          const want = to.context.retries === 0 || from.context.waitMs === 0 ? from.context.waitMs : backoffDelay(Math.min(retries, 30), FEED_INPUT.backoff)
          assert.equal(ms, want, 'the retry waits the shared backoff')
        }
        clock.fire(ms, delay)
      } else if (t === 'TICK') {
        clock.tick()
      } else if (t.startsWith('xstate.done.actor.')) {
        start.pending()[0]!.resolve()
        await settle()
      } else if (t.startsWith('xstate.error.actor.')) {
        start.pending()[0]!.reject(new Error('no ICE settings'))
        await settle()
      } else {
        actor.send(event as never)
      }
      retries = actor.getSnapshot().context.retries > 0 ? actor.getSnapshot().context.retries - 1 : 0
    },
    check (model) {
      const s = actor.getSnapshot()
      assert.equal(feedSpec.key(s as unknown as Snap), feedSpec.key(model))
      const f = s.context.facts
      assert.ok(start.pending().length <= 1, 'one call started at a time')
      if (start.runs.length > runsSeen) assert.ok(!f.refused && f.online !== false && f.linkUp && (f.call === 'idle' || f.call === 'ended'), 'a call is started only to a device it may call, online, with the hub up, and no call on')
      runsSeen = start.runs.length
      if (s.context.shown === 'live') assert.ok(f.call === 'connected' && f.firstFrame && f.mediaOk, 'live only with frames coming')
      if (f.refused) assert.equal(s.value, 'refused')
      if (s.value === 'refused' || s.value === 'offline') assert.equal(clock.pending.size, 0, 'no retry and no stall timer while refused or offline')
      if (shown.length > 0) assert.equal(shown.at(-1), s.context.shown, 'the tile says what the machine says')
      void leaf
    },
    stop: () => { actor.stop() }
  }
}

// ------------------------------------------------------------------ the tests

describe('model-based: the reconnecting machines, every path, invariants in every state', () => {
  for (const [spec, harness] of [
    [kvsSpec, kvsHarness],
    [iceSpec, iceHarness],
    [iotSpec, iotHarness],
    [channelSpec, channelHarness(false)],
    [{ ...channelSpec, name: 'cloudChannel (a call in progress)', machine: cloudChannelMachine.provide({ guards: { inUse: () => true } }) }, channelHarness(true)],
    [feedSpec, feedHarness]
  ] as const) {
    const model = paths(spec)
    test(`${spec.name}: ${model.paths.length} paths`, async (t) => {
      t.diagnostic(`${spec.name}: ${model.paths.length} paths over ${model.transitions} transitions between ${model.states} abstract states`)
      await replay(spec, model, harness)
    })
  }
})
