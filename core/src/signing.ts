import { z } from 'zod'
import { fromB64url, toB64url } from './b64url'

/** Ed25519 keys, signing and checking signed tokens (`base64url(JSON).base64url(signature)`), in WebCrypto terms. */

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder('utf-8', { fatal: true })
/** `payload.signature`, both base64url, the signature 64 bytes. */
export const SIGNED = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/
/** 16 random bytes, base64url. */
export const Nonce = z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'a nonce is 16 bytes, base64url')
/** `payload.signature`, both base64url; bounded before anything decodes it (a grant, a command's proof). */
export const Signed = z.string().max(4096).regex(SIGNED, 'not a signed token (payload.signature)')
/** A raw Ed25519 public key (32 bytes), base64url: 43 characters. */
export const PublicKeyText = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'not an Ed25519 public key (32 bytes, base64url)')

const ED25519 = { name: 'Ed25519' } as const

/** WebCrypto's key type, named the same way under Node's types and the DOM's. */
export type SigningKey = Parameters<typeof globalThis.crypto.subtle.sign>[1]
export interface SigningKeyPair { publicKey: SigningKey, privateKey: SigningKey }
type Bytes = Parameters<typeof globalThis.crypto.subtle.verify>[3]

/** A key pair for a viewer (non-extractable private key) or for the home (extractable, to store it). */
export async function generateSigningKey (extractable: boolean): Promise<SigningKeyPair> {
  return await globalThis.crypto.subtle.generateKey(ED25519, extractable, ['sign', 'verify']) as SigningKeyPair
}

export async function exportPublicKey (key: SigningKey): Promise<string> {
  return toB64url(new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', key)))
}

export async function importPublicKey (text: string): Promise<SigningKey> {
  return await globalThis.crypto.subtle.importKey('raw', fromB64url(PublicKeyText.parse(text)) as Bytes, ED25519, true, ['verify'])
}

export async function sign<S extends z.ZodType> (schema: S, value: z.input<S>, key: SigningKey): Promise<string> {
  const body = utf8.encode(JSON.stringify(schema.parse(value)))
  const sig = new Uint8Array(await globalThis.crypto.subtle.sign(ED25519, key, body as Bytes))
  return `${toB64url(body)}.${toB64url(sig)}`
}

export type Opened<T> = { ok: true, value: T } | { ok: false, problem: 'malformed' | 'bad-signature', message: string }

/** The payload of a signed token, parsed by its schema, without checking the signature: for display only. */
export function peek<S extends z.ZodType> (schema: S, token: string): Opened<z.infer<S>> {
  if (typeof token !== 'string' || token.length > 60_000 || !SIGNED.test(token)) return { ok: false, problem: 'malformed', message: 'not a signed token' }
  try {
    const parsed = schema.safeParse(JSON.parse(fromUtf8.decode(fromB64url(token.slice(0, token.indexOf('.'))))))
    if (!parsed.success) return { ok: false, problem: 'malformed', message: parsed.error.issues.slice(0, 2).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') }
    return { ok: true, value: parsed.data }
  } catch (err) {
    return { ok: false, problem: 'malformed', message: `unreadable payload (${(err as Error).message})` }
  }
}

/**
 * Checks an Ed25519 signature over `data`. WebCrypto's ({@link webCryptoCheck}) everywhere by
 * default; a platform may give a faster one with the same answers (the doorbell: Node's
 * synchronous check, which saves the thread pool's round trip on the open-door path).
 */
export type SignatureCheck = (key: SigningKey, signature: Uint8Array, data: Uint8Array) => boolean | Promise<boolean>

export const webCryptoCheck: SignatureCheck = async (key, signature, data) =>
  await globalThis.crypto.subtle.verify(ED25519, key, signature as Bytes, data as Bytes)

/** Checks the signature over the exact bytes, then parses them by the schema. */
export async function open<S extends z.ZodType> (schema: S, token: string, key: SigningKey, check: SignatureCheck = webCryptoCheck): Promise<Opened<z.infer<S>>> {
  const peeked = peek(schema, token)
  if (!peeked.ok) return peeked
  const dot = token.indexOf('.')
  const valid = await check(key, fromB64url(token.slice(dot + 1)), fromB64url(token.slice(0, dot)))
  return valid ? peeked : { ok: false, problem: 'bad-signature', message: 'the signature does not match' }
}

export function newNonce (): string {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  return toB64url(bytes)
}

