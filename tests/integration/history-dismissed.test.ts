import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventsPage, type HistoryEvent } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { nodeViewer } from '../src/nodeViewer'

/**
 * Issue 19's "dismissed" outcome with real parts (the doorbell, the hub's Aedes and node:sqlite,
 * the viewer's own Home on mqtt.js): a screen that dismisses a ring tells the hub, and the ring
 * nobody answered is recorded as dismissed by that member; a ring nobody dismissed stays missed;
 * a dismissal the hub must refuse (a guest, a malformed body, a ring it does not have or of another
 * device) gets a clear error and changes nothing.
 */

const DEVICE = 'front-door'

async function post (base: string, token: string, body: unknown): Promise<Response> {
  return await fetch(new URL('/api/events/dismissed', base), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
}

test('a ring dismissed on a screen and not answered is "dismissed" by that member in the history; bad dismissals refused, nothing changed', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({ ringTimeoutSeconds: 2 })
  t.after(() => lan.stop())
  const hub = lan.hub
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const kitchen = await pairViewer(hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(hub, { name: 'Visitor', role: 'guest' })
  const ownerApi = new HubApi({ base: hub.url, token: owner.token })
  const kitchenApi = new HubApi({ base: hub.url, token: kitchen.token })
  const told: Array<Promise<unknown>> = []
  const viewer = nodeViewer(hub.mqttUrl, kitchen, 'h264', { onDismissed: (deviceId, ringId) => { told.push(kitchenApi.dismissRing(deviceId, ringId)) } })
  t.after(() => viewer.close())
  await eventually('the kitchen screen on the hub', () => viewer.home.hub.connected)
  const rings = async (): Promise<HistoryEvent[]> => (await ownerApi.events({ limit: 50 })).events.filter((e) => e.kind === 'ring')

  // Ring 1: the kitchen screen dismisses it while it rings; nobody answers.
  lan.button.press()
  await eventually('the kitchen screen rings', () => viewer.alerts.length === 1)
  viewer.home.dismiss(DEVICE)
  assert.equal(told.length, 1, 'the dismissal was told to the hub once')
  assert.deepEqual(await told[0], { outcome: 'ringing' })
  const first = await eventually('the ring dismissed in the history', async () => {
    const e = (await rings())[0]
    return e?.outcome === 'dismissed' ? e : null
  }, 15_000)
  assert.deepEqual(first.who, ['Kitchen tablet'])
  assert.equal(first.unseen, false, 'a dismissed ring was seen')

  // Ring 2: nobody dismisses, nobody answers: missed, as before.
  await eventually('the doorbell idle again', () => viewer.home.doorbells.get(DEVICE)?.getSnapshot().matches('incoming') === false)
  lan.button.press()
  await eventually('the kitchen screen rings again', () => viewer.alerts.length === 2)
  const second = await eventually('the second ring missed', async () => {
    const e = (await rings()).find((r) => r.ringId !== first.ringId)
    return e?.outcome === 'missed' ? e : null
  }, 15_000)
  assert.deepEqual(second.who, [])
  assert.equal(told.length, 1, 'a ring that ended by itself is not a dismissal')

  // The history view's filter.
  assert.deepEqual(EventsPage.parse(await ownerApi.events({ filter: 'dismissed' })).events.map((e) => e.ringId), [first.ringId])
  assert.deepEqual((await ownerApi.events({ filter: 'missed' })).events.map((e) => e.ringId), [second.ringId])

  // Refused with a clear error, and nothing changes.
  const before = await ownerApi.events({ limit: 50 })
  const refusals: Array<[string, string, unknown, number, RegExp]> = [
    ['a guest', guest.token, { deviceId: DEVICE, ringId: second.ringId }, 403, /guests/],
    ['a ring the hub does not have', kitchen.token, { deviceId: DEVICE, ringId: 'r-unknown' }, 404, /no such ring/],
    ['another device\'s ring id', kitchen.token, { deviceId: 'back-door', ringId: second.ringId }, 404, /no such ring/],
    ['no ring id', kitchen.token, { deviceId: DEVICE }, 400, /ringId/],
    ['an extra field', kitchen.token, { deviceId: DEVICE, ringId: second.ringId, by: 'Owner' }, 400, /by/],
    ['not JSON', kitchen.token, '{"deviceId":', 400, /JSON|body/i],
    ['no token', '', { deviceId: DEVICE, ringId: second.ringId }, 401, /./]
  ]
  for (const [what, token, body, status, error] of refusals) {
    const res = await post(hub.url, token, body)
    assert.equal(res.status, status, what)
    assert.match(((await res.json()) as { error: string }).error, error, what)
  }
  assert.deepEqual(await ownerApi.events({ limit: 50 }), before)

  // Dismissed afterwards (the notification's Dismiss, tapped late): the missed ring becomes dismissed.
  assert.deepEqual(await ownerApi.dismissRing(DEVICE, second.ringId!), { outcome: 'dismissed' })
  assert.deepEqual((await ownerApi.events({ filter: 'dismissed' })).events.map((e) => [e.ringId, e.who]), [[second.ringId, ['Owner']], [first.ringId, ['Kitchen tablet']]])
})
