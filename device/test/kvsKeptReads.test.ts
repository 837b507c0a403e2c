import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  KeptParts, decodeCloudKeptPart, generateSigningKey, memoryLogger, signViewClaim,
  type KeptReadFrame, type KeptReadRequest
} from '@doorbell/core'
import { kvsKeptReads } from '../src/paths/cloud/kvsKeptReads'

/** Reads of the kept rings on the KVS channel (kvsKeptReads.ts): checked by the doorbell's one check, answered in paced parts to the sender alone. */

const key = (await generateSigningKey(false)).privateKey
const token = await signViewClaim({ key, home: 'home', device: 'front-door', session: 'kept-rings' })
const request = (viewerId: string): KeptReadRequest => ({ homeId: 'home', viewerId, credential: token, proof: token })
const payload = (id: string, r: unknown): string => JSON.stringify({ type: 'kept-read', id, request: r })
const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(40_000, 7)]).toString('base64')
const ring: KeptReadFrame = {
  kind: 'ring',
  kept: {
    type: 'kept',
    deviceId: 'front-door',
    ring: { type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId: 'r-1', at: 1000, count: 1 },
    snapshot: { type: 'snapshot', deviceId: 'front-door', ringId: 'r-1', at: 1000, seq: 2, jpeg },
    record: null
  }
}
const rings: KeptReadFrame[] = [ring, { kind: 'end', count: 1, more: false }]

function setup (read: (r: KeptReadRequest) => Promise<KeptReadFrame[]>, o: { partsPerSecond?: number, maxReads?: number } = {}) {
  const lines: string[] = []
  const sent: Array<{ viewerId: string, at: number, payload: string }> = []
  const checked: KeptReadRequest[] = []
  const handler = kvsKeptReads({
    read: async (r, max) => { assert.equal(max, 5); checked.push(r); return await read(r) },
    send: (viewerId, p) => { sent.push({ viewerId, at: performance.now(), payload: p }); return true },
    log: memoryLogger(lines, 'kvs'),
    partsPerSecond: o.partsPerSecond ?? 200,
    ...(o.maxReads !== undefined ? { maxReads: o.maxReads } : {})
  })
  /** The frames answered to `viewerId` under `id`, once every part of it came. */
  const answer = async (viewerId: string, id: string | null): Promise<KeptReadFrame[]> => {
    for (let i = 0; i < 500; i++) {
      const mine = sent.filter((s) => s.viewerId === viewerId).map((s) => decodeCloudKeptPart(s.payload)).flatMap((d) => (d.ok && d.message.id === id ? [d.message] : []))
      if (mine.length > 0 && mine.length === mine[0]!.parts) {
        const parts = new KeptParts(mine[0]!.parts)
        let out: KeptReadFrame[] | null = null
        for (const p of mine) out = parts.add(p) ?? out
        return out!
      }
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    throw new Error(`no whole answer to ${viewerId} ${id}`)
  }
  return { handler, sent, checked, lines, answer }
}

test('a read goes to the doorbell\'s check and its frames back to the sender alone, in parts sent no faster than the pace', async (t) => {
  const s = setup(async () => rings, { partsPerSecond: 20 })
  t.after(() => { s.handler.stop() })
  s.handler.read('v-kitchen', payload('k-1', request('v-kitchen')))
  assert.deepEqual(await s.answer('v-kitchen', 'k-1'), rings)
  assert.deepEqual(s.checked, [request('v-kitchen')])
  assert.ok(s.sent.length >= 7, `${s.sent.length} parts`)
  assert.ok(s.sent.every((x) => x.viewerId === 'v-kitchen'))
  // 20 a second: the parts are at least ~50 ms apart (timers never fire early by more than a ms).
  for (let i = 1; i < s.sent.length; i++) assert.ok(s.sent[i]!.at - s.sent[i - 1]!.at >= 45, `part ${i} after ${s.sent[i]!.at - s.sent[i - 1]!.at} ms`)
})

test('two screens reading at once share the pace in turn; each gets its own answer', async (t) => {
  const s = setup(async () => rings)
  t.after(() => { s.handler.stop() })
  s.handler.read('v-kitchen', payload('k-1', request('v-kitchen')))
  s.handler.read('v-hall', payload('k-2', request('v-hall')))
  assert.deepEqual(await s.answer('v-kitchen', 'k-1'), rings)
  assert.deepEqual(await s.answer('v-hall', 'k-2'), rings)
  const order = s.sent.map((x) => x.viewerId)
  assert.deepEqual(order.slice(0, 4), ['v-kitchen', 'v-hall', 'v-kitchen', 'v-hall'])
})

test('bad input is refused with a reason and reaches no check: a schema failure, a request signed for another viewer, no sender id', async (t) => {
  const s = setup(async () => rings)
  t.after(() => { s.handler.stop() })
  s.handler.read('v-kitchen', payload('k-3', { homeId: 'home' }))
  s.handler.read('v-owner', payload('k-4', request('v-kitchen')))
  s.handler.read('', payload('k-5', request('v-kitchen')))
  const malformed = await s.answer('v-kitchen', 'k-3')
  assert.equal(malformed[0]?.kind, 'refused')
  assert.match(malformed[0]?.kind === 'refused' ? malformed[0].message : '', /request\.viewerId/)
  const foreign = await s.answer('v-owner', 'k-4')
  assert.match(foreign[0]?.kind === 'refused' ? foreign[0].message : '', /signed for viewer v-kitchen, but KVS names its sender v-owner/)
  assert.deepEqual(s.checked, [])
  assert.ok(s.lines.some((l) => l.includes('dropped a KVS read of the kept rings with no sender id')))
  // An unreadable id: refused under null.
  s.handler.read('v-hall', JSON.stringify({ type: 'kept-read', id: 'not an id!', request: request('v-hall') }))
  assert.equal((await s.answer('v-hall', null))[0]?.kind, 'refused')
})

test('one read per screen at a time, and a few screens at once: a second read from the same screen is dropped, one over the bound refused as busy', async (t) => {
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const s = setup(async () => { await held; return rings }, { maxReads: 2 })
  t.after(() => { s.handler.stop() })
  s.handler.read('v-kitchen', payload('k-1', request('v-kitchen')))
  s.handler.read('v-kitchen', payload('k-2', request('v-kitchen')))
  s.handler.read('v-hall', payload('k-3', request('v-hall')))
  s.handler.read('v-owner', payload('k-4', request('v-owner')))
  const busy = await s.answer('v-owner', 'k-4')
  assert.match(busy[0]?.kind === 'refused' ? busy[0].message : '', /busy/)
  release()
  assert.deepEqual(await s.answer('v-kitchen', 'k-1'), rings)
  assert.deepEqual(await s.answer('v-hall', 'k-3'), rings)
  assert.equal(s.checked.length, 2, 'the dropped and the busy reads cost no check')
  assert.ok(s.lines.some((l) => l.includes('this screen\'s previous read is still being answered')))
})

test('stopped: the parts not sent yet are dropped', async () => {
  const s = setup(async () => rings, { partsPerSecond: 5 })
  s.handler.read('v-kitchen', payload('k-1', request('v-kitchen')))
  for (let i = 0; i < 200 && s.sent.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  s.handler.stop()
  const n = s.sent.length
  await new Promise((resolve) => setTimeout(resolve, 450))
  assert.equal(s.sent.length, n)
  assert.ok(n < 7)
})
