import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Grant, parseTrace, peek } from '@doorbell/core'
import { eventually, startLan } from '../src/harness'
import { nodeViewer } from '../src/nodeViewer'
import { ringAnswerOpenHangUp } from '../src/fullCall'
import { pairViewer } from '../src/trust'

/** A real LAN call (ring, answer, open door, hang-up) with the doorbell's trace keeping as given. */
async function aCall (keepTraces: { calls: number } | undefined) {
  const lan = await startLan(keepTraces ? { keepTraces } : {})
  const member = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'owner' })
  const viewer = nodeViewer(lan.hub.mqttUrl, member)
  await eventually('the retained state of the doorbell', () => viewer.home.doorbells.get('front-door'))
  await ringAnswerOpenHangUp(lan, viewer)
  await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'))
  return { lan, member, viewer }
}

test('trace keeping on: the call is kept in the data folder, replayable, with the member\'s token and key nowhere in it', { timeout: 60_000 }, async (t) => {
  const { lan, member, viewer } = await aCall({ calls: 3 })
  t.after(async () => { await viewer.close(); await lan.stop() })
  const traces = lan.device.traces!
  await eventually('the call\'s trace kept', () => traces.list().length === 1)
  const [kept] = traces.list()
  assert.deepEqual(kept!.who, ['Kitchen tablet'])
  assert.ok(kept!.durationMs > 0)
  const text = traces.read(kept!.id)!
  const grant = peek(Grant, member.credential)
  assert.ok(grant.ok)
  const memberKey = grant.value.key
  for (const [what, secret] of [['token', member.token], ['credential', member.credential], ['credential\'s signature', member.credential.split('.')[1]!], ['public key', memberKey]] as const) {
    assert.ok(!text.includes(secret), `no ${what} in the kept trace`)
  }
  const trace = parseTrace(text)
  const events = trace.entries.map((e) => e.event)
  const called = new Set(events.flatMap((e) => e.type === 'event' ? [e.event] : []))
  for (const e of ['PRESS', 'OFFER', 'UNLOCK']) assert.ok(called.has(e), `the trace has ${e}`)
  const callActors = new Set(events.flatMap((e) => e.type === 'actor' && e.machine?.key === 'deviceCall' ? [e.actor] : []))
  const callStates = events.flatMap((e) => e.type === 'snapshot' && callActors.has(e.actor) ? [e.value] : [])
  assert.equal(callStates[0], 'idle', 'it starts from the state before the ring')
  assert.ok(callStates.some((v) => v !== 'idle'), 'it goes through the call')
  assert.equal(callStates.at(-1), 'idle', 'it replays to the call\'s end')
  assert.ok(existsSync(join(lan.device.config.dataDir, 'traces', `${kept!.id}.json`)), 'kept in the doorbell\'s data folder')
})

test('trace keeping off (the default): nothing is recorded and nothing is kept', { timeout: 60_000 }, async (t) => {
  const { lan, viewer } = await aCall(undefined)
  t.after(async () => { await viewer.close(); await lan.stop() })
  assert.equal(lan.device.traces, null)
  await new Promise((resolve) => setTimeout(resolve, 2000))
  assert.ok(!existsSync(join(lan.device.config.dataDir, 'traces')), 'no traces folder')
})
