import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { fromB64url } from '@doorbell/core'
import { encryptPush } from './encrypt'
import { vapidAuthorization, type VapidKeys } from './vapid'
import type { StoredSubscription } from './subscriptions'

/** How long a push service keeps a ring for a screen that is off: after that the ring is over anyway. */
export const RING_PUSH_TTL_SECONDS = 60
const SEND_TIMEOUT_MS = 10_000
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost'])

export class PushEndpointError extends Error {
  override readonly name = 'PushEndpointError'
}

/** Addresses of this machine and its networks: a push service is on the internet, never here. */
const NOT_INTERNET = new BlockList()
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16], ['224.0.0.0', 3]] as const) NOT_INTERNET.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [['::', 127], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) NOT_INTERNET.addSubnet(net, bits, 'ipv6')

/** Is this IP address one of this machine's or its networks' (an IPv4-mapped IPv6 address by its IPv4)? */
function isLocalAddress (address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return NOT_INTERNET.check(mapped[1]!, 'ipv4')
  const family = isIP(address)
  return family === 4 ? NOT_INTERNET.check(address, 'ipv4') : family === 6 ? NOT_INTERNET.check(address, 'ipv6') : false
}

const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1')

/**
 * Where the hub may send: a browser's push service is always https. http only to this machine's
 * loopback, and only when the config allows it (a push-service stand-in in tests): otherwise a
 * member could make the hub post to services on its own network.
 */
export function checkEndpoint (endpoint: string, allowLoopback: boolean): void {
  let url: URL
  try { url = new URL(endpoint) } catch { throw new PushEndpointError('endpoint: not a URL') }
  if (url.username || url.password) throw new PushEndpointError('endpoint: no credentials in the URL')
  const host = hostOf(url)
  if (url.protocol === 'https:') {
    if (host === 'localhost' || host.endsWith('.localhost') || isLocalAddress(host)) throw new PushEndpointError('endpoint: a push service is on the internet, not on this machine or its network')
    return
  }
  if (url.protocol === 'http:' && allowLoopback && LOOPBACK.has(url.hostname)) return
  throw new PushEndpointError(allowLoopback ? 'endpoint: https, or http on loopback' : 'endpoint: a push service is https')
}

export interface PushResult { endpoint: string, status: number | null, error?: string }

/**
 * One encrypted push (RFC 8030 §5) to one screen: aes128gcm body, VAPID authorization, TTL and
 * `Urgency: high` (a ring must wake a phone in power saving). Never throws: the result says what
 * the push service answered (404/410: the subscription is gone), or why nothing was sent.
 */
export async function sendPush (sub: StoredSubscription, payload: Uint8Array, o: { keys: VapidKeys, now: number, contact?: string, allowLoopback: boolean, ttlSeconds?: number }): Promise<PushResult> {
  try {
    checkEndpoint(sub.endpoint, o.allowLoopback)
    // A name is checked by what it resolves to, just before the send (a name for a local address is refused too).
    const url = new URL(sub.endpoint)
    if (url.protocol === 'https:' && isIP(hostOf(url)) === 0) {
      const addresses = await lookup(hostOf(url), { all: true })
      if (addresses.some((a) => isLocalAddress(a.address))) throw new PushEndpointError(`endpoint: ${url.hostname} resolves to an address on this machine or its network`)
    }
    const body = encryptPush(payload, fromB64url(sub.p256dh), fromB64url(sub.auth))
    const res = await fetch(sub.endpoint, {
      method: 'POST',
      redirect: 'manual', // a push service answers, it does not send the hub elsewhere
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
      headers: {
        Authorization: vapidAuthorization(sub.endpoint, o.keys, o.now, o.contact),
        'Content-Encoding': 'aes128gcm',
        'Content-Type': 'application/octet-stream',
        TTL: String(o.ttlSeconds ?? RING_PUSH_TTL_SECONDS),
        Urgency: 'high'
      },
      body: new Uint8Array(body)
    })
    await res.arrayBuffer().catch(() => undefined)
    return { endpoint: sub.endpoint, status: res.status }
  } catch (err) {
    return { endpoint: sub.endpoint, status: null, error: (err as Error).message }
  }
}
