import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { EventsPage, SnapshotEvent, memoryLogger, newId, topics, type RingEvent } from '@doorbell/core'
import { pairDevice } from '@doorbell/device'
import { startLan, eventually } from '../src/harness'
import { deviceInvite, inviteCode, pairViewer } from '../src/trust'
import { assertTestPatternBars } from '../src/jpeg'

/**
 * Issue 19 on the home network, with real parts (a doorbell with ffmpeg's test pattern, the hub's
 * Aedes and node:sqlite, mqtt.js): the ring's picture follows the ring, the hub keeps the ring and
 * its picture in the history, seen marks per member, role checks, and a device's bad snapshot
 * refused and logged while its ring still reaches the screens.
 */

const HOME = 'home'

async function api (base: string, path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(new URL(path, base), { ...init, headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } })
}

test('a ring with its picture, kept in the history: seen per member, guests refused, operators their zones, a bad snapshot refused with the ring delivered', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({ ringTimeoutSeconds: 1.5 })
  t.after(() => lan.stop())
  const hub = lan.hub
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const resident = await pairViewer(hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(hub, { name: 'Visitor', role: 'guest' })

  // The owner's screen, as the viewer subscribes.
  const watcher = mqtt.connect(hub.mqttUrl, { clientId: `viewer-${owner.viewerId}-${newId()}`, username: owner.memberId, password: owner.token, reconnectPeriod: 0 })
  t.after(() => { watcher.end(true) })
  await new Promise<void>((resolve, reject) => { watcher.once('connect', () => resolve()); watcher.once('error', reject) })
  await watcher.subscribeAsync(topics.homeEvents(HOME), { qos: 1 })
  const heard: Array<{ kind: string, at: number, payload: unknown }> = []
  watcher.on('message', (topic, payload) => { heard.push({ kind: topic.split('/').at(-1)!, at: performance.now(), payload: JSON.parse(payload.toString()) }) })

  lan.button.press()
  const first = await eventually('the ring\'s first picture', () => heard.find((h) => h.kind === 'snapshot' && (h.payload as SnapshotEvent).seq === 1), 15_000)
  const ring = heard.find((h) => h.kind === 'ring')
  assert.ok(ring, 'the ring came')
  assert.ok(heard.indexOf(ring) < heard.indexOf(first), 'the ring comes first, its picture after it')
  const snap = SnapshotEvent.parse(first.payload)
  assert.equal(snap.ringId, (ring.payload as RingEvent).ringId)
  assertTestPatternBars(Buffer.from(snap.jpeg!, 'base64'))
  await eventually('the second picture (replaces the first)', () => heard.find((h) => h.kind === 'snapshot' && (h.payload as SnapshotEvent).seq === 2), 15_000)

  // Nobody answered: the ring is missed, in the history with its picture, unseen by every member.
  const page = await eventually('the missed ring in the history', async () => {
    const r = EventsPage.parse(await (await api(hub.url, '/api/events?filter=missed', owner.token)).json())
    return r.events.length === 1 && r.events[0]!.snapshot ? r : null
  }, 15_000)
  const event = page.events[0]!
  assert.equal(event.unseen, true)
  assert.equal(page.unseen, 1)
  const jpeg = await api(hub.url, `/api/events/${event.id}/snapshot`, owner.token)
  assert.equal(jpeg.status, 200)
  assert.equal(jpeg.headers.get('content-type'), 'image/jpeg')
  assertTestPatternBars(Buffer.from(await jpeg.arrayBuffer()))

  // Seen by the owner (any of their screens: the mark is the member's), still unseen for the resident.
  const seen = await api(hub.url, '/api/events/seen', owner.token, { method: 'POST', body: JSON.stringify({ ids: [event.id] }) })
  assert.equal(seen.status, 200)
  assert.deepEqual(await seen.json(), { marked: 1, unseen: 0 })
  const ownerView = EventsPage.parse(await (await api(hub.url, '/api/events', owner.token)).json())
  assert.equal(ownerView.events.find((e) => e.id === event.id)?.unseen, false)
  const residentView = EventsPage.parse(await (await api(hub.url, '/api/events', resident.token)).json())
  assert.equal(residentView.events.find((e) => e.id === event.id)?.unseen, true)
  assert.equal(residentView.unseen, 1)

  // Guests: nothing. Bad input: a clear 400, nothing else.
  for (const path of ['/api/events', `/api/events/${event.id}/snapshot`]) assert.equal((await api(hub.url, path, guest.token)).status, 403, path)
  assert.equal((await api(hub.url, '/api/events/seen', guest.token, { method: 'POST', body: JSON.stringify({ all: true }) })).status, 403)
  const bad = await api(hub.url, '/api/events?limit=100000', owner.token)
  assert.equal(bad.status, 400)
  assert.match(((await bad.json()) as { error: string }).error, /limit/)
  assert.equal((await api(hub.url, '/api/events?filter=everything', owner.token)).status, 400)
  assert.equal((await api(hub.url, '/api/events/seen', owner.token, { method: 'POST', body: JSON.stringify({ ids: ['x'] }) })).status, 400)
  assert.equal((await api(hub.url, '/api/events/0/snapshot', owner.token)).status, 404)

  // A second device in the lobby zone sends what a broken or hostile device might: each bad
  // snapshot is refused (logged, its connection closed), the ring before it still reaches the owner.
  const lobbyId = 'lobby-door'
  const lobby = await pairDevice({ url: await deviceInvite(hub, lobbyId, 'lobby'), deviceId: lobbyId, deviceName: 'Lobby door', log: memoryLogger([], 'device') })
  const bads: Array<[string, unknown]> = [
    ['not a JPEG', { jpeg: Buffer.from('GIF89a not a jpeg at all').toString('base64') }],
    ['oversize', { jpeg: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(64 * 1024 + 500, 1)]).toString('base64') }],
    ['far too large', { jpeg: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(200 * 1024, 1)]).toString('base64') }],
    ['malformed', { jpeg: '/9j/###' }]
  ]
  for (const [what, extra] of bads) {
    const device = mqtt.connect(hub.mqttUrl, { clientId: `device-${lobbyId}`, username: lobby.memberId, password: lobby.token, reconnectPeriod: 0 })
    await new Promise<void>((resolve, reject) => { device.once('connect', () => resolve()); device.once('error', reject) })
    const ringId = newId('r')
    const ringEvent: RingEvent = { type: 'ring', deviceId: lobbyId, deviceName: 'Lobby door', ringId, at: Date.now(), count: 1 }
    await device.publishAsync(topics.ring(HOME, lobbyId), JSON.stringify(ringEvent), { qos: 1 })
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()))
    device.publish(topics.snapshot(HOME, lobbyId), JSON.stringify({ type: 'snapshot', deviceId: lobbyId, ringId, at: Date.now(), seq: 1, ...extra as object }), { qos: 1 })
    await closed
    device.end(true)
    await eventually(`the owner heard the ring before the ${what} snapshot`, () => heard.some((h) => h.kind === 'ring' && (h.payload as RingEvent).ringId === ringId))
    assert.ok(lan.lines.some((l) => l.includes('refused a publish') && l.includes(`${lobbyId}/snapshot`)), `the ${what} snapshot refusal is logged`)
    assert.ok(!heard.some((h) => h.kind === 'snapshot' && (h.payload as SnapshotEvent).ringId === ringId), `the ${what} snapshot never reached a screen`)
  }
  assert.ok(lan.lines.some((l) => l.includes('refused a publish') && /a snapshot is a JPEG/.test(l)))
  assert.ok(lan.lines.some((l) => l.includes('refused a publish') && /a snapshot is at most 65536 bytes/.test(l)))
  assert.ok(lan.lines.some((l) => l.includes('refused a publish') && /a snapshot is base64/.test(l)))
  // Far beyond a snapshot's size, and beyond the broker's packet limit: dropped as its header declares it, before the body is read.
  assert.ok(lan.lines.some((l) => l.includes('dropped an MQTT connection') && /a packet of \d+ bytes \(at most 262144 here\)/.test(l)))
  const lobbyRings = EventsPage.parse(await (await api(hub.url, `/api/events?device=${lobbyId}`, owner.token)).json())
  assert.equal(lobbyRings.events.length, 4, 'the four rings are in the history')
  assert.ok(lobbyRings.events.every((e) => !e.snapshot), 'without a picture')

  // An operator of the lobby zone: the lobby's rings only, never the front door's.
  const opCode = await inviteCode(hub, { kind: 'viewer', role: 'operator', zones: ['lobby'] })
  const op = await pairOperator(hub.url, opCode)
  const opView = EventsPage.parse(await (await api(hub.url, '/api/events', op.token)).json())
  assert.equal(opView.events.length, 4)
  assert.ok(opView.events.every((e) => e.deviceId === lobbyId))
  assert.equal((await api(hub.url, `/api/events/${event.id}/snapshot`, op.token)).status, 404, 'another zone\'s picture: no such event for them')

  // Delete: the owner only.
  assert.equal((await api(hub.url, `/api/events/${event.id}`, resident.token, { method: 'DELETE' })).status, 403)
  assert.equal((await api(hub.url, `/api/events/${event.id}`, owner.token, { method: 'DELETE' })).status, 200)
  assert.equal((await api(hub.url, `/api/events/${event.id}/snapshot`, owner.token)).status, 404)
})

async function pairOperator (base: string, code: string): Promise<{ token: string }> {
  const { exportPublicKey, generateSigningKey, PairResponse } = await import('@doorbell/core')
  const keys = await generateSigningKey(false)
  const res = await fetch(new URL('/api/pair', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'viewer', code, id: newId('v'), name: 'Night operator', key: await exportPublicKey(keys.publicKey) })
  })
  assert.equal(res.status, 200)
  return { token: PairResponse.parse(await res.json()).token }
}
