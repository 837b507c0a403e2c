import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeCloudRepliesResult, generateSigningKey, memoryLogger, signViewClaim, type Admission, type Grant, type RepliesReadAnswer, type RepliesReadRequest } from '@doorbell/core'
import { takeRepliesRead, type RepliesReadOptions } from '../src/paths/repliesRead'
import { kvsCommands } from '../src/paths/cloud/kvsCommands'

/** The doorbell's one replies-read handler (repliesRead.ts) and its KVS carrier (kvsCommands.ts); DoorGuard.admit is tested in core, here its answer is given. */

const key = (await generateSigningKey(false)).privateKey
const token = await signViewClaim({ key, home: 'home', device: 'front-door', session: 'quick-replies' })
const request = (viewerId: string, homeId = 'home'): RepliesReadRequest => ({ homeId, viewerId, credential: token, proof: token })
const grant = (role: Grant['role'], more: Partial<Grant> = {}): Grant => ({ v: 1, id: `m-${role}`, home: 'home', sub: `v-${role}`, name: `${role} screen`, role, door: role !== 'operator', zones: role === 'operator' ? ['lobby'] : [], key: 'k', iat: 0, exp: null, ...more }) as Grant

function options (admission: Admission, o: Partial<RepliesReadOptions> = {}): RepliesReadOptions & { lines: string[], sessions: string[] } {
  const lines: string[] = []
  const sessions: string[] = []
  return { homeId: 'home', zone: 'lobby', log: memoryLogger(lines, 'replies'), admit: async (_c, _v, p) => { sessions.push(p.session); return admission }, replies: () => ['Leave it at the door', 'We will be right there'], signer: async () => ({ ok: true }), lines, sessions, ...o }
}

test('a member with the talk right reads the replies the doorbell plays, its proof checked for the replies session', async () => {
  const o = options({ ok: true, grant: grant('resident') })
  assert.deepEqual(await takeRepliesRead(o, request('v-resident'), 'direct'), { kind: 'replies', replies: ['Leave it at the door', 'We will be right there'] })
  assert.deepEqual(o.sessions, ['quick-replies'])
  assert.deepEqual(await takeRepliesRead(options({ ok: true, grant: grant('operator', { talkZones: ['lobby'] }) }), request('v-operator'), 'cloud'), { kind: 'replies', replies: ['Leave it at the door', 'We will be right there'] })
})

test('refused with a reason: a guest, a resident whose talk is off, an operator without talk in this zone, a failed proof, another home, an owner gone', async () => {
  const refused = async (o: RepliesReadOptions, r = request('v-x')): Promise<string> => {
    const a = await takeRepliesRead(o, r, 'direct')
    return a.kind === 'refused' ? a.message : 'read'
  }
  assert.match(await refused(options({ ok: true, grant: grant('guest') })), /^guest screen may not talk on this doorbell, so plays no quick reply/)
  assert.match(await refused(options({ ok: true, grant: grant('resident', { talk: false }) })), /may not talk/)
  assert.match(await refused(options({ ok: true, grant: grant('operator', { talkZones: ['garage'] }) })), /may not talk/)
  assert.equal(await refused(options({ ok: false, reason: 'replay', message: 'this proof was already used', grant: null })), 'this proof was already used')
  const other = options({ ok: true, grant: grant('owner') })
  assert.equal(await refused(other, request('v-x', 'elsewhere')), 'this doorbell belongs to another home than elsewhere')
  assert.deepEqual(other.sessions, [], 'another home\'s request is not even checked')
  assert.match(await refused(options({ ok: true, grant: grant('owner') }, { signer: async () => ({ ok: false, message: 'the quick replies were saved by an owner no longer in the home' }) })), /no longer in the home/)
})

test('over KVS: the read goes to the handler and back to the sender under its id; malformed, another viewer\'s and no-handler reads are refused', async () => {
  const lines: string[] = []
  const sent: Array<{ viewerId: string, payload: string }> = []
  const taken: RepliesReadRequest[] = []
  const make = (replies?: (r: RepliesReadRequest) => Promise<RepliesReadAnswer>) => kvsCommands({
    take: async () => { throw new Error('not a command') },
    ...(replies ? { replies } : {}),
    send: (viewerId, payload) => { sent.push({ viewerId, payload }); return true },
    log: memoryLogger(lines, 'kvs')
  })
  const handler = make(async (r) => { taken.push(r); return { kind: 'replies', replies: ['Leave it at the door'] } })
  const read = (id: string, r: unknown): string => JSON.stringify({ type: 'replies', id, request: r })
  handler.replies('v-kitchen', read('q-1', request('v-kitchen')))
  handler.replies('v-kitchen', read('q-2', { homeId: 'home' }))
  handler.replies('v-owner', read('q-3', request('v-kitchen')))
  handler.replies('', read('q-4', request('v-kitchen')))
  make().replies('v-kitchen', read('q-5', request('v-kitchen')))
  for (let i = 0; i < 50 && sent.length < 4; i++) await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(taken, [request('v-kitchen')])
  const answers = sent.map((s) => { const d = decodeCloudRepliesResult(s.payload); assert.ok(d.ok); return [s.viewerId, d.message.id, d.message.answer.kind === 'refused' ? d.message.answer.message : d.message.answer.replies] })
  const byId = new Map(answers.map((a) => [a[1], a]))
  assert.deepEqual(byId.get('q-1'), ['v-kitchen', 'q-1', ['Leave it at the door']])
  assert.match(String(byId.get('q-2')?.[2]), /^request\.viewerId: /)
  assert.deepEqual(byId.get('q-3'), ['v-owner', 'q-3', 'this read is signed for viewer v-kitchen, but KVS names its sender v-owner'])
  assert.deepEqual(byId.get('q-5'), ['v-kitchen', 'q-5', 'this doorbell plays no quick replies'])
  assert.equal(answers.length, 4, 'no answer without a sender')
  assert.ok(lines.some((l) => l.includes('dropped a KVS replies read with no sender id')))
})
