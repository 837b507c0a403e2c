import { test } from 'node:test'
import assert from 'node:assert/strict'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { RingPush } from '@doorbell/core'
import { ApiError, HubApi } from '@doorbell/viewer/lib'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { jpegPixels } from '../src/jpeg'
import { startPushService } from '../src/pushService'

/**
 * Issue 19's Web Push with real parts (the doorbell and its ffmpeg test pattern, the hub's Aedes
 * and node:sqlite) and a push-service stand-in on loopback that checks each push's VAPID token
 * and decrypts its aes128gcm body with the screen's private key (tests/src/pushService.ts). A
 * ring wakes every subscribed screen of every member with the ring and a small picture; a screen
 * the push service forgot (410) is deleted; a removed member's screens are deleted; bad
 * subscriptions are refused and change nothing.
 */

const DEVICE = 'front-door'

/** The test pattern's bars (ffmpeg testsrc) at a thumbnail's scale: cyan, magenta, blue, yellow, green. */
function assertBars (jpeg: Buffer): void {
  const { width, height, rgb } = jpegPixels(jpeg)
  assert.ok(width <= 160 && width >= 60, `a thumbnail ${width}x${height}`)
  const y = Math.round(150 / 480 * height)
  const bars: Array<[number, [number, number, number]]> = [[120, [0, 255, 255]], [200, [255, 0, 255]], [280, [0, 0, 255]], [360, [255, 255, 0]], [440, [0, 255, 0]]]
  for (const [x640, want] of bars) {
    const i = (y * width + Math.round(x640 / 640 * width)) * 3
    const got = [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!]
    assert.ok(got.every((v, k) => Math.abs(v - want[k]!) < 70), `bar at ${x640}: ${got.join(',')} vs ${want.join(',')}`)
  }
}

test('a ring wakes every subscribed screen by Web Push: VAPID-signed, aes128gcm, the ring with a small picture; gone and removed screens deleted; bad subscriptions refused', { timeout: 120_000 }, async (t) => {
  const service = await startPushService()
  t.after(() => service.close())
  const lan = await startLan({ ringTimeoutSeconds: 3 }, { push: { allowLoopbackEndpoints: true, contact: 'mailto:owner@example.org' } })
  t.after(() => lan.stop())
  const hub = lan.hub
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const resident = await pairViewer(hub, { name: 'Lodger', role: 'resident' })
  const ownerApi = new HubApi({ base: hub.url, token: owner.token })
  const residentApi = new HubApi({ base: hub.url, token: resident.token })

  // The key: made at start, 0600 in the hub's data folder, the same one the API gives.
  const { publicKey } = await ownerApi.pushKey()
  assert.equal(Buffer.from(publicKey, 'base64url').length, 65)
  assert.equal((await stat(join(hub.config.dataDir, 'push', 'vapid.json'))).mode & 0o777, 0o600)

  // Bad subscriptions: refused with a clear error, nothing kept.
  const phone = service.screen('owner-phone')
  const refusals: Array<[string, unknown, number, RegExp]> = [
    ['a key that is not a P-256 point', { subscription: { ...phone.subscription, keys: { ...phone.subscription.keys, p256dh: Buffer.alloc(65, 1).toString('base64url') } } }, 400, /p256dh/],
    ['a short auth secret', { subscription: { ...phone.subscription, keys: { ...phone.subscription.keys, auth: 'AAAA' } } }, 400, /auth/],
    ['no keys', { subscription: { endpoint: phone.subscription.endpoint } }, 400, /keys/],
    ['an http endpoint off loopback', { subscription: { ...phone.subscription, endpoint: 'http://192.0.2.1/push/x' } }, 400, /https, or http on loopback/],
    ['a non-URL', { subscription: { ...phone.subscription, endpoint: 'push here' } }, 400, /endpoint/],
    ['an unknown field', { subscription: phone.subscription, extra: 1 }, 400, /extra|unrecognized/i]
  ]
  for (const [what, body, status, message] of refusals) {
    const res = await fetch(new URL('/api/push/subscriptions', hub.url), { method: 'POST', headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    assert.equal(res.status, status, what)
    assert.match(((await res.json()) as { error: string }).error, message, what)
  }
  const noToken = await fetch(new URL('/api/push/subscriptions', hub.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subscription: phone.subscription }) })
  assert.equal(noToken.status, 401)
  assert.equal(hub.push.state!.subscriptions.all().length, 0, 'nothing kept from a refusal')

  // Two screens of the owner, one of the resident.
  const tablet = service.screen('owner-tablet')
  const lodger = service.screen('lodger-laptop')
  await ownerApi.subscribePush(phone.subscription, 'Phone')
  await ownerApi.subscribePush(tablet.subscription, 'Tablet')
  await residentApi.subscribePush(lodger.subscription, 'Laptop')
  assert.equal((await ownerApi.pushKey()).subscriptions, 2)

  // A ring: each screen gets one push, checked and decrypted by the stand-in.
  lan.button.press()
  const ringId = await eventually('the ring', () => lan.device.state().call.ringId)
  await eventually('three pushes', () => service.received.length >= 3, 15_000)
  assert.equal(service.refused.length, 0, JSON.stringify(service.refused))
  assert.deepEqual(service.received.map((r) => r.screen).sort(), ['lodger-laptop', 'owner-phone', 'owner-tablet'])
  for (const r of service.received) {
    const push = RingPush.parse(r.json)
    assert.equal(push.deviceId, DEVICE)
    assert.equal(push.ringId, ringId)
    assert.equal(push.deviceName, 'Front door')
    assert.ok(push.jpeg, `the push carries a picture: ${lan.lines.filter((l) => /snapshot|push/.test(l)).join('\n')}`)
    assertBars(Buffer.from(push.jpeg, 'base64'))
    assert.ok(r.bodyBytes <= 4096, `${r.bodyBytes} bytes`)
    assert.equal(r.urgency, 'high')
    assert.equal(r.ttl, 60)
    assert.equal(r.vapidKey, publicKey)
    assert.equal(r.claims.aud, service.url)
    assert.equal(r.claims.sub, 'mailto:owner@example.org')
  }
  console.log(`push bodies: ${service.received.map((r) => r.bodyBytes).join(', ')} bytes; picture ${RingPush.parse(service.received[0]!.json).jpeg!.length} base64 chars`)

  // The push service forgets the tablet (410): the hub deletes that subscription at the next ring.
  service.forget('owner-tablet')
  await eventually('the doorbell idle', () => lan.device.call.getSnapshot().matches('idle'), 15_000)
  lan.button.press()
  await eventually('two more pushes and a 410', () => service.received.length >= 5 && service.refused.length >= 1, 15_000)
  assert.deepEqual(service.refused.map((r) => [r.screen, r.status] as const), [['owner-tablet', 410]])
  await eventually('the gone subscription deleted', () => hub.push.state!.subscriptions.all().every((s) => !s.endpoint.includes('owner-tablet')))
  assert.equal((await ownerApi.pushKey()).subscriptions, 1)

  // The owner's phone turns it off; an unknown endpoint is 404 and changes nothing.
  await assert.rejects(ownerApi.unsubscribePush(`${service.url}/push/nobody`), (e: ApiError) => e.status === 404)
  await ownerApi.unsubscribePush(phone.subscription.endpoint)
  assert.equal((await ownerApi.pushKey()).subscriptions, 0)

  // The resident is removed: their screens' subscriptions go with them.
  await hub.trust.revoke(hub.trust.members().find((m) => m.id === owner.memberId)!, resident.memberId)
  assert.equal(hub.push.state!.subscriptions.all().length, 0)
})
