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
