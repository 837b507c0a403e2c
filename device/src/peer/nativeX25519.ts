import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import nacl from 'tweetnacl'

/**
 * werift's DTLS does its X25519 (the curve Chromium picks) with tweetnacl, in JavaScript, on the
 * doorbell's event loop: a key pair when the viewer's first ClientHello arrives (before the
 * HelloVerifyRequest goes out) and the shared secret when its key exchange arrives (before the
 * server's Finished). On this machine that is ~3-10 ms each, far more on a Pi, between "ICE
 * connected" and the first frame, and every call pays it. Node's own X25519 (OpenSSL) gives the
 * same bytes in a fraction of that, so tweetnacl's two X25519 entry points are routed to it.
 *
 * werift calls them on tweetnacl's module object (`nacl.box.keyPair()`, `nacl.scalarMult(n, p)`),
 * so replacing them there reaches werift; it works only if this module's tweetnacl is werift's
 * (npm hoists one copy; checked, as warmKeyExchange.ts checks @noble/curves). Anything the native
 * path cannot take (a wrong size, a shared secret OpenSSL refuses: a low-order point) is left to
 * tweetnacl, so every result is tweetnacl's own.
 */

// DER prefixes of an X25519 key (RFC 8410): PKCS#8 private, SPKI public, then the 32 raw bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const KEY_BYTES = 32

type ScalarMult = (n: Uint8Array, p: Uint8Array) => Uint8Array
type KeyPair = () => nacl.BoxKeyPair

/** A fresh Uint8Array of its own (werift reads `.buffer`, which must hold these 32 bytes only). */
const own = (bytes: Uint8Array): Uint8Array => {
  const out = new Uint8Array(KEY_BYTES)
  out.set(bytes)
  return out
}

/** X25519(n, p) by OpenSSL, or null when it cannot (then tweetnacl answers). */
export function nativeScalarMult (n: Uint8Array, p: Uint8Array): Uint8Array | null {
  if (n.length !== KEY_BYTES || p.length !== KEY_BYTES) return null
  try {
    const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, n]), format: 'der', type: 'pkcs8' })
    const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, p]), format: 'der', type: 'spki' })
    return own(diffieHellman({ privateKey, publicKey }))
  } catch {
    return null
  }
}

/** A random X25519 key pair by OpenSSL, as tweetnacl's `box.keyPair()` gives one. */
export function nativeKeyPair (): nacl.BoxKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    publicKeyEncoding: { type: 'spki', format: 'der' }
  })
  return { secretKey: own(privateKey.subarray(privateKey.length - KEY_BYTES)), publicKey: own(publicKey.subarray(publicKey.length - KEY_BYTES)) }
}

let restore: (() => void) | null = null

/**
 * Routes tweetnacl's X25519 to node:crypto for werift's DTLS. Idempotent. Returns why not, when
 * werift would not see it (then calls keep tweetnacl: slower, the same bytes).
 */
export function nativeX25519ForDtls (): { ok: true } | { ok: false, reason: string } {
  const same = sameTweetnaclAsWerift()
  if (!same.ok) return same
  if (restore !== null) return { ok: true }
  const lib = nacl as unknown as { scalarMult: ScalarMult & Record<string, unknown>, box: { keyPair: KeyPair & Record<string, unknown> } }
  const scalarMult = lib.scalarMult
  const keyPair = lib.box.keyPair
  // tweetnacl hangs helpers and sizes on these functions (scalarMult.base, keyPair.fromSecretKey…): kept.
  const fastScalarMult = Object.assign((n: Uint8Array, p: Uint8Array) => nativeScalarMult(n, p) ?? scalarMult(n, p), scalarMult)
  const fastKeyPair = Object.assign(() => nativeKeyPair(), keyPair)
  lib.scalarMult = fastScalarMult
  lib.box.keyPair = fastKeyPair
  restore = () => { lib.scalarMult = scalarMult; lib.box.keyPair = keyPair }
  return { ok: true }
}

/** Puts tweetnacl back as it was (tests). */
export function restoreTweetnacl (): void {
  restore?.()
  restore = null
}

/**
 * Is the tweetnacl this module imports werift's? From the repository both resolve in
 * node_modules: compare the folders. In the built doorbell (device/build.ts) both are in the
 * bundle, which holds one copy of each module, and neither resolves at run time.
 */
function sameTweetnaclAsWerift (): { ok: true } | { ok: false, reason: string } {
  const require = createRequire(import.meta.url)
  let ours: string
  let theirs: string
  try {
    ours = dirname(fileURLToPath(import.meta.resolve('tweetnacl')))
    theirs = dirname(createRequire(require.resolve('werift')).resolve('tweetnacl'))
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return { ok: true }
    return { ok: false, reason: `werift's tweetnacl was not found: ${(err as Error).message}` }
  }
  return ours === theirs ? { ok: true } : { ok: false, reason: `werift uses another tweetnacl (${theirs}, not ${ours})` }
}
