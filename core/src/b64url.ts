/** base64url without padding: how signed tokens, keys and nonces travel. */

const B64URL = /^[A-Za-z0-9_-]*$/

export function toB64url (bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Throws on anything that is not base64url. */
export function fromB64url (text: string): Uint8Array {
  if (!B64URL.test(text) || text.length % 4 === 1) throw new Error('not base64url')
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}
