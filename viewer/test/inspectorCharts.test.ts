import { test } from 'node:test'
import assert from 'node:assert/strict'
import ELK from 'elkjs/lib/elk.bundled.js'
import { describeMachine } from '@doorbell/machines'
import { DEFINITIONS, firedTransitions, transitionsOf } from '../src/inspector/definitions'
import { layoutChart } from '../src/inspector/layout'

test('every machine the product runs is known by its id, with its transitions', () => {
  for (const id of ['deviceCall', 'viewerCall', 'lock', 'link', 'kvsMaster', 'kvsIce', 'iotLink', 'cloudChannel', 'feed']) {
    assert.ok(DEFINITIONS.has(id), id)
    assert.ok(transitionsOf(id)!.length > 0, id)
  }
  assert.equal(transitionsOf('no-such-machine'), null)
})

test('ELK lays out every machine: each transition is an arrow or a loop row, inside the chart', async () => {
  const elk = new (ELK as unknown as new () => { layout: never })()
  for (const [id, machine] of DEFINITIONS) {
    const ts = transitionsOf(id)!
    const chart = await layoutChart(describeMachine(machine), ts, elk)
    const loops = chart.states.reduce((n, s) => n + s.loops.length, 0)
    assert.equal(chart.edges.length + loops, ts.length, id)
    assert.equal(chart.states.length, countStates(describeMachine(machine)), `${id}: every state drawn`)
    for (const e of chart.edges) {
      for (const p of e.points) assert.ok(p.x >= -1 && p.y >= -1 && p.x <= chart.width + 1 && p.y <= chart.height + 1, `${id}: ${e.transition.id} inside`)
    }
  }
})

const countStates = (n: { states: unknown[] }): number => 1 + (n.states as Array<{ states: unknown[] }>).reduce((s, c) => s + countStates(c), 0)

test('the transitions that fired are told from the states before and after and the events taken', () => {
  const lock = transitionsOf('lock')!
  const ids = (ts: Array<{ id: string }>): string[] => ts.map((t) => t.id)
  assert.deepEqual(ids(firedTransitions(lock, ['UNLOCK'], 'locked', 'unlocking')), ['locked|UNLOCK|0'])
  assert.deepEqual(ids(firedTransitions(lock, ['xstate.after.relockDelay.lock.unlocked'], 'unlocked', 'relocking')), ['unlocked|xstate.after.relockDelay.lock.unlocked|0'])
  // UNLOCK while unlocked re-enters it (the relock timer starts again): a loop.
  assert.deepEqual(ids(firedTransitions(lock, ['UNLOCK'], 'unlocked', 'unlocked')), ['unlocked|UNLOCK|0'])
  // An event the state does not answer fires nothing.
  assert.deepEqual(firedTransitions(lock, ['RETRY'], 'locked', 'locked'), [])
  const call = transitionsOf('deviceCall')!
  // An admitted offer: the admission's done event (a wildcard on the root), then the OFFER it raised.
  const fired = firedTransitions(call, ['xstate.done.actor.admit:s1', 'OFFER'], 'ringing', 'inCall')
  assert.deepEqual(fired.map((t) => `${t.source}:${t.label}`), [':done: any actor', 'ringing:OFFER'])
  const viewer = transitionsOf('viewerCall')!
  // A parent's transition taken from deep inside it.
  const bye = firedTransitions(viewer, ['HANGUP'], { active: { connected: 'ready' } }, 'ended')
  assert.equal(bye.length, 1)
  assert.equal(bye[0]!.target, 'ended')
})
