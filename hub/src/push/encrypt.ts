import { createCipheriv, createECDH, hkdfSync, randomBytes } from 'node:crypto'
import { MAX_PUSH_PLAINTEXT_BYTES } from '@doorbell/core'

/**
 * Message encryption for Web Push (RFC 8291) in the aes128gcm content coding (RFC 8188), one
 * record: a fresh P-256 key pair and salt per message; the key and nonce come from ECDH with the
 * screen's key and its authentication secret through HKDF-SHA-256.
 */

export class PushPayloadError extends Error {
  override readonly name = 'PushPayloadError'
}

const RECORD_SIZE = 4096

export function encryptPush (plaintext: Uint8Array, screenKey: Uint8Array, authSecret: Uint8Array): Buffer {
  if (plaintext.length > MAX_PUSH_PLAINTEXT_BYTES) throw new PushPayloadError(`a push carries at most ${MAX_PUSH_PLAINTEXT_BYTES} bytes; this one has ${plaintext.length}`)
  const ecdh = createECDH('prime256v1')
  const senderKey = ecdh.generateKeys() // uncompressed, 65 bytes
  const shared = ecdh.computeSecret(screenKey)
  // RFC 8291 §3.3-3.4: the input keying material binds both public keys.
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), screenKey, senderKey])
  const ikm = Buffer.from(hkdfSync('sha256', shared, authSecret, keyInfo, 32))
  const salt = randomBytes(16)
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16))
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12))
  // The last (only) record ends with the delimiter 0x02 (RFC 8188 §2).
  const cipher = createCipheriv('aes-128-gcm', cek, nonce)
  const sealed = Buffer.concat([cipher.update(Buffer.concat([plaintext, Buffer.from([2])])), cipher.final(), cipher.getAuthTag()])
  const header = Buffer.alloc(21)
  salt.copy(header, 0)
  header.writeUInt32BE(RECORD_SIZE, 16)
  header.writeUInt8(senderKey.length, 20)
  return Buffer.concat([header, senderKey, sealed])
}
