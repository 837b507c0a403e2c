import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StockDoorSetting, memoryLogger, open } from '@doorbell/core'
import { loadOrCreateHomeKey } from '../src/trust/homeKey'
import { HomeStockSettings, STOCK_SETTINGS_FILE } from '../src/trust/stockSettings'

test('the owner\'s stock settings: signed by the home key per doorbell, seq growing, kept across a restart; a broken file stops the start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hub-stock-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const key = await loadOrCreateHomeKey(dir)
  const s = await HomeStockSettings.start({ dir, homeId: 'home', log: memoryLogger() })
  let changes = 0
  s.onChange(() => { changes++ })
  assert.deepEqual(await s.tokens(), [])
  await s.set('front-door', { acceptUnsignedOpenDoor: true }, 1000)
  await s.set('front-door', { acceptUnsignedOpenDoor: false }, 2000)
  await s.set('back-door', { acceptUnsignedOpenDoor: true }, 3000)
  assert.equal(changes, 3)
  const opened = await Promise.all((await s.tokens()).map(async (token) => await open(StockDoorSetting, token, key.publicKey)))
  assert.deepEqual(opened.map((o) => o.ok ? o.value : o.problem), [
    { home: 'home', device: 'front-door', seq: 2, at: 2000, acceptUnsignedOpenDoor: false },
    { home: 'home', device: 'back-door', seq: 1, at: 3000, acceptUnsignedOpenDoor: true }
  ])
  await assert.rejects(s.set('../etc', { acceptUnsignedOpenDoor: true }), /not a device id/)

  const again = await HomeStockSettings.start({ dir, homeId: 'home', log: memoryLogger() })
  assert.deepEqual(await again.list(), await s.list())

  await writeFile(join(dir, STOCK_SETTINGS_FILE), '{"v":1,"settings":"on"}')
  await assert.rejects(HomeStockSettings.start({ dir, homeId: 'home', log: memoryLogger() }), (err: Error) => err.name === 'StockSettingError' && /not a stock-settings file/.test(err.message))
})

test('live preview joins the same signed record per doorbell: each setting kept when the other changes; an old file reads the same; an empty change refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hub-stock-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const key = await loadOrCreateHomeKey(dir)
  // A file written before live preview was a setting.
  await writeFile(join(dir, STOCK_SETTINGS_FILE), JSON.stringify({ v: 1, settings: [{ deviceId: 'front-door', acceptUnsignedOpenDoor: true, seq: 3, at: 1000 }] }))
  const s = await HomeStockSettings.start({ dir, homeId: 'home', log: memoryLogger() })
  assert.deepEqual(await s.list(), [{ deviceId: 'front-door', acceptUnsignedOpenDoor: true, seq: 3, at: 1000 }])
  let changes = 0
  s.onChange(() => { changes++ })
  await s.set('front-door', { livePreview: false }, 2000)
  await s.set('back-door', { livePreview: true }, 3000)
  await s.set('back-door', { acceptUnsignedOpenDoor: false }, 4000)
  const opened = await Promise.all((await s.tokens()).map(async (token) => await open(StockDoorSetting, token, key.publicKey)))
  assert.deepEqual(opened.map((o) => o.ok ? o.value : o.problem), [
    { home: 'home', device: 'front-door', seq: 4, at: 2000, acceptUnsignedOpenDoor: true, livePreview: false },
    { home: 'home', device: 'back-door', seq: 2, at: 4000, livePreview: true, acceptUnsignedOpenDoor: false }
  ])
  const before = await s.list()
  await assert.rejects(s.set('front-door', {}), (err: Error) => err.name === 'StockSettingError' && /no setting to change/.test(err.message))
  assert.deepEqual(await s.list(), before)
  assert.equal(changes, 3)
  assert.deepEqual(await (await HomeStockSettings.start({ dir, homeId: 'home', log: memoryLogger() })).list(), before)
})
