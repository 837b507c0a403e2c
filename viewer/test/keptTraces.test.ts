import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { TRACE_CHUNK_BYTES, TraceTransferError, makeTrace, sha256Hex, traceChunk, type CommandResult, type OutOfCallCommand } from '@doorbell/core'
import { KeptTraceError, keptTraceFetcher, type TraceAction } from '../src/lib/keptTraces'
import { durationText, keptTraceFileName, whoText } from '../src/components/owner/keptTraces'

/**
 * The viewer's side of fetching kept call traces: what it does with the doorbell's results. The
 * doorbell's side, signing and the real hub are in device/test/traceCommands.test.ts and
 * tests/integration/kept-traces-fetch.test.ts; here `send` answers from a file's real chunks.
 */

const ID = '1800000000000-0'
const entry = { source: { kind: 'device' as const, id: 'front-door', name: 'Front door' }, event: { type: 'event' as const, at: 1_800_000_000_000, from: null, to: 'deviceCall', event: 'PRESS' } }
const text = JSON.stringify(makeTrace(Array.from({ length: 3000 }, () => entry), { from: 1_800_000_000_000, to: 1_800_000_001_000, label: 'a call' }, 1_800_000_002_000))
const file = new TextEncoder().encode(text)

function fetcher (answer: (a: TraceAction) => Promise<CommandResult>) {
  let pending: TraceAction | null = null
  return keptTraceFetcher({
    sign: async (a) => { pending = a; return { type: 'traces-list', id: 'c1', credential: 'x', proof: 'y' } as OutOfCallCommand },
    send: async () => await answer(pending!)
  })
}

describe('keptTraceFetcher', () => {
  it('reads a trace of several chunks and parses it as a trace file', async () => {
    assert.ok(file.length > TRACE_CHUNK_BYTES)
    const sha = await sha256Hex(file)
    const f = fetcher(async (a) => a.action === 'trace-read'
      ? { ok: true, id: 'c1', type: 'trace-read', chunk: traceChunk(ID, file, sha, a.chunk)! }
      : { ok: true, id: 'c1', type: 'traces-list', traces: { keeping: true, traces: [] } })
    const read = await f.read(ID)
    assert.equal(read.text, text)
    assert.equal(read.trace.entries.length, 3000)
    assert.deepEqual(await f.list(), { keeping: true, traces: [] })
  })

  it('a refusal is a KeptTraceError with the doorbell\'s code and message; a result without its body too', async () => {
    const refused = fetcher(async () => ({ ok: false, id: 'c1', error: { code: 'denied', message: 'only the owner reads this doorbell\'s call traces' }, reason: 'no-owner-right' }))
    await assert.rejects(refused.list(), (err: unknown) => err instanceof KeptTraceError && err.code === 'denied' && /only the owner/.test(err.message))
    const empty = fetcher(async () => ({ ok: true, id: 'c1', type: 'unlock' }))
    await assert.rejects(empty.list(), (err: unknown) => err instanceof KeptTraceError && err.code === 'invalid-result')
    await assert.rejects(empty.read(ID), (err: unknown) => err instanceof KeptTraceError && err.code === 'invalid-result')
  })

  it('a chunk that does not hash to the doorbell\'s SHA-256 is refused: nothing partial is returned', async () => {
    const f = fetcher(async (a) => {
      const c = traceChunk(ID, file, '0'.repeat(64), (a as { chunk: number }).chunk)!
      return { ok: true, id: 'c1', type: 'trace-read', chunk: c }
    })
    await assert.rejects(f.read(ID), TraceTransferError)
  })
})

describe('the Call traces list', () => {
  it('says the duration, who, and names the file', () => {
    assert.equal(durationText(45_400), '45 s')
    assert.equal(durationText(125_000), '2 min 5 s')
    assert.equal(durationText(120_000), '2 min')
    assert.equal(whoText([]), 'nobody answered')
    assert.equal(whoText(['Kitchen tablet', 'Hall phone']), 'Kitchen tablet, Hall phone')
    assert.equal(keptTraceFileName('front-door', ID), 'doorbell-trace-front-door-1800000000000-0.json')
  })
})
