/**
 * A failure the person running the setup can act on (bad arguments, no credentials, access
 * denied, a name taken by something else): printed as is, exit code 2.
 */
export class SetupError extends Error {
  override readonly name = 'SetupError'
}
