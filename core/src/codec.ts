import type { z } from 'zod'
import { ProtocolError } from './errors'

export type Decoded<T> = { ok: true, value: T } | { ok: false, error: ProtocolError }

/** Upper bound for any message we parse, before JSON.parse sees it. */
export const MAX_MESSAGE_BYTES = 64 * 1024

const text = new TextDecoder('utf-8', { fatal: false })
const utf8 = new TextEncoder()

/**
 * Parses one message at a boundary: size, JSON, then the schema. Never throws; the error
 * says where and what, ready to be logged.
 */
export function decode<S extends z.ZodType> (
  schema: S,
  raw: string | Uint8Array,
  where = '',
  /** A bigger bound for the one message that carries a picture (snapshot.ts). */
  maxBytes = MAX_MESSAGE_BYTES
): Decoded<z.infer<S>> {
  // The bound is in UTF-8 bytes, as on the wire; a string's length counts UTF-16 units, which can
  // be a third of its bytes. A string longer than the bound in units is over it in bytes too.
  const size = typeof raw === 'string'
    ? raw.length > maxBytes ? raw.length : utf8.encode(raw).byteLength
    : raw.byteLength
  if (size > maxBytes) {
    return { ok: false, error: new ProtocolError('too-large', `message of ${size} bytes exceeds ${maxBytes}`, where) }
  }
  let json: unknown
  try {
    json = JSON.parse(typeof raw === 'string' ? raw : text.decode(raw))
  } catch (err) {
    return { ok: false, error: new ProtocolError('malformed-json', `not JSON (${(err as Error).message})`, where) }
  }
  const result = schema.safeParse(json)
  if (!result.success) {
    const issues = result.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ')
    return { ok: false, error: new ProtocolError('invalid-payload', issues, where) }
  }
  return { ok: true, value: result.data }
}

/** The one way messages leave: parse what we send too, so a bug here cannot put bad data on the wire. */
export function encode<S extends z.ZodType> (schema: S, value: z.input<S>): string {
  return JSON.stringify(schema.parse(value))
}
