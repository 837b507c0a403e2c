import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  CallRecord, DeviceState, DoorAttempt, InspectBatch, KeptRing, Presence, RingEvent, SignalToDevice, SignalToViewer,
  encode, integrationTopics, topics, type Member
} from '@doorbell/core'
import { mayPublish, maySubscribe, principalFor, type GateResult, type Principal } from '../src/broker/gate'

/**
 * The broker's gate as pure functions: who a signed-in client is (`principalFor`), what it may
 * publish (`mayPublish`: the payload's schema first, then the principal's rights) and subscribe
 * to (`maySubscribe`). Members are built here as the trust store returns them.
 */

const H = 'home'
const FRONT = 'front-door'
const CAM_N = 'cam-n'
const OTHER_DEVICE = 'back-door'
const SESSION = 's1'

const member = (o: Partial<Member> & Pick<Member, 'id' | 'kind' | 'subject'>): Member => ({
  name: o.subject,
  role: o.kind === 'device' ? null : 'resident',
  door: o.kind !== 'device',
  zones: [],
  createdAt: 0,
  expiresAt: null,
  revokedAt: null,
  ...o
})
const must = (p: Principal | null): Principal => { assert.ok(p, 'a principal'); return p }
const device = must(principalFor(member({ id: 'm-front', kind: 'device', subject: FRONT }), H, `device-${FRONT}`))
const camN = must(principalFor(member({ id: 'm-cam', kind: 'device', subject: CAM_N, zones: ['north'] }), H, `device-${CAM_N}`))
const viewer = (role: NonNullable<Member['role']>, zones: string[] = []): Principal =>
  must(principalFor(member({ id: `m-${role}`, kind: 'viewer', subject: `v-${role}`, name: role, role, zones, door: role !== 'operator' && role !== 'guest' }), H, `viewer-v-${role}-tab1`))
const owner = viewer('owner')
const resident = viewer('resident')
const guest = viewer('guest')
const operator = viewer('operator', ['north'])
const zonesOf = (d: string): string[] => d === CAM_N ? ['north'] : []
const devices = (): string[] => [FRONT, CAM_N]

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
/** Shaped as a signed token (the gate checks shape; the device checks the signature). */
const CREDENTIAL = `e30.${'A'.repeat(86)}`
const buf = (s: string): Buffer => Buffer.from(s)
const json = (v: unknown): Buffer => buf(JSON.stringify(v))

/** A valid payload of each kind, for `deviceId` (and the viewer `viewerId` where there is one). */
const valid = (deviceId: string, viewerId = 'v-resident') => ({
  ring: buf(encode(RingEvent, { type: 'ring', deviceId, deviceName: 'Front door', ringId: 'r1', at: 1, count: 1 })),
  state: buf(encode(DeviceState, {
    deviceId,
    deviceName: 'Front door',
    call: { status: 'idle', ringId: null, since: 0 },
    participants: [],
    lock: { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null },
    lastRing: null,
    at: 1
  })),
  presence: buf(encode(Presence, { deviceId, online: true, at: 1 })),
  calls: buf(encode(CallRecord, { deviceId, ringId: 'r1', startedAt: 1, endedAt: 2, outcome: 'missed', answeredBy: [], unlocks: [] })),
  audit: buf(encode(DoorAttempt, { id: 'a1', deviceId, at: 1, outcome: 'denied', reason: 'bad-signature', message: 'no', memberId: null, viewerId, viewerName: 'K', role: null, path: 'lan' })),
  offer: buf(encode(SignalToDevice, { type: 'offer', sessionId: SESSION, viewerId, viewerName: 'Kitchen', sdp: SDP, credential: CREDENTIAL, proof: CREDENTIAL })),
  bye: buf(encode(SignalToDevice, { type: 'bye', sessionId: SESSION, reason: 'hang-up' })),
  answer: buf(encode(SignalToViewer, { type: 'answer', sessionId: SESSION, sdp: SDP })),
  inspect: (source: string) => buf(encode(InspectBatch, { source: { kind: source.startsWith('viewer-') ? 'viewer' : 'device', id: source, name: 'x' }, events: [{ type: 'event', at: 1, from: null, to: 'x', event: 'E' }] })),
  revocations: json({ list: CREDENTIAL })
})

const t = (deviceId: string, viewerId = 'v-resident', home = H) => ({
  ring: topics.ring(home, deviceId),
  state: topics.state(home, deviceId),
  presence: topics.presence(home, deviceId),
  calls: topics.calls(home, deviceId),
  audit: topics.audit(home, deviceId),
  toDevice: topics.session(home, deviceId, viewerId, SESSION, 'to-device'),
  toViewer: topics.session(home, deviceId, viewerId, SESSION, 'to-viewer')
})

function refused (result: GateResult, reason?: RegExp): void {
  assert.equal(result.ok, false, 'refused')
  if (!result.ok) {
    assert.ok(result.reason.length > 0, 'with a reason')
    if (reason) assert.match(result.reason, reason)
  }
}

function allowed (result: GateResult): void {
  assert.deepEqual(result, { ok: true })
}

describe('principalFor: the client id must be the member\'s own', () => {
  const frontMember = member({ id: 'm-front', kind: 'device', subject: FRONT })
  const kitchen = member({ id: 'm-kitchen', kind: 'viewer', subject: 'kitchen' })

  it('a device is device-{its id}, exactly', () => {
    assert.deepEqual(principalFor(frontMember, H, `device-${FRONT}`), { kind: 'device', member: frontMember, home: H, deviceId: FRONT })
    for (const id of [`device-${OTHER_DEVICE}`, `device-${FRONT}-evil`, `x-device-${FRONT}`, FRONT, `viewer-${FRONT}-tab`, `DEVICE-${FRONT}`, '']) {
      assert.equal(principalFor(frontMember, H, id), null, id)
    }
  })

  it('a viewer is viewer-{its viewer id}-{tab}, an id as a whole', () => {
    assert.deepEqual(principalFor(kitchen, H, 'viewer-kitchen-ab12cd'), { kind: 'viewer', member: kitchen, home: H, viewerId: 'kitchen' })
    for (const id of [
      'viewer-kitchen', // no tab
      'viewer-hallway-ab12cd', // another viewer's
      `device-${FRONT}`, // the doorbell's session
      'device-kitchen',
      'viewer-kitchen-a/b', // not an id: it could not be an inspection topic level
      'viewer-kitchen-a b',
      `viewer-kitchen-${'x'.repeat(60)}`, // longer than an id may be
      'kitchen-ab12cd'
    ]) {
      assert.equal(principalFor(kitchen, H, id), null, id)
    }
  })

  it('the principal carries the member as the trust store gave it, and the hub\'s home', () => {
    const p = must(principalFor(member({ id: 'm-op', kind: 'viewer', subject: 'v-op', role: 'operator', zones: ['north'] }), 'villa', 'viewer-v-op-1'))
    assert.equal(p.home, 'villa')
    assert.equal(p.member.role, 'operator')
    assert.deepEqual(p.member.zones, ['north'])
  })
})

describe('mayPublish: payloads are checked by their schema, with a clear reason', () => {
  it('$SYS is refused to everyone, the broker included, whatever the payload', () => {
    for (const who of [owner, device, null]) {
      refused(mayPublish(who, '$SYS/broker/uptime', buf('1')), /\$SYS topics are reserved/)
      refused(mayPublish(who, '$SYS/anything', valid(FRONT).presence), /\$SYS/)
    }
  })

  it('topics that are not ours are refused', () => {
    for (const topic of [
      'random/topic',
      'doorbell',
      `doorbell/${H}`,
      `doorbell/${H}/${FRONT}`,
      `doorbell/${H}/${FRONT}/unknown`,
      `doorbell/${H}/${FRONT}/open-door`,
      `doorbell/${H}/${FRONT}/ring/extra`,
      `doorbell/${H}/${FRONT}/session/v-resident/${SESSION}`,
      `doorbell/${H}/${FRONT}/session/v-resident/${SESSION}/to-nowhere`,
      `doorbell/${H}/bad id/ring`,
      `doorbell/${H}/revocations/extra`,
      `doorbell2/${H}/${FRONT}/ring`,
      `/doorbell/${H}/${FRONT}/ring`
    ]) {
      refused(mayPublish(device, topic, valid(FRONT).ring), /not a doorbell topic/)
      refused(mayPublish(resident, topic, valid(FRONT).offer), /not a doorbell topic/)
      refused(mayPublish(null, topic, valid(FRONT).ring), /not a doorbell topic/)
    }
  })

  it('malformed JSON is refused, and the reason names the topic', () => {
    refused(mayPublish(resident, t(FRONT).toDevice, buf('{"type":"offer",')), /not JSON/)
    refused(mayPublish(resident, t(FRONT).toDevice, buf('')), /not JSON/)
    refused(mayPublish(device, t(FRONT).ring, buf('ring!')), /not JSON/)
    refused(mayPublish(device, t(FRONT).state, Buffer.from([0xff, 0xfe, 0x00])), /not JSON/)
    refused(mayPublish(resident, t(FRONT).toDevice, buf('nope')), new RegExp(t(FRONT).toDevice))
  })

  it('a payload over 64 KiB is refused before it is parsed', () => {
    const offer = JSON.parse(valid(FRONT).offer.toString()) as Record<string, unknown>
    refused(mayPublish(resident, t(FRONT).toDevice, json({ ...offer, viewerName: 'x'.repeat(70_000) })), /exceeds 65536/)
    refused(mayPublish(owner, t(FRONT).toDevice, Buffer.alloc(1024 * 1024, 0x20)), /exceeds/)
  })

  it('schema-invalid payloads are refused with a reason that names the field', () => {
    const offer = JSON.parse(valid(FRONT).offer.toString()) as Record<string, unknown>
    const on = (v: unknown): GateResult => mayPublish(resident, t(FRONT).toDevice, json(v))
    refused(on({ ...offer, sdp: 'hello' }), /sdp: an SDP starts with "v=0"/)
    refused(on({ ...offer, sdp: 'v=0\r\ns=-\r\n' }), /sdp: an SDP has a video or data m-line/)
    refused(on({ ...offer, sdp: `v=0\r\nm=video 9 x\r\n${'a'.repeat(33 * 1024)}` }), /sdp: an SDP is at most 32768 bytes/)
    refused(on({ ...offer, type: 'unlock' }), /type/)
    refused(on({ ...offer, extra: true }), /extra|unrecognized/i)
    refused(on({ ...offer, viewerName: '' }), /viewerName/)
    refused(on({ ...offer, credential: 'not a token' }), /credential: not a signed token/)
    refused(on({ ...offer, credential: undefined }), /credential/)
    refused(on({ ...offer, proof: 'not a token' }), /proof: not a signed token/)
    refused(on({ ...offer, proof: undefined }), /proof/)
    refused(on([]), /\(root\)/)
    refused(on(null), /\(root\)/)
    const ring = JSON.parse(valid(FRONT).ring.toString()) as Record<string, unknown>
    refused(mayPublish(device, t(FRONT).ring, json({ ...ring, count: 0 })), /count/)
    refused(mayPublish(device, t(FRONT).ring, json({ ...ring, ringId: 'a/b' })), /ringId/)
    refused(mayPublish(device, t(FRONT).state, valid(FRONT).ring), /\S/)
    const attempt = JSON.parse(valid(FRONT).audit.toString()) as Record<string, unknown>
    refused(mayPublish(device, t(FRONT).audit, json({ ...attempt, reason: 'because' })), /reason/)
    refused(mayPublish(null, topics.revocations(H), json({ list: 'x' })), /list: not a signed/)
  })

  it('ids in the payload must agree with the topic', () => {
    const offer = JSON.parse(valid(FRONT).offer.toString()) as Record<string, unknown>
    refused(mayPublish(resident, t(FRONT).toDevice, json({ ...offer, viewerId: 'v-owner' })), /viewerId v-owner does not match the topic/)
    refused(mayPublish(resident, t(FRONT).toDevice, json({ ...offer, sessionId: 's2' })), /sessionId s2 does not match the topic/)
    refused(mayPublish(device, t(FRONT).state, valid(OTHER_DEVICE).state), /deviceId back-door does not match the topic/)
    refused(mayPublish(device, t(FRONT).audit, valid(OTHER_DEVICE).audit), /deviceId back-door does not match the topic/)
    refused(mayPublish(device, topics.inspect(H, FRONT), valid(FRONT).inspect(CAM_N)), /source.id does not match the topic/)
  })
})

describe('mayPublish: who may publish what', () => {
  it('a device publishes its own ring, state, presence, calls, audit, answers and inspection', () => {
    const p = valid(FRONT)
    allowed(mayPublish(device, t(FRONT).ring, p.ring))
    allowed(mayPublish(device, t(FRONT).state, p.state))
    allowed(mayPublish(device, t(FRONT).presence, p.presence))
    allowed(mayPublish(device, t(FRONT).calls, p.calls))
    allowed(mayPublish(device, t(FRONT).audit, p.audit))
    allowed(mayPublish(device, t(FRONT).toViewer, p.answer))
    allowed(mayPublish(device, t(FRONT).toViewer, buf(encode(SignalToViewer, { type: 'bye', sessionId: SESSION, reason: 'device-ended' }))))
    allowed(mayPublish(device, topics.inspect(H, FRONT), p.inspect(FRONT)))
  })

  it('a device may not publish for another device of the same home, nor send offers, nor a revocation list', () => {
    const p = valid(CAM_N)
    const reason = new RegExp(`device ${FRONT} may not publish for device ${CAM_N}`)
    refused(mayPublish(device, t(CAM_N).ring, p.ring), reason)
    refused(mayPublish(device, t(CAM_N).state, p.state), reason)
    refused(mayPublish(device, t(CAM_N).presence, p.presence), reason)
    refused(mayPublish(device, t(CAM_N).calls, p.calls), reason)
    refused(mayPublish(device, t(CAM_N).audit, p.audit), reason)
    refused(mayPublish(device, t(CAM_N).toViewer, p.answer), reason)
    refused(mayPublish(device, topics.inspect(H, CAM_N), p.inspect(CAM_N)), /may not publish inspection for cam-n/)
    refused(mayPublish(device, t(FRONT).toDevice, valid(FRONT).offer), /a device does not send offers/)
    refused(mayPublish(device, t(FRONT).toDevice, valid(FRONT).bye), /a device does not send offers/)
    refused(mayPublish(device, topics.revocations(H), valid(FRONT).revocations), /only the hub publishes the revocation list/)
    refused(mayPublish(camN, t(FRONT).ring, valid(FRONT).ring), /device cam-n may not publish for device front-door/)
  })

  it('a viewer of any role publishes only to-device, and its own tab\'s inspection', () => {
    const p = valid(FRONT)
    for (const v of [owner, resident, guest]) {
      const id = v.kind === 'viewer' ? v.viewerId : ''
      allowed(mayPublish(v, t(FRONT, id).toDevice, valid(FRONT, id).offer))
      allowed(mayPublish(v, t(FRONT, id).toDevice, valid(FRONT, id).bye))
      allowed(mayPublish(v, topics.inspect(H, `viewer-${id}-tab1`), p.inspect(`viewer-${id}-tab1`)))
      refused(mayPublish(v, t(FRONT).ring, p.ring), /only the device may publish ring/)
      refused(mayPublish(v, t(FRONT).state, p.state), /only the device may publish state/)
      refused(mayPublish(v, t(FRONT).presence, p.presence), /only the device may publish presence/)
      refused(mayPublish(v, t(FRONT).calls, p.calls), /only the device may publish calls/)
      refused(mayPublish(v, t(FRONT).audit, p.audit), /only the device may publish audit/)
      refused(mayPublish(v, t(FRONT, id).toViewer, p.answer), /only the device may publish to-viewer/)
      refused(mayPublish(v, topics.revocations(H), p.revocations), /only the hub publishes the revocation list/)
    }
  })

  it('signaling is bound to the viewer level of the topic: no offers or byes as another viewer', () => {
    // The payload agrees with its topic, so only the binding refuses it.
    refused(mayPublish(resident, t(FRONT, 'v-owner').toDevice, valid(FRONT, 'v-owner').offer), /v-resident may not signal as v-owner/)
    refused(mayPublish(resident, t(FRONT, 'v-owner').toDevice, valid(FRONT, 'v-owner').bye), /v-resident may not signal as v-owner/)
    refused(mayPublish(guest, t(FRONT, 'v-resident').toDevice, valid(FRONT, 'v-resident').bye), /v-guest may not signal as v-resident/)
  })

  it('inspection: a viewer only under its own tabs, never as a device or another viewer', () => {
    refused(mayPublish(resident, topics.inspect(H, 'viewer-v-owner-tab1'), valid(FRONT).inspect('viewer-v-owner-tab1')), /may not publish inspection for viewer-v-owner-tab1/)
    refused(mayPublish(resident, topics.inspect(H, FRONT), valid(FRONT).inspect(FRONT)), /may not publish inspection for front-door/)
    refused(mayPublish(resident, topics.inspect(H, 'viewer-v-resident'), valid(FRONT).inspect('viewer-v-resident')), /may not publish inspection/)
  })

  it('operators signal only to the devices of their zones', () => {
    allowed(mayPublish(operator, t(CAM_N, 'v-operator').toDevice, valid(CAM_N, 'v-operator').offer, zonesOf))
    refused(mayPublish(operator, t(FRONT, 'v-operator').toDevice, valid(FRONT, 'v-operator').offer, zonesOf), /front-door is not in the operator's zones/)
    // Without zone information, an operator reaches nothing.
    refused(mayPublish(operator, t(CAM_N, 'v-operator').toDevice, valid(CAM_N, 'v-operator').offer), /not in the operator's zones/)
    // Other roles are not limited by zones.
    allowed(mayPublish(resident, t(FRONT).toDevice, valid(FRONT).offer, zonesOf))
  })

  it('another home\'s topics are refused, even with a valid payload', () => {
    refused(mayPublish(device, t(FRONT, 'v-resident', 'other').ring, valid(FRONT).ring), /a member of home may not publish to home other/)
    refused(mayPublish(resident, t(FRONT, 'v-resident', 'other').toDevice, valid(FRONT).offer), /may not publish to home other/)
    refused(mayPublish(owner, topics.revocations('other'), valid(FRONT).revocations), /may not publish to home other/)
  })

  it('a publish with no signed-in client behind it (an orphaned will) is refused, after its schema', () => {
    refused(mayPublish(null, t(FRONT).presence, valid(FRONT).presence), /no signed-in client/)
    refused(mayPublish(null, topics.revocations(H), valid(FRONT).revocations), /no signed-in client/)
    refused(mayPublish(null, t(FRONT).presence, buf('offline')), /not JSON/)
    refused(mayPublish(null, 'elsewhere/x', valid(FRONT).presence), /not a doorbell topic/)
  })

  it('only a device\'s own state and presence may be retained (a retained message reaches every later subscriber)', () => {
    const p = valid(FRONT)
    allowed(mayPublish(device, t(FRONT).state, p.state, zonesOf, true))
    allowed(mayPublish(device, t(FRONT).presence, p.presence, zonesOf, true))
    refused(mayPublish(device, t(FRONT).ring, p.ring, zonesOf, true), /ring may not be retained/)
    refused(mayPublish(device, t(FRONT).calls, p.calls, zonesOf, true), /calls may not be retained/)
    refused(mayPublish(device, t(FRONT).audit, p.audit, zonesOf, true), /audit may not be retained/)
    refused(mayPublish(device, t(FRONT).toViewer, p.answer, zonesOf, true), /to-viewer may not be retained/)
    refused(mayPublish(device, topics.inspect(H, FRONT), p.inspect(FRONT), zonesOf, true), /inspect may not be retained/)
    refused(mayPublish(device, t(CAM_N).state, valid(CAM_N).state, zonesOf, true), /may not publish for device cam-n/)
    refused(mayPublish(resident, t(FRONT).toDevice, p.offer, zonesOf, true), /to-device may not be retained/)
    refused(mayPublish(owner, topics.revocations(H), p.revocations, zonesOf, true), /may not be retained|only the hub/)
  })
})

describe('maySubscribe', () => {
  it('$SYS and shared subscriptions are refused', () => {
    for (const who of [owner, device]) {
      refused(maySubscribe(who, '$SYS/#'), /\$SYS/)
      refused(maySubscribe(who, '$SYS/broker/clients/connected'), /\$SYS/)
      refused(maySubscribe(who, `$share/g/doorbell/${H}/+/ring`), /\$SYS/)
    }
  })

  it('subscriptions outside doorbell/ are refused', () => {
    for (const filter of ['#', '+/#', `+/${H}/+/ring`, 'other/#', 'doorbell2/#', 'doorbellx', '/doorbell/#', 'Doorbell/#']) {
      refused(maySubscribe(owner, filter), /only doorbell\/ topics exist here/)
    }
  })

  it('multi-level wildcards are refused, even within the home', () => {
    for (const filter of ['doorbell/#', `doorbell/${H}/#`, `doorbell/${H}/${FRONT}/#`, `doorbell/${H}/+/session/#`]) {
      refused(maySubscribe(owner, filter, devices, zonesOf), /multi-level wildcards are not allowed/)
      refused(maySubscribe(device, filter), /multi-level/)
    }
  })

  it('a concrete topic must be one of ours', () => {
    refused(maySubscribe(owner, `doorbell/${H}/${FRONT}/unknown`), /not a doorbell topic/)
    refused(maySubscribe(owner, `doorbell/${H}`), /not a doorbell topic/)
    refused(maySubscribe(owner, `doorbell/${H}/bad id/ring`), /not a doorbell topic/)
  })

  it('residents and guests: the home\'s events and their own inbox, nothing else', () => {
    for (const v of [resident, guest]) {
      const id = v.kind === 'viewer' ? v.viewerId : ''
      for (const f of topics.homeEvents(H)) allowed(maySubscribe(v, f, devices, zonesOf))
      allowed(maySubscribe(v, t(FRONT).ring, devices, zonesOf))
      allowed(maySubscribe(v, topics.viewerInbox(H, id)))
      allowed(maySubscribe(v, topics.session(H, FRONT, id, SESSION, 'to-viewer')))
      refused(maySubscribe(v, topics.viewerInbox(H, 'v-owner')), new RegExp(`${v.member.role} ${id} may not subscribe to`))
      refused(maySubscribe(v, `doorbell/${H}/+/session/+/+/to-viewer`), /may not subscribe/)
      refused(maySubscribe(v, topics.homeInspection(H)), /may not subscribe/)
      refused(maySubscribe(v, topics.deviceInbox(H, FRONT)), /may not subscribe/)
      refused(maySubscribe(v, topics.session(H, FRONT, id, SESSION, 'to-device')), /may not subscribe/)
      refused(maySubscribe(v, topics.audit(H, FRONT)), /may not subscribe/)
      refused(maySubscribe(v, `doorbell/${H}/+/audit`), /may not subscribe/)
      refused(maySubscribe(v, topics.revocations(H)), /may not subscribe/)
      refused(maySubscribe(v, 'doorbell/other/+/ring'), /may not subscribe/)
      refused(maySubscribe(v, 'doorbell/+/+/ring'), /may not subscribe/)
    }
  })

  it('the owner may also watch the inspection; a resident may not', () => {
    allowed(maySubscribe(owner, topics.homeInspection(H)))
    allowed(maySubscribe(owner, topics.inspect(H, FRONT)))
    refused(maySubscribe(resident, topics.homeInspection(H)), /resident v-resident may not subscribe/)
    refused(maySubscribe(resident, topics.inspect(H, FRONT)), /may not subscribe/)
    refused(maySubscribe(owner, topics.audit(H, FRONT)), /may not subscribe/)
    refused(maySubscribe(owner, topics.revocations(H)), /may not subscribe/)
  })

  it('a device: its own inbox (any viewer, any session) and the revocation list only', () => {
    allowed(maySubscribe(device, topics.deviceInbox(H, FRONT)))
    allowed(maySubscribe(device, topics.session(H, FRONT, 'v-resident', '+', 'to-device')))
    allowed(maySubscribe(device, topics.revocations(H)))
    allowed(maySubscribe(camN, topics.deviceInbox(H, CAM_N)))
    refused(maySubscribe(device, topics.deviceInbox(H, CAM_N)), /device front-door may not subscribe/)
    refused(maySubscribe(device, `doorbell/${H}/+/session/+/+/to-device`), /may not subscribe/)
    refused(maySubscribe(device, t(FRONT).ring), /may not subscribe/)
    refused(maySubscribe(device, `doorbell/${H}/+/ring`), /may not subscribe/)
    refused(maySubscribe(device, topics.viewerInbox(H, 'v-resident')), /may not subscribe/)
    refused(maySubscribe(device, topics.revocations('other')), /may not subscribe/)
  })

  it('operators: the devices of their zones one by one, no wildcard over the home, never inspection', () => {
    for (const kind of ['ring', 'state', 'presence', 'calls'] as const) {
      allowed(maySubscribe(operator, t(CAM_N)[kind], devices, zonesOf))
      refused(maySubscribe(operator, t(FRONT)[kind], devices, zonesOf), /operator v-operator may not subscribe/)
      refused(maySubscribe(operator, `doorbell/${H}/+/${kind}`, devices, zonesOf), /may not subscribe/)
    }
    allowed(maySubscribe(operator, topics.viewerInbox(H, 'v-operator'), devices, zonesOf))
    refused(maySubscribe(operator, topics.homeInspection(H), devices, zonesOf), /may not subscribe/)
    // A device not (or no longer) listed is not reachable, even in a zone name the operator has.
    refused(maySubscribe(operator, t(CAM_N).ring, () => [FRONT], zonesOf), /may not subscribe/)
    // Without zone information, only the operator's own inbox.
    refused(maySubscribe(operator, t(CAM_N).ring), /may not subscribe/)
    allowed(maySubscribe(operator, topics.viewerInbox(H, 'v-operator')))
  })
})

describe('Home Assistant\'s integration member: the discovery prefix and its own topics only', () => {
  const haMember = member({ id: 'm-ha', kind: 'integration', subject: 'ha1', role: null, door: false })
  const ha = must(principalFor(haMember, H, 'integration-ha1'))
  const OPEN = buf('OPEN')

  it('signs in as integration-{its id}, exactly', () => {
    assert.deepEqual(principalFor(haMember, H, 'integration-ha1'), { kind: 'integration', member: haMember, home: H, integrationId: 'ha1' })
    for (const id of ['integration-ha2', 'integration-ha1-x', 'viewer-ha1-tab', 'device-ha1', 'ha1', 'mqtt_random', '']) assert.equal(principalFor(haMember, H, id), null, id)
  })

  it('subscribes to its discovery prefix and the home\'s entity topics, nothing else', () => {
    for (const f of ['homeassistant/+/+/config', 'homeassistant/+/+/+/config', 'homeassistant/#', 'homeassistant/status', integrationTopics.homeEntities(H), integrationTopics.entity(H, FRONT, 'lock'), `doorbell/${H}/+/ha/event`]) {
      allowed(maySubscribe(ha, f, devices, zonesOf))
    }
    for (const f of [
      '#', '$SYS/#', 'doorbell/#', t(FRONT).ring, `doorbell/${H}/+/ring`, `doorbell/${H}/+/state`, topics.homeInspection(H), topics.deviceInbox(H, FRONT),
      topics.viewerInbox(H, '+'), topics.revocations(H), integrationTopics.lockCommand(H, FRONT), integrationTopics.homeEntities('other'),
      'homeassistantx/#', 'other/#'
    ]) refused(maySubscribe(ha, f, devices, zonesOf))
    // A custom prefix moves what it may read.
    allowed(maySubscribe(ha, 'ha-test/#', devices, zonesOf, 'ha-test'))
    refused(maySubscribe(ha, 'homeassistant/#', devices, zonesOf, 'ha-test'))
  })

  it('publishes Home Assistant\'s status and lock commands (the words HA sends), nothing else', () => {
    allowed(mayPublish(ha, 'homeassistant/status', buf('online')))
    allowed(mayPublish(ha, 'homeassistant/status', buf('offline'), undefined, true))
    for (const word of ['LOCK', 'UNLOCK', 'OPEN']) allowed(mayPublish(ha, integrationTopics.lockCommand(H, FRONT), buf(word)))
    refused(mayPublish(ha, 'homeassistant/status', buf('maybe')), /unexpected payload/)
    refused(mayPublish(ha, 'homeassistant/status', buf(' online')), /unexpected payload/)
    refused(mayPublish(ha, integrationTopics.lockCommand(H, FRONT), buf('open')), /unexpected payload/)
    refused(mayPublish(ha, integrationTopics.lockCommand(H, FRONT), buf('OPEN'.repeat(10))), /one word/)
    refused(mayPublish(ha, integrationTopics.lockCommand(H, FRONT), Buffer.from([0xff, 0xfe])), /UTF-8/)
    refused(mayPublish(ha, integrationTopics.lockCommand(H, FRONT), OPEN, undefined, true), /may not be retained/)
    refused(mayPublish(ha, integrationTopics.lockCommand('other', FRONT), OPEN), /may not publish to home other/)
    refused(mayPublish(ha, 'homeassistant/device/x/config', buf('{}')), /only the hub publishes under homeassistant/)
    refused(mayPublish(ha, integrationTopics.entity(H, FRONT, 'lock'), buf('UNLOCKED')), /only the hub/)
    refused(mayPublish(ha, t(FRONT).ring, valid(FRONT).ring), /integration publishes only/)
    refused(mayPublish(ha, t(FRONT, 'ha1').toDevice, valid(FRONT, 'ha1').bye), /integration publishes only/)
  })

  it('no one else publishes them: not the owner, not a device', () => {
    for (const who of [owner, resident, device]) {
      refused(mayPublish(who, 'homeassistant/status', buf('online')), /only Home Assistant/)
      refused(mayPublish(who, integrationTopics.lockCommand(H, FRONT), OPEN), /only Home Assistant/)
      refused(mayPublish(who, 'homeassistant/device/x/config', buf('')), /only the hub/)
      refused(maySubscribe(who, 'homeassistant/#', devices, zonesOf))
      refused(maySubscribe(who, integrationTopics.homeEntities(H), devices, zonesOf))
    }
    refused(mayPublish(null, integrationTopics.lockCommand(H, FRONT), OPEN), /only Home Assistant/)
  })
})

describe('the doorbell\'s kept rings (…/kept, issue 19)', () => {
  const kept = (deviceId: string, ringId = 'r1'): Buffer => buf(encode(KeptRing, {
    type: 'kept',
    deviceId,
    ring: { type: 'ring', deviceId, deviceName: 'Front door', ringId, at: 1, count: 1 },
    snapshot: { type: 'snapshot', deviceId, ringId, at: 2, seq: 1, jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2]).toString('base64') },
    record: null
  }))
  const keptTopic = (d: string): string => topics.kept(H, d)

  it('a device hands over its own kept rings, not another device\'s, and not retained', () => {
    allowed(mayPublish(device, keptTopic(FRONT), kept(FRONT)))
    refused(mayPublish(device, keptTopic(OTHER_DEVICE), kept(OTHER_DEVICE)), /may not publish for device/)
    refused(mayPublish(device, keptTopic(FRONT), kept(FRONT), undefined, true), /may not be retained/)
  })

  it('a kept ring is checked by its schema: its parts are of one ring of its own device, its picture a JPEG', () => {
    const mixed = JSON.parse(kept(FRONT).toString()) as { snapshot: { ringId: string, jpeg: string } }
    mixed.snapshot.ringId = 'r2'
    refused(mayPublish(device, keptTopic(FRONT), json(mixed)), /one ring of its own device/)
    const gif = JSON.parse(kept(FRONT).toString()) as { snapshot: { jpeg: string } }
    gif.snapshot.jpeg = Buffer.from('GIF89a').toString('base64')
    refused(mayPublish(device, keptTopic(FRONT), json(gif)), /JPEG/)
  })

  it('no member publishes or subscribes to it: only the hub reads it (no screen sees a stale ring)', () => {
    for (const who of [owner, resident, guest, operator]) {
      refused(mayPublish(who, keptTopic(FRONT), kept(FRONT)))
      refused(maySubscribe(who, keptTopic(FRONT), devices, zonesOf))
      refused(maySubscribe(who, `doorbell/${H}/+/kept`, devices, zonesOf))
    }
    refused(maySubscribe(device, keptTopic(FRONT), devices, zonesOf))
  })
})
