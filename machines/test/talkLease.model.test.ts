/**
 * The talk lease, model-tested: every simple path through the machine (xstate/graph, over the
 * state and who holds the lease, with two sessions and every event, timers included) is replayed
 * on a real actor on a SimulatedClock, and after each step the actor must agree with the model
 * and the lease's rules must hold: one holder at most, the lease ends exactly at the silence
 * deadline or the maximum, never earlier and never later, and only the holder can change it.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, getInitialSnapshot, getNextSnapshot, type SnapshotFrom } from 'xstate'
import { getSimplePaths } from 'xstate/graph'
import { talkLeaseMachine, type TalkHolder, type TalkLeaseEvent } from '../src/talkLease'

const MAX = 60_000
const SILENCE = 2000
const who = (session: string): TalkHolder => ({ session, viewerId: `v-${session}`, memberId: `m-${session}`, name: session === 'a' ? 'Kitchen tablet' : 'Sam' })

const AFTER_MAX = 'xstate.after.maxHold.talkLease.held'
const AFTER_SILENCE = 'xstate.after.silence.talkLease.held.sounding'
type ModelEvent = TalkLeaseEvent | { type: typeof AFTER_MAX } | { type: typeof AFTER_SILENCE }

const EVENTS: ModelEvent[] = [
  ...['a', 'b'].flatMap((s): ModelEvent[] => [
    { type: 'REQUEST', holder: who(s) },
    { type: 'RENEW', session: s },
    { type: 'AUDIO', session: s },
    { type: 'RELEASE', session: s },
    { type: 'LEFT', session: s, why: 'left' },
    { type: 'LEFT', session: s, why: 'connection-lost' }
  ]),
  { type: AFTER_MAX },
  { type: AFTER_SILENCE }
]

type Snap = SnapshotFrom<typeof talkLeaseMachine>
const key = (s: Snap): string => `${JSON.stringify(s.value)}|${s.context.holder?.session ?? '-'}`

describe('talk lease (model)', () => {
  const paths = getSimplePaths(talkLeaseMachine, {
    input: { maxMs: MAX, silenceMs: SILENCE },
    events: EVENTS as TalkLeaseEvent[],
    serializeState: (s) => key(s as Snap)
  })

  test('the model reaches every state with either session holding', () => {
    const reached = new Set(paths.map((p) => key(p.state as Snap)))
    assert.deepEqual([...reached].sort(), ['"free"|-', '{"held":"sounding"}|a', '{"held":"sounding"}|b'])
  })

  test('every path, then every event from its end, replays on a real actor with a simulated clock, and the rules hold at every step', () => {
    let steps = 0
    // Each simple path to a state, followed by each event (so every state sees every event, timers included).
    const walks = paths.flatMap((p) => EVENTS
      .filter((e) => !(p.state as Snap).matches('free') || (e.type !== AFTER_MAX && e.type !== AFTER_SILENCE))
      .map((e) => ({ steps: [...p.steps.map((s) => s.event as ModelEvent), e], state: null as Snap | null })))
    for (const path of walks) {
      const clock = new SimulatedClock()
      const actor = createActor(talkLeaseMachine, { input: { maxMs: MAX, silenceMs: SILENCE }, clock }).start()
      // When the current lease (re)started and when its holder was last heard: the deadlines.
      let heldAt = 0
      let heardAt = 0
      const advance = (ms: number): void => { clock.increment(ms) }
      for (const step of path.steps) {
        if ((step.type as string) === 'xstate.init') continue
        const before = actor.getSnapshot()
        const e = step as ModelEvent
        const now = (): number => clock.now()
        if (e.type === AFTER_SILENCE) {
          const deadline = heardAt + SILENCE
          advance(deadline - 1 - now())
          assert.equal(actor.getSnapshot().context.holder?.session, before.context.holder?.session, 'still held 1 ms before the silence deadline')
          advance(1)
          assert.equal(actor.getSnapshot().context.ended, 'silence')
        } else if (e.type === AFTER_MAX) {
          // The holder keeps talking (a packet just inside each silence window) until the maximum.
          const deadline = heldAt + MAX
          const holder = before.context.holder!.session
          while (now() + SILENCE - 1 < deadline) { advance(SILENCE - 1); actor.send({ type: 'AUDIO', session: holder }); heardAt = now() }
          advance(deadline - 1 - now())
          assert.equal(actor.getSnapshot().context.holder?.session, holder, 'still held 1 ms before the maximum')
          advance(1)
          assert.equal(actor.getSnapshot().context.ended, 'max')
        } else {
          advance(10)
          actor.send(e)
        }
        const after = actor.getSnapshot()
        const restarted = (e.type === 'REQUEST' || e.type === 'RENEW') && after.context.holder?.session === (e.type === 'REQUEST' ? e.holder.session : e.session)
        if (restarted) { heldAt = now(); heardAt = now() }
        if (e.type === 'AUDIO' && after.context.holder?.session === e.session) heardAt = now()
        steps++
        // The rules.
        const h = before.context.holder
        if (h !== null && e.type === 'REQUEST' && e.holder.session !== h.session) assert.equal(after.context.holder?.session, h.session, 'a second talker is refused while the lease is held')
        if (h === null && e.type === 'REQUEST') assert.equal(after.context.holder?.session, e.holder.session, 'a free lease goes to the first who asks')
        if (h !== null && 'session' in e && e.session !== h.session) assert.equal(after.context.holder?.session, h.session, `${e.type} from another session changes nothing`)
        if (h !== null && (e.type === 'RELEASE' || e.type === 'LEFT') && e.session === h.session) {
          assert.equal(after.context.holder, null, `${e.type} from the holder frees the lease`)
          assert.equal(after.context.ended, e.type === 'RELEASE' ? 'released' : e.why)
        }
        assert.equal(after.matches('free'), after.context.holder === null, 'free exactly when no one holds it')
      }
      const model = path.steps.reduce<Snap>((s, e) => (e.type as string) === 'xstate.init' ? s : getNextSnapshot(talkLeaseMachine, s, e as TalkLeaseEvent), getInitialSnapshot(talkLeaseMachine, { maxMs: MAX, silenceMs: SILENCE }))
      assert.equal(key(actor.getSnapshot()), key(model), 'the actor ends where the model does')
      actor.stop()
    }
    assert.ok(steps > 50, `${steps} steps`)
  })
})
