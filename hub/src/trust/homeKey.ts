import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { exportPublicKey, generateSigningKey, type SigningKey } from '@doorbell/core'

// WebCrypto's key type as core names it: the same under Node's types and the DOM's.
type CryptoKey = SigningKey

/** The home's Ed25519 key: it signs every viewer's grant and every revocation list. */
export interface HomeKey {
  privateKey: CryptoKey
  publicKey: CryptoKey
  /** The raw public key, base64url: what devices pin at pairing. */
  publicText: string
}

export const HOME_KEY_FILE = 'home.key'

const PEM_LABEL = 'PRIVATE KEY'
const ED25519 = { name: 'Ed25519' } as const
const subtle = globalThis.crypto.subtle

/**
 * Loads the home key from `dir/home.key` (PKCS#8, PEM), or makes it on the first start.
 * Devices pin its public half, so a file that exists but cannot be read is an error, never a
 * reason to make a new key: that would silently cut every paired device off.
 */
export async function loadOrCreateHomeKey (dir: string): Promise<HomeKey> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, HOME_KEY_FILE)
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(file, err)
    pem = await createKeyFile(file)
  }
  try {
    return await fromPem(pem)
  } catch (err) {
    throw unreadable(file, err)
  }
}

function unreadable (file: string, err: unknown): Error {
  return new Error(`the home key ${file} exists but cannot be used (${(err as Error).message}); ` +
    'paired devices pin it, so it is not replaced: restore it from a backup, or delete it and pair every device and viewer again',
  { cause: err })
}

/** Writes a new key to a temporary file, flushed, then links it into place: never a half-written key, never over another. */
async function createKeyFile (file: string): Promise<string> {
  const pair = await generateSigningKey(true)
  const pem = toPem(new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey)))
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(pem)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await link(tmp, file)
    return pem
  } catch (err) {
    // Another start made it first: use theirs, so both agree.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return await readFile(file, 'utf8')
    throw err
  } finally {
    await unlink(tmp)
  }
}

async function fromPem (pem: string): Promise<HomeKey> {
  const match = new RegExp(`^-----BEGIN ${PEM_LABEL}-----\\s*([A-Za-z0-9+/=\\s]+?)\\s*-----END ${PEM_LABEL}-----\\s*$`).exec(pem)
  if (match === null) throw new Error(`not a PEM "${PEM_LABEL}"`)
  const der = Buffer.from(match[1]!.replace(/\s/g, ''), 'base64')
  // WebCrypto cannot derive a public key from a private one; its JWK form carries both halves.
  const jwk = await subtle.exportKey('jwk', await subtle.importKey('pkcs8', der, ED25519, true, ['sign']))
  const privateKey = await subtle.importKey('pkcs8', der, ED25519, false, ['sign'])
  const publicKey = await subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, ED25519, true, ['verify'])
  return { privateKey, publicKey, publicText: await exportPublicKey(publicKey) }
}

function toPem (der: Uint8Array): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${PEM_LABEL}-----\n${lines.join('\n')}\n-----END ${PEM_LABEL}-----\n`
}
