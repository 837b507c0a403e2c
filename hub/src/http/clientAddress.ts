import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import type { Logger } from '@doorbell/core'

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (`::ffff:127.0.0.1`, how a dual-stack socket shows IPv4). */
export function isLoopbackAddress (address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(address)
}

/**
 * Who sent a request, for per-address limits. `fallback` says why the proxy's word was not taken
 * when it should have been: the header was missing, or not one IP address.
 */
export interface ClientAddress { address: string, fallback?: 'missing' | 'invalid' }

/**
 * The client's address: the socket's, or, behind a trusted proxy (`trustProxy`) and only when
 * the socket is loopback (the proxy on this machine), the one the proxy puts in `X-Real-IP`
 * (nginx: `proxy_set_header X-Real-IP $remote_addr;`). Otherwise every client would share the
 * proxy's address and so one allowance, and a stranger could use it up for everyone. Anything
 * but one IPv4 or IPv6 address (a list, a name, empty) is not believed: the socket's address
 * then, as without a proxy. A non-loopback socket did not come through the proxy, whatever it
 * sends. (Fastify's own `trustProxy` reads X-Forwarded-For and trusts hops by count, a different
 * rule; the hub leaves it off and keeps this one for the API and the MQTT WebSocket alike.)
 */
export function clientAddress (req: IncomingMessage, o: { trustProxy: boolean }): ClientAddress {
  const socket = req.socket.remoteAddress ?? 'unknown'
  if (!o.trustProxy || !isLoopbackAddress(socket)) return { address: socket }
  const header = req.headers['x-real-ip']
  if (header === undefined) return { address: socket, fallback: 'missing' }
  // Node joins a repeated X-Real-IP with ", ": a list, refused like any other non-address.
  const value = (Array.isArray(header) ? header.join(',') : header).trim()
  return isIP(value) === 0 ? { address: socket, fallback: 'invalid' } : { address: value.toLowerCase() }
}

/**
 * `clientAddress` for a hub: the first request of each kind whose proxy header could not be used
 * is logged (once, so a misconfigured proxy or a flood of forged headers cannot fill the log).
 */
export function clientAddressOf (o: { trustProxy: boolean, log: Logger }): (req: IncomingMessage) => string {
  const logged = new Set<'missing' | 'invalid'>()
  return (req) => {
    const found = clientAddress(req, o)
    if (found.fallback !== undefined && !logged.has(found.fallback)) {
      logged.add(found.fallback)
      o.log.warn(found.fallback === 'missing'
        ? 'a request from this machine has no X-Real-IP (a local client, or a proxy that does not set it): rate limits use the socket\'s address, behind a proxy one allowance for every client (nginx: proxy_set_header X-Real-IP $remote_addr;). Logged once.'
        : 'a request through the proxy has an X-Real-IP that is not one IP address: it is ignored and the proxy\'s address used (nginx: proxy_set_header X-Real-IP $remote_addr;). Logged once.',
      { socket: found.address })
    }
    return found.address
  }
}
