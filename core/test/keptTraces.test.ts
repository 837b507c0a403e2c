import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  CommandResult, DoorGuard, Grant, NO_CALL_SESSION, OutOfCallCommand, TRACE_CHUNK_BYTES, TraceChunk, TraceTransferError,
  exportPublicKey, fetchTraceChunks, generateSigningKey, sha256Hex, sign, signTracesCommand, traceChunk, type Grant as GrantT
} from '../src/index'

const HOME = 'home'
const DEVICE = 'front-door'
const T0 = 1_800_000_000_000
const ctx = { sessionId: NO_CALL_SESSION, viewerId: 'v1' }
const TRACE = '1800000000000-0'

async function member (role: GrantT['role']) {
  const homeKeys = await generateSigningKey(true)
  const keys = await generateSigningKey(false)
  const g: GrantT = { v: 1, id: 'm1', home: HOME, sub: 'v1', name: 'Kitchen', role, door: true, zones: [], key: await exportPublicKey(keys.publicKey), iat: T0, exp: null }
  const credential = await sign(Grant, g, homeKeys.privateKey)
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey), now: () => T0 })
  const signing = { credential, key: keys.privateKey, home: HOME, device: DEVICE, session: NO_CALL_SESSION, now: T0 }
  return { guard, signing }
}

describe('DoorGuard.checkTraces', () => {
  it('the owner lists and reads; the read\'s trace and chunk are in the signed claim; once; fresh', async () => {
    const { guard, signing } = await member('owner')
    const list = await signTracesCommand({ ...signing, command: 'c1', action: 'traces-list' })
    assert.equal(OutOfCallCommand.safeParse(list).success, true, 'the broker\'s gate takes it')
    assert.equal((await guard.checkTraces(list, ctx)).ok, true)
    const replay = await guard.checkTraces(list, ctx)
    assert.ok(!replay.ok && replay.reason === 'replay')
    const read = await signTracesCommand({ ...signing, command: 'c2', action: 'trace-read', trace: TRACE, chunk: 0 })
    const swapped = await guard.checkTraces({ ...read, chunk: 3 }, ctx)
    assert.ok(!swapped.ok && swapped.reason === 'wrong-session', 'another chunk than signed')
    const other = await guard.checkTraces({ ...read, trace: '1800000000000-1' }, ctx)
    assert.ok(!other.ok && other.reason === 'wrong-session', 'another trace than signed')
    assert.equal((await guard.checkTraces(read, ctx)).ok, true)
    const stale = await guard.checkTraces(await signTracesCommand({ ...signing, command: 'c3', action: 'traces-list', now: T0 - 60_000 }), ctx)
    assert.ok(!stale.ok && stale.reason === 'stale')
    const inCall = await guard.checkTraces(await signTracesCommand({ ...signing, command: 'c4', action: 'traces-list' }), { ...ctx, sessionId: 's1' })
    assert.ok(!inCall.ok && inCall.reason === 'wrong-session')
    const malformed = await guard.checkTraces({ type: 'trace-read', id: 'c5', trace: '../../etc/passwd', chunk: 0, credential: signing.credential, proof: 'a.b' }, ctx)
    assert.ok(!malformed.ok && malformed.reason === 'malformed')
  })

  it('a resident, a guest and an operator are refused: owner only', async () => {
    for (const role of ['resident', 'guest', 'operator'] as const) {
      const { guard, signing } = await member(role)
      const v = await guard.checkTraces(await signTracesCommand({ ...signing, command: 'c1', action: 'traces-list' }), ctx)
      assert.ok(!v.ok && v.reason === (role === 'operator' ? 'wrong-zone' : 'no-owner-right'), role)
      if (role !== 'operator') assert.match(v.message, new RegExp(`only the owner reads this doorbell's call traces, not Kitchen \\(${role}\\)`))
    }
  })
})

describe('a kept trace in chunks', () => {
  const file = new TextEncoder().encode(JSON.stringify({ entries: Array.from({ length: 9000 }, (_, i) => ({ i, event: 'PRESS "quoted" é' })) }))

  it('each chunk is at most 128 KiB of base64 and a valid result; reassembled byte for byte, hash checked', async () => {
    assert.ok(file.length > 2 * TRACE_CHUNK_BYTES)
    const sha = await sha256Hex(file)
    const chunks = Array.from({ length: Math.ceil(file.length / TRACE_CHUNK_BYTES) }, (_, i) => traceChunk(TRACE, file, sha, i)!)
    assert.equal(traceChunk(TRACE, file, sha, chunks.length), null, 'no chunk past the end')
    for (const c of chunks) {
      assert.ok(c.data.length <= 128 * 1024)
      assert.equal(CommandResult.safeParse({ ok: true, id: 'c1', type: 'trace-read', chunk: c }).success, true)
    }
    const asked: number[] = []
    const text = await fetchTraceChunks(TRACE, async (i) => { asked.push(i); return chunks[i]! })
    assert.equal(text, new TextDecoder().decode(file))
    assert.deepEqual(asked, chunks.map((_, i) => i))
  })

  it('a damaged, missing or foreign chunk is refused with TraceTransferError, never a partial file', async () => {
    const sha = await sha256Hex(file)
    const chunks = Array.from({ length: Math.ceil(file.length / TRACE_CHUNK_BYTES) }, (_, i) => traceChunk(TRACE, file, sha, i)!)
    const flip = (d: string): string => (d[10] === 'A' ? 'B' : 'A') + d.slice(1, 10) + (d[10] === 'A' ? 'B' : 'A') + d.slice(11)
    const cases: Array<[string, (i: number) => TraceChunk, RegExp]> = [
      ['a flipped byte', (i) => i === 1 ? { ...chunks[1]!, data: flip(chunks[1]!.data) } : chunks[i]!, /does not match the doorbell's SHA-256/],
      ['a chunk of another trace', (i) => i === 1 ? { ...chunks[1]!, trace: '1800000000000-7' } : chunks[i]!, /does not belong/],
      ['a short chunk', (i) => i === 1 ? { ...chunks[1]!, data: chunks[1]!.data.slice(0, 100) } : chunks[i]!, /came as \d+ bytes, the doorbell said/],
      ['the same chunk twice', (i) => chunks[Math.min(i, 1) === 1 ? 1 : 0]!, /does not belong/]
    ]
    for (const [what, read, message] of cases) {
      await assert.rejects(fetchTraceChunks(TRACE, async (i) => read(i)), (err: unknown) => err instanceof TraceTransferError && message.test(err.message), what)
    }
    assert.equal(TraceChunk.safeParse({ ...chunks[0]!, index: chunks[0]!.total }).success, false, 'an index past the total')
  })
})
