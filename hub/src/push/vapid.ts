import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type JsonWebKey, type KeyObject } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { toB64url } from '@doorbell/core'

/** The hub's VAPID key pair (RFC 8292): push services check each push's token against the key a screen subscribed with. */
export interface VapidKeys {
  /** The uncompressed P-256 point (65 bytes): the browser's `applicationServerKey`. */
  publicKey: Uint8Array
  privateKey: KeyObject
}

const FILE = 'vapid.json'
/** A token is good for 12 hours; RFC 8292 allows up to 24. */
const TOKEN_SECONDS = 12 * 3600

export class PushKeyError extends Error {
  override readonly name = 'PushKeyError'
}

/**
 * The key pair in `dir/vapid.json` (a JWK, 0600), made on first start. Keeping it matters: a new
 * key would orphan every subscription (the push service refuses a token signed by another key).
 */
export async function loadVapidKeys (dir: string): Promise<VapidKeys> {
  const path = join(dir, FILE)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  let jwk: JsonWebKey
  try {
    jwk = JSON.parse(await readFile(path, 'utf8')) as JsonWebKey
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PushKeyError(`cannot read the VAPID key ${path}: ${(err as Error).message}`)
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    jwk = privateKey.export({ format: 'jwk' })
    await writeFile(path, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' })
  }
  await chmod(path, 0o600)
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new PushKeyError(`${path} is not a P-256 private key`)
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' })
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) }
}

/** A P-256 public key as the 65-byte uncompressed point. */
export function rawPublicKey (key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' })
  return new Uint8Array(Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]))
}

/**
 * The `Authorization` header of a push to `endpoint` (RFC 8292 §3): `vapid t=<ES256 JWT>,
 * k=<public key>`; the token's audience is the push service's origin.
 */
export function vapidAuthorization (endpoint: string, keys: VapidKeys, now: number, contact?: string): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const claims = { aud: new URL(endpoint).origin, exp: Math.floor(now / 1000) + TOKEN_SECONDS, ...(contact ? { sub: contact } : {}) }
  const unsigned = `${part({ typ: 'JWT', alg: 'ES256' })}.${part(claims)}`
  // JWS wants the raw r||s signature, not DER.
  const signature = sign('sha256', Buffer.from(unsigned), { key: keys.privateKey, dsaEncoding: 'ieee-p1363' })
  return `vapid t=${unsigned}.${signature.toString('base64url')}, k=${toB64url(keys.publicKey)}`
}
