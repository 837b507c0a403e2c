import assert from 'node:assert/strict'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { memoryLogger } from '@doorbell/core'
import { migrate } from '../../hub/src/cluster/migrations'
import { PgSharedState } from '../../hub/src/cluster/pgSharedState'
import { sealedIntegrationKeys } from '../../hub/src/cluster/sealedKeys'
import { makeHomeKey } from '../src/cluster'
import { TestPostgres } from '../src/postgres'

/**
 * Home Assistant's integration keys in a cluster (hub/src/cluster/sealedKeys.ts): in PostgreSQL,
 * sealed with a key derived from the home key. Two hubs' data folders with the provisioned key,
 * one with another home's key, a real PostgreSQL on loopback.
 */
describe('integration keys sealed in PostgreSQL', { timeout: 120_000 }, () => {
  let dir: string
  let db: TestPostgres
  let url: string
  const states: PgSharedState[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealed-keys-'))
    db = await TestPostgres.start()
    url = await db.createDatabase('city')
    await migrate(url, 'a', { timeoutMs: 5000 })
  })

  after(async () => {
    for (const s of states) await s.close()
    await db?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** A hub's trust folder holding `key` (the provisioned home key), and its sealed-key store. */
  const hubWith = async (name: string, key: string) => {
    const trustDir = join(dir, name, 'trust')
    mkdirSync(trustDir, { recursive: true })
    cpSync(key, join(trustDir, 'home.key'))
    const state = new PgSharedState({ url, timeoutMs: 5000, nodeId: name, log: memoryLogger() })
    states.push(state)
    return await sealedIntegrationKeys({ trustDir, homeId: 'home', db: state })
  }

  it('made through one hub, used by another with the same home key; never in clear; another home key, a moved row or a changed byte opens nothing', async () => {
    const homeKey = makeHomeKey(join(dir, 'provisioned'))
    const a = await hubWith('a', homeKey)
    const b = await hubWith('b', homeKey)
    const publicKey = await a.create('m-ha-one')
    // B signs with it; the signature checks against the public half A returned.
    const signer = await b.load('m-ha-one')
    const message = new TextEncoder().encode('open the door')
    const signature = await globalThis.crypto.subtle.sign({ name: 'Ed25519' }, signer, message)
    const pub = await globalThis.crypto.subtle.importKey('raw', Buffer.from(publicKey, 'base64url'), { name: 'Ed25519' }, false, ['verify'])
    assert.ok(await globalThis.crypto.subtle.verify({ name: 'Ed25519' }, pub, signature, message))
    assert.equal(signer.extractable, false, 'nothing can read the private key back out')

    // The database holds no PKCS#8 key: an Ed25519 PKCS#8 starts with these 16 bytes, and its seed follows.
    const row = (await db.query('SELECT sealed FROM integration_keys WHERE id = $1', ['m-ha-one'], 'city')).rows[0] as { sealed: Buffer }
    assert.equal(row.sealed.indexOf(Buffer.from('302e020100300506032b657004220420', 'hex')), -1, 'no PKCS#8 header in the row')
    assert.equal(row.sealed.length, 1 + 12 + 16 + 48, 'version, nonce, tag and the sealed 48-byte PKCS#8')

    // Another home's key opens nothing.
    const other = await hubWith('other', makeHomeKey(join(dir, 'elsewhere')))
    await assert.rejects(other.load('m-ha-one'), (err: Error) => err.name === 'SealedKeyError' && /does not open with this hub's home key/.test(err.message))
    // The same sealed bytes under another member's id: refused (the id is sealed in).
    await db.query('INSERT INTO integration_keys (id, sealed, created_at) VALUES ($1, $2, 0)', ['m-ha-two', row.sealed], 'city')
    await assert.rejects(b.load('m-ha-two'), (err: Error) => err.name === 'SealedKeyError')
    // One byte changed: refused.
    const changed = Buffer.from(row.sealed)
    changed[changed.length - 1] = changed[changed.length - 1]! ^ 1
    await db.query('UPDATE integration_keys SET sealed = $1 WHERE id = $2', [changed, 'm-ha-two'], 'city')
    await assert.rejects(b.load('m-ha-two'), (err: Error) => err.name === 'SealedKeyError')

    // Never over an existing key; removal through B is removal for A; bad ids refused.
    await assert.rejects(a.create('m-ha-one'))
    assert.ok(await b.load('m-ha-one'), 'the first key is unchanged')
    await b.remove('m-ha-one')
    await assert.rejects(a.load('m-ha-one'), /no integration key for m-ha-one/)
    await assert.rejects(a.create('../etc'))
  })
})
