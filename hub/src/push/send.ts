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

/**
 * Where the hub may send: a browser's push service is always https. http only to this machine's
 * loopback, and only when the config allows it (a push-service stand-in in tests): otherwise a
 * member could make the hub post to services on its own network.
 */
export function checkEndpoint (endpoint: string, allowLoopback: boolean): void {
  let url: URL
  try { url = new URL(endpoint) } catch { throw new PushEndpointError('endpoint: not a URL') }
  if (url.username || url.password) throw new PushEndpointError('endpoint: no credentials in the URL')
  if (url.protocol === 'https:') return
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
