import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SealOpenError, homeDerivedKey, sealer } from '../src/cluster/homeSeal'
import { HOME_KEY_FILE } from '../src/trust/homeKey'

/** What a cluster seals in PostgreSQL (integration keys, the VAPID key) and the clips' address key: derived from the home key. */

function homeKeyDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'home-seal-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const { privateKey } = generateKeyPairSync('ed25519')
  writeFileSync(join(dir, HOME_KEY_FILE), privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })
  return dir
}

test('a derived key is the same for the same home key, home and purpose, and differs when any changes', async (t) => {
  const dir = homeKeyDir(t)
  const other = homeKeyDir(t)
  const key = await homeDerivedKey(dir, 'home', 'doorbell clip addresses v1')
  assert.equal(key.length, 32)
  assert.deepEqual(await homeDerivedKey(dir, 'home', 'doorbell clip addresses v1'), key)
  for (const k of [await homeDerivedKey(dir, 'home', 'doorbell vapid key v1'), await homeDerivedKey(dir, 'other-home', 'doorbell clip addresses v1'), await homeDerivedKey(other, 'home', 'doorbell clip addresses v1')]) {
    assert.notDeepEqual(k, key)
  }
  await assert.rejects(homeDerivedKey(join(dir, 'missing'), 'home', 'x'), /ENOENT/)
})

test('a sealed secret opens under the same key and row only; changed or foreign bytes are refused with a reason', () => {
  const box = sealer(randomBytes(32))
  const secret = randomBytes(121)
  const sealed = box.seal('vapid', secret)
  assert.ok(!sealed.includes(secret.subarray(0, 16)), 'not in clear')
  assert.deepEqual(box.unseal('vapid', sealed), secret)
  const refused = (fn: () => unknown, reason: 'format' | 'key'): void => {
    assert.throws(fn, (err: unknown) => err instanceof SealOpenError && err.name === 'SealOpenError' && err.reason === reason)
  }
  refused(() => box.unseal('another-row', sealed), 'key')
  refused(() => sealer(randomBytes(32)).unseal('vapid', sealed), 'key')
  const flipped = Buffer.from(sealed)
  flipped[flipped.length - 1]! ^= 1
  refused(() => box.unseal('vapid', flipped), 'key')
  refused(() => box.unseal('vapid', Buffer.alloc(10)), 'format')
  refused(() => box.unseal('vapid', Buffer.concat([Buffer.from([2]), sealed.subarray(1)])), 'format')
})
