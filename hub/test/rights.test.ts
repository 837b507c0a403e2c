import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import {
  CredentialResponse, DoorGuard, Grant, Member, ReissueList, generateSigningKey, importPublicKey, memoryLogger,
  newId, open, peek, sign, signTalkCommand, topics, type Role
} from '@doorbell/core'
import { startHub, type Hub } from '../src/hub'
import { callHub, pairViewer as pairOn, type Paired } from './pairedViewer'

/**
 * A member's door and talk rights changed without inviting again (hub/src/trust/rights.ts), on a
 * real hub: the owner's route, the audit line, the member's new grant, the signed list of
 * replaced grants retained on MQTT for devices and screens, and the refusals that change nothing.
 */

const HOME = 'home'
let dir: string
let hub: Hub

const call = (path: string, o: Parameters<typeof callHub>[2] = {}): ReturnType<typeof callHub> => callHub(hub, path, o)
const pairViewer = (role: Role, name: string, zones: string[] = []): Promise<Paired> => pairOn(hub, role, name, zones)

const grant = (credential: string): Grant => { const g = peek(Grant, credential); assert.ok(g.ok); return g.value }

/** A doorbell's guard, fed what the hub retains: what the device would decide. */
async function guardWith (list: string): Promise<DoorGuard> {
  const g = new DoorGuard({ homeId: HOME, deviceId: 'front-door', homeKey: hub.trust.homeKey })
  assert.ok((await g.takeReissues(list)).ok)
  return g
}

async function talkVerdict (g: DoorGuard, who: Paired, credential: string): Promise<string> {
  const v = await g.checkTalk(await signTalkCommand({ type: 'talk', credential, key: who.keys.privateKey, home: HOME, device: 'front-door', session: 's1', command: newId('c') }), { sessionId: 's1', viewerId: who.subject })
  return v.ok ? 'allowed' : v.reason
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-rights-'))
  hub = await startHub({ homeId: HOME, host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false } }, { log: memoryLogger() })
})
after(async () => {
  await hub.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('changing a member\'s rights without inviting again', () => {
  let owner: Paired
  let resident: Paired
  before(async () => {
    owner = await pairViewer('owner', 'Alice')
    resident = await pairViewer('resident', 'Kitchen tablet')
  })

  test('the owner withdraws talk: audited, the old grant is void on a device, the screen\'s new grant says no talk; given back, talk works', async () => {
    const unchanged = await call('/api/credential', { token: resident.token })
    assert.equal(unchanged.status, 200)
    assert.equal(CredentialResponse.parse(unchanged.json).grantsFrom, null, 'never changed: no floor')

    const r = await call(`/api/members/${resident.memberId}/rights`, { method: 'PUT', token: owner.token, body: { talk: false } })
    assert.equal(r.status, 200, JSON.stringify(r.json))
    const member = Member.parse((r.json as { member: unknown }).member)
    assert.equal(member.talk, false)
    assert.equal(member.door, true, 'the door right is left as it was')
    const audit = hub.trust.audit.all().at(-1)!
    assert.equal(audit.actor, 'Alice')
    assert.match(audit.message, /changed the rights of Kitchen tablet \(resident\): door: yes \(was yes\), talk: no \(was yes\)/)

    const fresh = CredentialResponse.parse((await call('/api/credential', { token: resident.token })).json)
    const opened = await open(Grant, fresh.credential, await importPublicKey(hub.trust.homeKey))
    assert.ok(opened.ok, 'signed by the home key')
    assert.equal(opened.value.talk, false)
    assert.equal(opened.value.key, grant(resident.credential).key, 'the same screen key')
    assert.ok(fresh.grantsFrom !== null && opened.value.iat >= fresh.grantsFrom)

    const device = await guardWith(await hub.trust.reissueList())
    assert.equal(await talkVerdict(device, resident, resident.credential), 'superseded')
    assert.equal(await talkVerdict(device, resident, fresh.credential), 'no-talk-right')

    await new Promise((resolve) => setTimeout(resolve, 5))
    assert.equal((await call(`/api/members/${resident.memberId}/rights`, { method: 'PUT', token: owner.token, body: { talk: true } })).status, 200)
    const back = CredentialResponse.parse((await call('/api/credential', { token: resident.token })).json)
    const later = await guardWith(await hub.trust.reissueList())
    assert.equal(await talkVerdict(later, resident, fresh.credential), 'superseded', 'the second grant is void too')
    assert.equal(await talkVerdict(later, resident, back.credential), 'allowed')
  })

  test('the list of replaced grants is retained on MQTT for devices and screens; no member may publish it', async () => {
    const client = await mqtt.connectAsync(hub.mqttUrl, { username: resident.memberId, password: resident.token, clientId: `viewer-${resident.subject}-t`, reconnectPeriod: 0 })
    try {
      const got = new Promise<string>((resolve) => { client.on('message', (_t, payload) => { resolve(payload.toString()) }) })
      const granted = await client.subscribeAsync(topics.grants(HOME), { qos: 1 })
      assert.equal(granted[0]!.qos, 1, 'a screen may read it')
      const message = JSON.parse(await got) as { list: string }
      const list = await open(ReissueList, message.list, await importPublicKey(hub.trust.homeKey))
      assert.ok(list.ok)
      assert.deepEqual(list.value.floors.map((f) => f.id), [resident.memberId])
      // A forged list from a member (its own key, no floors): the broker refuses it, and the retained one stays.
      const forger = await generateSigningKey(true)
      const forged = await sign(ReissueList, { home: HOME, seq: 99, at: 0, floors: [] }, forger.privateKey)
      await client.publishAsync(topics.grants(HOME), JSON.stringify({ list: forged }), { qos: 0, retain: true }).catch(() => {})
    } finally {
      await client.endAsync(true)
    }
    const again = await mqtt.connectAsync(hub.mqttUrl, { username: resident.memberId, password: resident.token, clientId: `viewer-${resident.subject}-u`, reconnectPeriod: 0 })
    try {
      const got = new Promise<string>((resolve) => { again.on('message', (_t, payload) => { resolve(payload.toString()) }) })
      await again.subscribeAsync(topics.grants(HOME), { qos: 1 })
      assert.equal((JSON.parse(await got) as { list: string }).list, await hub.trust.reissueList(), 'the hub\'s list is still the one retained')
    } finally {
      await again.endAsync(true)
    }
  })

  test('bad requests get a clear error and change nothing', async () => {
    const operator = await pairViewer('operator', 'Gate desk', ['gate'])
    const before = await hub.trust.reissueList()
    const audit = hub.trust.audit.all().length
    const put = async (id: string, body: unknown, token = owner.token) => await call(`/api/members/${id}/rights`, { method: 'PUT', token, body })
    const cases: Array<[string, Awaited<ReturnType<typeof put>>, number, RegExp]> = [
      ['not the owner', await put(resident.memberId, { door: false }, resident.token), 403, /only the owner/],
      ['no right named', await put(resident.memberId, {}), 400, /name a right/],
      ['not a boolean', await put(resident.memberId, { talk: 'no' }), 400, /./],
      ['an unknown member', await put('m-nobody', { talk: false }), 404, /no screen/],
      ['an owner', await put(owner.memberId, { talk: false }), 400, /owner always may/],
      ['an operator\'s door', await put(operator.memberId, { door: true }), 400, /never opens the door/],
      ['an operator outside its zones', await put(operator.memberId, { talkZones: ['harbour'] }), 400, /only in the zones it watches/],
      ['zones for a resident', await put(resident.memberId, { talkZones: ['gate'] }), 400, /talkZones are an operator's/],
      ['no token', await call('/api/credential'), 401, /sign in/]
    ]
    for (const [what, r, status, message] of cases) {
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`)
      assert.match((r.json as { error: string }).error, message, what)
    }
    // Setting what is already so signs nothing new.
    assert.equal((await put(resident.memberId, { talk: true, door: true })).status, 200)
    assert.equal(await hub.trust.reissueList(), before)
    // Only the refused owner-check is audited (as for invites): no rights line.
    assert.ok(hub.trust.audit.all().slice(audit).every((a) => a.outcome === 'denied'))
    // An operator's talk zones, within its zones.
    const ok = await put(operator.memberId, { talkZones: ['gate'] })
    assert.equal(ok.status, 200)
    assert.deepEqual(Member.parse((ok.json as { member: unknown }).member).talkZones, ['gate'])
  })
})
