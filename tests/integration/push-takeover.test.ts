import { test } from 'node:test'
import assert from 'node:assert/strict'
import { exportPublicKey, generateSigningKey, newId } from '@doorbell/core'
import { ApiError, HubApi } from '@doorbell/viewer/lib'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { startPushService } from '../src/pushService'

/**
 * A push endpoint is one browser profile, not one person: when another member signs in on the
 * same browser and turns notifications on, the endpoint is theirs alone from then on. The first
 * member's row goes, so a ring only the first member may see no longer wakes the browser the
 * second one now uses, and the first can no longer turn it off for them. Real hub (Aedes,
 * node:sqlite), real doorbell, the push-service stand-in on loopback (tests/src/pushService.ts).
 */
test('a push endpoint subscribed by member X and then by member Y belongs to Y only: X\'s rings no longer wake that browser', { timeout: 120_000 }, async (t) => {
  const service = await startPushService()
  t.after(() => service.close())
  const lan = await startLan({ ringTimeoutSeconds: 3 }, { push: { allowLoopbackEndpoints: true } })
  t.after(() => lan.stop())
  const hub = lan.hub
  // X sees the front door (the owner); Y is an operator of another zone, who may not.
  const x = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const yKeys = await generateSigningKey(false)
  const y = await new HubApi({ base: hub.url }).pair({
    kind: 'viewer',
    code: (await hub.trust.invite('console', { kind: 'viewer', role: 'operator', zones: ['north'] }, hub.url)).code,
    id: newId('v'),
    name: 'Night operator',
    key: await exportPublicKey(yKeys.publicKey)
  })
  const xApi = new HubApi({ base: hub.url, token: x.token })
  const yApi = new HubApi({ base: hub.url, token: y.token })
  const subscriptions = (): Array<{ endpoint: string, memberId: string, screen: string | null }> =>
    hub.push.state!.subscriptions.all().map((s) => ({ endpoint: s.endpoint, memberId: s.memberId, screen: s.screen }))

  // X turns notifications on in the hall's shared browser and on their phone.
  const hall = service.screen('hall-browser')
  const phone = service.screen('owner-phone')
  await xApi.subscribePush(hall.subscription, 'Hall')
  await xApi.subscribePush(phone.subscription, 'Phone')
  assert.equal((await xApi.pushKey()).subscriptions, 2)

  // Y signs in on the hall browser: the same profile, so the same subscription.
  await yApi.subscribePush(hall.subscription, 'Hall (night)')
  assert.deepEqual(subscriptions().filter((s) => s.endpoint === hall.subscription.endpoint), [{ endpoint: hall.subscription.endpoint, memberId: y.member.id, screen: 'Hall (night)' }], 'one row for the endpoint, Y\'s')
  assert.equal((await xApi.pushKey()).subscriptions, 1, 'X keeps only the phone')
  assert.equal((await yApi.pushKey()).subscriptions, 1)
  // It is no longer X's to turn off: refused, and Y's row stays.
  await assert.rejects(xApi.unsubscribePush(hall.subscription.endpoint), (e: ApiError) => e.status === 404)
  assert.equal(subscriptions().filter((s) => s.memberId === y.member.id).length, 1)

  // A ring at the front door (X's, not Y's): X's phone is woken, the hall browser is not.
  const pushed = (): number => lan.lines.filter((l) => l.includes('ring pushed')).length
  lan.button.press()
  await eventually('the first ring\'s pushes all answered', () => pushed() === 1, 20_000)
  assert.deepEqual(service.received.map((r) => r.screen), ['owner-phone'], 'only X\'s own screen')
  assert.equal(service.refused.length, 0, JSON.stringify(service.refused))

  // X signs in on the hall browser again: it is X's once more, and the next ring wakes it.
  await xApi.subscribePush(hall.subscription, 'Hall')
  assert.equal((await yApi.pushKey()).subscriptions, 0, 'taken back from Y')
  await eventually('the doorbell idle', () => lan.device.call.getSnapshot().matches('idle'), 20_000)
  lan.button.press()
  await eventually('the second ring\'s pushes all answered', () => pushed() === 2, 20_000)
  assert.deepEqual(service.received.map((r) => r.screen).sort(), ['hall-browser', 'owner-phone', 'owner-phone'])
})
