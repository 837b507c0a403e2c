import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Id, exportPublicKey, generateSigningKey, type SigningKey } from '@doorbell/core'
import type { IntegrationKeys } from '../trust/integrationKey'
import { HOME_KEY_FILE } from '../trust/homeKey'
import type { PgSharedState } from './pgSharedState'

/** Sealed keys are `SEALED_V1 || iv (12) || tag (16) || ciphertext`. */
const SEALED_V1 = 1
const ED25519 = { name: 'Ed25519' } as const

/** The integration key of a member is missing or cannot be opened (another home key, tampered). */
export class SealedKeyError extends Error {
  override readonly name = 'SealedKeyError'
}

/**
 * Home Assistant's integration keys in a cluster: in PostgreSQL (`integration_keys`), so whichever
 * hub Home Assistant reaches can sign its door commands, but never in clear. Each is sealed with
 * AES-256-GCM under a key derived (HKDF-SHA256) from the home key, which every hub of the cluster
 * holds and the database never does; the member id is the associated data, so a sealed key copied
 * to another member's row does not open. Someone with the database alone has nothing to sign with.
 */
export async function sealedIntegrationKeys (o: { trustDir: string, homeId: string, db: PgSharedState }): Promise<IntegrationKeys> {
  const pem = await readFile(join(o.trustDir, HOME_KEY_FILE), 'utf8')
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64')
  const key = Buffer.from(hkdfSync('sha256', der, Buffer.from('doorbell integration keys v1'), Buffer.from(o.homeId), 32))
  const seal = (memberId: string, secret: Buffer): Buffer => {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    cipher.setAAD(Buffer.from(memberId))
    const body = Buffer.concat([cipher.update(secret), cipher.final()])
    return Buffer.concat([Buffer.from([SEALED_V1]), iv, cipher.getAuthTag(), body])
  }
  const unseal = (memberId: string, sealed: Buffer): Buffer => {
    if (sealed.length < 29 || sealed[0] !== SEALED_V1) throw new SealedKeyError(`the integration key of ${memberId} is not sealed by this hub's format`)
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 13))
      decipher.setAAD(Buffer.from(memberId))
      decipher.setAuthTag(sealed.subarray(13, 29))
      return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()])
    } catch {
      throw new SealedKeyError(`the integration key of ${memberId} does not open with this hub's home key (another home key, or changed in the database)`)
    }
  }
  return {
    async create (memberId) {
      Id.parse(memberId)
      const pair = await generateSigningKey(true)
      const pkcs8 = Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', pair.privateKey))
      // Never over an existing one: the primary key refuses a second row.
      await o.db.query('INSERT INTO integration_keys (id, sealed, created_at) VALUES ($1, $2, $3)', [memberId, seal(memberId, pkcs8), Date.now()])
      pkcs8.fill(0)
      return await exportPublicKey(pair.publicKey)
    },
    async load (memberId) {
      const row = (await o.db.query<{ sealed: Buffer }>('SELECT sealed FROM integration_keys WHERE id = $1', [Id.parse(memberId)])).rows[0]
      if (row === undefined) throw new SealedKeyError(`no integration key for ${memberId}`)
      const opened = unseal(memberId, row.sealed)
      const pkcs8 = new Uint8Array(opened)
      opened.fill(0)
      try {
        return await globalThis.crypto.subtle.importKey('pkcs8', pkcs8, ED25519, false, ['sign']) as SigningKey
      } finally {
        pkcs8.fill(0)
      }
    },
    async remove (memberId) {
      await o.db.query('DELETE FROM integration_keys WHERE id = $1', [Id.parse(memberId)])
    }
  }
}
