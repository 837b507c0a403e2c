/** Typed errors with a stable `name` and `code`, so callers branch on them, not on messages. */
export type ProtocolErrorCode =
  | 'malformed-json'
  | 'invalid-payload'
  | 'unknown-topic'
  | 'too-large'

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError'
  constructor (
    readonly code: ProtocolErrorCode,
    message: string,
    readonly where = ''
  ) {
    super(where ? `${where}: ${message}` : message)
  }
}

export type ConfigErrorCode = 'invalid-config'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code: ConfigErrorCode = 'invalid-config'
}

/**
 * What went wrong, in a sentence, never empty: an Error's message, else its name (werift throws
 * some parse failures without a message; browsers throw DOMExceptions with a name and sometimes
 * no message), with the errors inside it (libp2p's "All multiaddr dials failed" carries one per
 * address); else an object's message, else the type of an event (a WebSocket's `error` event
 * carries no message), else what it is. The one copy every part uses.
 */
export function describeError (err: unknown): string {
  if (err instanceof Error || (typeof err === 'object' && err !== null && 'name' in err)) {
    const e = err as { name?: string, message?: string, errors?: unknown }
    const text = e.message || e.name || 'Error'
    const inner = Array.isArray(e.errors) ? e.errors.map((x) => (x as { message?: unknown } | null)?.message).filter((m): m is string => typeof m === 'string' && m !== '') : []
    return inner.length > 0 ? `${text}: ${inner.join(' / ')}` : text
  }
  if (typeof err === 'object' && err !== null && 'message' in err) return String((err as { message: unknown }).message)
  if (typeof err === 'object' && err !== null && 'type' in err) return `WebSocket ${String((err as { type: unknown }).type)}`
  const text = String(err)
  return text === '' ? 'an empty error' : text
}

/**
 * A refusal, in one shape wherever something is turned away (a viewer's grant at admission, a
 * direct-path hello, an open-door command): `reason` is stable, to branch on and to audit;
 * `message` is the sentence to log or show.
 */
export interface Refusal<R extends string = string> {
  ok: false
  reason: R
  message: string
}

/** A refusal thrown or handed on as an error: its `name` is stable, its `reason` the refusal's. */
export class RefusedError<R extends string = string> extends Error {
  override readonly name = 'RefusedError'
  readonly reason: R
  constructor (refusal: Pick<Refusal<R>, 'reason' | 'message'>) {
    super(refusal.message)
    this.reason = refusal.reason
  }
}

/**
 * The hub's broker refused these credentials: CONNACK 4/5 (MQTT 3.1.1, bad user name or
 * password, not authorized) or 0x86/0x87 (5.0). The member was removed, its access ended, or the
 * device was paired again elsewhere; a hub that is merely away refuses nothing.
 */
export function refusedCredentials (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 4 || code === 5 || code === 134 || code === 135
}
