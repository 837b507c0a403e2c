import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InspectEvent, makeTrace, parseTrace, REDACTED, redactPayload, TRACE_MAX_BYTES, TRACE_VERSION, TraceError, type TraceEntry } from '../src/index'

const source = { kind: 'device' as const, id: 'front-door', name: 'Front door' }
const token = 'tok_9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928'
const key = 'MCowBQYDK2VwAyEAq8f1n0Zr3w4m5x6y7z8A9B0C1D2E3F4G5H6I7J8K9L0='

test('payloads keep what explains an event and drop every secret, whatever the field is called', () => {
  const out = redactPayload({
    sessionId: 's-1',
    viewerId: 'kitchen',
    path: 'lan',
    credential: { payload: 'abc', signature: 'def' },
    proof: 'xyz',
    token,
    publicKey: key,
    note: `the token was ${token}`,
    url: 'wss://iot.example/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLEKEY123456%2F20261206%2Fus-east-1&X-Amz-Security-Token=Fwo%2BdGVz%2Fabc&X-Amz-Signature=abc123',
    sdp: `v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:SuperSecretPassword123\r\n${'a=x\r\n'.repeat(60)}`
  }) as Record<string, unknown>
  assert.equal(out.sessionId, 's-1')
  assert.equal(out.path, 'lan')
  for (const k of ['credential', 'proof', 'token', 'publicKey']) assert.equal(out[k], REDACTED, k)
  assert.equal(out.note, `the token was ${REDACTED}`)
  assert.equal(out.url, 'wss://iot.example/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[redacted]&X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]')
  const sdp = out.sdp as string
  assert.ok(!sdp.includes('SuperSecretPassword123') && sdp.includes('a=ice-pwd:[redacted]'))
  assert.ok(sdp.length < 220, 'a long SDP is cut short')
  assert.ok(!JSON.stringify(out).includes(token) && !JSON.stringify(out).includes(key))
})

test('payloads are bounded: depth, items, and no live objects', () => {
  const deep = { a: { b: { c: { d: { e: { f: 1 } } } } } }
  assert.deepEqual(redactPayload(deep), { a: { b: { c: { d: { e: '…' } } } } })
  const many = redactPayload(Array.from({ length: 30 }, (_, i) => i)) as unknown[]
  assert.equal(many.length, 21)
  assert.equal(redactPayload(new Uint8Array(4)), '[Uint8Array]')
  assert.equal(redactPayload(new (class PeerThing {})()), '[PeerThing]')
  assert.deepEqual(redactPayload({ f: () => 1, n: Number.NaN }), { n: null })
})

test('an event record may carry a payload; older records without one still parse', () => {
  assert.ok(InspectEvent.safeParse({ type: 'event', at: 1, from: null, to: 'a/x', event: 'PRESS', payload: { ringId: 'r1' } }).success)
  assert.ok(InspectEvent.safeParse({ type: 'event', at: 1, from: null, to: 'a/x', event: 'PRESS' }).success)
})

const entries: TraceEntry[] = [
  { source, event: { type: 'actor', at: 1, actor: 'fd/x:0', name: 'lock', parent: null, machine: null } },
  { source, event: { type: 'event', at: 2, from: null, to: 'fd/x:0', event: 'UNLOCK', payload: { by: 'kitchen', token } } }
]

test('a trace round-trips through its file, redacted again on export', () => {
  const trace = makeTrace(entries, { from: 0, to: 5, label: 'Call 1' }, 10)
  assert.equal(trace.version, TRACE_VERSION)
  const text = JSON.stringify(trace)
  assert.ok(!text.includes(token))
  const back = parseTrace(text)
  assert.equal(back.entries.length, 2)
  assert.deepEqual((back.entries[1]!.event as { payload: unknown }).payload, { by: 'kitchen', token: REDACTED })
})

const refusal = (text: string): TraceError => {
  try { parseTrace(text) } catch (err) { assert.ok(err instanceof TraceError); return err }
  assert.fail('the trace was accepted')
}

test('a malformed, foreign, too large or newer trace is refused with a clear message', () => {
  assert.equal(refusal('{not json').reason, 'not-json')
  assert.equal(refusal('{"hello":1}').reason, 'not-a-trace')
  const newer = refusal(JSON.stringify({ ...makeTrace(entries, { from: 0, to: 5, label: 'x' }, 1), version: TRACE_VERSION + 1 }))
  assert.equal(newer.reason, 'newer-version')
  assert.match(newer.message, /version 2, made by a newer inspector/)
  const broken = refusal(JSON.stringify({ ...makeTrace(entries, { from: 0, to: 5, label: 'x' }, 1), entries: [{ source, event: { type: 'event', at: -1 } }] }))
  assert.equal(broken.reason, 'malformed')
  assert.match(broken.message, /^This trace is damaged: entries\.0\.event/)
  const big = refusal(' '.repeat(TRACE_MAX_BYTES + 1))
  assert.equal(big.reason, 'too-large')
  assert.equal(big.name, 'TraceError')
  assert.match(big.message, /up to 4 MB/)
})

test("an event's payload stays small enough for a batch; the batcher splits by size as well as count", async () => {
  const { eventPayload, InspectionBatcher, MAX_PAYLOAD_CHARS } = await import('../src/index')
  const big = eventPayload({ type: 'X', a: Array.from({ length: 20 }, (_, i) => ({ i, text: 'y'.repeat(150), more: { deep: 'z'.repeat(150) } })) })
  assert.ok(JSON.stringify(big).length <= MAX_PAYLOAD_CHARS)
  const huge = eventPayload({ type: 'X', ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, Array.from({ length: 8 }, () => 'a few words '.repeat(5))])) })
  assert.match(JSON.stringify(huge), /too large to keep; fields: f0, f1/)
  const batches: number[] = []
  const batcher = new InspectionBatcher((events) => { batches.push(JSON.stringify(events).length) }, 50, 60_000)
  for (let i = 0; i < 150; i++) batcher.push({ type: 'event', at: i, from: null, to: 'fd/x:0', event: 'E', payload: { text: 'p'.repeat(1000) } })
  batcher.stop()
  assert.ok(batches.length >= 3, `split by size (${batches.length} batches)`)
  assert.ok(batches.every((b) => b < 60 * 1024), `each under a message (${batches.join(', ')})`)
})
