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
/** A secret in a URL's query (a presigned URL's X-Amz-Credential, -Signature, -Security-Token; any ?token=). */
const QUERY_SECRET = /([?&][^=&\s"]*(?:key|token|secret|signature|credential|password|auth)[^=&\s"]*=)[^&\s"]*/gi
const PEM = /-----BEGIN [^-]+-----[\s\S]*?(-----END [^-]+-----|$)/g

interface Limits { string: number, depth: number, items: number }
const WIDE: Limits = { string: 160, depth: 5, items: 20 }
const NARROW: Limits = { string: 48, depth: 3, items: 8 }
/** An event's payload stays small: inspection batches must fit a message (64 KB) many times over. */
export const MAX_PAYLOAD_CHARS = 1536

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

function redactString (s: string, max: number): string {
  const cleaned = s.replace(PEM, REDACTED).replace(ICE_PWD, `$1${REDACTED}`).replace(QUERY_SECRET, `$1${REDACTED}`).replace(OPAQUE, REDACTED)
  return cleaned.length > max ? `${cleaned.slice(0, max)}… (${s.length} chars)` : cleaned
}

/** A JSON-safe, bounded, secret-free copy of `value` (functions, class instances' methods dropped). */
export function redactPayload (value: unknown, depth = 0, limits: Limits = WIDE): Json {
  const MAX_STRING = limits.string
  const MAX_DEPTH = limits.depth
  const MAX_ITEMS = limits.items
  if (value === null || value === undefined) return null
  if (typeof value === 'string') return redactString(value, MAX_STRING)
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'boolean') return value
  if (typeof value !== 'object') return null
  if (depth >= MAX_DEPTH) return '…'
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => redactPayload(v, depth + 1, limits))
    return value.length > MAX_ITEMS ? [...items, `… (${value.length} items)`] : items
  }
  // Binary data and live objects (peer connections, streams) say only what they are.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.constructor.name}]`
  const proto = Object.getPrototypeOf(value) as object | null
  if (proto !== null && proto !== Object.prototype) return `[${(value.constructor as { name?: string } | undefined)?.name ?? 'object'}]`
  const out: { [key: string]: Json } = {}
  for (const [k, v] of Object.entries(value).slice(0, MAX_ITEMS)) {
    if (typeof v === 'function') continue
    out[k] = SECRET_NAME.test(k) ? REDACTED : redactPayload(v, depth + 1, limits)
  }
  return out
}

/**
 * An event's fields without its `type` (already shown), redacted; null when it has none. Past
 * MAX_PAYLOAD_CHARS it is cut narrower, and if still too big only its field names are kept.
 */
export function eventPayload (event: { type: string } & Record<string, unknown>): Json | null {
  const { type: _type, ...fields } = event
  if (Object.keys(fields).length === 0) return null
  const wide = redactPayload(fields)
  if (JSON.stringify(wide).length <= MAX_PAYLOAD_CHARS) return wide
  const narrow = redactPayload(fields, 0, NARROW)
  if (JSON.stringify(narrow).length <= MAX_PAYLOAD_CHARS) return narrow
  return { '…': `too large to keep; fields: ${Object.keys(fields).slice(0, 20).join(', ')}`.slice(0, 400) }
}
