import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { topics, type Member } from '@doorbell/core'
import { mayPublish, maySubscribe, principalFor, type Principal } from '../src/gate'

const H = 'home'
const member = (o: Partial<Member> & Pick<Member, 'id' | 'kind' | 'subject'>): Member => ({
  name: o.subject, role: o.kind === 'device' ? null : 'resident', door: o.kind !== 'device', zones: [], createdAt: 0, expiresAt: null, revokedAt: null, ...o
})
const device = principalFor(member({ id: 'md', kind: 'device', subject: 'front-door' }), H, 'device-front-door')!
const camN = principalFor(member({ id: 'mc', kind: 'device', subject: 'cam-n', zones: ['north'] }), H, 'device-cam-n')!
const viewer = (role: Member['role'], zones: string[] = []): Principal =>
  principalFor(member({ id: `m-${role}`, kind: 'viewer', subject: `v-${role}`, role, zones }), H, `viewer-v-${role}-tab1`)!
const owner = viewer('owner')
const resident = viewer('resident')
const operator = viewer('operator', ['north'])
const zonesOf = (d: string): string[] => d === 'cam-n' ? ['north'] : []
const devices = (): string[] => ['front-door', 'cam-n']

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))
const ring = (deviceId: string) => json({ type: 'ring', deviceId, deviceName: 'Front door', ringId: 'r1', at: 1, count: 1 })
const offer = (viewerId: string) => json({ type: 'offer', sessionId: 's1', viewerId, viewerName: 'K', sdp: 'v=0\r\nm=video 9 x\r\n', credential: 'e30.' + 'A'.repeat(86) })

describe('principalFor: the client id must be the member\'s own', () => {
  it('binds a device to device-{id} and a viewer to viewer-{viewerId}-{tab}', () => {
    assert.equal(device.kind, 'device')
    assert.equal(principalFor(member({ id: 'md', kind: 'device', subject: 'front-door' }), H, 'device-back-door'), null)
    assert.equal(principalFor(member({ id: 'mv', kind: 'viewer', subject: 'v1' }), H, 'device-front-door'), null, 'a viewer cannot take the doorbell\'s session')
    assert.equal(principalFor(member({ id: 'mv', kind: 'viewer', subject: 'v1' }), H, 'viewer-v2-tab'), null)
    assert.equal(principalFor(member({ id: 'mv', kind: 'viewer', subject: 'v1' }), H, 'viewer-v1-tab')?.kind, 'viewer')
  })
})

describe('mayPublish', () => {
  it('lets a device publish its own ring, and refuses it for another device, to a viewer, and with a bad payload', () => {
    assert.deepEqual(mayPublish(device, topics.ring(H, 'front-door'), ring('front-door')), { ok: true })
    assert.match((mayPublish(device, topics.ring(H, 'back-door'), ring('back-door')) as { reason: string }).reason, /may not publish for device back-door/)
    assert.match((mayPublish(resident, topics.ring(H, 'front-door'), ring('front-door')) as { reason: string }).reason, /only the device/)
    assert.equal(mayPublish(device, topics.ring(H, 'front-door'), Buffer.from('{"type":"ring"')).ok, false)
    assert.equal(mayPublish(device, topics.ring('other', 'front-door'), ring('front-door')).ok, false, 'another home')
  })

  it('binds offers to the viewer level of the topic, and operators to their zones', () => {
    assert.equal(mayPublish(resident, topics.session(H, 'front-door', 'v-resident', 's1', 'to-device'), offer('v-resident')).ok, true)
    assert.equal(mayPublish(resident, topics.session(H, 'front-door', 'v-owner', 's1', 'to-device'), offer('v-owner')).ok, false)
    assert.equal(mayPublish(device, topics.session(H, 'front-door', 'v-resident', 's1', 'to-device'), offer('v-resident')).ok, false)
    assert.equal(mayPublish(operator, topics.session(H, 'cam-n', 'v-operator', 's1', 'to-device'), offer('v-operator'), zonesOf).ok, true)
    assert.equal(mayPublish(operator, topics.session(H, 'front-door', 'v-operator', 's1', 'to-device'), offer('v-operator'), zonesOf).ok, false)
  })

  it('keeps the revocation list and $SYS for the broker', () => {
    const list = json({ list: 'e30.' + 'A'.repeat(86) })
    assert.equal(mayPublish(owner, topics.revocations(H), list).ok, false)
    assert.equal(mayPublish(device, topics.revocations(H), list).ok, false)
    assert.equal(mayPublish(null, topics.revocations(H), list).ok, true)
    assert.equal(mayPublish(owner, '$SYS/x', Buffer.from('1')).ok, false)
  })
})

describe('maySubscribe', () => {
  it('gives residents their home\'s events and their own inbox, nothing else', () => {
    for (const f of topics.homeEvents(H)) assert.equal(maySubscribe(resident, f).ok, true, f)
    assert.equal(maySubscribe(resident, topics.viewerInbox(H, 'v-resident')).ok, true)
    assert.equal(maySubscribe(resident, topics.viewerInbox(H, 'v-owner')).ok, false, 'another viewer\'s answers')
    assert.equal(maySubscribe(resident, topics.homeInspection(H)).ok, false, 'inspection is the owner\'s')
    assert.equal(maySubscribe(owner, topics.homeInspection(H)).ok, true)
    assert.equal(maySubscribe(resident, topics.deviceInbox(H, 'front-door')).ok, false, 'the device\'s offers')
    assert.equal(maySubscribe(resident, 'doorbell/other/+/ring').ok, false)
    assert.equal(maySubscribe(resident, 'doorbell/#').ok, false)
    assert.equal(maySubscribe(owner, '$SYS/#').ok, false)
    assert.equal(maySubscribe(resident, topics.audit(H, 'front-door')).ok, false)
  })

  it('gives a device its inbox and the revocation list only', () => {
    assert.equal(maySubscribe(device, topics.deviceInbox(H, 'front-door')).ok, true)
    assert.equal(maySubscribe(device, topics.revocations(H)).ok, true)
    assert.equal(maySubscribe(device, topics.deviceInbox(H, 'cam-n')).ok, false)
    assert.equal(maySubscribe(device, `doorbell/${H}/+/ring`).ok, false)
    assert.equal(maySubscribe(camN, topics.deviceInbox(H, 'cam-n')).ok, true)
  })

  it('gives operators the devices of their zones one by one, no wildcard over the home', () => {
    assert.equal(maySubscribe(operator, topics.state(H, 'cam-n'), devices, zonesOf).ok, true)
    assert.equal(maySubscribe(operator, topics.state(H, 'front-door'), devices, zonesOf).ok, false)
    assert.equal(maySubscribe(operator, `doorbell/${H}/+/state`, devices, zonesOf).ok, false)
    assert.equal(maySubscribe(operator, topics.viewerInbox(H, 'v-operator'), devices, zonesOf).ok, true)
  })
})
