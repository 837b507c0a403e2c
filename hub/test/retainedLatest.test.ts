import { test } from 'node:test'
import assert from 'node:assert/strict'
import { retainedLatest } from '../src/broker/retainedLatest'

/** A retained store whose writes land in the order of the publishes' completion (as two hubs' would). */
function store (): { value: string | null, writes: string[] } { return { value: null, writes: [] } }

test('two hubs publish at once and the one that read the older state lands last: it publishes again, and the newest stays', async () => {
  const retained = store()
  let db = 7
  const slowFirst: Array<() => void> = []
  // Hub X read seq 7; its publish is held until hub Y (which read seq 8) has published.
  const hubX = retainedLatest(async () => Buffer.from(String(db)), async (p) => {
    if (slowFirst.length === 0) await new Promise<void>((resolve) => { slowFirst.push(resolve) })
    retained.value = p.toString()
    retained.writes.push(`X:${p.toString()}`)
  })
  const hubY = retainedLatest(async () => Buffer.from(String(db)), async (p) => { retained.value = p.toString(); retained.writes.push(`Y:${p.toString()}`) })
  const x = hubX()
  await new Promise((resolve) => setImmediate(resolve))
  db = 8
  await hubY()
  assert.equal(retained.value, '8')
  slowFirst[0]!()
  await x
  assert.equal(retained.value, '8', `the newest is retained: ${retained.writes.join(', ')}`)
  assert.deepEqual(retained.writes, ['Y:8', 'X:7', 'X:8'])
})

test('the calls of one hub run one after the other; each call publishes once when nothing changed meanwhile', async () => {
  const writes: string[] = []
  let inFlight = 0
  let most = 0
  const publish = retainedLatest(async () => Buffer.from('same'), async (p) => {
    inFlight++
    most = Math.max(most, inFlight)
    await new Promise((resolve) => setTimeout(resolve, 5))
    writes.push(p.toString())
    inFlight--
  })
  await Promise.all([publish(), publish(), publish()])
  assert.equal(most, 1)
  assert.deepEqual(writes, ['same', 'same', 'same'])
})

test('a state that keeps changing is published a bounded number of times; a failed read fails that call only', async () => {
  let n = 0
  const writes: string[] = []
  const publish = retainedLatest(async () => Buffer.from(String(n++)), async (p) => { writes.push(p.toString()) }, 3)
  await publish()
  assert.deepEqual(writes, ['0', '1', '2', '3'])
  let fail = true
  const flaky = retainedLatest(async () => { if (fail) throw new Error('database down'); return Buffer.from('ok') }, async (p) => { writes.push(p.toString()) })
  await assert.rejects(flaky(), /database down/)
  fail = false
  await flaky()
  assert.equal(writes.at(-1), 'ok')
})
