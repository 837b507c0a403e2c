import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, DeviceConfig, parseConfig } from '../src/index'

/** The device config's per-screen limit on requests outside a call (device/src/paths/senderLimit.ts). */

test('commandsPerScreen: absent (the doorbell uses 20 in 10 s), partial filled, out of range refused with where and why', () => {
  assert.equal(parseConfig(DeviceConfig, {}, 'x').commandsPerScreen, undefined)
  assert.deepEqual(parseConfig(DeviceConfig, { commandsPerScreen: { count: 3 } }, 'x').commandsPerScreen, { count: 3, windowMs: 10_000 })
  assert.deepEqual(parseConfig(DeviceConfig, { commandsPerScreen: { count: 5, windowMs: 2000 } }, 'x').commandsPerScreen, { count: 5, windowMs: 2000 })
  for (const bad of [{ count: 0 }, { windowMs: 10 }, { count: 2.5 }, { per: 3 }]) {
    assert.throws(() => parseConfig(DeviceConfig, { commandsPerScreen: bad }, 'x'), (err: unknown) => err instanceof ConfigError && /commandsPerScreen/.test(err.message), JSON.stringify(bad))
  }
})
