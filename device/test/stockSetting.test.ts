import { test } from 'node:test'
import assert from 'node:assert/strict'
import { StockDoorSetting, exportPublicKey, generateSigningKey, memoryLogger, sign } from '@doorbell/core'
import { OwnerStockSetting } from '../src/paths/cloud/stockSetting'

const setting = (o: Partial<StockDoorSetting> = {}): StockDoorSetting => ({ home: 'home', device: 'front-door', seq: 1, at: 1, acceptUnsignedOpenDoor: true, ...o })

test('the owner\'s stock setting: taken only signed by the home, for this home and doorbell, newer; kept; the config is the default', async () => {
  const home = await generateSigningKey(true)
  const stranger = await generateSigningKey(true)
  const lines: string[] = []
  const kept: string[] = []
  const s = await OwnerStockSetting.start({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey), configDefault: false, keep: (t) => { kept.push(t) }, log: memoryLogger(lines, 'stock') })
  assert.equal(s.acceptUnsignedOpenDoor, false)
  assert.equal(s.source, 'config')

  // Forged, another home's, another doorbell's, garbage: nothing changes.
  const forged = await sign(StockDoorSetting, setting(), stranger.privateKey)
  assert.equal(await s.take([forged, await sign(StockDoorSetting, setting({ home: 'other' }), home.privateKey), await sign(StockDoorSetting, setting({ device: 'back-door' }), home.privateKey), 'not.a-token', 'x'], 'hub'), false)
  assert.equal(s.acceptUnsignedOpenDoor, false)
  assert.ok(lines.some((l) => l.includes('refused an owner stock setting: not signed by this home')))
  assert.deepEqual(kept, [])

  const on = await sign(StockDoorSetting, setting({ seq: 2 }), home.privateKey)
  assert.equal(await s.take([on], 'hub'), true)
  assert.equal(s.acceptUnsignedOpenDoor, true)
  assert.equal(s.source, 'owner')
  assert.deepEqual(kept, [on])
  // An older or replayed one changes nothing.
  assert.equal(await s.take([on, await sign(StockDoorSetting, setting({ seq: 1, acceptUnsignedOpenDoor: false }), home.privateKey)], 'hub'), false)
  assert.equal(s.acceptUnsignedOpenDoor, true)

  // The owner's "off" overrides a config that says on, and holds across a restart (kept on disk).
  const off = await sign(StockDoorSetting, setting({ seq: 3, acceptUnsignedOpenDoor: false }), home.privateKey)
  const again = await OwnerStockSetting.start({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey), configDefault: true, kept: off, log: memoryLogger(lines, 'stock') })
  assert.equal(again.acceptUnsignedOpenDoor, false)
  // A kept file someone edited is refused at start, and the config decides.
  const tampered = await OwnerStockSetting.start({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey), configDefault: false, kept: forged, log: memoryLogger(lines, 'stock') })
  assert.equal(tampered.acceptUnsignedOpenDoor, false)
  assert.equal(tampered.source, 'config')
})

test('the settings record\'s live preview: unset (the config decides) until the owner sets it; each setting absent leaves the config\'s; kept across a restart', async () => {
  const home = await generateSigningKey(true)
  const lines: string[] = []
  const start = async (kept?: string) => await OwnerStockSetting.start({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(home.publicKey), configDefault: true, ...(kept ? { kept } : {}), log: memoryLogger(lines, 'stock') })
  const s = await start()
  assert.equal(s.livePreview, undefined)
  // A record with the stock setting only (as hubs signed before live preview): preview unset.
  assert.equal(await s.take([await sign(StockDoorSetting, setting({ seq: 1, acceptUnsignedOpenDoor: false }), home.privateKey)], 'hub'), true)
  assert.equal(s.livePreview, undefined)
  // Live preview only: the stock setting goes back to the config's, preview is the owner's.
  const off = await sign(StockDoorSetting, { home: 'home', device: 'front-door', seq: 2, at: 2, livePreview: false }, home.privateKey)
  assert.equal(await s.take([off], 'hub'), true)
  assert.equal(s.livePreview, false)
  assert.equal(s.acceptUnsignedOpenDoor, true)
  assert.equal(s.source, 'config')
  assert.ok(lines.some((l) => l.includes('the owner turned off live preview (from the next ring)')))
  assert.equal((await start(off)).livePreview, false)
  // Another doorbell's record does not touch this one's preview.
  assert.equal(await s.take([await sign(StockDoorSetting, { home: 'home', device: 'back-door', seq: 9, at: 9, livePreview: true }, home.privateKey)], 'hub'), false)
  assert.equal(s.livePreview, false)
})
