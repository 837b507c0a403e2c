import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { HistoryEvent } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { nodeViewer } from '../src/nodeViewer'

/**
 * "Dismissed by everyone" with real parts (the doorbell, the hub's Aedes and node:sqlite, two
 * screens running the viewer's own Home on mqtt.js): the hub notes which members' screens were
 * connected when a ring came (they were shown it); a ring all of them dismissed is marked
 * dismissed by everyone, one that only some dismissed is dismissed by those, not by everyone.
 */

const DEVICE = 'front-door'

test('a ring every screen shown it dismissed is "dismissed by everyone"; dismissed on one of two screens, it is not', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({ ringTimeoutSeconds: 2 })
  t.after(() => lan.stop())
  const hub = lan.hub
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const screens = await Promise.all(['Kitchen tablet', 'Hall phone'].map(async (name) => {
    const paired = await pairViewer(hub, { name, role: 'resident' })
    const api = new HubApi({ base: hub.url, token: paired.token })
    const viewer = nodeViewer(hub.mqttUrl, paired, 'h264', { onDismissed: (deviceId, ringId) => { void api.dismissRing(deviceId, ringId) } })
    t.after(() => viewer.close())
    await eventually(`${name} on the hub`, () => viewer.home.hub.connected)
    return viewer
  }))
  const [kitchen, hall] = screens as [typeof screens[0], typeof screens[0]]
  const ownerApi = new HubApi({ base: hub.url, token: owner.token })
  const ring = async (ringId: string): Promise<HistoryEvent | undefined> => (await ownerApi.events({ limit: 50 })).events.find((e) => e.ringId === ringId)

  // Ring 1: both screens dismiss it.
  lan.button.press()
  await eventually('both screens ring', () => kitchen.alerts.length === 1 && hall.alerts.length === 1)
  const first = await eventually('the first ring', () => lan.device.state().call.ringId)
  kitchen.home.dismiss(DEVICE)
  hall.home.dismiss(DEVICE)
  const r1 = await eventually('the first ring dismissed', async () => { const e = await ring(first); return e?.outcome === 'dismissed' && e.who.length === 2 ? e : null }, 15_000)
  assert.equal(r1.everyoneDismissed, true)
  assert.deepEqual([...r1.who].sort(), ['Hall phone', 'Kitchen tablet'])

  // Ring 2: only the kitchen dismisses; the hall screen lets it ring out.
  await eventually('the doorbell idle again', () => lan.device.call.getSnapshot().matches('idle'), 15_000)
  lan.button.press()
  await eventually('both screens ring again', () => kitchen.alerts.length === 2 && hall.alerts.length === 2)
  const second = await eventually('the second ring', () => { const id = lan.device.state().call.ringId; return id !== first ? id : null })
  kitchen.home.dismiss(DEVICE)
  const r2 = await eventually('the second ring over and dismissed', async () => { const e = await ring(second!); return e?.outcome === 'dismissed' ? e : null }, 15_000)
  assert.deepEqual(r2.who, ['Kitchen tablet'])
  assert.equal(r2.everyoneDismissed, false, 'the hall screen was shown it and did not dismiss it')
})
