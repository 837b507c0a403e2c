/**
 * What the inspector may keep of an event's fields: no keys, tokens, credentials, proofs or
 * signatures, whatever they are called; long strings cut short (an SDP is kept only as a start,
 * without its ICE password). Run at record time and again when a trace is exported, so a trace
 * made by an older recorder is cleaned too.
 */

export const REDACTED = '[redacted]'

/** Field names whose value is a secret or proves one. */
const SECRET_NAME = /key|token|secret|credential|password|passw|proof|signature|^sig$|grant|claim|auth|cookie|jwt|nonce|cert|private/i
/** A long run of base64 / hex / base64url without spaces: a key, token or signature in any field. */
const OPAQUE = /[A-Za-z0-9+/_=-]{40,}/g
const ICE_PWD = /(a=ice-pwd:)\S+/g
const PEM = /-----BEGIN [^-]+-----[\s\S]*?(-----END [^-]+-----|$)/g

const MAX_STRING = 160
const MAX_DEPTH = 5
const MAX_ITEMS = 20

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

function redactString (s: string): string {
  const cleaned = s.replace(PEM, REDACTED).replace(ICE_PWD, `$1${REDACTED}`).replace(OPAQUE, REDACTED)
  return cleaned.length > MAX_STRING ? `${cleaned.slice(0, MAX_STRING)}… (${s.length} chars)` : cleaned
}

/** A JSON-safe, bounded, secret-free copy of `value` (functions, class instances' methods dropped). */
export function redactPayload (value: unknown, depth = 0): Json {
  if (value === null || value === undefined) return null
  if (typeof value === 'string') return redactString(value)
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'boolean') return value
  if (typeof value !== 'object') return null
  if (depth >= MAX_DEPTH) return '…'
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => redactPayload(v, depth + 1))
    return value.length > MAX_ITEMS ? [...items, `… (${value.length} items)`] : items
  }
  // Binary data and live objects (peer connections, streams) say only what they are.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.constructor.name}]`
  const proto = Object.getPrototypeOf(value) as object | null
  if (proto !== null && proto !== Object.prototype) return `[${(value.constructor as { name?: string } | undefined)?.name ?? 'object'}]`
  const out: { [key: string]: Json } = {}
  for (const [k, v] of Object.entries(value).slice(0, MAX_ITEMS)) {
    if (typeof v === 'function') continue
    out[k] = SECRET_NAME.test(k) ? REDACTED : redactPayload(v, depth + 1)
  }
  return out
}

/** An event's fields without its `type` (already shown), redacted; null when it has none. */
export function eventPayload (event: { type: string } & Record<string, unknown>): Json | null {
  const { type: _type, ...fields } = event
  return Object.keys(fields).length === 0 ? null : redactPayload(fields)
}
