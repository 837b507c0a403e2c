/**
 * Inspector figures, in Node (the page's own code): how long ELK takes to lay out each machine's
 * statechart (once per machine per page), and how long the page takes to rebuild its view from a
 * full recording (what each step or scrub does). No targets: these say whether a step stays
 * interactive as machines and recordings grow.
 */
import ELK from 'elkjs/lib/elk.bundled.js'
import { describeMachine } from '@doorbell/machines'
import type { TraceEntry } from '@doorbell/core'
import { DEFINITIONS, layoutChart, modelAt, transitionsOf } from '@doorbell/viewer/inspector'
import { percentile, round, type Bench, type Figure } from './lib'

type Engine = NonNullable<Parameters<typeof layoutChart>[2]>

/** A recording of `calls` calls as the device and one screen report them: ring, answer, unlock, hang-up. */
function recordingOf (calls: number): TraceEntry[] {
  const device = { kind: 'device' as const, id: 'front-door', name: 'Front door' }
  const screen = { kind: 'viewer' as const, id: 'viewer-kitchen-t1', name: 'Kitchen' }
  const call = describeMachine(DEFINITIONS.get('deviceCall')!)
  const lock = describeMachine(DEFINITIONS.get('lock')!)
  const entries: TraceEntry[] = [
    { source: device, event: { type: 'actor', at: 0, actor: 'fd/0', name: 'deviceCall', parent: null, machine: call } },
    { source: device, event: { type: 'actor', at: 0, actor: 'fd/1', name: 'lock', parent: null, machine: lock } },
    { source: screen, event: { type: 'actor', at: 0, actor: 'vk/0', name: 'viewerCall:front-door', parent: null, machine: describeMachine(DEFINITIONS.get('viewerCall')!) } }
  ]
  const step = (source: TraceEntry['source'], at: number, to: string, event: string, value: string, payload?: Record<string, string>): void => {
    entries.push({ source, event: { type: 'event', at, from: null, to, event, ...(payload ? { payload } : {}) } })
    entries.push({ source, event: { type: 'snapshot', at: at + 1, actor: to, event, status: 'active', value } })
  }
  for (let i = 0; i < calls; i++) {
    const t = 10 + i * 1000
    step(device, t, 'fd/0', 'PRESS', 'ringing', { ringId: `r${i}` })
    step(screen, t + 5, 'vk/0', 'RING', 'incoming')
    step(device, t + 100, 'fd/0', 'OFFER', 'inCall', { sessionId: `s${i}`, viewerId: 'kitchen', path: 'lan' })
    step(device, t + 300, 'fd/1', 'UNLOCK', 'unlocking', { by: 'Kitchen' })
    step(device, t + 800, 'fd/0', 'BYE', 'idle', { sessionId: `s${i}` })
    step(device, t + 900, 'fd/1', 'xstate.done.actor.0.lock.relocking', 'locked')
  }
  return entries
}

export const inspectorBench: Bench = async (o) => {
  const elk = new (ELK as unknown as new () => Engine)()
  const rounds = o.smoke ? 1 : 5
  const layouts: number[] = []
  for (let r = 0; r < rounds + 1; r++) {
    for (const [id, machine] of DEFINITIONS) {
      const started = performance.now()
      await layoutChart(describeMachine(machine), transitionsOf(id)!, elk)
      // The first round warms the JIT up; a page lays out each machine once, after its first.
      if (r > 0) layouts.push(performance.now() - started)
    }
  }
  const entries = recordingOf(o.smoke ? 200 : 1600)
  const replays: number[] = []
  for (let r = 0; r < (o.smoke ? 3 : 20); r++) {
    const started = performance.now()
    modelAt(entries)
    replays.push(performance.now() - started)
  }
  o.log(`inspector: ${DEFINITIONS.size} machines laid out ${rounds}×, a ${entries.length}-entry recording replayed ${replays.length}×`)
  const figures: Figure[] = [
    { id: 'inspector-layout-p50', name: 'statechart layout (ELK), p50 over the machines', value: round(percentile(layouts, 50)), unit: 'ms', conditions: `elkjs 0.12 layered, ${DEFINITIONS.size} machines, after one warm-up round, Node`, group: 'inspector' },
    { id: 'inspector-layout-max', name: 'statechart layout (ELK), slowest machine', value: round(Math.max(...layouts)), unit: 'ms', conditions: `elkjs 0.12 layered, ${DEFINITIONS.size} machines, after one warm-up round, Node`, group: 'inspector' },
    { id: 'inspector-replay-p50', name: `view rebuilt from a ${entries.length}-entry recording (a step or scrub), p50`, value: round(percentile(replays, 50)), unit: 'ms', conditions: `${Math.floor((entries.length - 3) / 12)} calls of 6 events each, device and one screen, Node`, group: 'inspector' }
  ]
  return figures
}
