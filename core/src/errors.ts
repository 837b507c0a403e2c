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
 * no message), else what it is.
 */
export function describeError (err: unknown): string {
  if (err instanceof Error || (typeof err === 'object' && err !== null && 'name' in err)) {
    const e = err as { name?: string, message?: string }
    return e.message || e.name || 'Error'
  }
  const text = String(err)
  return text === '' ? 'an empty error' : text
}
