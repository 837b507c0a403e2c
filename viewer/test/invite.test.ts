import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { InviteRequest } from '@doorbell/core'
import { cameraIdProblem, deviceInvite, deviceSetup, parseZoneList, personInvite, shellQuote } from '../src/components/owner/invite'

/** The owner's invite form: what its fields become, what is refused before anything is sent, and the device's two ready lines. */

test('a device invite: its id and one zone, exactly what the hub takes', () => {
  const r = deviceInvite({ deviceId: ' gate-cam ', zone: 'CBD-TRAFFIC-01' })
  assert.deepEqual(r, { ok: true, request: { kind: 'device', deviceId: 'gate-cam', zones: ['CBD-TRAFFIC-01'] } })
  assert.ok(r.ok && InviteRequest.safeParse(r.request).success, 'the request passes the hub\'s own schema')
  // An empty zone is the home's own.
  assert.deepEqual(deviceInvite({ deviceId: 'Front_Door', zone: '  ' }), { ok: true, request: { kind: 'device', deviceId: 'Front_Door', zones: ['home'] } })
})

test('a device invite with a missing or bad id, or a bad zone, is refused with the field and a reason', () => {
  const cases: Array<[{ deviceId: string, zone: string }, 'deviceId' | 'zone', RegExp]> = [
    [{ deviceId: '', zone: 'home' }, 'deviceId', /Give the device's id/],
    [{ deviceId: '   ', zone: 'home' }, 'deviceId', /Give the device's id/],
    [{ deviceId: 'gate cam', zone: 'home' }, 'deviceId', /"gate cam" is not a device id/],
    [{ deviceId: 'doorbell/+', zone: 'home' }, 'deviceId', /not a device id/],
    [{ deviceId: 'x'.repeat(65), zone: 'home' }, 'deviceId', /not a device id .*up to 64/],
    [{ deviceId: 'gate-cam', zone: 'CBD TRAFFIC' }, 'zone', /"CBD TRAFFIC" is not a zone id/],
    [{ deviceId: 'gate-cam', zone: 'a, b' }, 'zone', /exactly one zone/],
    [{ deviceId: 'gate-cam', zone: '#' }, 'zone', /not a zone id/]
  ]
  for (const [fields, field, message] of cases) {
    const r = deviceInvite(fields)
    assert.equal(r.ok, false, JSON.stringify(fields))
    if (!r.ok) {
      assert.equal(r.field, field, JSON.stringify(fields))
      assert.match(r.message, message)
    }
  }
})

test('a person\'s invite: door as ticked, hours for guests, zones for operators', () => {
  assert.deepEqual(personInvite({ role: 'resident', door: true, hours: 24, zones: 'ignored' }),
    { ok: true, request: { kind: 'viewer', role: 'resident', door: true, accessHours: null } })
  assert.deepEqual(personInvite({ role: 'guest', door: false, hours: 3, zones: '' }),
    { ok: true, request: { kind: 'viewer', role: 'guest', door: false, accessHours: 3 } })
  assert.deepEqual(personInvite({ role: 'operator', door: true, hours: 24, zones: 'north-gate, car-park,, north-gate' }),
    { ok: true, request: { kind: 'viewer', role: 'operator', zones: ['north-gate', 'car-park'], accessHours: null } })
  for (const hours of ['' as const, 0, -1, 24 * 367]) {
    const r = personInvite({ role: 'guest', door: false, hours, zones: '' })
    assert.ok(!r.ok && r.field === 'hours' && /number of hours/.test(r.message), String(hours))
  }
  const r = personInvite({ role: 'operator', door: false, hours: 24, zones: 'north gate' })
  assert.ok(!r.ok && r.field === 'zones' && /"north gate" is not a zone id/.test(r.message))
  assert.deepEqual(parseZoneList(''), { ok: true, ids: [] })
})

test('a person\'s invite: the talk right as ticked; an operator talks only in zones it watches', () => {
  assert.deepEqual(personInvite({ role: 'guest', door: false, talk: true, hours: 3, zones: '' }),
    { ok: true, request: { kind: 'viewer', role: 'guest', door: false, talk: true, accessHours: 3 } })
  assert.deepEqual(personInvite({ role: 'operator', door: false, talk: true, hours: 24, zones: 'gate, lobby', talkZones: 'gate' }),
    { ok: true, request: { kind: 'viewer', role: 'operator', zones: ['gate', 'lobby'], talkZones: ['gate'], accessHours: null } })
  const outside = personInvite({ role: 'operator', door: false, hours: 24, zones: 'gate', talkZones: 'harbour' })
  assert.ok(!outside.ok && outside.field === 'talkZones' && /"harbour" is not one of the operator's zones/.test(outside.message))
  const bad = personInvite({ role: 'operator', door: false, hours: 24, zones: 'gate', talkZones: 'the gate' })
  assert.ok(!bad.ok && bad.field === 'talkZones' && /"the gate" is not a zone id/.test(bad.message))
})

test('a device\'s ready lines: the pair command with the invite URL, the camera link on the same origin', () => {
  const url = 'https://hub.local:8443/pair#code=ABCDEFGHJK&ca=AB:CD'
  assert.deepEqual(deviceSetup({ url }, 'gate-cam'), {
    pairCommand: `npm run pair --workspace device -- 'https://hub.local:8443/pair#code=ABCDEFGHJK&ca=AB:CD'`,
    cameraLink: 'https://hub.local:8443/camera#code=ABCDEFGHJK&device=gate-cam'
  })
  // An id the /camera page would refuse is not put in its link, and the form says why.
  assert.equal(deviceSetup({ url: 'http://127.0.0.1:8080/pair#code=ABCDEFGHJK' }, 'Front_Door')?.cameraLink, 'http://127.0.0.1:8080/camera#code=ABCDEFGHJK')
  assert.equal(cameraIdProblem('gate-cam'), null)
  assert.match(cameraIdProblem('Front_Door') ?? '', /lower-case/)
  // Nothing to show from a URL that is not an invitation's.
  assert.equal(deviceSetup({ url: 'not a url' }, 'gate-cam'), null)
  assert.equal(deviceSetup({ url: 'https://hub.local/pair' }, 'gate-cam'), null)
})

test('the pair command\'s argument reaches the program as one unchanged argument through a real shell', () => {
  for (const s of ['https://hub.local:8443/pair#code=ABCDEFGHJK&ca=AB:CD', `it's $HOME; rm -rf "x" \\`, 'a  b']) {
    assert.equal(execFileSync('sh', ['-c', `printf %s ${shellQuote(s)}`], { encoding: 'utf8' }), s)
  }
})
