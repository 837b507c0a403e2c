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
