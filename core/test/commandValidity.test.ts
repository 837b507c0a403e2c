import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  DoorGuard, FRESHNESS_MS, Grant, NO_CALL_SESSION, exportPublicKey, generateSigningKey, sign, signOutOfCallDoorCommand,
  type Grant as GrantT
} from '../src/index'

/**
 * A command outside a call valid for less than a claim's freshness (`validForMs`, what the hub
 * signs Home Assistant's door commands with): the doorbell's own DoorGuard (unchanged, so an old
 * doorbell does the same) takes it within that time and refuses it as stale after, however it
 * was delivered; bad values are refused before anything is signed.
 */
const HOME = 'home'
const DEVICE = 'front-door'
const T0 = 1_800_000_000_000
const ctx = { sessionId: NO_CALL_SESSION, viewerId: 'v1' }

async function setup () {
  const homeKeys = await generateSigningKey(true)
  const viewerKeys = await generateSigningKey(false)
  const g: GrantT = { v: 1, id: 'm1', home: HOME, sub: 'v1', name: 'Home Assistant', role: 'resident', door: true, zones: [], key: await exportPublicKey(viewerKeys.publicKey), iat: T0, exp: null }
  const credential = await sign(Grant, g, homeKeys.privateKey)
  let now = T0
  const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: await exportPublicKey(homeKeys.publicKey), now: () => now })
  const command = async (id: string, validForMs?: number) => await signOutOfCallDoorCommand({ credential, key: viewerKeys.privateKey, home: HOME, device: DEVICE, command: id, now: T0, ...(validForMs !== undefined ? { validForMs } : {}) })
  return { guard, command, setNow: (t: number) => { now = t } }
}

describe('signOutOfCallDoorCommand validForMs', () => {
  it('taken within validForMs, refused as stale after it; without it, the claim\'s full freshness as before', async () => {
    const s = await setup()
    s.setNow(T0 + 7_900)
    assert.equal((await s.guard.check(await s.command('c1', 8_000), ctx)).ok, true)
    s.setNow(T0 + 8_100)
    const late = await s.guard.check(await s.command('c2', 8_000), ctx)
    assert.equal(late.ok ? 'allowed' : late.reason, 'stale')
    s.setNow(T0 + 11_000)
    const offline = await s.guard.check(await s.command('c3', 8_000), ctx)
    assert.equal(offline.ok ? 'allowed' : offline.reason, 'stale', 'a doorbell back after 11 s refuses it')
    s.setNow(T0 + FRESHNESS_MS - 100)
    assert.equal((await s.guard.check(await s.command('c4'), ctx)).ok, true, 'no validForMs: 30 s, unchanged')
  })

  it('bad input: a validity that is not a whole number from 1 ms to the freshness is refused', async () => {
    const s = await setup()
    for (const bad of [0, -5, 1.5, FRESHNESS_MS + 1, Number.NaN]) await assert.rejects(s.command('c', bad), /validForMs must be a whole number/)
  })
})
