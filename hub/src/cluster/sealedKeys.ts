import { Id, exportPublicKey, generateSigningKey, type SigningKey } from '@doorbell/core'
import type { IntegrationKeys } from '../trust/integrationKey'
import { homeDerivedKey, sealer, type SealOpenError } from './homeSeal'
import type { PgSharedState } from './pgSharedState'

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
  const box = sealer(await homeDerivedKey(o.trustDir, o.homeId, 'doorbell integration keys v1'))
  const seal = (memberId: string, secret: Buffer): Buffer => box.seal(memberId, secret)
  const unseal = (memberId: string, sealed: Buffer): Buffer => {
    try {
      return box.unseal(memberId, sealed)
    } catch (err) {
      throw new SealedKeyError((err as SealOpenError).reason === 'format'
        ? `the integration key of ${memberId} is not sealed by this hub's format`
        : `the integration key of ${memberId} does not open with this hub's home key (another home key, or changed in the database)`)
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
