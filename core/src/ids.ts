import { z } from 'zod'

/** Ids travel inside MQTT topic levels, so they may not contain `/`, `+`, `#` or spaces. */
export const Id = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'an id is 1-64 characters of A-Z, a-z, 0-9, "_" or "-"')

export type Id = z.infer<typeof Id>

/** A random id that is safe in a topic level; uses WebCrypto, present in Node and browsers. */
export function newId(prefix = ''): string {
  const bytes = new Uint8Array(9)
  globalThis.crypto.getRandomValues(bytes)
  let s = ''
  for (const b of bytes) s += b.toString(36).padStart(2, '0')
  return prefix + s.slice(0, 14)
}
