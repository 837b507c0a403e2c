/** Typed errors of the trust module, with a stable `code` the HTTP layer maps to a status. */
/** `bad-rights`: rights a member's role cannot have (an owner's are all; an operator never opens the door). */
export type TrustErrorCode = 'forbidden' | 'bad-code' | 'last-owner' | 'not-found' | 'bad-rights'

export class TrustError extends Error {
  override readonly name = 'TrustError'
  constructor (readonly code: TrustErrorCode, message: string) {
    super(message)
  }
}
