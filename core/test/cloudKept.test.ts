import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import {
  CloudKeptPart, KEPT_PART_BUDGET, KVS_PAYLOAD_MAX, KeptParts, KeptPartsError, MAX_CLOUD_KEPT_READ, MAX_SNAPSHOT_BYTES,
  decodeCloudKeptPart, decodeCloudKeptRead, generateSigningKey, isCloudCommand, isCloudDismiss, isCloudKeptPart, isCloudKeptRead,
  keptAnswerParts, kvsPayloadSize, signViewClaim, toKvsPayload,
  type KeptReadFrame, type KeptRing
} from '../src'

/** The doorbell's kept rings away from home (cloudKept.ts): the direct path's frames, cut into parts KVS carries, joined again on the screen. */

const jpeg = (bytes: number): string => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), randomBytes(bytes - 3)]).toString('base64')
const kept = (ringId: string, at: number, picture: number | null, memberName = 'Kitchen tablet'): KeptRing => ({
  type: 'kept',
  deviceId: 'front-door',
  ring: { type: 'ring', deviceId: 'front-door', deviceName: 'Front "door" \\ é', ringId, at, count: 1 },
  snapshot: picture === null ? null : { type: 'snapshot', deviceId: 'front-door', ringId, at, seq: 2, jpeg: jpeg(picture) },
  record: { deviceId: 'front-door', ringId, startedAt: at, endedAt: at + 30_000, outcome: 'missed', answeredBy: [], unlocks: [] },
  dismissals: [{ memberId: 'm-1', memberName, viewerId: 'v-1', at: at + 1000 }]
})
const frames = (rings: KeptRing[]): KeptReadFrame[] => [...rings.map((k): KeptReadFrame => ({ kind: 'ring', kept: k })), { kind: 'end', count: rings.length, more: false }]

/** Joins payloads as the screen does: each decoded by its schema, added in the given order. */
function join (payloads: string[]): KeptReadFrame[] {
  let parts: KeptParts | null = null
  let out: KeptReadFrame[] | null = null
  for (const p of payloads) {
    const d = decodeCloudKeptPart(p)
    assert.ok(d.ok, d.ok ? '' : d.error)
    parts ??= new KeptParts(d.message.parts)
    out = parts.add(d.message) ?? out
  }
  assert.ok(out)
  return out
}

test('the largest answer (the newest rings, each with the largest picture) is cut into parts that each fit KVS, and joins back to the same frames in any order', () => {
  const rings = Array.from({ length: MAX_CLOUD_KEPT_READ }, (_, i) => kept(`r-${i}`, 1000 + i, MAX_SNAPSHOT_BYTES, 'Zoë "the" \\ tablet'))
  const payloads = keptAnswerParts('k-1', frames(rings))
  assert.ok(payloads.length > MAX_CLOUD_KEPT_READ * 8, `${payloads.length} parts`)
  for (const p of payloads) {
    assert.ok(kvsPayloadSize(p) <= KVS_PAYLOAD_MAX, `a part of ${kvsPayloadSize(p)} bytes`)
    assert.ok(/^[\x20-\x7e]*$/.test(p), 'ASCII only (the SDK\'s btoa)')
    assert.ok(isCloudKeptPart(p))
  }
  assert.deepEqual(join(payloads), frames(rings))
  assert.deepEqual(join([...payloads].reverse()), frames(rings))
  // A part repeated unchanged (KVS may deliver twice) changes nothing.
  assert.deepEqual(join([payloads[0]!, ...payloads]), frames(rings))
})

test('text made of quotes and backslashes still fits: a part is cut by what KVS counts', () => {
  const refusal: KeptReadFrame[] = [{ kind: 'refused', message: '"\\'.repeat(100) }]
  const many = keptAnswerParts(null, frames([kept('r-1', 1, null, '"'.repeat(64))]))
  for (const p of [...keptAnswerParts(null, refusal), ...many]) assert.ok(kvsPayloadSize(p) <= KVS_PAYLOAD_MAX)
  assert.deepEqual(join(keptAnswerParts(null, refusal)), refusal)
  assert.ok(KEPT_PART_BUDGET * 4 / 3 < KVS_PAYLOAD_MAX)
})

test('parts that do not agree, or a joined text that is not the frames, are refused with a reason', () => {
  const payloads = keptAnswerParts('k-2', frames([kept('r-1', 1, 30_000)]))
  assert.ok(payloads.length >= 3)
  const decoded = payloads.map((p) => { const d = decodeCloudKeptPart(p); assert.ok(d.ok); return d.message })
  const a = new KeptParts(decoded[0]!.parts)
  a.add(decoded[0]!)
  assert.throws(() => a.add({ ...decoded[0]!, data: decoded[0]!.data.slice(1) }), (e: Error) => e instanceof KeptPartsError && /came twice, different/.test(e.message))
  assert.throws(() => a.add({ ...decoded[1]!, parts: decoded[1]!.parts + 1 }), /says \d+ parts/)
  // Every part in, but one of them altered: the joined text fails its schema.
  const b = new KeptParts(decoded[0]!.parts)
  const bad = decoded.map((p, i) => (i === 0 ? { ...p, data: p.data.replace('"ring"', '"ding"') } : p))
  assert.throws(() => { for (const p of bad) b.add(p) }, (e: Error) => e instanceof KeptPartsError && /kind/.test(e.message))
  const c = new KeptParts(1)
  assert.throws(() => c.add({ type: 'kept-part', id: 'k-3', part: 0, parts: 1, data: '[{"kind":"end"' }), /not JSON/)
  // The schema: an index past the count, an oversize part, an unknown field.
  assert.ok(!CloudKeptPart.safeParse({ type: 'kept-part', id: 'k', part: 2, parts: 2, data: '' }).success)
  assert.ok(!CloudKeptPart.safeParse({ type: 'kept-part', id: 'k', part: 0, parts: 1, data: 'x'.repeat(KEPT_PART_BUDGET + 1) }).success)
  assert.ok(!CloudKeptPart.safeParse({ type: 'kept-part', id: 'k', part: 0, parts: 1, data: '', more: 1 }).success)
})

test('a read is the direct path\'s request as is, told apart from commands, dismissals and signaling', async () => {
  const key = (await generateSigningKey(false)).privateKey
  const token = await signViewClaim({ key, home: 'home', device: 'front-door', session: 'kept-rings' })
  const request = { homeId: 'home', viewerId: 'v-1', credential: token, proof: token }
  const read = toKvsPayload({ type: 'kept-read', id: 'k-1', request } as { type: string })
  assert.deepEqual([isCloudKeptRead(read), isCloudKeptPart(read), isCloudCommand(read), isCloudDismiss(read)], [true, false, false, false])
  const ok = decodeCloudKeptRead(read)
  assert.ok(ok.ok)
  assert.deepEqual(ok.ok && ok.message.request, request)
  for (const other of [JSON.stringify({ type: 'offer', sdp: 'v=0 "kept-read"' }), '{"type":"kept-read"', 42, null]) assert.equal(isCloudKeptRead(other), false)
  const extra = decodeCloudKeptRead(JSON.stringify({ type: 'kept-read', id: 'k-1', request: { ...request, max: 50 } }))
  assert.ok(!extra.ok)
  assert.match(extra.ok ? '' : extra.error, /request/)
})
