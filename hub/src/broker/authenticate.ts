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
  /**
   * Failed sign-ins per claimed identity (the user name) and client address together; only
   * failures spend from it. An identity that failed too often from an address is locked there,
   * even with the right token; from elsewhere, and every other identity from that address, is not.
   */
  failedSignIn: RateLimiter
  /** Failed sign-ins per client address: past it a failure is answered "try later" (3); a correct credential still passes. */
  failedSignInByAddress?: RateLimiter
  /** The address a sign-in counts against (see `clientAddressOf`). */
  addressOf: (client: Client) => string
  log: Logger
}

/**
 * The broker's `authenticate` hook: no anonymous clients. The CONNECT's User Name (MQTT 3.1.1
 * §3.1.3.4) is the member id and its Password (§3.1.3.5) the token from pairing; a CONNECT without
 * them is refused. The client id must be the member's own (`principalFor`: MQTT-3.1.4-2 would
 * otherwise let one member end another's session). Refused, in this order and before anything is recorded:
 * an identity locked at this address (too many failures of that user name from there), missing or
 * wrong credentials, a client id that is not the member's. A stranger failing from a member's
 * address (behind a proxy without PROXY protocol, every client is 127.0.0.1) therefore never
 * stops that member's correct token, unless the stranger tries that member's own user name.
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
    // The user name is the client's to choose: only its first 64 characters key the limit (member ids are shorter).
    const identity = `${(username ?? '').slice(0, 64)}@${address}`
    if (!d.failedSignIn.allows(identity)) { refuse(SERVER_UNAVAILABLE, 'too many failed sign-ins for this member from this address; wait a little'); return }
    const failed = (code: 4 | 5, reason: string): void => {
      d.failedSignIn.take(identity)
      const addressOk = d.failedSignInByAddress?.take(address).ok ?? true
      refuse(addressOk ? code : SERVER_UNAVAILABLE, addressOk ? reason : `${reason}; too many failed sign-ins from this address, wait a little`)
    }
    let member: ReturnType<Trust['authenticate']>
    try {
      member = username && password ? d.trust.authenticate(username, password.toString('utf8')) : null
    } catch (err) {
      // The store cannot answer (a cluster's PostgreSQL is down): closed, and "try later", not "removed".
      refuse(SERVER_UNAVAILABLE, `the home's members cannot be checked now (${(err as Error).message})`)
      return
    }
    if (!member) { failed(BAD_USER_NAME_OR_PASSWORD, username ? 'unknown, removed or expired member' : 'no credentials'); return }
    const who = principalFor(member, d.homeId, client.id)
    if (!who) { failed(NOT_AUTHORIZED, `client id ${client.id} is not ${member.name}'s`); return }
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
