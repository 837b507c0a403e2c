import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { HistoryEvent } from '@doorbell/core'
import { ApiError, HubApi } from '@doorbell/viewer/lib'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'

/**
 * "Dismissed by everyone" per screen, with real parts (the doorbell, the hub's Aedes and
 * node:sqlite, screens running the viewer's own Home on mqtt.js): one member with two screens
 * connected (two tabs: two hub connections) and another member with one. Each screen tells the
 * hub which screen it is (its connection's client id). Dismissed on one of the member's two
 * screens, the ring is dismissed by that member but not by everyone; on every screen, it is. A
 * screen that is not the member's own is refused and changes nothing.
 */

const DEVICE = 'front-door'

test('a member with two screens: dismissed on one is not "dismissed by everyone"; on both it is; another member\'s screen id is refused', { timeout: 150_000 }, async (t) => {
  const lan = await startLan({ ringTimeoutSeconds: 3 })
  t.after(() => lan.stop())
  const hub = lan.hub
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const ann = await pairViewer(hub, { name: 'Ann', role: 'resident' })
  const bob = await pairViewer(hub, { name: 'Bob', role: 'resident' })
  const screen = async (who: typeof ann, label: string): Promise<NodeViewer> => {
    const api = new HubApi({ base: hub.url, token: who.token })
    let viewer: NodeViewer | null = null
    viewer = nodeViewer(hub.mqttUrl, who, 'h264', { onDismissed: (deviceId, ringId) => { void api.dismissRing(deviceId, ringId, { screen: viewer!.home.hub.clientId }) } })
    t.after(() => viewer!.close())
    await eventually(`${label} on the hub`, () => viewer!.home.hub.connected)
    return viewer
  }
  const annPhone = await screen(ann, 'Ann\'s phone')
  const annLaptop = await screen(ann, 'Ann\'s laptop')
  const bobTablet = await screen(bob, 'Bob\'s tablet')
  assert.notEqual(annPhone.home.hub.clientId, annLaptop.home.hub.clientId, 'two screens of one member')
  const all = [annPhone, annLaptop, bobTablet]
  const ownerApi = new HubApi({ base: hub.url, token: owner.token })
  const ring = async (ringId: string): Promise<HistoryEvent | undefined> => (await ownerApi.events({ limit: 50 })).events.find((e) => e.ringId === ringId)

  // Ring 1: Ann dismisses on her phone only, Bob on his tablet; Ann's laptop lets it ring out.
  lan.button.press()
  await eventually('every screen rings', () => all.every((v) => v.alerts.length === 1))
  const first = await eventually('the first ring', () => lan.device.state().call.ringId)
  annPhone.home.dismiss(DEVICE)
  bobTablet.home.dismiss(DEVICE)
  const r1 = await eventually('the first ring over and dismissed by both members', async () => { const e = await ring(first); return e?.outcome === 'dismissed' && e.who.length === 2 ? e : null }, 20_000)
  assert.deepEqual([...r1.who].sort(), ['Ann', 'Bob'])
  assert.equal(r1.everyoneDismissed, false, 'Ann\'s laptop was shown it and did not dismiss it')

  // Ring 2: every screen dismisses it.
  await eventually('the doorbell idle again', () => lan.device.call.getSnapshot().matches('idle'), 20_000)
  lan.button.press()
  await eventually('every screen rings again', () => all.every((v) => v.alerts.length === 2))
  const second = await eventually('the second ring', () => { const id = lan.device.state().call.ringId; return id !== first ? id : null })
  for (const v of all) v.home.dismiss(DEVICE)
  const r2 = await eventually('the second ring dismissed by everyone', async () => { const e = await ring(second!); return e?.outcome === 'dismissed' && e.everyoneDismissed === true ? e : null }, 20_000)
  assert.deepEqual([...r2.who].sort(), ['Ann', 'Bob'], 'the wording names members, once each')

  // Bob naming Ann's screen: refused (400), nothing recorded.
  const bobApi = new HubApi({ base: hub.url, token: bob.token })
  const before = await ring(first)
  await assert.rejects(bobApi.dismissRing(DEVICE, first, { screen: annLaptop.home.hub.clientId }), (err: unknown) => err instanceof ApiError && err.status === 400 && /not one of this member's screens/.test(err.message))
  assert.deepEqual(await ring(first), before)
})
