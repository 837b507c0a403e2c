import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, parseTrace, type InspectEvent } from '@doorbell/core'
import { describeMachine, deviceCallMachine, lockMachine } from '@doorbell/machines'
import { TraceKeeper, type TraceKeeperOptions } from '../src/traces/keeper'

const CALL = 'front-door/x:0'
const LOCK = 'front-door/x:1'
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ2LWtpdGNoZW4iLCJob21lIjoiaG9tZSJ9.c2lnbmF0dXJlLW9mLXRoZS1ob21lLWtleS1vdmVyLXRoaXM'
const KEY = 'BGx3mP0Qk1r9T2vY8zN4cA7dE6fH5gJ3kL2mN1pQ0rS9tU8vW7xY6zA5bC4dE3fG2hJ1kL0mN9pQ8rS7tU6vW5x'

function folder (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'traces-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return join(dir, 'traces')
}

const keeper = (dir: string, o: Partial<TraceKeeperOptions> = {}): TraceKeeper => new TraceKeeper({
  dir, source: { kind: 'device', id: 'front-door', name: 'Front door' }, calls: 5, maxBytes: 1024 * 1024, log: memoryLogger([], 'traces'), tailMs: 20, ...o
})

const wait = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** The call machine and the lock announced, both at rest: what a doorbell's recorder sends at start. */
function announce (k: TraceKeeper, at: number): void {
  k.push({ type: 'actor', at, actor: CALL, name: 'deviceCall', parent: null, machine: describeMachine(deviceCallMachine) })
  k.push({ type: 'snapshot', at, actor: CALL, event: 'xstate.init', status: 'active', value: 'idle' })
  k.push({ type: 'actor', at, actor: LOCK, name: 'lock', parent: null, machine: describeMachine(lockMachine) })
  k.push({ type: 'snapshot', at, actor: LOCK, event: 'xstate.init', status: 'active', value: 'locked' })
}

/** One call: a ring, a viewer's offer (carrying a token and key, as a careless payload might), an unlock, a hang-up. */
function call (k: TraceKeeper, at: number, viewer = 'Kitchen', extra = 0): void {
  const ev = (e: InspectEvent): void => { k.push(e) }
  ev({ type: 'event', at, from: null, to: CALL, event: 'PRESS', payload: { ringId: 'r-1', at } })
  ev({ type: 'snapshot', at, actor: CALL, event: 'PRESS', status: 'active', value: 'ringing' })
  ev({ type: 'event', at: at + 10, from: CALL, to: CALL, event: 'OFFER', payload: { viewerName: viewer, token: TOKEN, note: `credential ${TOKEN} key ${KEY}` } })
  ev({ type: 'snapshot', at: at + 10, actor: CALL, event: 'OFFER', status: 'active', value: { inCall: 'connected' } })
  for (let i = 0; i < extra; i++) ev({ type: 'event', at: at + 11, from: null, to: LOCK, event: 'NOISE', payload: { i, pad: 'x'.repeat(100) } })
  ev({ type: 'event', at: at + 20, from: null, to: LOCK, event: 'UNLOCK', payload: { by: 'v-kitchen', signature: KEY } })
  ev({ type: 'snapshot', at: at + 20, actor: LOCK, event: 'UNLOCK', status: 'active', value: 'unlocked' })
  ev({ type: 'event', at: at + 30, from: null, to: CALL, event: 'BYE', payload: { sessionId: 's-1' } })
  ev({ type: 'snapshot', at: at + 30, actor: CALL, event: 'BYE', status: 'active', value: 'idle' })
}

test('a call is kept as a trace any inspector loads: from the ring to idle, starting from every actor\'s state, with no key or token', async (t) => {
  const dir = folder(t)
  const k = keeper(dir)
  announce(k, 1_000)
  assert.deepEqual(k.list(), [], 'nothing before a call')
  call(k, 2_000)
  await wait(100)
  const [kept, ...more] = k.list()
  assert.equal(more.length, 0)
  assert.ok(kept)
  assert.deepEqual([kept.from, kept.to, kept.durationMs, kept.who], [2_000, 2_030, 30, ['Kitchen']])
  const text = k.read(kept.id)!
  assert.ok(!text.includes(TOKEN) && !text.includes(KEY), 'no token or key in the kept trace')
  assert.ok(!text.includes(TOKEN.slice(0, 40)) && !text.includes(KEY.slice(0, 40)), 'not even a part of one')
  const trace = parseTrace(text)
  const events = trace.entries.map((e) => e.event)
  // The replay's start: both actors announced with their state before the ring.
  assert.deepEqual(events.slice(0, 4).map((e) => e.type === 'snapshot' ? `${e.actor}=${String(e.value)}` : e.type), ['actor', `${CALL}=idle`, 'actor', `${LOCK}=locked`])
  assert.deepEqual(events.filter((e) => e.type === 'event').map((e) => e.type === 'event' && e.event), ['PRESS', 'OFFER', 'UNLOCK', 'BYE'])
  assert.match(trace.range.label, /Front door · call at .* · Kitchen/)
})

test('bounded: at most `calls` traces and `maxBytes` in all, the oldest dropped first; a restart keeps them', async (t) => {
  const dir = folder(t)
  const k = keeper(dir, { calls: 2 })
  announce(k, 1_000)
  for (const [i, who] of ['Ann', 'Bob', 'Cy'].entries()) {
    call(k, 10_000 * (i + 1), who)
    await wait(60)
  }
  assert.deepEqual(k.list().map((s) => s.who[0]), ['Cy', 'Bob'], 'newest first; the oldest dropped')
  const one = k.list()[0]!.bytes

  // A restart (a new keeper on the same folder) keeps them, and a tighter byte bound drops the oldest at once.
  const again = keeper(dir, { calls: 5, maxBytes: 64 * 1024 })
  assert.deepEqual(again.list().map((s) => s.who[0]), ['Cy', 'Bob'])
  const tight = keeper(dir, { calls: 5, maxBytes: Math.max(64 * 1024, one + 10) })
  assert.equal(tight.list().length, one * 2 > 64 * 1024 ? 1 : 2)

  // A call bigger than the byte budget keeps its start and says it was cut; the bound still holds.
  const big = keeper(dir, { calls: 5, maxBytes: 64 * 1024 })
  announce(big, 1_000)
  call(big, 90_000, 'Dee', 2_000)
  await wait(60)
  const list = big.list()
  assert.equal(list[0]!.who[0], 'Dee')
  assert.ok(list.reduce((n, s) => n + s.bytes, 0) <= 64 * 1024, 'within maxBytes in all')
  assert.match(parseTrace(big.read(list[0]!.id)!).range.label, /cut short/)
})

test('a call still ringing is not kept; one that ended is kept at stop; bad ids and foreign files give nothing', async (t) => {
  const dir = folder(t)
  const k = keeper(dir, { tailMs: 60_000 })
  announce(k, 1_000)
  call(k, 2_000)
  k.push({ type: 'event', at: 3_000, from: null, to: CALL, event: 'PRESS', payload: { ringId: 'r-2', at: 3_000 } })
  assert.deepEqual(k.list(), [], 'the tail of the first call is still open')
  k.stop()
  assert.equal(k.list().length, 1, 'the ended call is kept at stop, without waiting for its tail')

  const ringing = keeper(dir, { tailMs: 20 })
  announce(ringing, 1_000)
  ringing.push({ type: 'snapshot', at: 5_000, actor: CALL, event: 'PRESS', status: 'active', value: 'ringing' })
  ringing.stop()
  assert.equal(ringing.list().length, 1, 'a call in progress at stop has no end: not kept')

  writeFileSync(join(dir, '0000000000001-0.json'), '{"not":"a trace"}')
  writeFileSync(join(dir, 'notes.txt'), 'hello')
  const lines: string[] = []
  const reader = keeper(dir, { log: memoryLogger(lines, 'traces') })
  assert.equal(reader.list().length, 1, 'a damaged file is skipped')
  assert.ok(lines.some((l) => l.includes('skipped a kept trace')))
  for (const id of ['../pairing', '0000000000001-0/../../x', 'notes', '', '9999999999999-9']) assert.equal(reader.read(id), null, id)
  assert.ok(readdirSync(dir).includes('notes.txt'), 'a file that is not ours is left alone')
})
