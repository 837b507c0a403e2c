import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CredentialResponse, DoorGuard, Grant, Member, MemberRightsRequest, memoryLogger,
  newId, peek, signTalkCommand, type Role
} from '@doorbell/core'
import { startHub, type Hub } from '../src/hub'
import { callHub, pairViewer as pairOn, type Paired } from './pairedViewer'

/**
 * The owner's editor for an operator's talk zones (Home settings → members): the same
 * `PUT /api/members/:id/rights` as door and talk, with `talkZones` validated (ids, at most 64, only
 * zones the operator watches), the grant re-issued and the old one superseded on the devices, audited.
 */

const HOME = 'home'
let dir: string
let hub: Hub

const call = (path: string, o: Parameters<typeof callHub>[2] = {}): ReturnType<typeof callHub> => callHub(hub, path, o)
const pair = (role: Role, name: string, zones: string[] = []): Promise<Paired> => pairOn(hub, role, name, zones)

/** What a doorbell of `zone` decides on a talk request with this credential, knowing the hub's replaced grants. */
async function talkIn (zone: string, who: Paired, credential: string): Promise<string> {
  const g = new DoorGuard({ homeId: HOME, deviceId: `cam-${zone}`, homeKey: hub.trust.homeKey, zone })
  assert.ok((await g.takeReissues(await hub.trust.reissueList())).ok)
  const c = await signTalkCommand({ type: 'talk', credential, key: who.keys.privateKey, home: HOME, device: `cam-${zone}`, session: 's1', command: newId('c') })
  const v = await g.checkTalk(c, { sessionId: 's1', viewerId: who.subject })
  return v.ok ? 'allowed' : v.reason
}

const credentialOf = async (who: Paired): Promise<string> => CredentialResponse.parse((await call('/api/credential', { token: who.token })).json).credential
const talkZonesOf = (credential: string): string[] | undefined => { const g = peek(Grant, credential); assert.ok(g.ok); return g.value.talkZones }

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-talk-zones-'))
  hub = await startHub({ homeId: HOME, host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false } }, { log: memoryLogger() })
})
after(async () => {
  await hub.stop()
  await rm(dir, { recursive: true, force: true })
})

test('the schema: talkZones are zone ids, at most 64, alone or with the other rights', () => {
  assert.ok(MemberRightsRequest.safeParse({ talkZones: ['gate', 'PIER-2'] }).success)
  assert.ok(MemberRightsRequest.safeParse({ talkZones: [] }).success, 'no zone: the operator talks nowhere')
  assert.ok(!MemberRightsRequest.safeParse({ talkZones: Array.from({ length: 65 }, (_, i) => `z${i}`) }).success, 'bounded')
  assert.ok(!MemberRightsRequest.safeParse({ talkZones: ['gate/../home'] }).success, 'an id, not a path')
  assert.ok(!MemberRightsRequest.safeParse({ talkZones: [''] }).success)
  assert.ok(!MemberRightsRequest.safeParse({ talkZones: 'gate' }).success)
  assert.ok(!MemberRightsRequest.safeParse({ talkZones: ['gate'], zones: ['gate'] }).success, 'the zones watched are not changed here')
})

test('the owner moves an operator\'s talk right from one zone to another: audited, re-issued, the old grant void on the devices, the new one talks only in the new zone', async () => {
  const owner = await pair('owner', 'Alice')
  const operator = await pair('operator', 'Night desk', ['gate', 'pier'])
  const put = async (body: unknown, token = owner.token) => await call(`/api/members/${operator.memberId}/rights`, { method: 'PUT', token, body })
  const first = operator.credential
  assert.deepEqual(talkZonesOf(first), [])
  assert.equal(await talkIn('gate', operator, first), 'no-talk-right')

  // Refused, and nothing changes: unknown zone, too many, the operator itself, a resident's right.
  const reissued = await hub.trust.reissueList()
  const audited = hub.trust.audit.all().length
  const refusals: Array<[string, Awaited<ReturnType<typeof put>>, number, RegExp]> = [
    ['a zone it does not watch', await put({ talkZones: ['gate', 'harbour'] }), 400, /only in the zones it watches \(gate, pier\)/],
    ['too many', await put({ talkZones: Array.from({ length: 65 }, () => 'gate') }), 400, /./],
    ['not an id', await put({ talkZones: ['gate pier'] }), 400, /./],
    ['talk: true for an operator', await put({ talk: true }), 400, /per zone/],
    ['by the operator itself', await put({ talkZones: ['gate'] }, operator.token), 403, /only the owner/]
  ]
  for (const [what, r, status, message] of refusals) {
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`)
    assert.match((r.json as { error: string }).error, message, what)
  }
  assert.equal(await hub.trust.reissueList(), reissued, 'no grant re-issued')
  assert.deepEqual(hub.trust.members().find((m) => m.id === operator.memberId)?.talkZones, [])
  assert.ok(hub.trust.audit.all().slice(audited).every((a) => a.outcome === 'denied'), 'only refusals audited')

  // Talk in gate: the old grant is superseded, the new one talks in gate and not in pier.
  const r1 = await put({ talkZones: ['gate', 'gate'] })
  assert.equal(r1.status, 200, JSON.stringify(r1.json))
  assert.deepEqual(Member.parse((r1.json as { member: unknown }).member).talkZones, ['gate'], 'each zone once')
  const line = hub.trust.audit.all().at(-1)!
  assert.deepEqual([line.kind, line.actor, line.message], ['pairing', 'Alice', 'changed the rights of Night desk (operator): talk in gate (was none)'])
  assert.equal(await talkIn('gate', operator, first), 'superseded')
  const second = await credentialOf(operator)
  assert.deepEqual(talkZonesOf(second), ['gate'])
  assert.equal(await talkIn('gate', operator, second), 'allowed')
  assert.equal(await talkIn('pier', operator, second), 'no-talk-right')
  // The same set again signs nothing new.
  const unchanged = await hub.trust.reissueList()
  assert.equal((await put({ talkZones: ['gate'] })).status, 200)
  assert.equal(await hub.trust.reissueList(), unchanged)

  // Moved to pier: the gate grant is void, the new one talks in pier only.
  const from = Date.now()
  while (Date.now() <= from + 1) await new Promise((resolve) => setTimeout(resolve, 2)) // a later floor than the gate grant's signing time
  assert.equal((await put({ talkZones: ['pier'] })).status, 200)
  assert.match(hub.trust.audit.all().at(-1)!.message, /talk in pier \(was gate\)/)
  assert.equal(await talkIn('gate', operator, second), 'superseded')
  const third = await credentialOf(operator)
  assert.deepEqual(talkZonesOf(third), ['pier'])
  assert.equal(await talkIn('pier', operator, third), 'allowed')
  assert.equal(await talkIn('gate', operator, third), 'no-talk-right')
})
