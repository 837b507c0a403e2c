/** Typed errors of the trust module, with a stable `code` the HTTP layer maps to a status. */
export type TrustErrorCode = 'forbidden' | 'bad-code' | 'last-owner' | 'not-found'

export class TrustError extends Error {
  override readonly name = 'TrustError'
  constructor (readonly code: TrustErrorCode, message: string) {
    super(message)
  }
}
