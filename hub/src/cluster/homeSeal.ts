import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HOME_KEY_FILE } from '../trust/homeKey'

/** Sealed secrets are `SEALED_V1 || iv (12) || tag (16) || ciphertext`. */
const SEALED_V1 = 1

/** A sealed secret does not open (another home key, another row, changed in the database). */
export class SealOpenError extends Error {
  override readonly name = 'SealOpenError'
  /** `format`: not a sealed value at all; `key`: sealed, but not under this key for this row. */
  constructor (readonly reason: 'format' | 'key', message: string) { super(message) }
}

/**
 * A 32-byte key derived (HKDF-SHA256) from the provisioned home key for one purpose (`info`): every
 * hub of a cluster holds the home key and the database never does, so what is derived from it is
 * the same on every hub and out of reach of someone with the database alone.
 */
export async function homeDerivedKey (trustDir: string, homeId: string, info: string): Promise<Buffer> {
  const pem = await readFile(join(trustDir, HOME_KEY_FILE), 'utf8')
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64')
  return Buffer.from(hkdfSync('sha256', der, Buffer.from(info), Buffer.from(homeId), 32))
}

/** AES-256-GCM under `key`, with `bound` (the row's id) as associated data: a sealed value copied to another row does not open. */
export function sealer (key: Buffer): { seal: (bound: string, secret: Buffer) => Buffer, unseal: (bound: string, sealed: Buffer) => Buffer } {
  return {
    seal (bound, secret) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      cipher.setAAD(Buffer.from(bound))
      const body = Buffer.concat([cipher.update(secret), cipher.final()])
      return Buffer.concat([Buffer.from([SEALED_V1]), iv, cipher.getAuthTag(), body])
    },
    unseal (bound, sealed) {
      if (sealed.length < 29 || sealed[0] !== SEALED_V1) throw new SealOpenError('format', `${bound}: not sealed in this hub's format`)
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 13))
        decipher.setAAD(Buffer.from(bound))
        decipher.setAuthTag(sealed.subarray(13, 29))
        return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()])
      } catch {
        throw new SealOpenError('key', `${bound}: does not open with this hub's home key (another home key, or changed in the database)`)
      }
    }
  }
}
