import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Member } from '@doorbell/core'
import { zonesFor } from '../src/api'
import { maySubscribe, zoneOfDevice, type Principal } from '../src/broker/gate'

const member = (m: Partial<Member> & Pick<Member, 'id' | 'kind' | 'subject'>): Member => ({
  name: m.subject, role: m.kind === 'device' ? null : 'resident', door: false, zones: [], createdAt: 0, expiresAt: null, revokedAt: null, ...m
})

const legacy = member({ id: 'm-old', kind: 'device', subject: 'front-door', zones: [] })
const cbd = member({ id: 'm-cbd', kind: 'device', subject: 'cbd-cam', name: 'King St', zones: ['CBD-TRAFFIC-01'] })
const owner = member({ id: 'm-owner', kind: 'viewer', subject: 'v-owner', role: 'owner' })
const homeOperator = member({ id: 'm-op', kind: 'viewer', subject: 'v-op', role: 'operator', zones: ['home'] })
const cbdOperator = member({ id: 'm-op2', kind: 'viewer', subject: 'v-op2', role: 'operator', zones: ['CBD-TRAFFIC-01'] })

test('a device paired before zones (zones []) is in the default zone, for the zones list and the broker alike', () => {
  assert.equal(zoneOfDevice(legacy), 'home')
  const all = zonesFor(owner, [legacy, cbd, owner, homeOperator, cbdOperator], 0)
  assert.deepEqual(all.zones.map((z) => [z.zone, z.devices.map((d) => d.deviceId)]), [['CBD-TRAFFIC-01', ['cbd-cam']], ['home', ['front-door']]])
  assert.deepEqual(zonesFor(cbdOperator, [legacy, cbd], 0).zones.map((z) => z.zone), ['CBD-TRAFFIC-01'])

  const devices = (): string[] => ['front-door', 'cbd-cam']
  const zonesOf = (id: string): string[] => [zoneOfDevice(id === 'front-door' ? legacy : cbd)]
  const as = (m: Member): Principal => ({ kind: 'viewer', member: m, home: 'home', viewerId: m.subject })
  assert.equal(maySubscribe(as(homeOperator), 'doorbell/home/front-door/state', devices, zonesOf).ok, true)
  assert.equal(maySubscribe(as(cbdOperator), 'doorbell/home/front-door/state', devices, zonesOf).ok, false)
  assert.equal(maySubscribe(as(cbdOperator), 'doorbell/home/cbd-cam/state', devices, zonesOf).ok, true)
})
