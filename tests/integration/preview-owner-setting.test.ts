import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { RingEvent, SnapshotEvent } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'
import { startLan, eventually, type Lan } from '../src/harness'
import { pairViewer } from '../src/trust'
import { nodeViewer } from '../src/nodeViewer'

/**
 * Issue 21's "the owner can turn live preview off per doorbell", with real parts (the doorbell and
 * its werift peers, the hub, the viewer's own Home on a werift peer): the doorbell's config is the
 * default (on); the owner's setting, signed by the home key in the doorbell's settings record and
 * sent with the revocation list, holds from the next ring: off, the ring says so, no preview is
 * offered or held, the ring's picture still comes; on again, the preview is back. A setting the hub
 * must refuse changes nothing.
 */

const DEVICE = 'front-door'
const offers = (lines: string[]): number => lines.filter((l) => l.includes('] offer viewer=Kitchen tablet session=')).length
const previews = (lan: Lan): number => Object.values(lan.device.call.getSnapshot().context.sessions).filter((s) => s.preview).length

test('the owner turns live preview off from Home settings: the next ring is the snapshot only; on again, live; bad requests refused', { timeout: 180_000 }, async (t) => {
  const lan = await startLan({ ringTimeoutSeconds: 4 })
  t.after(() => lan.stop())
  const hub = lan.hub
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const kitchen = await pairViewer(hub, { name: 'Kitchen tablet', role: 'resident' })
  const ownerApi = new HubApi({ base: hub.url, token: owner.token })
  const viewer = nodeViewer(hub.mqttUrl, kitchen, 'h264', { preview: true })
  t.after(() => viewer.close())
  const rings: RingEvent[] = []
  const pictures: SnapshotEvent[] = []
  viewer.home.paths.on('ring', (r) => { rings.push(r) })
  viewer.home.paths.on('snapshot', (s) => { pictures.push(s) })
  await eventually('the kitchen screen on the hub', () => viewer.home.hub.connected)
  const card = () => viewer.home.doorbells.get(DEVICE)!
  const idle = async (what: string): Promise<void> => { await eventually(what, () => lan.device.call.getSnapshot().matches('idle') && !card().getSnapshot().matches('incoming'), 20_000) }

  // The config's default: live.
  lan.button.press()
  await eventually('a live preview held by the doorbell (the config: on)', () => previews(lan) === 1, 20_000)
  assert.equal(rings.at(-1)?.livePreview, undefined)
  assert.equal(offers(lan.lines), 1, 'the preview\'s offer')
  await idle('the first ring over')

  // Refused, and nothing changes.
  const before = await ownerApi.stockSettings()
  const put = async (token: string, device: string, body: string): Promise<Response> => await fetch(new URL(`/api/devices/${device}/live-preview`, hub.url), { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body })
  for (const [what, token, device, body, status] of [
    ['a resident', kitchen.token, DEVICE, '{"livePreview":false}', 403],
    ['not a boolean', owner.token, DEVICE, '{"livePreview":"off"}', 400],
    ['an extra field', owner.token, DEVICE, '{"livePreview":false,"acceptUnsignedOpenDoor":true}', 400],
    ['no setting', owner.token, DEVICE, '{}', 400],
    ['a doorbell not paired', owner.token, 'back-door', '{"livePreview":false}', 404]
  ] as const) {
    const res = await put(token, device, body)
    assert.equal(res.status, status, what)
    assert.ok(((await res.json()) as { error?: string }).error, `${what}: a clear error`)
  }
  assert.deepEqual(await ownerApi.stockSettings(), before)

  // The owner turns it off: the doorbell takes the signed record, and the next ring is the snapshot only.
  const from = lan.lines.length
  const off = await ownerApi.setLivePreview(DEVICE, false)
  assert.equal(off.livePreview, false)
  assert.equal(off.acceptUnsignedOpenDoor, undefined, 'the other setting stays unset (the config decides)')
  await eventually('the doorbell took the owner\'s setting', () => lan.lines.slice(from).some((l) => l.startsWith('info') && l.includes('the owner turned off live preview')), 15_000)
  lan.button.press()
  const ring2 = await eventually('the second ring', () => rings.find((r) => r.ringId !== rings[0]!.ringId), 10_000)
  assert.equal(ring2.livePreview, false, 'the ring tells the screens: no preview')
  await eventually('the second ring\'s picture', () => pictures.some((p) => p.ringId === ring2.ringId && p.jpeg !== null), 20_000)
  assert.ok(card().getSnapshot().matches('incoming'), 'still ringing on the screen')
  assert.equal(previews(lan), 0, 'no preview session on the doorbell')
  assert.equal(offers(lan.lines.slice(from)), 0, 'no offer made')
  await idle('the second ring over')

  // On again: the next ring is live.
  const from2 = lan.lines.length
  await ownerApi.setLivePreview(DEVICE, true)
  await eventually('the doorbell took "on"', () => lan.lines.slice(from2).some((l) => l.includes('the owner turned on live preview')), 15_000)
  lan.button.press()
  await eventually('a live preview again', () => previews(lan) === 1, 20_000)
  assert.equal(offers(lan.lines.slice(from2)), 1)
  assert.equal(rings.at(-1)?.livePreview, undefined)
  assert.deepEqual((await ownerApi.stockSettings()).map((s) => [s.deviceId, s.livePreview, s.seq]), [[DEVICE, true, 2]])
})
