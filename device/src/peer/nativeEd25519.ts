import { KeyObject, verify } from 'node:crypto'
import type { SignatureCheck, SigningKey } from '@doorbell/core'

/**
 * The doorbell's signature check for its DoorGuard (core's `SignatureCheck`): Node's synchronous
 * Ed25519 verify (OpenSSL, ~0.1 ms) in place of WebCrypto's, which hands every check to libuv's
 * thread pool and back. Every open-door command is checked once (its proof, by the member's key),
 * and on a busy machine that round trip waits for a thread, then for the loop to be woken: two
 * chances to wait for a CPU on the path a resident is waiting on (docs/performance.md, "Open door").
 * The same answers for the Ed25519 public keys members' grants carry; where WebCrypto would throw
 * (a key it cannot use: not Ed25519, or private), this answers `false`, never a throw: a signature
 * that does not match.
 */
const keyObjects = new WeakMap<SigningKey, KeyObject>()

const keyObjectOf = (key: SigningKey): KeyObject => {
  let k = keyObjects.get(key)
  if (k === undefined) {
    k = KeyObject.from(key as Parameters<typeof KeyObject.from>[0])
    keyObjects.set(key, k)
  }
  return k
}

export const nativeEd25519Check: SignatureCheck = (key, signature, data) => {
  try {
    const k = keyObjectOf(key)
    if (k.asymmetricKeyType !== 'ed25519' || k.type !== 'public') return false
    return verify(null, data, k, signature)
  } catch {
    return false
  }
}
