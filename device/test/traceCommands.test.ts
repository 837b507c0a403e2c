import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CommandResult, DoorGuard, Grant, NO_CALL_SESSION, TRACE_CHUNK_BYTES, exportPublicKey, fetchTraceChunks, generateSigningKey, makeTrace,
  memoryLogger, newId, sign, signTracesCommand, type DoorAttempt, type Role, type TraceChunk
} from '@doorbell/core'
import { outOfCallCommands } from '../src/answering'
import { TraceKeeper } from '../src/traces/keeper'
import { traceCommands } from '../src/traces/commands'

/**
 * The owner's `traces-list` and `trace-read` as the hub's MQTT hands them to the device: a real
 * guard, a real TraceKeeper over a folder of kept traces, each result parsed as the viewer does.
 */

const HOME = 'home'
const DEVICE = 'front-door'
const VIEWER = 'v-kitchen'

async function setUp (role: Role, keeping = true) {
  const homeKeys = await generateSigningKey(false)
  const keys = await generateSigningKey(false)
  const credential = await sign(Grant, {
    v: 1, id: 'm-kitchen', home: HOME, sub: VIEWER, name: 'Kitchen', role, door: true, zones: [],
    key: await exportPublicKey(keys.publicKey), iat: Date.now(), exp: null
  }, homeKeys.privateKey)
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey) })
  const dir = mkdtempSync(join(tmpdir(), 'traces-'))
  const keeper = keeping ? new TraceKeeper({ dir, source: { kind: 'device', id: DEVICE, name: 'Front door' }, calls: 5, maxBytes: 8 * 1024 * 1024, log: memoryLogger([], 'traces') }) : null
  const audit: DoorAttempt[] = []
  const channel = outOfCallCommands({ kinds: traceCommands({ guard, keeper, audit: (a) => { audit.push(a) }, deviceId: DEVICE }), path: 'lan', log: memoryLogger([], 'commands') })
  const send = async (a: { action: 'traces-list' } | { action: 'trace-read', trace: string, chunk: number }): Promise<CommandResult> => {
    const c = await signTracesCommand({ credential, key: keys.privateKey, home: HOME, device: DEVICE, session: NO_CALL_SESSION, command: newId('c'), ...a })
    // Parsed as the screen parses it: what leaves the device must be a CommandResult.
    return CommandResult.parse(JSON.parse(JSON.stringify(await channel.take(VIEWER, JSON.stringify(c)))))
  }
  return { dir, keeper, audit, send, cleanup: () => { rmSync(dir, { recursive: true, force: true }) } }
}

/** A kept trace file of about `bytes`, as the keeper writes one. */
function writeTrace (dir: string, id: string, bytes: number): string {
  const entry = { source: { kind: 'device' as const, id: DEVICE, name: 'Front door' }, event: { type: 'event' as const, at: 1_800_000_000_000, from: null, to: 'deviceCall', event: 'PRESS' } }
  const one = JSON.stringify(entry).length + 1
  const text = JSON.stringify(makeTrace(Array.from({ length: Math.ceil(bytes / one) }, () => entry), { from: 1_800_000_000_000, to: 1_800_000_010_000, label: 'a call' }, 1_800_000_020_000))
  writeFileSync(join(dir, `${id}.json`), text)
  return text
}

describe('traceCommands: the owner fetches the kept call traces', () => {
  test('the list, then a trace of several chunks, reassembled and hash-checked; one audit row per list and per read', async (t) => {
    const s = await setUp('owner')
    t.after(s.cleanup)
    const text = writeTrace(s.dir, '1800000000000-0', 2.5 * TRACE_CHUNK_BYTES)
    const list = await s.send({ action: 'traces-list' })
    assert.ok(list.ok && list.traces)
    assert.equal(list.traces.keeping, true)
    assert.deepEqual(list.traces.traces.map((x) => x.id), ['1800000000000-0'])
    const read = await fetchTraceChunks('1800000000000-0', async (chunk) => {
      const r = await s.send({ action: 'trace-read', trace: '1800000000000-0', chunk })
      assert.ok(r.ok && r.chunk, JSON.stringify(r).slice(0, 200))
      assert.ok(JSON.stringify(r).length <= 128 * 1024 + 512, 'each result about 128 KiB at most')
      return r.chunk as TraceChunk
    })
    assert.equal(read, text)
    assert.deepEqual(s.audit.map((a) => [a.kind, a.outcome, a.reason]), [['traces', 'allowed', 'ok'], ['traces', 'allowed', 'ok']])
    assert.match(s.audit[1]!.message, /read kept call trace 1800000000000-0 \(\d+ bytes in 3 chunks\)/)
    const past = await s.send({ action: 'trace-read', trace: '1800000000000-0', chunk: 3 })
    assert.ok(!past.ok && past.error.code === 'no-trace')
  })

  test('a resident is refused, audited, and learns nothing of the traces', async (t) => {
    const s = await setUp('resident')
    t.after(s.cleanup)
    writeTrace(s.dir, '1800000000000-0', 1000)
    for (const a of [{ action: 'traces-list' as const }, { action: 'trace-read' as const, trace: '1800000000000-0', chunk: 0 }]) {
      const r = await s.send(a)
      assert.ok(!r.ok && r.error.code === 'denied' && r.reason === 'no-owner-right', JSON.stringify(r))
      assert.ok(!('traces' in r) && !('chunk' in r))
    }
    assert.deepEqual(s.audit.map((a) => [a.kind, a.outcome, a.reason, a.role]), [['traces', 'denied', 'no-owner-right', 'resident'], ['traces', 'denied', 'no-owner-right', 'resident']])
  })

  test('keeping off: the list says so, a read is refused with no-trace', async (t) => {
    const s = await setUp('owner', false)
    t.after(s.cleanup)
    const list = await s.send({ action: 'traces-list' })
    assert.ok(list.ok)
    assert.deepEqual(list.traces, { keeping: false, traces: [] })
    const read = await s.send({ action: 'trace-read', trace: '1800000000000-0', chunk: 0 })
    assert.ok(!read.ok && read.error.code === 'no-trace' && read.error.message === 'trace keeping is off on this doorbell')
  })
})
