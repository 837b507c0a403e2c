import type { IncomingMessage } from 'node:http'
import type { AedesOptions, AuthenticateError, Client } from 'aedes'
import type { Logger } from '@doorbell/core'
import type { RateLimiter } from '../rateLimit'
import type { Trust } from '../trust/trust'
import { principalFor } from './gate'
import type { Principals } from './principals'

/** CONNACK return codes, MQTT 3.1.1 §3.2.2.3 (Table 3.1). */
const SERVER_UNAVAILABLE = 3
const BAD_USER_NAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

export interface AuthenticateDeps {
  trust: Pick<Trust, 'authenticate'>
  homeId: string
  principals: Principals
  /** Failed sign-ins per client address; only failures spend from it. */
  failedSignIn: RateLimiter
  /** The address a sign-in counts against (see `clientAddressOf`). */
  addressOf: (client: Client) => string
  log: Logger
}

/**
 * The broker's `authenticate` hook: no anonymous clients. The CONNECT's User Name (MQTT 3.1.1
 * §3.1.3.4) is the member id and its Password (§3.1.3.5) the token from pairing; a CONNECT without
 * them is refused. The client id must be the member's own (`principalFor`: MQTT-3.1.4-2 would
 * otherwise let one member end another's session). Refused, in this order and before anything is recorded:
 * an address over its failed-sign-in allowance, missing or wrong credentials, a client id that is
 * not the member's.
 */
export function authenticate (d: AuthenticateDeps): NonNullable<AedesOptions['authenticate']> {
  return (client, username, password, callback) => {
    // 3 (server unavailable) means "try again later"; 4 and 5 mean "these credentials are no
    // good", which a viewer takes as "removed" and forgets its pairing (MQTT-3.2.2.3).
    const refuse = (returnCode: 3 | 4 | 5, reason: string): void => {
      d.log.warn('refused a client', { client: client.id, reason })
      callback(Object.assign(new Error(reason), { returnCode }) as AuthenticateError, false)
    }
    const address = d.addressOf(client)
    if (!d.failedSignIn.allows(address)) { refuse(SERVER_UNAVAILABLE, 'too many failed sign-ins from this address; wait a little'); return }
    const member = username && password ? d.trust.authenticate(username, password.toString('utf8')) : null
    if (!member) { d.failedSignIn.take(address); refuse(BAD_USER_NAME_OR_PASSWORD, username ? 'unknown, removed or expired member' : 'no credentials'); return }
    const who = principalFor(member, d.homeId, client.id)
    if (!who) { d.failedSignIn.take(address); refuse(NOT_AUTHORIZED, `client id ${client.id} is not ${member.name}'s`); return }
    d.principals.set(client, who)
    callback(null, true)
  }
}

/**
 * A client's address for the sign-in limit: for MQTT over WebSocket the upgrade request's (behind
 * a trusted proxy, its X-Real-IP); for MQTT over TCP or TLS, which never passes the HTTP proxy,
 * the socket's.
 */
export function clientAddressOfMqtt (requestAddress: (req: IncomingMessage) => string): (client: Client) => string {
  return (client) => {
    if (client.req !== undefined) return requestAddress(client.req)
    return (client.conn as { remoteAddress?: string }).remoteAddress ?? 'unknown'
  }
}
